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
    web_identity_context,
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


def token(azp: str | None = WORKSPACES_CLIENT, **claims: Any) -> dict[str, Any]:
    """Claims of a Keycloak access token; by default the workspace-scoped one for `ws1`.

    Keycloak's token exchange issues the workspace token to the requesting (workspaces)
    client, so its `azp` is that client, while `aud` lists whatever audiences the realm's
    mappers add (here `account`, as Keycloak's default roles do).
    """
    base: dict[str, Any] = {
        "sub": "f1c2e3d4-0000-4000-8000-00000000a11c",
        "aud": "account",
        "https://aws.amazon.com/tags": {"principal_tags": {"workspace": ["ws1"]}},
    }
    if azp is not None:
        base["azp"] = azp
    base.update(claims)
    return {k: v for k, v in base.items() if v is not None}


def tags(**principal_tags: list[str]) -> dict[str, Any]:
    return {"principal_tags": principal_tags}


TAGS = "https://aws.amazon.com/tags"


def trust_requests(issuer: str, provider_arn: str, other_provider: str) -> list:
    # IAM trusts only identity providers of the role's own account.
    account = provider_arn.split(":")[4]
    role = f"arn:aws:iam::{account}:role/notebook-role"

    def req(
        name: str,
        claims: dict[str, Any],
        action: str = "sts:AssumeRoleWithWebIdentity",
        principal: str = provider_arn,
    ) -> Request:
        context = web_identity_context(issuer, claims)
        return Request(name, action, role, context, principal=principal, account=account)

    # The hub's login token names the workspaces client as an audience (Keycloak lets a
    # client exchange only tokens that list it), yet it was issued to the hub's client.
    hub_login = token(HUB_CLIENT, aud=WORKSPACES_CLIENT)
    return [
        (req("workspace token assumes the role", token()), ALLOWED),
        (req("workspace token tags the session", token(), "sts:TagSession"), ALLOWED),
        (req("workspace token without an aud claim", token(aud=None)), ALLOWED),
        (req("hub login token listing the workspaces audience", hub_login), DENIED),
        (
            req("hub login token tags", hub_login, "sts:TagSession"),
            DENIED,
        ),
        (req("token of another client", token("eodh-portal")), DENIED),
        (
            req(
                "token without azp, audience the workspaces client",
                token(None, aud=WORKSPACES_CLIENT),
            ),
            ALLOWED,
        ),
        (req("token without azp or aud", token(None, aud=None)), DENIED),
        (req("token without the tags claim", token(**{TAGS: None})), DENIED),
        (req("empty workspace tag", token(**{TAGS: tags(workspace=[""])})), DENIED),
        (
            req(
                "workspace tag plus another tag key",
                token(**{TAGS: tags(workspace=["ws1"], user=["alice"])}),
            ),
            DENIED,
        ),
        (
            req(
                "workspace tag plus another tag key, tagging",
                token(**{TAGS: tags(workspace=["ws1"], user=["alice"])}),
                "sts:TagSession",
            ),
            DENIED,
        ),
        (
            req("another tag key instead of workspace", token(**{TAGS: tags(user=["ws1"])})),
            DENIED,
        ),
        (req("another provider (the EKS cluster's)", token(), principal=other_provider), DENIED),
        (
            req(
                "the same issuer registered in another account",
                token(),
                principal=f"arn:aws:iam::999999999999:oidc-provider/{issuer}",
            ),
            DENIED,
        ),
    ]


def decide_trust(trust: dict[str, Any], issuer: str, provider_arn: str, other: str) -> dict:
    table = trust_requests(issuer, provider_arn, other)
    return simulate(
        [request for request, _ in table],
        trust_policy=trust,
        # A private issuer's keys are not in the simulator's action catalogue.
        dropped_keys_allowed=frozenset(f"{issuer}:{claim}" for claim in ("aud", "oaud", "sub")),
    )


def test_only_workspace_scoped_tokens_assume_the_notebook_role(
    up_recording: Recording, stack: str
) -> None:
    issuer = ISSUERS[stack]
    provider_arn = keycloak_provider_arn(up_recording, stack)
    other = settings_of(stack).eks_oidc_provider_arn
    decisions = decide_trust(documents(up_recording)[NOTEBOOK_TRUST], issuer, provider_arn, other)
    assert decisions == {r.name: d for r, d in trust_requests(issuer, provider_arn, other)}


def _no_tag_keys(trust: dict[str, Any]) -> None:
    del trust["Statement"][0]["Condition"]["ForAllValues:StringEquals"]


def _tag_keys_any_value(trust: dict[str, Any]) -> None:
    condition = trust["Statement"][0]["Condition"]
    condition["ForAnyValue:StringEquals"] = condition.pop("ForAllValues:StringEquals")


def _tag_not_required(trust: dict[str, Any]) -> None:
    del trust["Statement"][0]["Condition"]["StringLike"]


def _no_audience(trust: dict[str, Any]) -> None:
    del trust["Statement"][0]["Condition"]["StringEquals"]


def _raw_audience(trust: dict[str, Any]) -> None:
    # Pinning the token's own `aud` (IAM's `oaud`) instead of the key IAM fills from `azp`.
    equals = trust["Statement"][0]["Condition"]["StringEquals"]
    (key,) = equals
    equals[key.rsplit(":", 1)[0] + ":oaud"] = equals.pop(key)


TRUST_MISTAKES = {
    "other tag keys accepted": (_no_tag_keys, {"workspace tag plus another tag key"}),
    "ForAnyValue instead of ForAllValues": (
        _tag_keys_any_value,
        {"workspace tag plus another tag key", "workspace tag plus another tag key, tagging"},
    ),
    "workspace tag not required": (_tag_not_required, {"token without the tags claim"}),
    "audience not pinned": (
        _no_audience,
        {
            "hub login token listing the workspaces audience",
            "token of another client",
            "token without azp or aud",
        },
    ),
    "audience compared with the raw aud claim": (
        _raw_audience,
        {"hub login token listing the workspaces audience", "workspace token assumes the role"},
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
    expected = {r.name: d for r, d in trust_requests(issuer, provider, other)}
    assert decide_trust(trust, issuer, provider, other) == expected
    decisions = decide_trust(broken, issuer, provider, other)
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
