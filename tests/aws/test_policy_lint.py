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

from eodh_jupyterhub.offline import Recording
from eodh_jupyterhub.policies import notebook_permissions_policy
from tests.aws.support import (
    BUCKET_POLICY,
    NOTEBOOK_PERMISSIONS,
    NOTEBOOK_TRUST,
    PERMISSION_POLICIES,
    SECRETS_PERMISSIONS,
    SECRETS_TRUST,
    documents,
)
from tests.support.stacks import effective_config

REGION = "eu-west-2"


def findings(policy: dict[str, Any]) -> list[str]:
    with warnings.catch_warnings():
        # parliament imports pkg_resources and has invalid escapes: noise, not findings.
        warnings.simplefilter("ignore")
        from parliament import analyze_policy_string

    analyzed = analyze_policy_string(json.dumps(policy), include_community_auditors=True)
    return [f"{f.issue}: {f.detail}" for f in analyzed.findings]


def test_every_policy_document_is_accounted_for(up_recording: Recording) -> None:
    assert set(documents(up_recording)) == {
        NOTEBOOK_TRUST,
        NOTEBOOK_PERMISSIONS,
        SECRETS_TRUST,
        SECRETS_PERMISSIONS,
        BUCKET_POLICY,
    }


@pytest.mark.parametrize("name", [*PERMISSION_POLICIES, BUCKET_POLICY])
def test_parliament_has_no_findings(up_recording: Recording, name: str) -> None:
    assert findings(documents(up_recording)[name]) == []


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


def test_aws_accepts_the_roles_and_bucket_policy(
    up_recording: Recording, stack: str, aws: tuple[Any, Any]
) -> None:
    iam, s3 = aws
    docs = documents(up_recording)
    for role, trust, inline in (
        ("notebook", NOTEBOOK_TRUST, NOTEBOOK_PERMISSIONS),
        ("external-secrets", SECRETS_TRUST, SECRETS_PERMISSIONS),
    ):
        iam.create_role(
            RoleName=role,
            AssumeRolePolicyDocument=json.dumps(docs[trust]),
            MaxSessionDuration=int(up_recording.named(trust).inputs["maxSessionDuration"]),
        )
        iam.put_role_policy(
            RoleName=role, PolicyName=inline, PolicyDocument=json.dumps(docs[inline])
        )
        stored = iam.get_role_policy(RoleName=role, PolicyName=inline)["PolicyDocument"]
        assert stored == docs[inline]
        assert iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"] == docs[trust]
    bucket = effective_config(stack)["eodh-jupyterhub:workspaceBucket"]
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(docs[BUCKET_POLICY]))
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == docs[BUCKET_POLICY]


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
