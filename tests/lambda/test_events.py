"""The handler against moto's own S3 → SQS event payloads."""

from __future__ import annotations

import importlib
import json
import random
import re
from types import ModuleType
from typing import Any

import boto3
import pytest

harness = importlib.import_module("tests.lambda.harness")


def test_awkward_keys_get_exactly_their_markers(world: Any, function: Any) -> None:
    fn, requests = function
    keys = [
        "ws1/with space/file name.txt",
        "ws1/plus+sign/a+b.txt",
        "ws1/per%cent/100%.txt",
        "ws1/ünïcødé/日本/データ.csv",
        "ws1/mixed +%20 ü/x",
    ]
    for key in keys:
        world.put(key)
    stats = harness.drain(world, fn.handle)
    assert world.markers() == harness.required_markers(keys)
    assert stats.failed_events == []
    # moto encodes `/` too (S3 does not): both decode to the same key.
    assert set(requests.object_keys()) <= harness.required_markers(keys)


def test_trailing_slash_folder_object_is_marked_itself(world: Any, function: Any) -> None:
    fn, _ = function
    world.put("ws1/console/folder/", b"")
    harness.drain(world, fn.handle)
    assert world.markers() == {"ws1/console/.s3keep", "ws1/console/folder/.s3keep"}


def test_forty_levels_deep_costs_one_request_per_new_directory(world: Any, function: Any) -> None:
    fn, requests = function
    key = "ws1/" + "/".join(f"level{i}" for i in range(40)) + "/deep.txt"
    world.put(key)
    stats = harness.drain(world, fn.handle)
    assert world.markers() == harness.required_markers([key])
    assert len(world.markers()) == 40
    # The object event creates all 40 (nothing above the top to probe); the 40 events of
    # the function's own markers arrive in a second round and cost nothing.
    assert len(requests) == 40
    assert stats.events == 41
    assert stats.rounds == 2


def test_object_in_known_directory_costs_one_request(world: Any, function: Any) -> None:
    fn, requests = function
    world.put("ws1/a/b/first.txt")
    harness.drain(world, fn.handle)
    before = len(requests)
    world.put("ws1/a/b/second.txt")
    harness.drain(world, fn.handle)
    assert len(requests) - before == 1


def test_new_directories_cost_one_each_plus_the_probe(world: Any, function: Any) -> None:
    fn, requests = function
    world.put("ws1/a/b/first.txt")
    harness.drain(world, fn.handle)
    before = len(requests)
    world.put("ws1/a/b/c/d/e/new.txt")
    events = [e for e in world.receive_all() if "Records" in e]
    for event in events:
        fn.handle(event)
    # c, d, e are new; b answers 412 and the walk stops there.
    assert requests.object_keys()[before:] == [
        "ws1/a/b/c/d/e/.s3keep",
        "ws1/a/b/c/d/.s3keep",
        "ws1/a/b/c/.s3keep",
        "ws1/a/b/.s3keep",
    ]


def test_every_request_is_a_conditional_put_of_a_nested_marker(world: Any, function: Any) -> None:
    # What the IAM policy may be narrowed to: s3:PutObject on <bucket>/*/*/.s3keep only.
    fn, requests = function
    for key in ["ws1/a/b/c.txt", "ws2/x/.s3keep", "ws1/a/b/", "ws1/f", ".s3keep"]:
        world.put(key)
    harness.drain(world, fn.handle)
    assert len(requests) > 0
    for method, url, headers in requests.sent:
        assert method == "PUT"
        assert headers.get("If-None-Match") == "*"
        assert "x-amz-server-side-encryption" not in {h.lower() for h in headers}
        assert "?" not in url  # no sub-resource (ACL, tagging, ...): a plain PutObject
    assert all(re.fullmatch(r"[^/]+/.+/\.s3keep", key) for key in requests.object_keys())


def test_markers_are_empty_and_take_the_bucket_encryption(world: Any, function: Any) -> None:
    fn, _ = function
    world.put("ws1/a/b.txt")
    harness.drain(world, fn.handle)
    head = world.s3.head_object(Bucket=world.bucket, Key="ws1/a/.s3keep")
    assert head["ContentLength"] == 0
    assert head["ServerSideEncryption"] == "AES256"


def test_existing_marker_is_never_overwritten(world: Any, function: Any) -> None:
    fn, _ = function
    world.put("ws1/a/.s3keep", b"")
    world.put("ws1/a/b/c.txt")
    harness.drain(world, fn.handle)
    versions = world.s3.list_object_versions(Bucket=world.bucket, Prefix="ws1/a/.s3keep")
    assert len(versions["Versions"]) == 1


@pytest.mark.parametrize("key", ["ws1/root-file.txt", "ws1/.s3keep", "root-file.txt", ".s3keep"])
def test_keys_at_workspace_or_bucket_root_need_nothing(world: Any, function: Any, key: str) -> None:
    fn, requests = function
    world.put(key)
    stats = harness.drain(world, fn.handle)
    assert len(requests) == 0
    assert world.all_keys() == {key}
    assert stats.failed_events == []


def test_marker_made_by_someone_else_gets_its_ancestors(world: Any, function: Any) -> None:
    # s3contents' mkdir writes only the new directory's marker.
    fn, requests = function
    world.put("ws1/p/q/r/.s3keep", b"")
    harness.drain(world, fn.handle)
    assert world.markers() == {"ws1/p/.s3keep", "ws1/p/q/.s3keep", "ws1/p/q/r/.s3keep"}
    assert "ws1/p/q/r/.s3keep" not in requests.object_keys()


def test_marker_made_by_someone_else_midway_stops_the_walk(world: Any, function: Any) -> None:
    fn, requests = function
    world.put("ws1/m/.s3keep", b"")
    harness.drain(world, fn.handle)
    before = len(requests)
    world.put("ws1/m/n/o/f.txt")
    for event in world.receive_all():
        fn.handle(event)
    assert requests.object_keys()[before:] == [
        "ws1/m/n/o/.s3keep",
        "ws1/m/n/.s3keep",
        "ws1/m/.s3keep",
    ]


def _shuffled_with_duplicates(seed: int) -> Any:
    def reorder(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rng = random.Random(seed)
        doubled = events + rng.sample(events, k=len(events) // 2)
        rng.shuffle(doubled)
        return doubled

    return reorder


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_duplicated_reordered_and_replayed_events(world: Any, function: Any, seed: int) -> None:
    fn, _ = function
    keys = [
        f"ws{w}/{a}/{b}/{c}/f{i}.txt"
        for w in (1, 2)
        for a in "ab"
        for b in "cd"
        for c in "ef"
        for i in range(2)
    ]
    keys += ["ws1/a/.s3keep", "ws2/b/d/"]
    for key in keys:
        world.put(key)
    recorded: list[dict[str, Any]] = []

    def recording(event: dict[str, Any]) -> Any:
        recorded.append(event)
        return fn.handle(event)

    stats = harness.drain(world, recording, reorder=_shuffled_with_duplicates(seed))
    assert world.markers() == harness.required_markers(keys) | {"ws1/a/.s3keep"}
    # Replaying everything later changes nothing and creates no new event.
    fresh, _ = harness.function_under_test(world)
    for event in recorded:
        assert fresh.handle(event) == {"created": []}
    assert world.receive_all() == []
    assert stats.failed_events == []


def test_records_that_are_not_object_created_are_ignored(world: Any, function: Any) -> None:
    fn, requests = function
    removed = {
        "Records": [
            {
                "eventName": "ObjectRemoved:Delete",
                "s3": {"bucket": {"name": world.bucket}, "object": {"key": "ws1/a/b/c.txt"}},
            }
        ]
    }
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": world.bucket}
    assert fn.handle(removed) == {"created": []}
    assert fn.handle(test_event) == {"created": []}
    assert len(requests) == 0


def test_duplicate_records_in_one_event_cost_nothing_extra(world: Any, function: Any) -> None:
    fn, requests = function
    world.put("ws1/a/b/c.txt")
    (event,) = world.receive_all()
    fn.handle({"Records": event["Records"] * 3})
    assert len(requests) == 2


def test_recreated_marker_is_not_mistaken_for_the_functions_own(world: Any, function: Any) -> None:
    fn, _ = function
    world.put("ws1/a/b/f.txt")
    harness.drain(world, fn.handle)
    # The directory is deleted and s3contents' mkdir makes ws1/a/b again, by API.
    for key in world.all_keys():
        world.s3.delete_object(Bucket=world.bucket, Key=key)
    world.put("ws1/a/b/.s3keep", b"")
    harness.drain(world, fn.handle)
    assert world.markers() == {"ws1/a/.s3keep", "ws1/a/b/.s3keep"}


def test_lambda_entry_point(
    world: Any, handler_module: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(handler_module, "_function", None)
    monkeypatch.setenv("MARKER_NAME", ".s3keep")
    # What the Lambda runtime provides: the function's name and its role's credentials.
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", harness.FUNCTION_NAME)
    credentials = world.function_session.get_credentials()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials.secret_key)
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials.token)
    monkeypatch.setenv("EXECUTION_ROLE_ID", world.role_id)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it caches the first credentials
    world.put("ws1/a/b.txt")
    (event,) = world.receive_all()

    class Context:
        aws_request_id = "req-1"

    assert handler_module.handler(event, Context()) == {"created": ["ws1/a/.s3keep"]}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    cold = next(line for line in lines if line["message"] == "cold start")
    assert cold["boto3"] and cold["botocore"]
    created = next(line for line in lines if line["message"] == "markers created")
    assert created == {
        "level": "INFO",
        "message": "markers created",
        "markers": ["ws1/a/.s3keep"],
        "request_id": "req-1",
    }


def test_only_workspace_prefixes_are_marked_and_each_skip_is_logged(
    world: Any, function: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    fn, requests = function
    keys = {
        "ws1/a/b.txt": True,
        # A platform service's own prefix of the shared bucket (components/marker_function.py).
        "workflow-harvester/runs/r1/out.json": False,
        "workflow-harvester2/a/b.txt": True,  # a workspace merely named like its start
        "Uploads/a/b.txt": False,  # no workspace has that name (ws-Uploads is no namespace)
        "bad--name/a/b.txt": False,
    }
    for key in keys:
        world.put(key)
    stats = harness.drain(world, fn.handle)
    assert stats.failed_events == []
    assert world.markers() == harness.required_markers(k for k, marked in keys.items() if marked)
    assert all(k.split("/")[0] in ("ws1", "workflow-harvester2") for k in requests.object_keys())
    skipped = [
        entry
        for entry in map(json.loads, capsys.readouterr().out.splitlines())
        if entry["message"] == "not a workspace prefix: nothing marked"
    ]
    assert sorted((e["prefix"], e["platform_prefix"]) for e in skipped) == [
        ("Uploads", False),
        ("bad--name", False),
        ("workflow-harvester", True),
    ]
