"""Give every directory in the workspace bucket the `.s3keep` marker s3contents needs.

s3contents lists a directory only when `<dir>/.s3keep` exists, so anything written out of
band (AWS CLI, workflows, boto3 in a notebook) stays invisible. This function runs on every
`ObjectCreated` event and creates the missing markers of the object's ancestor directories.

Request budget. The only S3 call is a create-if-absent `PutObject` (`If-None-Match: *`) of
an empty marker. Ancestors are walked from the deepest up and the walk stops at the first
marker that already exists (412/409): a marker's own event ensures *its* ancestors, so
nothing above an existing marker needs checking. An object whose directory is known costs
one request; every genuinely new directory costs one more.

Loops. Markers are created only if absent, so a marker event can only create markers for
strict ancestors of its own directory: every round of events moves at least one level up
the tree and the chain ends within the tree's depth. Events for this function's own
markers are answered from memory (no request) when the event names the exact object
version this container created and already saw the parent of.

Scope. The top-level prefix is the workspace. Its own marker `<workspace>/.s3keep` belongs
to s3contents (written at server start), so markers are made for directories *inside* the
workspace only; nothing is ever written at the bucket root.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import ClientError

DEFAULT_MARKER_NAME = ".s3keep"

# Standard mode retries throttling (503 SlowDown) and 5xx inside one invocation; a failure
# that survives this is raised, and Lambda's async retries take over.
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3})

# 409 ConditionalRequestConflict: a concurrent write or delete of the same key was in
# flight. AWS asks callers to retry; the retry answers 412 (exists) or creates the marker.
CONFLICT_ATTEMPTS = 3

# How many of this container's own marker versions to remember. Entries are tiny; the
# bound only keeps a long-lived container from growing without limit.
OWN_MARKER_MEMORY = 10_000


class _JsonLines(logging.Handler):
    """One JSON object per line, so CloudWatch Logs Insights can query the fields."""

    def emit(self, record: logging.LogRecord) -> None:
        entry: dict[str, Any] = {"level": record.levelname, "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = logging.Formatter().formatException(record.exc_info)
        try:
            # Resolved per call (not at import) so a replaced stdout, as in tests, is used.
            sys.stdout.write(json.dumps(entry, default=str) + "\n")
        except Exception:
            self.handleError(record)


log = logging.getLogger("s3keep")
# Loading this module again (Lambda re-imports after an init failure; tests load it by
# path) must not stack handlers on the shared logger and print every line twice.
for _existing in [h for h in log.handlers if type(h).__name__ == _JsonLines.__name__]:
    log.removeHandler(_existing)
log.addHandler(_JsonLines())
# The Lambda runtime puts its own text handler on the root logger: do not print twice.
log.propagate = False
log.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())


def _log(level: int, message: str, exc_info: bool = False, **fields: Any) -> None:
    log.log(level, message, exc_info=exc_info, extra={"fields": fields})


def _require_absent(params: dict[str, Any], **_: Any) -> None:
    # Added at the client seam instead of PutObject(IfNoneMatch="*"): that parameter only
    # exists from botocore 1.35.2, and the Lambda runtime's bundled SDK version is not
    # documented. A header works with every botocore.
    params["headers"]["If-None-Match"] = "*"


@dataclass(frozen=True)
class PutResult:
    created: bool
    version_id: str | None = None


class MarkerStore:
    """The function's only AWS calls: create an empty marker object unless one exists."""

    def __init__(self, client: Any) -> None:
        self._client = client
        client.meta.events.register(
            "before-call.s3.PutObject", _require_absent, unique_id="s3keep-if-none-match"
        )

    def create_if_absent(self, bucket: str, key: str) -> PutResult:
        for _ in range(CONFLICT_ATTEMPTS):
            try:
                # No ServerSideEncryption: S3 applies the bucket's default (SSE-S3 or
                # SSE-KMS), which is exactly "the bucket's encryption" whichever it is.
                response = self._client.put_object(Bucket=bucket, Key=key, Body=b"")
            except ClientError as error:
                status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                code = error.response.get("Error", {}).get("Code")
                if status == 412 or code == "PreconditionFailed":
                    return PutResult(created=False)
                if status == 409 or code == "ConditionalRequestConflict":
                    continue
                raise
            return PutResult(created=True, version_id=response.get("VersionId"))
        # Still conflicting: another writer is busy with this very key; its event covers it.
        return PutResult(created=False)


def directories_to_mark(key: str, marker_name: str = DEFAULT_MARKER_NAME) -> list[str]:
    """Directories of `key` that need a marker, deepest first, as `ws/a/b/` prefixes.

    Only directories inside the workspace (the top-level prefix) count, never the
    workspace itself nor the bucket root. A key ending in `/` (a console "folder") is a
    directory and is marked itself. A marker key does not need its own directory marked.
    Climbing stops at an empty segment (`a//b`): Jupyter cannot address such a path.
    """
    parts = key.split("/")
    if len(parts) < 2 or not parts[0]:
        return []
    directory_segments = parts[1:-1]
    if parts[-1] == marker_name and directory_segments:
        directory_segments = directory_segments[:-1]
    directories: list[str] = []
    prefix = parts[0] + "/"
    for segment in directory_segments:
        if not segment:
            break
        prefix += segment + "/"
        directories.append(prefix)
    directories.reverse()
    return directories


class MarkerError(RuntimeError):
    """Raised so that Lambda retries the event and then sends it to the on-failure queue."""


class MarkerFunction:
    def __init__(self, store: MarkerStore, marker_name: str = DEFAULT_MARKER_NAME) -> None:
        if not marker_name or "/" in marker_name:
            raise ValueError(f"MARKER_NAME must be a plain file name, got {marker_name!r}")
        self.store = store
        self.marker_name = marker_name
        # (bucket, marker key, version id) of markers this container created and whose
        # parent directory it then saw exist: their events need no request at all.
        self._settled: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    def handle(self, event: Mapping[str, Any], request_id: str | None = None) -> dict[str, Any]:
        created: list[str] = []
        failed: list[str] = []
        # Markers confirmed during this invocation, so duplicate records cost nothing.
        known: set[tuple[str, str]] = set()
        for record in event.get("Records") or []:
            bucket = key = marker_key = None
            try:
                name = record.get("eventName", "")
                if not name.startswith("ObjectCreated:"):
                    _log(logging.DEBUG, "not an ObjectCreated record", event_name=name)
                    continue
                bucket = record["s3"]["bucket"]["name"]
                key = unquote_plus(record["s3"]["object"]["key"])
                version = record["s3"]["object"].get("versionId")
                directories = directories_to_mark(key, self.marker_name)
                if not directories:
                    _log(logging.DEBUG, "no directory to mark", bucket=bucket, key=key)
                    continue
                if version and (bucket, key, version) in self._settled:
                    _log(logging.DEBUG, "own marker, parent already seen", bucket=bucket, key=key)
                    continue
                pending: tuple[str, str, str] | None = None
                for directory in directories:
                    marker_key = directory + self.marker_name
                    if (bucket, marker_key) in known:
                        result = PutResult(created=False)
                    else:
                        result = self.store.create_if_absent(bucket, marker_key)
                        known.add((bucket, marker_key))
                    if pending:
                        self._remember(pending)
                        pending = None
                    if not result.created:
                        break
                    created.append(marker_key)
                    if result.version_id:
                        pending = (bucket, marker_key, result.version_id)
            except Exception as error:
                failed.append(key or "?")
                _log(
                    logging.ERROR,
                    "could not mark directories",
                    exc_info=True,
                    bucket=bucket,
                    key=key,
                    marker=marker_key,
                    error=type(error).__name__,
                    request_id=request_id,
                )
        if created:
            _log(logging.INFO, "markers created", markers=created, request_id=request_id)
        if failed:
            raise MarkerError(f"could not mark directories for: {', '.join(failed)}")
        return {"created": created}

    def _remember(self, entry: tuple[str, str, str]) -> None:
        self._settled[entry] = None
        self._settled.move_to_end(entry)
        while len(self._settled) > OWN_MARKER_MEMORY:
            self._settled.popitem(last=False)


def new_client() -> Any:
    return boto3.client("s3", config=CLIENT_CONFIG)


_function: MarkerFunction | None = None


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    global _function
    if _function is None:
        marker_name = os.environ.get("MARKER_NAME", DEFAULT_MARKER_NAME)
        _function = MarkerFunction(MarkerStore(new_client()), marker_name)
        # AWS does not publish the runtime's bundled SDK version: record it on cold start.
        _log(
            logging.INFO,
            "cold start",
            boto3=boto3.__version__,
            botocore=botocore.__version__,
            marker_name=marker_name,
        )
    return _function.handle(event, request_id=getattr(context, "aws_request_id", None))
