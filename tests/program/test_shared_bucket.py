"""`manageWorkspaceBucket: false`: the platform's shared bucket, referenced, never configured.

Every stack is rendered in this mode (tests/support/bucket_modes.py); the stack files that
use it are checked as they are.
"""

from __future__ import annotations

import json

import pytest
from moto.events.models import EventPattern

from eodh_jupyterhub.offline import Recording
from eodh_jupyterhub.settings import SettingsError
from eodh_jupyterhub.stack_config import stack_names
from tests.policy.adapter import run_pack
from tests.support.bucket_modes import config_in_mode, manages_bucket, recording_in_mode
from tests.support.stacks import effective_config

P = "eodh-jupyterhub:"


def bucket_name(stack: str) -> str:
    return effective_config(stack)[f"{P}workspaceBucket"]


@pytest.fixture
def shared(stack: str, mode: str) -> Recording:
    return recording_in_mode(stack, manage=False, preview=(mode == "preview"))


@pytest.fixture
def shared_up(stack: str) -> Recording:
    return recording_in_mode(stack, manage=False)


def test_a_stack_file_uses_the_shared_bucket() -> None:
    # The platform's workspace-services use `workspaces-eodhp-<env>` (its config/local.yaml):
    # the buckets of these environments exist and are shared. Production's is
    # `workspaces-eodhp`, as every production document names it (docs/platform-contract.md).
    shared_stacks = [s for s in stack_names() if not manages_bucket(s)]
    assert "dev3" in shared_stacks
    for stack in shared_stacks:
        expected = "workspaces-eodhp" if stack == "prod" else f"workspaces-eodhp-{stack}"
        assert bucket_name(stack) == expected


def test_no_s3_resource_only_the_lookup(shared: Recording, stack: str) -> None:
    assert [r.type for r in shared.resources if r.type.startswith("aws:s3")] == []
    lookups = [args for token, args in shared.invokes if token == "aws:s3/getBucket:getBucket"]
    assert lookups == [{"bucket": bucket_name(stack)}]
    # Nothing else writes bucket configuration either (no S3 control-plane call at all).
    assert not [t for t, _ in shared.invokes if t.startswith("aws:s3") and "get" not in t]


def test_the_stack_files_shared_mode_is_what_they_render(stack: str) -> None:
    from tests.support.recordings import recording_for

    declared = {r.type for r in recording_for(stack).resources}
    assert any(t.startswith("aws:s3/") for t in declared) == manages_bucket(stack)
    assert ("aws:cloudwatch/eventRule:EventRule" in declared) != manages_bucket(stack)


def test_notebook_role_and_marker_function_still_target_the_bucket(
    shared_up: Recording, stack: str
) -> None:
    bucket = bucket_name(stack)
    notebook = json.loads(shared_up.named("notebook-workspace-access").plain_inputs["policy"])
    assert [s["Resource"] for s in notebook["Statement"]] == [
        f"arn:aws:s3:::{bucket}",
        f"arn:aws:s3:::{bucket}/${{aws:PrincipalTag/workspace}}/*",
        # The platform's own prefixes of the shared bucket, denied (the simulator's table:
        # tests/aws/test_workspace_isolation.py).
        [f"arn:aws:s3:::{bucket}/workflow-harvester/*"],
        f"arn:aws:s3:::{bucket}",
    ]
    marker = json.loads(shared_up.named("s3keep-permissions").plain_inputs["policy"])
    assert marker["Statement"][0]["Resource"] == f"arn:aws:s3:::{bucket}/?*/?*/.s3keep"
    assert shared_up.outputs["workspaceBucketName"] == bucket
    assert shared_up.outputs["workspaceBucketArn"] == f"arn:aws:s3:::{bucket}"


def test_eventbridge_rule_target_and_permission(shared_up: Recording, stack: str) -> None:
    rule = shared_up.named("s3keep-object-created")
    target = shared_up.named("s3keep-object-created-target")
    permission = shared_up.named("s3keep-events-invoke")
    assert target.plain_inputs == {
        "rule": "s3keep-object-created",
        "arn": "arn:aws:lambda:eu-west-2:000000000000:function:s3keep-function",
    }
    account = effective_config(stack)[f"{P}eksOidcProviderArn"].split(":")[4]
    assert permission.plain_inputs == {
        "action": "lambda:InvokeFunction",
        "function": "s3keep-function",
        "principal": "events.amazonaws.com",
        "sourceArn": "arn:aws:events:eu-west-2:000000000000:rule/s3keep-object-created",
        "sourceAccount": account,
    }
    assert permission.urn in target.depends_on
    # Owned by the stack, and nothing of other consumers' is touched: no bus, no archive.
    assert rule.parent_name == "s3keep"
    assert not shared_up.of_type("aws:cloudwatch/eventBus:EventBus")
    assert "eventBusName" not in rule.plain_inputs  # the account's default bus


def _s3_event(bucket: str, key: str, detail_type: str = "Object Created", **extra: object) -> dict:
    # S3 user guide, "EventBridge event message structure": the Object Created example.
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "111122223333",
        "time": "2021-11-12T00:00:00Z",
        "region": "eu-west-2",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
        **extra,
    }


def test_rule_matches_only_this_buckets_object_created_events(
    shared_up: Recording, stack: str
) -> None:
    bucket = bucket_name(stack)
    pattern = EventPattern.load(
        shared_up.named("s3keep-object-created").plain_inputs["eventPattern"]
    )
    other = "workspaces-eodhp-elsewhere"
    cases = {
        "an upload": (_s3_event(bucket, "ws1/a/b.txt"), True),
        "a file named like a marker": (_s3_event(bucket, "ws1/a/x.s3keep"), True),
        "a console folder": (_s3_event(bucket, "ws1/a/b/"), True),
        # A user's own marker in a new directory still needs its parents marked.
        "a marker": (_s3_event(bucket, "ws1/a/.s3keep"), True),
        # The platform's own prefix of the shared bucket is no workspace.
        "a platform service's file": (_s3_event(bucket, "workflow-harvester/r/x.json"), False),
        "a workspace named like its start": (_s3_event(bucket, "workflow-harvester2/a/b"), True),
        "another bucket": (_s3_event(other, "ws1/a/b.txt"), False),
        "a deletion": (_s3_event(bucket, "ws1/a/b.txt", "Object Deleted"), False),
        "a restore": (_s3_event(bucket, "ws1/a/b.txt", "Object Restore Completed"), False),
        "another source": ({**_s3_event(bucket, "ws1/a/b.txt"), "source": "my.app"}, False),
    }
    assert {name: pattern.matches_event(event) for name, (event, _) in cases.items()} == {
        name: expected for name, (_, expected) in cases.items()
    }


def test_the_pack_passes_every_stack_in_the_shared_mode(shared: Recording) -> None:
    assert [str(v) for v in run_pack(shared.resources)] == []


def test_the_pack_passes_every_stack_in_the_managed_mode(stack: str, mode: str) -> None:
    managed = recording_in_mode(stack, manage=True, preview=(mode == "preview"))
    assert [str(v) for v in run_pack(managed.resources)] == []


def test_access_logging_with_a_shared_bucket_is_refused_before_any_resource() -> None:
    from eodh_jupyterhub.offline import run_with_config

    config = {**config_in_mode("prod", manage=False), f"{P}accessLogsBucket": "access-logs-x"}
    with pytest.raises(SettingsError) as raised:
        run_with_config("prod", config)
    message = str(raised.value)
    assert "Pulumi.prod.yaml" in message
    assert f"{P}accessLogsBucket" in message and "manageWorkspaceBucket" in message
