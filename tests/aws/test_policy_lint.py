"""The rendered policy documents pass parliament with zero findings and AWS's (moto's) IAM/S3 APIs.

parliament checks permission policies offline against the IAM action/resource/condition
catalogue (it reports false alarms on trust policies, so those are checked by moto and the
simulator instead). moto accepts or rejects the same JSON the program would send to AWS.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import boto3
import pytest
from moto import mock_aws

from components.iam_documents import notebook_permissions_policy
from eodh_jupyterhub.offline import Recording
from tests.aws.support import (
    BUCKET_POLICY,
    NOTEBOOK_PERMISSIONS,
    NOTEBOOK_TRUST,
    PERMISSION_POLICIES,
    SECRETS_PERMISSIONS,
    SECRETS_TRUST,
    documents,
    permission_documents,
)
from tests.support.bucket_modes import recording_in_mode


@pytest.fixture
def up_recording(stack: str) -> Recording:
    # A managed bucket's documents (its TLS-only policy included); the notebook and marker
    # documents are the same for a shared bucket (tests/program/test_shared_bucket.py).
    return recording_in_mode(stack, manage=True)


REGION = "eu-west-2"


def findings(policy: dict[str, Any]) -> list[str]:
    with warnings.catch_warnings():
        # parliament imports pkg_resources and has invalid escapes: noise, not findings.
        warnings.simplefilter("ignore")
        from parliament import analyze_policy_string

    analyzed = analyze_policy_string(json.dumps(policy), include_community_auditors=True)
    return [f"{f.issue}: {f.detail}" for f in analyzed.findings]


def test_this_issue_s_documents_are_declared(up_recording: Recording) -> None:
    assert {
        NOTEBOOK_TRUST,
        NOTEBOOK_PERMISSIONS,
        SECRETS_TRUST,
        SECRETS_PERMISSIONS,
        BUCKET_POLICY,
    } <= set(documents(up_recording))


def test_parliament_has_no_findings(up_recording: Recording) -> None:
    """Every permission document the stack declares: inline role policies, managed policies,
    bucket policies (trust policies are left to moto and the simulator)."""
    linted = permission_documents(up_recording)
    assert set(PERMISSION_POLICIES) | {BUCKET_POLICY} <= set(linted)
    assert {name: findings(document) for name, document in linted.items()} == {
        name: [] for name in linted
    }


def test_parliament_would_flag_s3_prefix_on_object_actions() -> None:
    broken = notebook_permissions_policy("workspaces-eodhp-dev")
    broken["Statement"][1]["Condition"] = broken["Statement"][0]["Condition"]
    assert any("UNKNOWN_CONDITION_FOR_ACTION" in f for f in findings(broken))


@pytest.fixture
def aws():
    with mock_aws():
        yield (
            boto3.client("iam", region_name=REGION),
            boto3.client("s3", region_name=REGION),
        )


@pytest.mark.parametrize("manage_bucket", [True, False], ids=["managed", "shared"])
def test_aws_accepts_every_role_and_policy(
    stack: str, manage_bucket: bool, aws: tuple[Any, Any]
) -> None:
    """create_role / put_role_policy / create_policy / put_bucket_policy with the exact JSON.
    Both bucket modes: only a managed bucket has a policy of this program's."""
    from tests.support.bucket_modes import recording_in_mode

    up_recording = recording_in_mode(stack, manage_bucket)
    iam, s3 = aws
    docs = documents(up_recording)
    # The mocks make a role's id `<resource name>-id`; map ids back to what AWS would name.
    role_ids = {}
    for role in up_recording.of_type("aws:iam/role:Role"):
        iam.create_role(
            RoleName=role.name,
            AssumeRolePolicyDocument=json.dumps(docs[role.name]),
            MaxSessionDuration=int(role.inputs.get("maxSessionDuration", 3600)),
        )
        assert (
            iam.get_role(RoleName=role.name)["Role"]["AssumeRolePolicyDocument"] == docs[role.name]
        )
        role_ids[f"{role.name}-id"] = role.name
    for policy in up_recording.of_type("aws:iam/rolePolicy:RolePolicy"):
        role_name = role_ids[policy.inputs["role"]]
        iam.put_role_policy(
            RoleName=role_name, PolicyName=policy.name, PolicyDocument=json.dumps(docs[policy.name])
        )
        stored = iam.get_role_policy(RoleName=role_name, PolicyName=policy.name)
        assert stored["PolicyDocument"] == docs[policy.name]
    for policy in up_recording.of_type("aws:iam/policy:Policy"):
        iam.create_policy(PolicyName=policy.name, PolicyDocument=json.dumps(docs[policy.name]))
    buckets = {b.id: b.inputs["bucket"] for b in up_recording.of_type("aws:s3/bucket:Bucket")}
    bucket_policies = up_recording.of_type("aws:s3/bucketPolicy:BucketPolicy")
    assert len(bucket_policies) == (1 if manage_bucket else 0)
    for policy in bucket_policies:
        bucket = buckets[policy.inputs["bucket"]]
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(docs[policy.name]))
        assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == docs[policy.name]
    assert {NOTEBOOK_TRUST, SECRETS_TRUST} <= set(role_ids.values())


def test_aws_rejects_a_malformed_document(aws: tuple[Any, Any]) -> None:
    iam, _ = aws
    broken = notebook_permissions_policy("workspaces-eodhp-dev")
    broken["Statement"][0]["Effect"] = "Permit"
    iam.create_role(
        RoleName="r",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.put_role_policy(RoleName="r", PolicyName="p", PolicyDocument=json.dumps(broken))
