"""moto world for the s3keep function: a bucket whose ObjectCreated events go to SQS.

moto cannot run a Lambda from an S3 notification without Docker, but it does deliver S3
events to SQS: the events the function sees here are the payloads moto itself produced.
`drain` plays the Lambda platform: it feeds each queued event to the function (three
attempts, then the on-failure destination), round after round, until the function's own
marker events stop producing new ones.

Who wrote an object matters (the function ignores its own writes), and moto 5.2.5 leaves
`userIdentity` out of its events (moto/s3/notifications.py `_get_s3_event`). So the world
has real principals in moto: users upload with an IAM user's key, and the function writes
with credentials from `sts:AssumeRole` on its execution role with the session named after
the function, as Lambda does. `requester_identities` puts into every event the principal
id AWS would: looked up from moto's own record of whose access key signed the PutObject.

Used by the tests and by `bench/s3keep_bench.py`; it must run inside `moto.mock_aws()`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3

from tests.support.aws_models import share_service_models

# Worlds, their functions and the bench build many sessions: parse the models once.
share_service_models()

REPO = Path(__file__).resolve().parents[2]
HANDLER_PATH = REPO / "lambda" / "s3keep" / "handler.py"
REGION = "eu-west-2"
BUCKET = "eodh-workspaces-test"
# Pulumi auto-names the function `<name>-<7 random characters>`; Lambda sets
# AWS_LAMBDA_FUNCTION_NAME to it and uses it as the execution role's session name.
FUNCTION_NAME = "s3keep-function-3f9c2d1"
MARKER = ".s3keep"
LAMBDA_ATTEMPTS = 3  # one invocation plus the two retries of an async invocation


def load_handler() -> ModuleType:
    """The handler module, loaded by path (`lambda` is a keyword, not importable): the same
    module object the operator's replay tool uses."""
    from tools.replay_markers import load_handler as load

    return load()


@dataclass
class World:
    s3: Any  # the users' client: uploads made with it are not counted
    sqs: Any
    queue_url: str
    bucket: str = BUCKET
    function_session: Any = None  # the function's execution-role session (boto3.Session)
    role_id: str = ""  # the execution role's unique id (AROA...)
    failure_queue_url: str = ""  # the function's on-failure queue (its own records land here)

    def failure_records(self) -> list[dict[str, Any]]:
        """The function's own records in its failure queue (left there: a replay reads them)."""
        messages = self.sqs.receive_message(
            QueueUrl=self.failure_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

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
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(
        RoleName=f"{bucket}-marker-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]
    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=role["Arn"], RoleSessionName=FUNCTION_NAME
    )["Credentials"]
    function_session = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )
    user = f"{bucket}-uploader"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    s3 = boto3.client(
        "s3",
        region_name=REGION,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
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
    world = World(
        s3=s3,
        sqs=sqs,
        queue_url=queue_url,
        bucket=bucket,
        function_session=function_session,
        role_id=role["RoleId"],
        failure_queue_url=sqs.create_queue(QueueName=f"{bucket}-failures")["QueueUrl"],
    )
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


def function_client(world: World, module: ModuleType | None = None) -> Any:
    """An S3 client as the function has it: its execution-role session, production config."""
    module = module or load_handler()
    return world.function_session.client("s3", config=module.CLIENT_CONFIG)


def function_under_test(
    world: World, module: ModuleType | None = None, *, role_id: bool = True
) -> tuple[Any, RequestLog]:
    """A fresh MarkerFunction (one container) as Lambda would configure it, with its
    request log. `role_id=False`: the execution role's id is not given to the function."""
    module = module or load_handler()
    client = function_client(world, module)
    requests = RequestLog(client)
    function = module.MarkerFunction(
        module.MarkerStore(client),
        MARKER,
        function_name=FUNCTION_NAME,
        role_id=world.role_id if role_id else None,
        # As the program configures it (components/marker_function.py PLATFORM_PREFIXES).
        platform_prefixes=frozenset({"workflow-harvester"}),
        failures=module.FailureQueue(world.function_session.client("sqs"), world.failure_queue_url),
    )
    return function, requests


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


_REQUEST_ACCESS_KEY: ContextVar[str | None] = ContextVar("_REQUEST_ACCESS_KEY", default=None)


def principal_id_of(access_key_id: str) -> str:
    """`userIdentity.principalId` as S3 writes it for a request signed with this key.

    An assumed-role session: `AWS:<role unique id>:<session name>` (CloudTrail's
    userIdentity gives `AROA...:<session name>` for AssumedRole; S3 events prefix `AWS:`,
    e.g. the Lambda developer guide's `AWS:AIDA...` for an IAM user). An IAM user:
    `AWS:<user id>`. Looked up in moto's own STS and IAM records, so nothing is guessed.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    assumed = sts_backends[DEFAULT_ACCOUNT_ID]["aws"].get_assumed_role_from_access_key(
        access_key_id
    )
    if assumed is not None:
        return f"AWS:{assumed.user_id}"
    user = iam_backends[DEFAULT_ACCOUNT_ID]["aws"].get_user_from_access_key_id(access_key_id)
    if user is not None:
        return f"AWS:{user.id}"
    raise AssertionError(f"a PutObject signed with a key moto does not know: {access_key_id}")


@contextmanager
def requester_identities() -> Iterator[None]:
    """Put the writer's `userIdentity.principalId` into moto's S3 events, as S3 does."""
    from moto.s3 import notifications
    from moto.s3.responses import S3Response

    original_event = notifications._get_s3_event
    original_put = S3Response.put_object

    def put_object(self: Any) -> Any:
        authorization = self.headers.get("Authorization", "")
        match = re.search(r"Credential=([^/]+)/", authorization)
        token = _REQUEST_ACCESS_KEY.set(match[1] if match else None)
        try:
            return original_put(self)
        finally:
            _REQUEST_ACCESS_KEY.reset(token)

    def with_identity(event_name: str, bucket: Any, key: Any, notification_id: str) -> Any:
        event = original_event(event_name, bucket, key, notification_id)
        access_key = _REQUEST_ACCESS_KEY.get()
        if access_key is None:
            raise AssertionError("an S3 event outside a signed PutObject")
        for record in event["Records"]:
            record["userIdentity"] = {"principalId": principal_id_of(access_key)}
        return event

    notifications._get_s3_event = with_identity
    S3Response.put_object = put_object  # type: ignore[method-assign]
    try:
        yield
    finally:
        notifications._get_s3_event = original_event
        S3Response.put_object = original_put  # type: ignore[method-assign]


@contextmanager
def moto_world(**kwargs: Any) -> Iterator[World]:
    """moto with requester identities in S3 events, and a world in it."""
    from moto import mock_aws

    with requester_identities(), mock_aws():
        yield make_world(**kwargs)


def eventbridge_event(record: Mapping[str, Any], account: str = "000000000000") -> dict[str, Any]:
    """The EventBridge "Object Created" event S3 sends for the same object as `record`.

    Shape from the S3 user guide, "EventBridge event message structure" (ev-events): envelope
    `version`, `id`, `detail-type`, `source`, `account`, `time`, `region`, `resources`; detail
    `version`, `bucket.name`, `object.{key,size,etag,version-id,sequencer}`, `request-id`,
    `requester` (an account id, not a principal), `source-ip-address`, `reason`. The key
    stays URL-encoded as in the notification (Powertools decodes EventBridge's
    `detail.object.key` with `unquote_plus`); S3 itself leaves `/` alone, moto encodes it.
    """
    s3 = record["s3"]
    obj = {"key": s3["object"]["key"].replace("%2F", "/"), "size": s3["object"]["size"]}
    obj["etag"] = s3["object"].get("eTag", "d41d8cd98f00b204e9800998ecf8427e")
    if s3["object"].get("versionId"):
        obj["version-id"] = s3["object"]["versionId"]
    obj["sequencer"] = "617f08299329d189"
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": account,
        "time": "2021-11-12T00:00:00Z",
        "region": record.get("awsRegion", REGION),
        "resources": [f"arn:aws:s3:::{s3['bucket']['name']}"],
        "detail": {
            "version": "0",
            "bucket": {"name": s3["bucket"]["name"]},
            "object": obj,
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": account,
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


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
