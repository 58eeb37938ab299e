"""The marker function's permissions, decided by an independent IAM engine.

`@cloud-copilot/iam-simulate` evaluates the policy the program declares for every stack:
in an S3 ARN `*` also matches the empty string, so a looser pattern (`<bucket>/*/*/.s3keep`)
would let the function write `//.s3keep` or `/x/.s3keep`.
"""

from __future__ import annotations

import json

from eodh_jupyterhub.offline import MOCK_ACCOUNT
from tests.aws.support import Request, simulate
from tests.support.recordings import recording_for
from tests.support.stacks import effective_config, stack_names

FUNCTION = f"arn:aws:sts::{MOCK_ACCOUNT}:assumed-role/s3keep-role/s3keep-function"

ALLOWED = [
    "ws1/a/.s3keep",
    "ws1/a/b/c/.s3keep",
    "w/x/.s3keep",
    "ws-alpha/with space/ü/.s3keep",
]
DENIED = [
    "//.s3keep",  # empty workspace, empty directory
    "/x/.s3keep",  # empty workspace
    "x//.s3keep",  # empty directory
    "ws1/a//b/.s3keep",  # an empty segment in the middle
    "/ws1/a/.s3keep",  # a leading slash
    "ws1/.s3keep",  # the workspace's own marker: s3contents writes it
    ".s3keep",  # the bucket root
    "ws1/a/data.csv",  # not a marker
    "ws1/a/x.s3keep",  # a file whose name merely ends like one
    "ws1/a/.s3keep/f",  # below a "directory" called .s3keep
    "workflow-harvester/runs/.s3keep",  # the platform's own prefix: no workspace
]
PLATFORM = {"workflow-harvester/runs/.s3keep"}


def test_function_writes_nested_markers_under_a_non_empty_workspace_only() -> None:
    # Every stack's declared policy, decided in one simulator run (one Node process).
    requests: list[Request] = []
    policies: dict[str, dict] = {}
    for stack in stack_names():
        bucket = effective_config(stack)["eodh-jupyterhub:workspaceBucket"]
        recording = recording_for(stack)
        policies[stack] = json.loads(recording.named("s3keep-permissions").plain_inputs["policy"])
        requests += [
            Request(
                f"{stack} put {key}",
                "s3:PutObject",
                f"arn:aws:s3:::{bucket}/{key}",
                principal=FUNCTION,
            )
            for key in ALLOWED + DENIED
        ]
        requests += [
            Request(
                f"{stack} put into another bucket",
                "s3:PutObject",
                "arn:aws:s3:::someone-elses-bucket/ws1/a/.s3keep",
                principal=FUNCTION,
            ),
            Request(
                f"{stack} read a marker",
                "s3:GetObject",
                f"arn:aws:s3:::{bucket}/ws1/a/.s3keep",
                principal=FUNCTION,
            ),
        ]
    # One Node process: every stack's policy attached at once. Each names only its own
    # bucket (all five differ), so another stack's statements cannot decide a request.
    assert len({effective_config(s)["eodh-jupyterhub:workspaceBucket"] for s in policies}) == len(
        policies
    )
    decisions = simulate(requests, identity_policies=policies)
    for stack in policies:
        got = {k: decisions[f"{stack} put {k}"] for k in ALLOWED + DENIED}
        assert got == dict.fromkeys(ALLOWED, "Allowed") | {
            k: ("ExplicitlyDenied" if "//" in f"/{k}" or k in PLATFORM else "ImplicitlyDenied")
            for k in DENIED
        }, stack
        assert decisions[f"{stack} put into another bucket"] == "ImplicitlyDenied"
        assert decisions[f"{stack} read a marker"] == "ImplicitlyDenied"


def test_each_layer_refuses_what_it_is_there_for() -> None:
    # The Allow's `?*` segments alone refuse the keys `*/*/` let through; only the Deny
    # refuses an empty segment in the middle (a wildcard cannot say "no //").
    policy = json.loads(recording_for("dev").named("s3keep-permissions").plain_inputs["policy"])
    allow_only = {**policy, "Statement": [s for s in policy["Statement"] if s["Effect"] == "Allow"]}
    bucket = effective_config("dev")["eodh-jupyterhub:workspaceBucket"]
    keys = ["//.s3keep", "/x/.s3keep", "x//.s3keep", "ws1/a//b/.s3keep", "ws1/a/b/.s3keep"]
    decisions = simulate(
        [
            Request(key, "s3:PutObject", f"arn:aws:s3:::{bucket}/{key}", principal=FUNCTION)
            for key in keys
        ],
        identity_policies={"allow-only": allow_only},
    )
    assert decisions == {
        "//.s3keep": "ImplicitlyDenied",
        "/x/.s3keep": "ImplicitlyDenied",
        "x//.s3keep": "ImplicitlyDenied",
        "ws1/a//b/.s3keep": "Allowed",
        "ws1/a/b/.s3keep": "Allowed",
    }
