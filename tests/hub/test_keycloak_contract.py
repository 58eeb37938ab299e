"""The realm settings docs/keycloak.md lists, each broken in the fake Keycloak in turn.

The fake follows Keycloak 24's own rules (see fake_keycloak.py for the source files), so
each test shows what the hub does when the real realm lacks one setting: a refusal the
user can read, never a server started with a token AWS will refuse.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlparse

import jwt
import pytest
import requests

from tests.hub.fake_keycloak import EXCHANGE_GRANT, OIDC_PATH, SIGNING_KEY


def exchange(run, hub_ns, subject, workspace="alpha"):
    return run(hub_ns["exchange_workspace_token"](subject, workspace))


def test_exchanged_token_is_issued_to_the_workspaces_client(run, hub_ns, kc, hub_env):
    token = exchange(run, hub_ns, kc.issue_user_tokens("alice")["access_token"])
    claims = kc.decode(token["access_token"])
    # IAM compares <provider>:aud with azp when the token has one (docs/keycloak.md).
    assert claims["azp"] == hub_env["WORKSPACES_CLIENT_ID"]
    assert claims["aud"] == "account"  # one audience: a string, as Keycloak writes it
    assert claims["https://aws.amazon.com/tags"] == {"principal_tags": {"workspace": ["alpha"]}}
    assert claims["scope"] == "workspace:alpha"


def test_user_tokens_name_the_workspaces_client_in_their_audience(kc, hub_env):
    claims = kc.decode(kc.issue_user_tokens("alice")["access_token"])
    assert claims["azp"] == hub_env["OAUTH_CLIENT_ID"]
    assert claims["aud"] == [hub_env["WORKSPACES_CLIENT_ID"], "account"]
    assert set(claims["scope"].split()) >= {"openid", "workspaces", "workspace"}


def test_without_the_audience_mapper_the_exchange_is_refused(run, hub_ns, kc):
    kc.user_token_audience = ("account",)
    subject = kc.issue_user_tokens("alice")["access_token"]
    with pytest.raises(
        hub_ns["WorkspaceTokenError"],
        match=r"HTTP 403, access_denied: Client is not within the token audience",
    ):
        exchange(run, hub_ns, subject)


@pytest.mark.parametrize(
    "realm_gap",
    ["login token without the workspace scope", "workspaces client without the scope"],
)
def test_a_dropped_workspace_scope_is_refused_not_used(run, hub_ns, kc, realm_gap):
    # Keycloak 24 silently drops a requested scope it may not grant; the answer is a
    # token with no session tag, which AWS would refuse at AssumeRoleWithWebIdentity.
    if realm_gap.startswith("login"):
        kc.hub_default_scopes = ("profile", "email")
    else:
        kc.workspaces_client_scopes = ("profile", "email")
    subject = kc.issue_user_tokens("alice")["access_token"]
    with pytest.raises(hub_ns["WorkspaceTokenError"], match="no session tag for workspace 'alpha'"):
        exchange(run, hub_ns, subject)
    (request,) = kc.grants(EXCHANGE_GRANT)
    assert request["form"]["scope"] == "workspace:alpha"


def test_a_token_issued_to_another_client_is_refused(run, hub_ns, kc):
    foreign = jwt.encode(
        {
            "azp": "some-other-client",
            "exp": 4102444800,
            "https://aws.amazon.com/tags": {"principal_tags": {"workspace": ["alpha"]}},
        },
        SIGNING_KEY,
        algorithm="HS256",
    )
    kc.exchange_override = (200, {"access_token": foreign, "expires_in": 300})
    with pytest.raises(hub_ns["WorkspaceTokenError"], match="not issued to the workspaces client"):
        exchange(run, hub_ns, kc.user_token("alice"))


def test_a_wrong_subject_token_type_is_refused_like_keycloak(kc, hub_env):
    response = requests.post(
        f"{kc.base_url}{OIDC_PATH}/token",
        data={
            "grant_type": EXCHANGE_GRANT,
            "client_id": hub_env["WORKSPACES_CLIENT_ID"],
            "client_secret": hub_env["WORKSPACES_CLIENT_SECRET"],
            "subject_token": kc.user_token("alice"),
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        },
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_token"


def test_authorization_endpoint_refuses_unknown_scopes(kc, hub_env):
    def authorize(scope):
        query = urlencode(
            {
                "client_id": hub_env["OAUTH_CLIENT_ID"],
                # The registered one once the real hub has registered itself.
                "redirect_uri": kc.redirect_uri or "http://127.0.0.1:9/cb",
                "scope": scope,
                "state": "s",
            }
        )
        response = requests.get(
            f"{kc.base_url}{OIDC_PATH}/auth?{query}", allow_redirects=False, timeout=10
        )
        return parse_qs(urlparse(response.headers["Location"]).query)

    assert "code" in authorize("openid workspaces")
    refused = authorize("openid workspaces offline_access")
    assert refused["error"] == ["invalid_scope"]
    assert "code" not in refused
