"""`tools.replay_markers`: the operator's way to finish what the function could not.

Against moto: the function's failure queue as the function fills it (its own records of a
walk cut short) and as Lambda fills it (the on-failure record of an event whose retries were
exhausted: `requestContext`, `requestPayload` = the event; Lambda developer guide,
"Capturing records of asynchronous invocations"). The operator's credentials here are a
role session moto knows (the harness gives every PutObject its signer's identity).
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

import pytest

from tools import replay_markers

harness = importlib.import_module("tests.lambda.harness")

# An operator's tool, run from the project's environment: not part of the Lambda runtime
# suite (tests/lambda/test_runtime_boto3.py), whose venv holds the handler's needs only.
pytestmark = pytest.mark.skipif(
    os.environ.get("S3KEEP_RUNTIME_VENV") == "1", reason="needs the project's environment"
)
INTERNAL = harness.Fault(500, "InternalError")
DENIED = harness.Fault(403, "AccessDenied")


def _lambda_failure_record(event: dict[str, Any]) -> str:
    return json.dumps(
        {
            "version": "1.0",
            "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        }
    )


def _unmarked_record(world: Any) -> str:
    """The function's own record of a walk cut short at ws1/a/b/f (two markers left)."""
    return json.dumps(
        {
            "type": "s3keep/unmarked-markers",
            "bucket": world.bucket,
            "key": "ws1/a/b/f",
            "markers": ["ws1/a/b/.s3keep", "ws1/a/.s3keep"],
            "error": "ClientError",
        }
    )


def _queued(world: Any) -> int:
    attributes = world.sqs.get_queue_attributes(
        QueueUrl=world.failure_queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def test_replay_finishes_both_kinds_of_record_and_empties_the_queue(
    world: Any, function: Any, capsys: Any
) -> None:
    fn, _ = function
    world.put("ws1/a/b/c/f.txt")
    with harness.faulty_puts({"ws1/a/b/.s3keep": [INTERNAL] * 30}):
        harness.drain(world, fn.handle)  # cut short: the function queues what it left
    world.put("ws2/x/y/z.txt")
    (event,) = world.receive_all()
    world.s3.put_object(Bucket=world.bucket, Key="ws2/x/y/.s3keep", Body=b"")  # attempt 1
    world.receive_all()
    world.sqs.send_message(
        QueueUrl=world.failure_queue_url, MessageBody=_lambda_failure_record(event)
    )
    assert _queued(world) == 2
    code = replay_markers.main(
        ["--queue-url", world.failure_queue_url], session=world.function_session
    )
    assert code == 0
    assert world.markers() == harness.required_markers(["ws1/a/b/c/f.txt", "ws2/x/y/z.txt"])
    assert _queued(world) == 0
    # Run again on what is done: nothing is overwritten.
    assert (
        replay_markers.main(
            ["--bucket", world.bucket, "--marker", "ws1/a/.s3keep"],
            session=world.function_session,
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines()[-1] == "1 markers, 0 created"


def test_a_message_that_cannot_be_finished_stays_queued(world: Any, capsys: Any) -> None:
    world.sqs.send_message(
        QueueUrl=world.failure_queue_url,
        MessageBody=_unmarked_record(world),
    )
    with harness.faulty_puts({"ws1/a/.s3keep": [DENIED] * 9}):
        code = replay_markers.main(
            ["--queue-url", world.failure_queue_url],
            session=world.function_session,
        )
    assert code == 1
    assert "left in the queue" in capsys.readouterr().err
    assert _queued(world) == 1
    assert world.markers() == {"ws1/a/b/.s3keep"}


def test_a_poison_message_is_left_named_and_the_rest_still_replayed(
    world: Any, capsys: Any
) -> None:
    # The handler refuses this event on purpose ("malformed event"): Lambda's on-failure
    # record of it has no s3.object, and the queue also holds a body that is not JSON.
    poison = _lambda_failure_record(
        {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": world.bucket}}}]}
    )
    poison_ids = {
        world.sqs.send_message(QueueUrl=world.failure_queue_url, MessageBody=body)["MessageId"]
        for body in (poison, "not json")
    }
    world.sqs.send_message(
        QueueUrl=world.failure_queue_url,
        MessageBody=_unmarked_record(world),
    )
    code = replay_markers.main(
        ["--queue-url", world.failure_queue_url], session=world.function_session
    )
    assert code == 1
    assert world.markers() == {"ws1/a/b/.s3keep", "ws1/a/.s3keep"}
    err = capsys.readouterr().err
    for message_id in poison_ids:
        assert f"left in the queue: {message_id}: " in err
    assert "KeyError" in err and "JSONDecodeError" in err
    assert _queued(world) == 2
