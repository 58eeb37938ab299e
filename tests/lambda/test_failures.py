"""Throttling, conflicts, partial walks and unexpected errors."""

from __future__ import annotations

import importlib
import json
from collections import Counter
from typing import Any

import pytest

harness = importlib.import_module("tests.lambda.harness")
Fault = harness.Fault

SLOW_DOWN = Fault(503, "SlowDown")
INTERNAL = Fault(500, "InternalError")
DENIED = Fault(403, "AccessDenied")
CONFLICT = Fault(409, "ConditionalRequestConflict")


def _versions(world: Any) -> Counter[str]:
    listing = world.s3.list_object_versions(Bucket=world.bucket)
    return Counter(v["Key"] for v in listing.get("Versions", []))


def test_throttle_is_retried_within_the_invocation(world: Any, function: Any) -> None:
    fn, requests = function
    world.put("ws1/a/b/c.txt")
    with harness.faulty_puts({"ws1/a/b/.s3keep": [SLOW_DOWN]}):
        stats = harness.drain(world, fn.handle)
    assert world.markers() == {"ws1/a/.s3keep", "ws1/a/b/.s3keep"}
    assert stats.invocations == stats.events  # botocore absorbed it: no Lambda retry
    # The refused attempt reached S3 and is counted; the markers' own events cost nothing.
    b, a = "ws1/a/b/.s3keep", "ws1/a/.s3keep"
    assert requests.object_keys() == [b, b, a]


def test_lasting_throttle_is_retried_by_the_platform_idempotently(
    world: Any, function: Any
) -> None:
    fn, _ = function
    world.put("ws1/a/b/c.txt")
    # One invocation's worth of attempts fails on the first marker of the walk (nothing
    # created yet): the invocation raises, Lambda retries it.
    with harness.faulty_puts({"ws1/a/b/.s3keep": [SLOW_DOWN, INTERNAL, SLOW_DOWN]}):
        stats = harness.drain(world, fn.handle)
    assert world.markers() == {"ws1/a/.s3keep", "ws1/a/b/.s3keep"}
    assert stats.invocations > stats.events
    assert stats.failed_events == []
    # Idempotent: nothing written twice.
    assert set(_versions(world).values()) == {1}


def test_walk_cut_short_is_finished_by_the_same_invocation(world: Any, function: Any) -> None:
    # The deepest marker is created, then its parent fails all of botocore's attempts.
    # A Lambda retry of the event would stop at the deepest marker (412) and the marker's
    # own event is ignored, so the invocation must finish the walk itself.
    fn, _ = function
    world.put("ws1/a/b/c/f.txt")
    with harness.faulty_puts({"ws1/a/b/.s3keep": [INTERNAL] * 3}):
        stats = harness.drain(world, fn.handle)
    assert world.markers() == {"ws1/a/.s3keep", "ws1/a/b/.s3keep", "ws1/a/b/c/.s3keep"}
    assert stats.failed_events == []
    assert stats.invocations == stats.events


def test_walk_that_cannot_finish_queues_what_it_left_unmarked_and_a_replay_finishes_it(
    world: Any, function: Any, capsys: Any
) -> None:
    # When the parent keeps failing past the in-place retries, Lambda's retry of the event
    # meets the deepest marker (412) and stops: the event "succeeds" on retry and Lambda's
    # own on-failure record never comes. So the failing invocation queues what it left.
    fn, _ = function
    world.put("ws1/a/b/c/f.txt")
    with harness.faulty_puts({"ws1/a/b/.s3keep": [INTERNAL] * 30}):
        stats = harness.drain(world, fn.handle)
    assert world.markers() == {"ws1/a/b/c/.s3keep"}
    assert stats.invocations == stats.events + 1  # one failed attempt, then a "success"
    (record,) = world.failure_records()
    assert record == {
        "type": "s3keep/unmarked-markers",
        "bucket": world.bucket,
        "key": "ws1/a/b/c/f.txt",
        "markers": ["ws1/a/b/.s3keep", "ws1/a/.s3keep"],
        "error": "ClientError",
    }
    errors = [
        line
        for line in map(json.loads, capsys.readouterr().out.splitlines())
        if line["level"] == "ERROR"
    ]
    assert len(errors) == 1
    assert errors[0]["unmarked"] == ["ws1/a/b/.s3keep", "ws1/a/.s3keep"]
    assert errors[0]["queued"] is True and "tools.replay_markers" in errors[0]["replay"]
    module = harness.load_handler()
    store = module.MarkerStore(harness.function_client(world))
    assert module.replay(store, module.markers_to_replay(record)) == record["markers"]
    assert world.markers() == harness.required_markers(["ws1/a/b/c/f.txt"])


def test_unmarked_markers_are_logged_when_even_the_queue_fails(
    world: Any, function: Any, capsys: Any
) -> None:
    fn, _ = function
    fn.failures.queue_url = world.failure_queue_url + "-deleted"  # SendMessage refused
    world.put("ws1/a/b/f.txt")
    with harness.faulty_puts({"ws1/a/.s3keep": [INTERNAL] * 30}):
        harness.drain(world, fn.handle)
    lines = list(map(json.loads, capsys.readouterr().out.splitlines()))
    (lost,) = [line for line in lines if line["message"].startswith("could not queue")]
    assert lost["markers"] == ["ws1/a/.s3keep"] and lost["bucket"] == world.bucket
    (failed,) = [line for line in lines if line["message"] == "could not mark directories"]
    assert failed["queued"] is False and failed["unmarked"] == ["ws1/a/.s3keep"]


def test_conflict_is_retried_then_settles(world: Any, function: Any) -> None:
    fn, requests = function
    world.put("ws1/a/f.txt")
    with harness.faulty_puts({"ws1/a/.s3keep": [CONFLICT]}):
        stats = harness.drain(world, fn.handle)
    assert world.markers() == {"ws1/a/.s3keep"}
    assert requests.object_keys() == ["ws1/a/.s3keep", "ws1/a/.s3keep"]
    assert stats.invocations == stats.events


def test_lasting_conflict_is_an_error_that_is_logged_and_retried(
    world: Any, function: Any, capsys: Any
) -> None:
    # The other writer may have been a delete: a marker that kept conflicting may not exist.
    fn, requests = function
    world.put("ws1/a/f.txt")
    (event,) = world.receive_all()
    with (
        harness.faulty_puts({"ws1/a/.s3keep": [CONFLICT] * 3}),
        pytest.raises(harness.load_handler().MarkerError, match=r"ws1/a/f\.txt"),
    ):
        fn.handle(event)
    assert len(requests) == 3
    lines = list(map(json.loads, capsys.readouterr().out.splitlines()))
    assert [line["level"] for line in lines] == ["WARNING", "WARNING", "WARNING", "ERROR"]
    assert lines[-1]["marker"] == "ws1/a/.s3keep" and lines[-1]["error"] == "MarkerConflict"
    # Nothing was created, so Lambda's retry walks the whole way again: nothing to queue.
    assert world.failure_records() == []


def test_a_failed_events_record_replays_every_directory(world: Any) -> None:
    # Lambda's on-failure record of an event whose retries were exhausted: an earlier
    # attempt may have created the deepest marker, so the replay does not stop at it.
    world.put("ws1/a/b/c/f.txt")
    world.put("workflow-harvester/x/y.json")
    events = world.receive_all()
    world.s3.put_object(Bucket=world.bucket, Key="ws1/a/b/c/.s3keep", Body=b"")
    module = harness.load_handler()
    pairs = [
        pair
        for event in events
        for pair in module.markers_to_replay(
            {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": event},
            platform_prefixes=frozenset({"workflow-harvester"}),
        )
    ]
    store = module.MarkerStore(harness.function_client(world))
    assert module.replay(store, pairs) == ["ws1/a/b/.s3keep", "ws1/a/.s3keep"]
    assert world.markers() == harness.required_markers(["ws1/a/b/c/f.txt"])


def test_unexpected_error_is_logged_with_the_key_and_reaches_the_destination(
    world: Any, function: Any, capsys: Any
) -> None:
    fn, _ = function
    key = "ws1/dir with space/ü+/f.txt"
    world.put(key)
    with harness.faulty_puts({"ws1/dir with space/ü+/.s3keep": [DENIED] * 9}):
        stats = harness.drain(world, fn.handle)
    assert stats.invocations == harness.LAMBDA_ATTEMPTS
    assert len(stats.failed_events) == 1
    assert harness.MARKER not in str(stats.failed_events[0]["Records"][0]["s3"]["object"]["key"])
    errors = [
        line
        for line in map(json.loads, capsys.readouterr().out.splitlines())
        if line["level"] == "ERROR"
    ]
    assert len(errors) == harness.LAMBDA_ATTEMPTS
    assert errors[0]["key"] == key
    assert errors[0]["bucket"] == world.bucket
    assert errors[0]["marker"] == "ws1/dir with space/ü+/.s3keep"
    assert "AccessDenied" in errors[0]["exception"]


def test_unexpected_error_is_raised_not_swallowed(world: Any, function: Any) -> None:
    fn, _ = function
    world.put("ws1/a/f.txt")
    (event,) = world.receive_all()
    with (
        harness.faulty_puts({"ws1/a/.s3keep": [DENIED]}),
        pytest.raises(harness.load_handler().MarkerError, match=r"ws1/a/f\.txt"),
    ):
        fn.handle(event)


def test_one_failing_record_does_not_stop_the_others(world: Any, function: Any) -> None:
    fn, _ = function
    world.put("ws1/bad/f.txt")
    world.put("ws1/good/f.txt")
    records = [r for e in world.receive_all() for r in e["Records"]]
    with (
        harness.faulty_puts({"ws1/bad/.s3keep": [DENIED]}),
        pytest.raises(harness.load_handler().MarkerError, match=r"ws1/bad/f\.txt"),
    ):
        fn.handle({"Records": records})
    assert world.markers() == {"ws1/good/.s3keep"}


def test_malformed_record_is_an_error(function: Any, capsys: Any) -> None:
    fn, _ = function
    with pytest.raises(harness.load_handler().MarkerError):
        fn.handle({"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]})
    assert '"level": "ERROR"' in capsys.readouterr().out


def test_loading_the_handler_again_does_not_log_every_line_twice(
    capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util
    import logging
    import sys

    name = "s3keep_handler_reloaded"
    for _ in range(2):
        spec = importlib.util.spec_from_file_location(name, harness.HANDLER_PATH)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)  # dataclasses look their module up
        spec.loader.exec_module(module)
    module._log(logging.ERROR, "probe", key="ws1/a/f.txt")
    assert capsys.readouterr().out.count('"message": "probe"') == 1


class Killed(BaseException):
    """Lambda's timeout: the process ends, no except or finally of the handler runs."""


class SlowInvocation:
    """A Lambda context with a 30 s budget (the function's timeout) on an S3 that takes
    `put_ms` per PutObject: the clock advances with each put the function sends, and a put
    that would end past the budget is where Lambda kills the invocation."""

    aws_request_id = "req-slow"

    def __init__(self, client: Any, budget_ms: int = 30_000, put_ms: int = 7_000) -> None:
        self.left = budget_ms
        self.put_ms = put_ms
        client.meta.events.register("before-send.s3.PutObject", self._put)

    def _put(self, **_: Any) -> None:
        self.left -= self.put_ms
        if self.left < 0:
            raise Killed("Task timed out after 30.00 seconds")

    def get_remaining_time_in_millis(self) -> int:
        return self.left


def test_a_walk_running_out_of_time_queues_the_rest_before_lambda_kills_it(
    world: Any, function: Any, handler_module: Any, monkeypatch: Any
) -> None:
    """Five levels at 7 s a put do not fit in 30 s: with 2 s left, the fifth put would be
    killed mid-walk, and Lambda's retry of the event stops at the deepest marker (412)."""
    fn, _ = function
    client = fn.store._client
    monkeypatch.setattr(handler_module, "_function", fn)  # the container's function

    def invoke(event: Any) -> Any:
        context = SlowInvocation(client)  # each invocation gets its own 30 s
        try:
            return handler_module.handler(event, context)
        except Killed as killed:
            raise RuntimeError(str(killed)) from None  # what the async retry sees

    world.put("ws1/a/b/c/d/e/f.txt")
    harness.drain(world, invoke)
    assert world.markers() == {f"ws1/a/b/c/d/{p}.s3keep" for p in ("", "e/")} | {
        "ws1/a/b/.s3keep",
        "ws1/a/b/c/.s3keep",
    }
    (record,) = world.failure_records()
    assert record["markers"] == ["ws1/a/.s3keep"] and record["error"] == "OutOfTime"
    module = harness.load_handler()
    store = module.MarkerStore(harness.function_client(world))
    module.replay(store, module.markers_to_replay(record))
    assert world.markers() == harness.required_markers(["ws1/a/b/c/d/e/f.txt"])
