"""Give every directory in the workspace bucket the `.s3keep` marker s3contents needs.

s3contents lists a directory only when `<dir>/.s3keep` exists, so anything written out of
band (AWS CLI, workflows, boto3 in a notebook) stays invisible. This function runs on every
`ObjectCreated` event and creates the missing markers of the object's ancestor directories.

Request budget. The only S3 call is a create-if-absent `PutObject` (`If-None-Match: *`) of
an empty marker. Ancestors are walked from the deepest up and the walk stops at the first
marker that already exists (412/409): a marker's own event ensures *its* ancestors, so
nothing above an existing marker needs checking. An object whose directory is known costs
one request; every genuinely new directory costs one more.

Own writes. A marker this function creates raises an event too. The walk that created it
already ensured its ancestors, so such an event needs nothing: it is recognised without
any state, from who wrote the object. Lambda runs the function with its execution role's
session named after the function, so an S3 event of its write carries
`userIdentity.principalId` = `AWS:<role unique id>:<function name>` (the id of an
assumed-role session, `AROA...:<session name>`, prefixed `AWS:`). Every container of the
function agrees on that without sharing anything, so scale-out costs no extra request.
EventBridge's "Object Created" carries only the requester's account: there the function's
own markers come back as events and each costs one refused request (its parent exists), the
price of still serving a user who uploads a `.s3keep` of their own into a new directory.

Loops. Markers are created only if absent, so a marker event can only create markers for
strict ancestors of its own directory: every round of events moves at least one level up
the tree and the chain ends within the tree's depth.

Nothing lost silently. A walk cut short after it created a marker cannot be finished by
Lambda's retry of the event (the retry stops at that marker, 412) and the marker's own event
does not walk further: so the function itself sends the markers it left unmarked to the
failure queue (FAILURE_QUEUE_URL) and, if even that fails, logs them in an ERROR line naming
the replay command. The same goes for a walk about to outlive the invocation's timeout
(TIME_MARGIN_MS): Lambda's kill runs no except path. A create that keeps conflicting (409)
is an error, not a success: the key's other writer may have been a delete.
`tools/replay_markers.py` drains the failure queue (these records and Lambda's own
on-failure records) and creates every marker they name, each only if absent.

Bounded work. A key can hold ~500 levels (1,024 bytes). Only the top MAX_DEPTH directories
of a workspace are marked; deeper ones are logged as skipped (JSON), so one event costs at
most MAX_DEPTH requests.

Scope. The top-level prefix is the workspace. Its own marker `<workspace>/.s3keep` belongs
to s3contents (written at server start), so markers are made for directories *inside* the
workspace only; nothing is ever written at the bucket root. In the platform's shared bucket
other services keep top-level prefixes too (PLATFORM_PREFIXES, e.g. `workflow-harvester`):
those are never marked, nor is a top-level prefix that cannot be a workspace name (the
platform makes `<name>/` for a workspace whose namespace is `ws-<name>`: a DNS label;
EO-DataHub/eodhp-workspace-manager internal/k8s/workspace.go). Each skip is logged.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_MARKER_NAME = ".s3keep"

# Standard mode retries throttling (503 SlowDown) and 5xx inside one invocation; a failure
# that survives this is raised, and Lambda's async retries take over.
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3})

# 409 ConditionalRequestConflict: a concurrent write or delete of the same key was in
# flight. AWS asks callers to retry; the retry answers 412 (exists) or creates the marker.
CONFLICT_ATTEMPTS = 3

# Directories deeper than this below the workspace are not marked: a 1,023-byte key can be
# 509 levels deep, and each level would cost a request and a marker. Jupyter users browse
# far shallower trees; the skip is logged.
MAX_DEPTH = 64

# A walk that already created markers and then meets an error is retried in place: once
# its deepest marker exists, a later retry of the same event stops there (412) and the
# own-marker events are ignored, so the invocation itself must finish the walk.
WALK_RETRY_DELAYS = (0.5, 2.0)

OBJECT_CREATED_DETAIL_TYPE = "Object Created"

# A walk stops and queues what it left once less than this remains of the invocation
# (`context.get_remaining_time_in_millis()`, checked before each level): Lambda's timeout
# kills the process with no except path run, and the event's retry stops at the marker this
# walk created (412). What must fit after the check: the level in flight (one PutObject, tens
# of milliseconds in-region, a few seconds at most with the in-place retries' 0.5 s + 2 s
# and botocore's backoff) and one SendMessage to the failure queue. Five seconds is a sixth of
# the function's 30 s timeout (components/marker_function.py `timeout_seconds`).
TIME_MARGIN_MS = 5_000

# The hub's workspace name rule (hub/extra_config/2_configure_authenticator.py
# `eodh_workspace_name_problem`): the namespace `ws-<name>` must be a DNS label.
WORKSPACE_NAME = re.compile(r"[a-z](?:[a-z0-9-]*[a-z0-9])?")
WORKSPACE_NAME_MAX_LENGTH = 60


def is_workspace(prefix: str, platform_prefixes: frozenset[str]) -> bool:
    """Whether a top-level prefix of the bucket can be a workspace's."""
    return (
        prefix not in platform_prefixes
        and len(prefix) <= WORKSPACE_NAME_MAX_LENGTH
        and "--" not in prefix
        and WORKSPACE_NAME.fullmatch(prefix) is not None
    )


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
                    _log(logging.WARNING, "conflicting write, retrying", bucket=bucket, key=key)
                    continue
                raise
            return PutResult(created=True, version_id=response.get("VersionId"))
        # The other writer may have been a delete: nothing says the marker exists.
        raise MarkerConflict(f"{key}: 409 on all {CONFLICT_ATTEMPTS} attempts")


def directories_to_mark(
    key: str, marker_name: str = DEFAULT_MARKER_NAME, max_depth: int | None = None
) -> list[str]:
    """Directories of `key` that need a marker, deepest first, as `ws/a/b/` prefixes.

    Only directories inside the workspace (the top-level prefix) count, never the
    workspace itself nor the bucket root. A key ending in `/` (a console "folder") is a
    directory and is marked itself. A marker key does not need its own directory marked.
    Climbing stops at an empty segment (`a//b`): Jupyter cannot address such a path.
    With `max_depth`, only directories at most that many levels below the workspace.
    """
    parts = key.split("/")
    if len(parts) < 2 or not parts[0]:
        return []
    directory_segments = parts[1:-1]
    if parts[-1] == marker_name and directory_segments:
        directory_segments = directory_segments[:-1]
    directories: list[str] = []
    prefix = parts[0] + "/"
    if max_depth is not None:
        directory_segments = directory_segments[:max_depth]
    for segment in directory_segments:
        if not segment:
            break
        prefix += segment + "/"
        directories.append(prefix)
    directories.reverse()
    return directories


class MarkerError(RuntimeError):
    """Raised so that Lambda retries the event and then sends it to the on-failure queue."""


class OutOfTime(RuntimeError):
    """The invocation's remaining time fell under TIME_MARGIN_MS before the walk ended."""


class MarkerConflict(RuntimeError):
    """409 on every attempt: another write or delete of the marker kept running."""


UNMARKED_RECORD = "s3keep/unmarked-markers"
REPLAY_COMMAND = "uv run --frozen python -m tools.replay_markers --queue-url <failure queue url>"


class FailureQueue:
    """The function's on-failure SQS queue, for markers a Lambda retry could not create."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url

    def send_unmarked(self, bucket: str, key: str, markers: list[str], error: str) -> None:
        body = {"type": UNMARKED_RECORD, "bucket": bucket, "key": key, "markers": markers}
        body["error"] = error
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))


@dataclass(frozen=True)
class CreatedObject:
    """One created object, whichever way the event arrived."""

    bucket: str
    key: str
    principal_id: str | None


def created_objects(event: Mapping[str, Any]) -> list[CreatedObject]:
    """The created objects an event reports, keys decoded.

    Two shapes arrive:
    - an S3 event notification (`Records[].s3`): the key is URL-encoded with `+` for a
      space (S3 "Event message structure"), the writer in `userIdentity.principalId`;
    - an EventBridge "Object Created" event from the bucket (`detail.object.key`): one
      object per event, the key encoded the same way (AWS Lambda Powertools decodes
      `S3EventBridgeNotificationObject.key` with `unquote_plus`), and only the requester's
      account (`detail.requester`), which cannot tell this function from anyone else.
    Anything else (s3:TestEvent, ObjectRemoved, other detail types) reports nothing.
    A record of the right kind without its fields raises KeyError: a malformed event.
    """
    if event.get("source") == "aws.s3" and "detail" in event:
        if event.get("detail-type") != OBJECT_CREATED_DETAIL_TYPE:
            _log(logging.DEBUG, "not an Object Created event", detail_type=event.get("detail-type"))
            return []
        detail = event["detail"]
        return [
            CreatedObject(detail["bucket"]["name"], unquote_plus(detail["object"]["key"]), None)
        ]
    found: list[CreatedObject] = []
    for record in event.get("Records") or []:
        name = record.get("eventName", "")
        if not name.startswith("ObjectCreated:"):
            _log(logging.DEBUG, "not an ObjectCreated record", event_name=name)
            continue
        found.append(
            CreatedObject(
                record["s3"]["bucket"]["name"],
                unquote_plus(record["s3"]["object"]["key"]),
                (record.get("userIdentity") or {}).get("principalId"),
            )
        )
    return found


def is_own_write(principal_id: str | None, function_name: str | None, role_id: str | None) -> bool:
    """Whether S3's `principalId` names this function's own execution-role session.

    An assumed-role session's id is `<role unique id>:<session name>` (CloudTrail
    userIdentity); S3 event notifications prefix it with `AWS:`. Lambda names the session
    after the function. With the role's unique id known the match is exact; without it,
    any role session of that name counts (a session name is chosen by whoever assumes a
    role, so the id is what makes this exact).
    """
    if not principal_id or not function_name:
        return False
    if role_id:
        return principal_id == f"AWS:{role_id}:{function_name}"
    kind, _, rest = principal_id.partition(":")
    session_role, _, session_name = rest.partition(":")
    return kind == "AWS" and session_role.startswith("AROA") and session_name == function_name


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


class MarkerFunction:
    def __init__(
        self,
        store: MarkerStore,
        marker_name: str = DEFAULT_MARKER_NAME,
        *,
        function_name: str | None = None,
        role_id: str | None = None,
        max_depth: int = MAX_DEPTH,
        platform_prefixes: frozenset[str] = frozenset(),
        failures: FailureQueue | None = None,
    ) -> None:
        if not marker_name or "/" in marker_name:
            raise ValueError(f"MARKER_NAME must be a plain file name, got {marker_name!r}")
        if max_depth < 1:
            raise ValueError(f"MAX_DEPTH must be at least 1, got {max_depth}")
        self.store = store
        self.marker_name = marker_name
        self.function_name = function_name
        self.role_id = role_id
        self.max_depth = max_depth
        self.platform_prefixes = platform_prefixes
        self.failures = failures

    def handle(
        self,
        event: Mapping[str, Any],
        request_id: str | None = None,
        remaining_ms: Callable[[], int] | None = None,
    ) -> dict[str, Any]:
        created: list[str] = []
        failed: list[str] = []
        # Markers confirmed during this invocation, so duplicate records cost nothing.
        known: set[tuple[str, str]] = set()
        try:
            objects = created_objects(event)
        except (KeyError, TypeError) as error:
            _log(
                logging.ERROR,
                "malformed event",
                exc_info=True,
                error=type(error).__name__,
                request_id=request_id,
            )
            raise MarkerError("malformed event") from error
        for item in objects:
            if is_own_write(item.principal_id, self.function_name, self.role_id):
                _log(logging.DEBUG, "own marker", bucket=item.bucket, key=item.key)
                continue
            top = item.key.split("/", 1)[0]
            if not is_workspace(top, self.platform_prefixes):
                _log(
                    logging.INFO,
                    "not a workspace prefix: nothing marked",
                    bucket=item.bucket,
                    key=item.key,
                    prefix=top,
                    platform_prefix=top in self.platform_prefixes,
                    request_id=request_id,
                )
                continue
            directories = directories_to_mark(item.key, self.marker_name, self.max_depth)
            skipped = len(directories_to_mark(item.key, self.marker_name)) - len(directories)
            if skipped:
                _log(
                    logging.WARNING,
                    "directories beyond the depth limit not marked",
                    bucket=item.bucket,
                    key=item.key,
                    max_depth=self.max_depth,
                    skipped_directories=skipped,
                    request_id=request_id,
                )
            if not directories:
                _log(logging.DEBUG, "no directory to mark", bucket=item.bucket, key=item.key)
                continue
            try:
                created += self._walk(item.bucket, directories, known, request_id, remaining_ms)
            except Exception as error:
                failed.append(item.key)
                created += getattr(error, "created", [])
                unmarked = getattr(error, "unmarked", None)
                # A retry of this event stops at the marker the walk created (412): only a
                # record of what is left lets anyone finish it.
                queued = (
                    self._queue_unmarked(item, unmarked, error, request_id)
                    if unmarked and getattr(error, "created", None)
                    else None
                )
                _log(
                    logging.ERROR,
                    "could not mark directories",
                    exc_info=True,
                    bucket=item.bucket,
                    key=item.key,
                    marker=getattr(error, "marker", None),
                    unmarked=unmarked,
                    queued=queued,
                    replay=None if queued is None else REPLAY_COMMAND,
                    error=type(error.__cause__ or error).__name__,
                    request_id=request_id,
                )
        if created:
            _log(logging.INFO, "markers created", markers=created, request_id=request_id)
        if failed:
            raise MarkerError(f"could not mark directories for: {', '.join(failed)}")
        return {"created": created}

    def _queue_unmarked(
        self, item: CreatedObject, unmarked: list[str], error: Exception, request_id: str | None
    ) -> bool:
        """Whether the failure queue now holds the markers this walk left unmarked."""
        if self.failures is None:
            return False
        try:
            self.failures.send_unmarked(item.bucket, item.key, unmarked, type(error).__name__)
        except Exception:
            _log(
                logging.ERROR,
                "could not queue the unmarked markers: create them by hand or replay",
                exc_info=True,
                bucket=item.bucket,
                markers=unmarked,
                request_id=request_id,
            )
            return False
        return True

    def _walk(
        self,
        bucket: str,
        directories: list[str],
        known: set[tuple[str, str]],
        request_id: str | None,
        remaining_ms: Callable[[], int] | None = None,
    ) -> list[str]:
        """Deepest first, until a marker exists. Returns the markers created."""
        created: list[str] = []
        for index, directory in enumerate(directories):
            marker_key = directory + self.marker_name
            if (bucket, marker_key) in known:
                break
            try:
                left = remaining_ms() if remaining_ms is not None else None
                if left is not None and left < TIME_MARGIN_MS:
                    raise OutOfTime(f"{left} ms left, under the {TIME_MARGIN_MS} ms margin")
                result = self._create(bucket, marker_key, retry=bool(created))
            except Exception as error:
                # Above a marker this walk created, nothing else will ever look again.
                error.marker = marker_key  # type: ignore[attr-defined]
                error.unmarked = [  # type: ignore[attr-defined]
                    d + self.marker_name for d in directories[index:]
                ]
                error.created = created  # type: ignore[attr-defined]
                raise
            known.add((bucket, marker_key))
            if not result.created:
                break
            created.append(marker_key)
        return created

    def _create(self, bucket: str, marker_key: str, *, retry: bool) -> PutResult:
        delays = WALK_RETRY_DELAYS if retry else ()
        for delay in delays:
            try:
                return self.store.create_if_absent(bucket, marker_key)
            except (ClientError, BotoCoreError) as error:
                code = (
                    error.response.get("Error", {}).get("Code")
                    if isinstance(error, ClientError)
                    else type(error).__name__
                )
                _log(
                    logging.WARNING,
                    "retrying a walk cut short",
                    bucket=bucket,
                    marker=marker_key,
                    error=code,
                )
                _sleep(delay)
        return self.store.create_if_absent(bucket, marker_key)


def markers_to_replay(
    body: Mapping[str, Any],
    marker_name: str = DEFAULT_MARKER_NAME,
    platform_prefixes: frozenset[str] = frozenset(),
    max_depth: int = MAX_DEPTH,
) -> list[tuple[str, str]]:
    """(bucket, marker key) pairs a failure-queue message asks for, deepest first.

    Two kinds of message: this function's own record of a walk cut short (UNMARKED_RECORD),
    and Lambda's on-failure record of an event whose retries were exhausted (the event in
    `requestPayload`; Lambda developer guide, "Capturing records of asynchronous
    invocations"), for which every directory of every object is due: the event's walk may
    have stopped at a marker its own earlier attempt created.
    """
    if body.get("type") == UNMARKED_RECORD:
        return [(str(body["bucket"]), str(marker)) for marker in body["markers"]]
    event = body.get("requestPayload", body)
    pairs: list[tuple[str, str]] = []
    for item in created_objects(event):
        if not is_workspace(item.key.split("/", 1)[0], platform_prefixes):
            continue
        for directory in directories_to_mark(item.key, marker_name, max_depth):
            pairs.append((item.bucket, directory + marker_name))
    return pairs


def replay(store: MarkerStore, pairs: list[tuple[str, str]]) -> list[str]:
    """Create each marker unless it exists, without stopping at one that does; returns the
    markers created. Raises on the first that cannot be created (the message stays queued)."""
    created = []
    for bucket, key in pairs:
        if store.create_if_absent(bucket, key).created:
            created.append(key)
    return created


def new_client() -> Any:
    return boto3.client("s3", config=CLIENT_CONFIG)


_function: MarkerFunction | None = None


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    global _function
    if _function is None:
        marker_name = os.environ.get("MARKER_NAME", DEFAULT_MARKER_NAME)
        # Set by the Lambda runtime: the name is also the execution role's session name.
        function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        role_id = os.environ.get("EXECUTION_ROLE_ID") or None
        max_depth = int(os.environ.get("MAX_DEPTH", MAX_DEPTH))
        platform_prefixes = frozenset(
            p for p in os.environ.get("PLATFORM_PREFIXES", "").split(",") if p
        )
        queue_url = os.environ.get("FAILURE_QUEUE_URL")
        failures = FailureQueue(boto3.client("sqs"), queue_url) if queue_url else None
        _function = MarkerFunction(
            MarkerStore(new_client()),
            marker_name,
            function_name=function_name,
            role_id=role_id,
            max_depth=max_depth,
            platform_prefixes=platform_prefixes,
            failures=failures,
        )
        # AWS does not publish the runtime's bundled SDK version: record it on cold start.
        _log(
            logging.INFO,
            "cold start",
            boto3=boto3.__version__,
            botocore=botocore.__version__,
            marker_name=marker_name,
            function_name=function_name,
            role_id=role_id,
            max_depth=max_depth,
            platform_prefixes=sorted(platform_prefixes),
            failure_queue=queue_url,
        )
    return _function.handle(
        event,
        request_id=getattr(context, "aws_request_id", None),
        remaining_ms=getattr(context, "get_remaining_time_in_millis", None),
    )
