"""Own writes, recognised without state; scale-out; bounded work per event."""

from __future__ import annotations

import importlib
import json
import random
from types import ModuleType
from typing import Any

import boto3
import pytest

harness = importlib.import_module("tests.lambda.harness")

ROLE_ID = "AROAQX7EXAMPLE4MARKER"  # the shape of an IAM role's unique id


@pytest.mark.parametrize(
    ("principal_id", "role_id", "own"),
    [
        # An assumed-role session: AWS:<role unique id>:<session name> (Lambda: the name).
        (f"AWS:{ROLE_ID}:{harness.FUNCTION_NAME}", ROLE_ID, True),
        (f"AWS:{ROLE_ID}:{harness.FUNCTION_NAME}", None, True),
        # Another role whose session someone named like the function: not ours.
        (f"AWS:AROAOTHERROLE0000001:{harness.FUNCTION_NAME}", ROLE_ID, False),
        # Our role, another session name (a person assuming it by hand).
        (f"AWS:{ROLE_ID}:alice", ROLE_ID, False),
        # A prefix of the name is not the name.
        (f"AWS:{ROLE_ID}:{harness.FUNCTION_NAME}x", ROLE_ID, False),
        (f"AWS:{ROLE_ID}:{harness.FUNCTION_NAME}x", None, False),
        # IAM users and missing identities.
        ("AWS:AIDAINPONIXQXHT3IKHL2", None, False),
        (f"AWS:AIDAINPONIXQXHT3IKHL2:{harness.FUNCTION_NAME}", None, False),
        ("", None, False),
        (None, None, False),
    ],
)
def test_is_own_write(
    handler_module: ModuleType, principal_id: str | None, role_id: str | None, own: bool
) -> None:
    assert handler_module.is_own_write(principal_id, harness.FUNCTION_NAME, role_id) is own


def test_no_function_name_means_nothing_is_own(handler_module: ModuleType) -> None:
    principal = f"AWS:{ROLE_ID}:{harness.FUNCTION_NAME}"
    assert handler_module.is_own_write(principal, None, ROLE_ID) is False


def test_events_carry_the_writer_as_aws_does(world: Any, function: Any) -> None:
    # The harness's events: users' uploads name the IAM user, the function's markers name
    # its role session (not a claim about the handler: about the payloads it is given).
    fn, _ = function
    world.put("ws1/a/f.txt")
    (upload,) = world.receive_all()
    principal = upload["Records"][0]["userIdentity"]["principalId"]
    user = boto3.client("iam").get_user(UserName=f"{world.bucket}-uploader")["User"]
    assert principal == f"AWS:{user['UserId']}"
    fn.handle(upload)
    (marker,) = world.receive_all()
    assert marker["Records"][0]["s3"]["object"]["key"].endswith(".s3keep")
    assert marker["Records"][0]["userIdentity"]["principalId"] == (
        f"AWS:{world.role_id}:{harness.FUNCTION_NAME}"
    )


@pytest.mark.parametrize("role_id", [True, False], ids=["role-id", "session-name-only"])
def test_own_marker_events_cost_nothing_in_any_container(
    world: Any, handler_module: ModuleType, role_id: bool
) -> None:
    # Four containers share nothing; whichever gets a marker's event, it costs no request.
    client = harness.function_client(world, handler_module)
    requests = harness.RequestLog(client)
    store = handler_module.MarkerStore(client)
    containers = [
        handler_module.MarkerFunction(
            store,
            harness.MARKER,
            function_name=harness.FUNCTION_NAME,
            role_id=world.role_id if role_id else None,
        )
        for _ in range(4)
    ]
    rng = random.Random(7)
    keys = [
        f"ws{w}/{a}/{b}/{c}/f{i}.txt"
        for w in (1, 2)
        for a in "ab"
        for b in "cd"
        for c in "ef"
        for i in range(3)
    ]
    rng.shuffle(keys)
    for key in keys:
        world.put(key)
    stats = harness.drain(world, lambda event: rng.choice(containers).handle(event))
    required = harness.required_markers(keys)
    assert world.markers() == required
    floor = len(keys) + len(required)
    # Exactly the floor, but for the walks that reach a workspace's top: nothing to probe.
    assert len(requests) <= floor
    assert len(requests) <= 1.05 * floor
    assert stats.events == len(keys) + len(required)


def test_a_user_writing_a_marker_is_not_the_function(world: Any, function: Any) -> None:
    # s3contents' mkdir writes only the new directory's marker, as the user: its
    # ancestors need the function.
    fn, requests = function
    world.put("ws1/p/q/r/.s3keep", b"")
    harness.drain(world, fn.handle)
    assert world.markers() == {"ws1/p/.s3keep", "ws1/p/q/.s3keep", "ws1/p/q/r/.s3keep"}
    assert len(requests) == 2


def deep_key() -> str:
    # 1,023 bytes (S3 allows 1,024), 509 directories below the workspace.
    key = "ws1/" + "a/" * 509 + "x"
    assert len(key.encode()) == 1023
    return key


def test_a_key_509_levels_deep_costs_at_most_the_depth_limit(
    world: Any, function: Any, handler_module: ModuleType, capsys: Any
) -> None:
    fn, requests = function
    key = deep_key()
    world.put(key)
    stats = harness.drain(world, fn.handle, max_events=1_000)
    limit = 64  # MAX_DEPTH
    expected = {"ws1/" + "a/" * depth + ".s3keep" for depth in range(1, limit + 1)}
    assert world.markers() == expected
    assert len(requests) == limit
    assert stats.failed_events == []
    skipped = [
        line
        for line in map(json.loads, capsys.readouterr().out.splitlines())
        if line["message"] == "directories beyond the depth limit not marked"
    ]
    assert len(skipped) == 1  # only the object's event: its markers are all within reach
    assert skipped[0]["level"] == "WARNING"
    assert skipped[0]["key"] == key
    assert skipped[0]["max_depth"] == limit
    assert skipped[0]["skipped_directories"] == 445


def test_depth_limit_from_the_environment(
    handler_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="MAX_DEPTH"):
        handler_module.MarkerFunction(store=None, max_depth=0)
    assert handler_module.directories_to_mark("ws/a/b/c/d/f", max_depth=2) == ["ws/a/b/", "ws/a/"]
