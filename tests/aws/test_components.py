"""The identity and bucket components on their own: argument checks and the optional branches."""

from __future__ import annotations

import pytest

from components.identity import (
    KeycloakIdentityProviderArgs,
    NotebookRoleArgs,
)
from components.workspace_bucket import WorkspaceBucket, WorkspaceBucketArgs
from eodh_jupyterhub.offline import Recording, run_with_config
from tests.support.stacks import pulumi_config

ISSUER = "https://dev.eodatahub.org.uk/keycloak/realms/eodhp"
KMS_KEY = "arn:aws:kms:eu-west-2:312280911266:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"


@pytest.mark.parametrize("seconds", [900, 3599, 43201])
def test_notebook_session_duration_is_bounded(seconds: int) -> None:
    with pytest.raises(ValueError, match="max_session_duration"):
        NotebookRoleArgs(
            provider_arn="arn:aws:iam::312280911266:oidc-provider/x",
            issuer=ISSUER,
            audience="eodh-workspaces",
            bucket="workspaces-eodhp-dev",
            max_session_duration=seconds,
        )


def test_provider_needs_an_audience() -> None:
    with pytest.raises(ValueError, match="client id"):
        KeycloakIdentityProviderArgs(issuer=ISSUER, client_ids=())


def test_bucket_does_not_log_into_itself() -> None:
    with pytest.raises(ValueError, match="itself"):
        WorkspaceBucketArgs(
            bucket="workspaces-eodhp-dev", access_logs_bucket="workspaces-eodhp-dev"
        )


def test_kms_encryption_uses_a_bucket_key() -> None:
    def program(recording: Recording) -> None:
        WorkspaceBucket("ws", WorkspaceBucketArgs(bucket="workspaces-x", kms_key_arn=KMS_KEY))

    recording = run_with_config("dev", pulumi_config("dev"), program=program)
    assert recording.named("ws-encryption").inputs["rules"] == [
        {
            "applyServerSideEncryptionByDefault": {
                "sseAlgorithm": "aws:kms",
                "kmsMasterKeyId": KMS_KEY,
            },
            "bucketKeyEnabled": True,
        }
    ]
    # Protected by default: a component used without thinking keeps its data.
    bucket = recording.named("ws-bucket")
    assert (bucket.protect, bucket.retain_on_delete) == (True, True)
