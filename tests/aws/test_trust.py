"""Who may assume the two roles: asserted exactly per stack, then decided by the simulator."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.iam_documents import notebook_trust_policy
from eodh_jupyterhub.offline import MOCK_ACCOUNT, Recording
from eodh_jupyterhub.settings import Settings, load_settings
from tests.aws.support import (
    NOTEBOOK_TRUST,
    SECRETS_PERMISSIONS,
    SECRETS_TRUST,
    Request,
    documents,
    simulate,
)
from tests.support.stacks import pulumi_config

ALLOWED = "Allowed"
DENIED = "ImplicitlyDenied"
WORKSPACES_CLIENT = "eodh-workspaces"
HUB_CLIENT = "eodh-jupyterhub"

# Per stack: the issuer IAM names the Keycloak provider by (condition-key prefix), and the
# provider's ARN when the stack references a shared one instead of creating its own.
ISSUERS = {
    "dev": "dev.eodatahub.org.uk/keycloak/realms/eodhp",
    "dev3": "dev.eodatahub.org.uk/keycloak/realms/eodhp",
    "prod": "eodatahub.org.uk/keycloak/realms/eodhp",
    "staging": "staging.eodatahub.org.uk/keycloak/realms/eodhp",
    "test": "test.eodatahub.org.uk/keycloak/realms/eodhp",
}
SHARED_PROVIDERS = {
    "dev3": "arn:aws:iam::312280911266:oidc-provider/dev.eodatahub.org.uk/keycloak/realms/eodhp",
}


def settings_of(stack: str) -> Settings:
    return load_settings(pulumi_config(stack), stack)


def keycloak_provider_arn(recording: Recording, stack: str) -> str:
    providers = recording.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    if stack in SHARED_PROVIDERS:
        assert providers == []
        return SHARED_PROVIDERS[stack]
    (provider,) = providers
    assert provider.inputs == {
        "url": f"https://{ISSUERS[stack]}",
        "clientIdLists": [WORKSPACES_CLIENT],
    }
    return recording.outputs["keycloakProviderArn"]


def test_notebook_trust_policy_exactly(up_recording: Recording, stack: str) -> None:
    provider_arn = keycloak_provider_arn(up_recording, stack)
    assert up_recording.outputs["keycloakProviderArn"] == provider_arn
    assert documents(up_recording)[NOTEBOOK_TRUST] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WorkspaceScopedWebIdentity",
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
                "Condition": {
                    "StringEquals": {f"{ISSUERS[stack]}:aud": WORKSPACES_CLIENT},
                    "StringLike": {"aws:RequestTag/workspace": "?*"},
                    "ForAllValues:StringEquals": {"aws:TagKeys": ["workspace"]},
                },
            }
        ],
    }


def test_notebook_role_session_is_bounded(up_recording: Recording) -> None:
    role = up_recording.named(NOTEBOOK_TRUST)
    assert role.inputs["maxSessionDuration"] == 3600
    assert set(role.inputs) == {"assumeRolePolicy", "description", "maxSessionDuration"}
    # Exactly one permission policy, inline; nothing attached from elsewhere.
    policies = up_recording.of_type("aws:iam/rolePolicy:RolePolicy")
    assert [p.name for p in policies if p.parent_name == "notebook"] == [
        "notebook-workspace-access"
    ]
    for token in (
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:iam/policyAttachment:PolicyAttachment",
    ):
        for attachment in up_recording.of_type(token):
            assert role.urn not in attachment.depends_on, attachment.name


def trust_requests(aud_key: str, provider_arn: str, other_provider: str) -> list:
    # IAM trusts only identity providers of the role's own account.
    account = provider_arn.split(":")[4]
    role = f"arn:aws:iam::{account}:role/notebook-role"
    good = {
        aud_key: WORKSPACES_CLIENT,
        "aws:RequestTag/workspace": "ws1",
        "aws:TagKeys": ["workspace"],
    }

    def req(
        name: str,
        context: dict[str, Any],
        action: str = "sts:AssumeRoleWithWebIdentity",
        principal: str = provider_arn,
    ) -> Request:
        return Request(name, action, role, context, principal=principal, account=account)

    return [
        (req("workspace token assumes the role", good), ALLOWED),
        (req("workspace token tags the session", good, "sts:TagSession"), ALLOWED),
        (req("token for another client (the hub's)", {**good, aud_key: HUB_CLIENT}), DENIED),
        (
            req("token for another client tags", {**good, aud_key: HUB_CLIENT}, "sts:TagSession"),
            DENIED,
        ),
        (req("token without an audience", {k: v for k, v in good.items() if k != aud_key}), DENIED),
        (req("token without the workspace tag", {aud_key: WORKSPACES_CLIENT}), DENIED),
        (req("empty workspace tag", {**good, "aws:RequestTag/workspace": ""}), DENIED),
        (
            req(
                "workspace tag plus another tag key",
                {**good, "aws:RequestTag/user": "alice", "aws:TagKeys": ["workspace", "user"]},
            ),
            DENIED,
        ),
        (
            req(
                "workspace tag plus another tag key, tagging",
                {**good, "aws:RequestTag/user": "alice", "aws:TagKeys": ["workspace", "user"]},
                "sts:TagSession",
            ),
            DENIED,
        ),
        (
            req(
                "another tag key instead of workspace",
                {aud_key: WORKSPACES_CLIENT, "aws:RequestTag/user": "ws1", "aws:TagKeys": ["user"]},
            ),
            DENIED,
        ),
        (req("another provider (the EKS cluster's)", good, principal=other_provider), DENIED),
        (
            req(
                "the same issuer registered in another account",
                good,
                principal=f"arn:aws:iam::999999999999:oidc-provider/{aud_key.rsplit(':', 1)[0]}",
            ),
            DENIED,
        ),
    ]


def decide_trust(trust: dict[str, Any], aud_key: str, provider_arn: str, other: str) -> dict:
    table = trust_requests(aud_key, provider_arn, other)
    return simulate(
        [request for request, _ in table],
        trust_policy=trust,
        dropped_keys_allowed=frozenset({aud_key}),
    )


def test_only_workspace_scoped_tokens_assume_the_notebook_role(
    up_recording: Recording, stack: str
) -> None:
    aud_key = f"{ISSUERS[stack]}:aud"
    provider_arn = keycloak_provider_arn(up_recording, stack)
    other = settings_of(stack).eks_oidc_provider_arn
    decisions = decide_trust(documents(up_recording)[NOTEBOOK_TRUST], aud_key, provider_arn, other)
    assert decisions == {r.name: d for r, d in trust_requests(aud_key, provider_arn, other)}


def _no_tag_keys(trust: dict[str, Any]) -> None:
    del trust["Statement"][0]["Condition"]["ForAllValues:StringEquals"]


def _tag_keys_any_value(trust: dict[str, Any]) -> None:
    condition = trust["Statement"][0]["Condition"]
    condition["ForAnyValue:StringEquals"] = condition.pop("ForAllValues:StringEquals")


def _tag_not_required(trust: dict[str, Any]) -> None:
    del trust["Statement"][0]["Condition"]["StringLike"]


def _no_audience(trust: dict[str, Any]) -> None:
    del trust["Statement"][0]["Condition"]["StringEquals"]


TRUST_MISTAKES = {
    "other tag keys accepted": (_no_tag_keys, {"workspace tag plus another tag key"}),
    "ForAnyValue instead of ForAllValues": (
        _tag_keys_any_value,
        {"workspace tag plus another tag key", "workspace tag plus another tag key, tagging"},
    ),
    "workspace tag not required": (_tag_not_required, {"token without the workspace tag"}),
    "audience not pinned": (
        _no_audience,
        {"token for another client (the hub's)", "token without an audience"},
    ),
}


@pytest.mark.parametrize("mistake", sorted(TRUST_MISTAKES))
def test_the_trust_table_catches_a_mistake(mistake: str) -> None:
    issuer = ISSUERS["dev"]
    provider = f"arn:aws:iam::{MOCK_ACCOUNT}:oidc-provider/{issuer}"
    other = f"arn:aws:iam::{MOCK_ACCOUNT}:oidc-provider/oidc.eks.eu-west-2.amazonaws.com/id/X"
    mutate, must_flip = TRUST_MISTAKES[mistake]
    trust = notebook_trust_policy(provider, f"https://{issuer}", WORKSPACES_CLIENT)
    broken = copy.deepcopy(trust)
    mutate(broken)
    expected = {r.name: d for r, d in trust_requests(f"{issuer}:aud", provider, other)}
    assert decide_trust(trust, f"{issuer}:aud", provider, other) == expected
    decisions = decide_trust(broken, f"{issuer}:aud", provider, other)
    wrong = {name for name, decision in decisions.items() if decision != expected[name]}
    assert must_flip <= wrong, f"the table missed {mistake}: only {wrong} changed"


def test_external_secrets_role_decisions(up_recording: Recording, stack: str) -> None:
    settings = settings_of(stack)
    provider = settings.eks_oidc_provider_arn
    host = settings.eks_oidc_issuer_host
    account = provider.split(":")[4]
    role = f"arn:aws:iam::{account}:role/oauth-client-secrets-role"
    sub, aud = f"{host}:sub", f"{host}:aud"
    good = {sub: "system:serviceaccount:jupyter:jupyterhub-secrets", aud: "sts.amazonaws.com"}

    def assume(name: str, context: dict[str, str]) -> Request:
        return Request(
            name,
            "sts:AssumeRoleWithWebIdentity",
            role,
            context,
            principal=provider,
            account=account,
        )

    trust_table = [
        (assume("the secrets service account", good), ALLOWED),
        (
            assume("the hub's service account", {**good, sub: "system:serviceaccount:jupyter:hub"}),
            DENIED,
        ),
        (
            assume(
                "the same name in a workspace namespace",
                {**good, sub: "system:serviceaccount:ws-alpha:jupyterhub-secrets"},
            ),
            DENIED,
        ),
        (assume("another audience", {**good, aud: WORKSPACES_CLIENT}), DENIED),
    ]
    docs = documents(up_recording)
    decisions = simulate(
        [r for r, _ in trust_table],
        trust_policy=docs[SECRETS_TRUST],
        dropped_keys_allowed=frozenset(good),
    )
    assert decisions == {r.name: d for r, d in trust_table}

    session = f"arn:aws:sts::{account}:assumed-role/oauth-client-secrets-role/external-secrets"
    region = settings.aws_region
    oauth, workspaces = settings.oauth_client_secret_name, settings.workspaces_client_secret_name

    def secrets(name: str, action: str, secret: str) -> Request:
        arn = f"arn:aws:secretsmanager:{region}:{account}:secret:{secret}"
        return Request(name, f"secretsmanager:{action}", arn, principal=session, account=account)

    permission_table = [
        (secrets("read the hub client secret", "GetSecretValue", f"{oauth}-AbC123"), ALLOWED),
        (secrets("read the workspaces secret", "GetSecretValue", f"{workspaces}-x1Y2z3"), ALLOWED),
        (secrets("describe the hub client secret", "DescribeSecret", f"{oauth}-AbC123"), ALLOWED),
        (secrets("read a longer-named secret", "GetSecretValue", f"{oauth}-x-AbC123"), DENIED),
        (secrets("read another secret", "GetSecretValue", "eodhp/db-password-AbC123"), DENIED),
        (secrets("overwrite the hub client secret", "PutSecretValue", f"{oauth}-AbC123"), DENIED),
        (secrets("delete the hub client secret", "DeleteSecret", f"{oauth}-AbC123"), DENIED),
    ]
    decisions = simulate(
        [r for r, _ in permission_table],
        identity_policies={SECRETS_PERMISSIONS: docs[SECRETS_PERMISSIONS]},
    )
    assert decisions == {r.name: d for r, d in permission_table}
