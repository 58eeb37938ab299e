"""The handler fed EventBridge "Object Created" events (the shared-bucket mode).

moto cannot deliver S3 events through EventBridge to Lambda, and the events it puts on its
bus differ from AWS's (raw key, `eTag`, `reason` "ObjectCreated"; moto/s3/notifications.py
`_send_event_bridge_message`). So each moto S3 notification record is turned into the event
S3 documents for EventBridge (S3 user guide, "EventBridge event message structure"):
`harness.eventbridge_event`.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

harness = importlib.import_module("tests.lambda.harness")

AWKWARD_KEYS = [
    "ws1/with space/file name.txt",
    "ws1/plus+sign/a+b.txt",
    "ws1/per%cent/100%.txt",
    "ws1/ünïcødé/日本/データ.csv",
    "ws1/mixed +%20 ü/x",
    "ws1/eq=1/semi;colon/f",
]


def _as_eventbridge(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [harness.eventbridge_event(r) for e in events for r in e.get("Records", [])]


def test_awkward_keys_through_eventbridge_get_exactly_their_markers(
    world: Any, function: Any
) -> None:
    fn, requests = function
    for key in AWKWARD_KEYS:
        world.put(key)
    for event in _as_eventbridge(world.receive_all()):
        fn.handle(event)
    assert world.markers() == harness.required_markers(AWKWARD_KEYS)
    assert set(requests.object_keys()) == harness.required_markers(AWKWARD_KEYS)


def test_both_shapes_mark_the_same_directories(world: Any, function: Any) -> None:
    fn, _ = function
    for key in AWKWARD_KEYS:
        world.put(key)
    events = world.receive_all()
    results = [fn.handle(e)["created"] for e in events]
    for key in list(world.markers()):
        world.s3.delete_object(Bucket=world.bucket, Key=key)
    world.receive_all()
    again = [fn.handle(e)["created"] for e in _as_eventbridge(events)]
    assert sorted(m for c in results for m in c) == sorted(m for c in again for m in c)


def test_an_eventbridge_key_is_decoded_once(world: Any, function: Any) -> None:
    # "a+b" arrives as "a%2Bb", a space as "+": decoding twice would turn "a+b" into "a b".
    fn, _ = function
    event = harness.eventbridge_event(
        {
            "s3": {
                "bucket": {"name": world.bucket},
                "object": {"key": "ws1/a%2Bb/c+d/f.txt", "size": 1},
            }
        }
    )
    assert event["detail"]["object"]["key"] == "ws1/a%2Bb/c+d/f.txt"
    assert sorted(fn.handle(event)["created"]) == ["ws1/a+b/.s3keep", "ws1/a+b/c d/.s3keep"]


@pytest.mark.parametrize("detail_type", ["Object Deleted", "Object Restore Completed"])
def test_other_s3_eventbridge_events_are_ignored(
    world: Any, function: Any, detail_type: str
) -> None:
    fn, requests = function
    event = harness.eventbridge_event(
        {"s3": {"bucket": {"name": world.bucket}, "object": {"key": "ws1/a/b/f", "size": 1}}}
    )
    event["detail-type"] = detail_type
    assert fn.handle(event) == {"created": []}
    assert len(requests) == 0


def test_malformed_eventbridge_event_is_an_error(world: Any, function: Any) -> None:
    fn, _ = function
    event = {"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {}}}
    with pytest.raises(harness.load_handler().MarkerError):
        fn.handle(event)


def test_a_users_own_marker_in_a_new_directory_gets_its_parents_marked(
    world: Any, function: Any
) -> None:
    # The rule passes marker keys (it cannot tell whose they are): a user's `.s3keep` in a
    # new directory, and the function's own markers, which then cost at most one request.
    fn, requests = function
    world.put("ws1/new/deeper/.s3keep", b"")
    for event in _as_eventbridge(world.receive_all()):
        fn.handle(event)
    assert world.markers() == {"ws1/new/deeper/.s3keep", "ws1/new/.s3keep"}
    for event in _as_eventbridge(world.receive_all()):  # the function's own marker's event
        assert fn.handle(event) == {"created": []}
    assert requests.object_keys() == ["ws1/new/.s3keep"]
