"""The marker function's permissions, decided by an independent IAM engine.

`@cloud-copilot/iam-simulate` evaluates the policy the program declares for every stack:
in an S3 ARN `*` also matches the empty string, so a looser pattern (`<bucket>/*/*/.s3keep`)
would let the function write `//.s3keep` or `/x/.s3keep`.
"""

from __future__ import annotations

import json

import pytest

from eodh_jupyterhub.offline import MOCK_ACCOUNT, Recording
from tests.aws.support import Request, simulate
from tests.support.stacks import effective_config

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
]


@pytest.fixture
def marker_policy(up_recording: Recording) -> dict:
    return json.loads(up_recording.named("s3keep-permissions").plain_inputs["policy"])


def test_function_writes_nested_markers_under_a_non_empty_workspace_only(
    marker_policy: dict, stack: str
) -> None:
    bucket = effective_config(stack)["eodh-jupyterhub:workspaceBucket"]
    requests = [
        Request(f"put {key}", "s3:PutObject", f"arn:aws:s3:::{bucket}/{key}", principal=FUNCTION)
        for key in ALLOWED + DENIED
    ]
    requests += [
        Request(
            "put into another bucket",
            "s3:PutObject",
            "arn:aws:s3:::someone-elses-bucket/ws1/a/.s3keep",
            principal=FUNCTION,
        ),
        Request(
            "read a marker",
            "s3:GetObject",
            f"arn:aws:s3:::{bucket}/ws1/a/.s3keep",
            principal=FUNCTION,
        ),
    ]
    decisions = simulate(requests, identity_policies={"s3keep-permissions": marker_policy})
    assert {k: decisions[f"put {k}"] for k in ALLOWED} == dict.fromkeys(ALLOWED, "Allowed")
    assert {k: decisions[f"put {k}"] for k in DENIED} == {
        k: ("ExplicitlyDenied" if "//" in f"/{k}" else "ImplicitlyDenied") for k in DENIED
    }
    assert decisions["put into another bucket"] == "ImplicitlyDenied"
    assert decisions["read a marker"] == "ImplicitlyDenied"
