"""moto world for the s3keep function: a bucket whose ObjectCreated events go to SQS.

moto cannot run a Lambda from an S3 notification without Docker, but it does deliver S3
events to SQS: the events the function sees here are the payloads moto itself produced.
`drain` plays the Lambda platform: it feeds each queued event to the function (three
attempts, then the on-failure destination), round after round, until the function's own
marker events stop producing new ones.

Used by the tests and by `bench/s3keep_bench.py`; it must run inside `moto.mock_aws()`.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3

REPO = Path(__file__).resolve().parents[2]
HANDLER_PATH = REPO / "lambda" / "s3keep" / "handler.py"
REGION = "eu-west-2"
BUCKET = "eodh-workspaces-test"
MARKER = ".s3keep"
LAMBDA_ATTEMPTS = 3  # one invocation plus the two retries of an async invocation


def load_handler() -> ModuleType:
    """The handler module, loaded by path: `lambda` is a keyword, not importable."""
    name = "s3keep_handler"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HANDLER_PATH)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@dataclass
class World:
    s3: Any  # the users' client: uploads made with it are not counted
    sqs: Any
    queue_url: str
    bucket: str = BUCKET

    def put(self, key: str, body: bytes = b"x") -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def all_keys(self) -> set[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def markers(self) -> set[str]:
        return {k for k in self.all_keys() if k.rsplit("/", 1)[-1] == MARKER}

    def receive_all(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Every S3 event now queued (up to `limit`), in queue order, s3:TestEvent included."""
        events: list[dict[str, Any]] = []
        while limit is None or len(events) < limit:
            batch = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=3600
            ).get("Messages", [])
            if not batch:
                return events
            for message in batch:
                events.append(json.loads(message["Body"]))
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],
            )
        return events


def make_world(*, versioning: bool = True, bucket: str = BUCKET) -> World:
    """The workspace bucket as deployed (versioned, SSE-S3 by default) and its event queue."""
    s3 = boto3.client("s3", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    if versioning:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    queue_url = sqs.create_queue(QueueName=f"{bucket}-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    world = World(s3=s3, sqs=sqs, queue_url=queue_url, bucket=bucket)
    world.receive_all()  # drop the s3:TestEvent sent when the notification is configured
    return world


class RequestLog:
    """Every HTTP attempt a client sends (retries and failures included), by operation."""

    def __init__(self, client: Any, limit: int | None = 3_000) -> None:
        self.sent: list[tuple[str, str, dict[str, str]]] = []
        # A handler that loops floods moto's queue, whose cost grows with its length:
        # past the limit every request fails at once, so such a test fails in seconds.
        self.limit = limit
        # First in line, so no other before-send handler can hide an attempt from the count.
        client.meta.events.register_first("before-send.s3", self._record)

    def _record(self, request: Any, **_: Any) -> None:
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        self.sent.append((request.method, request.url, headers))
        if self.limit is not None and len(self.sent) > self.limit:
            raise AssertionError(f"more than {self.limit} requests: a runaway chain")

    def object_keys(self) -> list[str]:
        """The object keys requested, decoded, in order."""
        return [unquote(urlsplit(url).path.lstrip("/")) for _, url, _ in self.sent]

    def __len__(self) -> int:
        return len(self.sent)


def function_under_test(
    module: ModuleType | None = None,
) -> tuple[Any, RequestLog]:
    """A fresh MarkerFunction on the production client configuration, with its request log."""
    module = module or load_handler()
    client = module.new_client()
    requests = RequestLog(client)
    return module.MarkerFunction(module.MarkerStore(client), MARKER), requests


@dataclass
class Drained:
    rounds: int = 0
    events: int = 0  # S3 events delivered to the function (objects and markers)
    invocations: int = 0  # including retries
    failed_events: list[Mapping[str, Any]] = field(default_factory=list)  # on-failure queue


def invoke_async(
    fn: Callable[[Mapping[str, Any]], Any], event: Mapping[str, Any], stats: Drained
) -> None:
    """Lambda's asynchronous invocation: retried twice, then sent to the destination."""
    for _ in range(LAMBDA_ATTEMPTS):
        stats.invocations += 1
        try:
            fn(event)
            return
        except Exception:
            continue
    stats.failed_events.append(event)


def drain(
    world: World,
    fn: Callable[[Mapping[str, Any]], Any],
    *,
    max_rounds: int = 100,
    max_events: int = 2_000,
    reorder: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
) -> Drained:
    """Deliver queued events round by round until a round produces no new event."""
    stats = Drained()
    while True:
        # Bounded, so a runaway chain fails fast instead of flooding moto's queue.
        queued = world.receive_all(limit=max_events - stats.events + 1)
        events = [e for e in queued if "Records" in e]
        if not events:
            return stats
        stats.rounds += 1
        if stats.rounds > max_rounds:
            raise AssertionError(f"still producing events after {max_rounds} rounds")
        for event in reorder(events) if reorder else events:
            stats.events += len(event["Records"])
            if stats.events > max_events:
                # A handler that rewrites markers multiplies events each round: fail fast.
                raise AssertionError(f"more than {max_events} events: the chain does not end")
            invoke_async(fn, event, stats)


def required_markers(keys: Iterable[str]) -> set[str]:
    """The specification, written independently of the handler: for every object key,
    every directory strictly inside its workspace needs `<dir>/.s3keep`."""
    wanted: set[str] = set()
    for key in keys:
        parts = key.split("/")
        if len(parts) < 2 or not parts[0]:
            continue
        segments = parts[1:-1]
        for depth in range(1, len(segments) + 1):
            if not all(segments[:depth]):
                break
            wanted.add("/".join([parts[0], *segments[:depth]]) + "/" + MARKER)
    return wanted


@contextmanager
def versioned_events() -> Iterator[None]:
    """Add `versionId` to moto's S3 events, as S3 does for a versioning-enabled bucket.

    moto 5.2.5 leaves it out; real events carry it, and the function uses it to answer
    events for its own markers without a request.
    """
    from moto.s3 import notifications

    original = notifications._get_s3_event

    def with_version(event_name: str, bucket: Any, key: Any, notification_id: str) -> Any:
        event = original(event_name, bucket, key, notification_id)
        if getattr(bucket, "is_versioned", False) and key.version_id:
            for record in event["Records"]:
                record["s3"]["object"]["versionId"] = key.version_id
        return event

    notifications._get_s3_event = with_version
    try:
        yield
    finally:
        notifications._get_s3_event = original


@dataclass
class Fault:
    """A reply moto gives instead of storing the object: (status, S3 error code)."""

    status: int
    code: str


@contextmanager
def faulty_puts(plan: dict[str, list[Fault]]) -> Iterator[dict[str, list[Fault]]]:
    """Make moto answer the next PutObject attempts on a key with the planned errors.

    The attempt really reaches moto (and is counted), but nothing is stored, as with an
    S3 503 SlowDown or 500. Each fault is used once, in order.
    """
    from moto.s3.responses import S3Response

    original = S3Response.put_object

    def put_object(self: Any) -> Any:
        faults = plan.get(self.parse_key_name())
        if faults:
            fault = faults.pop(0)
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                f"<Error><Code>{fault.code}</Code><Message>injected</Message></Error>"
            )
            return fault.status, {"Content-Type": "application/xml"}, body
        return original(self)

    S3Response.put_object = put_object  # type: ignore[method-assign]
    try:
        yield plan
    finally:
        S3Response.put_object = original  # type: ignore[method-assign]
