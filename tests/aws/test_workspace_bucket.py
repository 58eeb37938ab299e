"""The workspace bucket and the identity resources as each stack declares them.

Bucket configuration exists only where the stack manages the bucket: these tests see every
stack in that mode (a stack file that shares its bucket is rendered with the key flipped);
tests/program/test_shared_bucket.py covers the shared mode.
"""

from __future__ import annotations

import json

import pytest

from eodh_jupyterhub.offline import Recording, run_stack, run_with_config
from tests.aws.support import BUCKET_POLICY, documents
from tests.support.bucket_modes import config_in_mode, recording_in_mode
from tests.support.stacks import effective_config, pulumi_config

P = "eodh-jupyterhub:"
PROTECTED_STACKS = {"prod", "staging"}
BUCKET_CHILDREN = {
    "workspaces-bucket",
    "workspaces-public-access-block",
    "workspaces-ownership",
    "workspaces-encryption",
    "workspaces-versioning",
    "workspaces-tls-only-policy",
    "workspaces-lifecycle",
}


@pytest.fixture
def recording(stack: str, mode: str) -> Recording:
    return recording_in_mode(stack, manage=True, preview=(mode == "preview"))


@pytest.fixture
def up_recording(stack: str) -> Recording:
    return recording_in_mode(stack, manage=True)


def bucket_name(stack: str) -> str:
    return effective_config(stack)[f"{P}workspaceBucket"]


def child(recording: Recording, name: str) -> dict:
    resource = recording.named(name)
    assert resource.parent_name == "workspaces"
    return resource.plain_inputs


def test_bucket_is_named_from_settings_and_never_force_destroyed(
    recording: Recording, stack: str
) -> None:
    bucket = recording.named("workspaces-bucket")
    # Only the name: no inline ACL, policy, versioning or force_destroy on the bucket itself.
    assert bucket.plain_inputs == {"bucket": bucket_name(stack)}
    for resource in recording.resources:
        assert not resource.plain_inputs.get("forceDestroy"), resource.name


def test_bucket_blocks_all_public_access(recording: Recording, stack: str) -> None:
    inputs = child(recording, "workspaces-public-access-block")
    assert inputs == {
        "bucket": bucket_name(stack),  # a bucket's id is its name
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    }


def test_bucket_is_encrypted_with_aes256(recording: Recording) -> None:
    inputs = child(recording, "workspaces-encryption")
    # SSE-S3; S3 bucket keys apply only to SSE-KMS, so none is set.
    assert inputs["rules"] == [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]


def test_bucket_is_versioned_and_owner_enforced(recording: Recording) -> None:
    versioning = child(recording, "workspaces-versioning")
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}
    ownership = child(recording, "workspaces-ownership")
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def test_bucket_policy_denies_requests_without_tls(up_recording: Recording, stack: str) -> None:
    bucket = bucket_name(stack)
    assert documents(up_recording)[BUCKET_POLICY] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
    policy = up_recording.named(BUCKET_POLICY)
    block = up_recording.named("workspaces-public-access-block")
    assert block.urn in policy.depends_on


def test_lifecycle_expires_noncurrent_versions_and_aborts_uploads(
    recording: Recording,
) -> None:
    lifecycle = recording.named("workspaces-lifecycle")
    rules = {rule["id"]: rule for rule in child(recording, "workspaces-lifecycle")["rules"]}
    assert rules == {
        "expire-noncurrent-versions": {
            "id": "expire-noncurrent-versions",
            "status": "Enabled",
            "filter": {},
            "noncurrentVersionExpiration": {"noncurrentDays": 30},
            "expiration": {"expiredObjectDeleteMarker": True},
        },
        "abort-incomplete-multipart-uploads": {
            "id": "abort-incomplete-multipart-uploads",
            "status": "Enabled",
            "filter": {},
            "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7},
        },
    }
    assert recording.named("workspaces-versioning").urn in lifecycle.depends_on


def test_access_logging_only_where_configured(recording: Recording, stack: str) -> None:
    # Every stack file leaves access logging out: their buckets are the platform's, whose
    # logging is the platform's to configure (and the settings refuse it in shared mode).
    assert not effective_config(stack).get(f"{P}accessLogsBucket")
    assert recording.of_type("aws:s3/bucketLogging:BucketLogging") == []


def test_access_logging_when_a_managed_bucket_asks_for_it() -> None:
    config = config_in_mode("prod", manage=True) | {f"{P}accessLogsBucket": "access-logs-x"}
    (resource,) = run_with_config("prod", config).of_type("aws:s3/bucketLogging:BucketLogging")
    assert resource.parent_name == "workspaces"
    assert resource.plain_inputs == {
        "bucket": "workspaces-eodhp",
        "targetBucket": "access-logs-x",
        "targetPrefix": "workspaces-eodhp/",
    }


def test_protection_where_configured(recording: Recording, stack: str) -> None:
    protected = stack in PROTECTED_STACKS
    assert (effective_config(stack)[f"{P}protectData"] in (True, "true")) == protected
    bucket = recording.named("workspaces-bucket")
    assert (bucket.protect, bucket.retain_on_delete) == (protected, protected)
    # The identity provider follows protectKeycloakProvider, not protectData: another stack
    # may trust it (tests/program/test_shared_identity_provider.py). Every stack keeps it.
    providers = recording.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert len(providers) == (0 if stack == "dev3" else 1)
    assert all(p.protect and p.retain_on_delete for p in providers)
    guarded = [bucket, *providers]
    # Nothing else is protected: protection is for data and trust, not for configuration.
    others = [r for r in recording.resources if r not in guarded]
    assert not any(r.protect or r.retain_on_delete for r in others if r.type.startswith("aws:"))


def test_bucket_children_live_in_the_component(recording: Recording) -> None:
    (component,) = recording.of_type("eodh:storage:WorkspaceBucket")
    names = {r.name for r in recording.children_of(component)}
    assert BUCKET_CHILDREN <= names <= BUCKET_CHILDREN | {"workspaces-access-logging"}


def test_stack_outputs_feed_the_helm_values(up_recording: Recording, stack: str) -> None:
    outputs = up_recording.outputs
    bucket = bucket_name(stack)
    assert outputs["workspaceBucketName"] == bucket
    assert outputs["workspaceBucketArn"] == f"arn:aws:s3:::{bucket}"
    assert outputs["notebookRoleArn"] == "arn:aws:iam::000000000000:role/notebook-role"
    assert outputs["keycloakProviderArn"]


def test_preview_knows_the_bucket_and_permissions(stack: str) -> None:
    preview = run_stack(stack, preview=True)
    assert preview.outputs["workspaceBucketName"] == bucket_name(stack)
    policy = json.loads(preview.named("notebook-workspace-access").inputs["policy"])
    assert policy["Statement"][1]["Resource"].startswith(f"arn:aws:s3:::{bucket_name(stack)}/")


@pytest.mark.parametrize(
    ("case", "changes", "message"),
    [
        (
            "shared provider of another issuer",
            {
                f"{P}keycloakProviderArn": "arn:aws:iam::312280911266:oidc-provider/"
                "test.eodatahub.org.uk/keycloak/realms/eodhp"
            },
            "is not the provider of the issuer",
        ),
        (
            "shared provider in another account",
            {
                f"{P}keycloakProviderArn": "arn:aws:iam::999999999999:oidc-provider/"
                "dev.eodatahub.org.uk/keycloak/realms/eodhp"
            },
            "a role can only trust an identity provider of its own account",
        ),
    ],
)
def test_a_shared_provider_must_match_issuer_and_account(
    case: str, changes: dict[str, str], message: str
) -> None:
    config = {**pulumi_config("dev"), **changes}
    with pytest.raises(ValueError, match=message):
        run_with_config("dev", config)
