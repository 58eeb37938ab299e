"""The extra config inside a real JupyterHub 5.3 process, logging in through OAuth.

Spawns go through the REST API here (the browser tests drive the spawn page); the
workspace-token endpoint is exercised with the tokens a real spawn hands its server.
"""

from __future__ import annotations

import time

import pytest

from tests.hub.fake_keycloak import EXCHANGE_GRANT
from tests.hub.real_hub import RealHub

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dave_server(real_hub, keycloak):
    """dave logs in through the fake Keycloak and starts a server in workspace epsilon."""
    real_hub.login(keycloak, "dave")
    response = real_hub.admin(
        "POST", "/users/dave/server", json={"workspace": "epsilon", "profile": "python-3-12"}
    )
    assert response.status_code in (201, 202), response.text
    return real_hub.wait_for_record("dave")


def test_spawn_creates_the_workspace_pod(dave_server, keycloak):
    record = dave_server
    assert record["namespace"] == "ws-epsilon"
    assert record["pod_name"] == "jupyter-dave"
    assert record["pvc_name"] == "pvc-epsilon"
    assert record["image"] == "quay.io/jupyter/base-notebook:python-3.12"
    env = record["env"]
    assert env["WORKSPACE"] == "epsilon"
    assert keycloak.decode(env["S3CONTENTS_WORKSPACE_ACCESS_TOKEN"])["workspace"] == "epsilon"
    assert env["S3CONTENTS_WORKSPACE_BUCKET"] == "test-workspace-bucket"
    assert env["S3CONTENTS_AWS_REGION"] == "eu-west-2"
    assert env["S3CONTENTS_AWS_ROLE_ARN"].endswith(":role/test-notebook-role")
    assert env["JUPYTERHUB_API_TOKEN"]


def test_server_token_gets_a_fresh_workspace_token(real_hub, dave_server, kc):
    before = dave_server["env"]["S3CONTENTS_WORKSPACE_ACCESS_TOKEN"]
    response = real_hub.workspace_token(dave_server["env"]["JUPYTERHUB_API_TOKEN"], server="")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "expires_at", "workspace"}
    assert body["workspace"] == "epsilon"
    assert body["access_token"] != before
    claims = kc.decode(body["access_token"])
    assert claims["workspace"] == "epsilon" and claims["preferred_username"] == "dave"
    assert abs(body["expires_at"] - (time.time() + kc.workspace_token_lifetime)) < 10
    (exchange,) = kc.grants(EXCHANGE_GRANT)
    assert exchange["form"]["scope"] == "workspace:epsilon"
    assert response.headers["Cache-Control"] == "no-store"


def test_server_token_cannot_get_another_users_token(real_hub, dave_server, kc):
    response = real_hub.workspace_token(
        dave_server["env"]["JUPYTERHUB_API_TOKEN"], server="", user="alice"
    )
    assert response.status_code == 403
    assert not kc.grants(EXCHANGE_GRANT)


def test_token_without_the_scope_is_refused(real_hub, dave_server, kc):
    created = real_hub.admin(
        "POST", "/users/dave/tokens", json={"scopes": ["read:users:activity!user"]}
    )
    assert created.status_code == 201, created.text
    response = real_hub.workspace_token(created.json()["token"], server="")
    assert response.status_code == 403
    assert real_hub.workspace_token(None, server="").status_code == 403
    assert not kc.grants(EXCHANGE_GRANT)


def test_unknown_server_is_404(real_hub, dave_server):
    # A token of dave's own for all his servers; a server's token holds the scope for
    # itself only, so it is refused before the lookup (test_forged_requests.py).
    created = real_hub.admin(
        "POST", "/users/dave/tokens", json={"scopes": ["custom:eodh:workspace-token!user"]}
    )
    assert created.status_code == 201, created.text
    assert real_hub.workspace_token(created.json()["token"], server="nope").status_code == 404
    server_token = dave_server["env"]["JUPYTERHUB_API_TOKEN"]
    assert real_hub.workspace_token(server_token, server="nope").status_code == 403


def test_exchange_failure_is_502_with_a_message(real_hub, dave_server, kc):
    kc.exchange_override = (400, {"error": "invalid_request"})
    response = real_hub.workspace_token(dave_server["env"]["JUPYTERHUB_API_TOKEN"], server="")
    assert response.status_code == 502
    assert "refused the token exchange (HTTP 400, invalid_request)" in response.json()["message"]


def test_rest_api_spawn_in_a_foreign_workspace_is_refused(real_hub, kc):
    real_hub.login(kc, "carol")
    response = real_hub.admin("POST", "/users/carol/server", json={"workspace": "alpha"})
    assert response.status_code >= 400
    assert "not a member of workspace 'alpha'" in response.text
    assert real_hub.record("carol") is None
    assert not kc.grants(EXCHANGE_GRANT)


def test_missing_variable_stops_the_hub_naming_it(keycloak, kubeconfig, tmp_path):
    from tests.hub.conftest import PROFILES

    hub = RealHub(
        workdir=tmp_path,
        issuer=keycloak.issuer,
        profiles=PROFILES,
        kubeconfig=kubeconfig,
        env_overrides={"WORKSPACES_CLIENT_SECRET": ""},
    )
    process = hub.launch()
    try:
        assert process.wait(timeout=60) != 0
    finally:
        hub.stop()
    log = hub.log_file.read_text()
    assert "missing required environment variable(s): WORKSPACES_CLIENT_SECRET" in log


def test_a_server_gets_only_its_own_workspace_whatever_it_asks(real_hub, dave_server, kc):
    # dave is a member of delta too, so only the endpoint itself can refuse this.
    token = dave_server["env"]["JUPYTERHUB_API_TOKEN"]
    response = real_hub.workspace_token(token, server="", workspace="delta")
    assert response.status_code == 400
    assert "always for the workspace it runs in" in response.json()["message"]
    assert not kc.grants(EXCHANGE_GRANT)
    own = real_hub.workspace_token(token, server="", workspace="epsilon")
    assert own.status_code == 200, own.text
    assert own.json()["workspace"] == "epsilon"
    assert [g["form"]["scope"] for g in kc.grants(EXCHANGE_GRANT)] == ["workspace:epsilon"]


def test_no_workspace_token_for_a_server_that_is_not_running(real_hub, kc):
    real_hub.login(kc, "frank")
    server_token = real_hub.start_default_server("frank", "eta")["env"]["JUPYTERHUB_API_TOKEN"]
    # A token of frank's own that holds the scope and outlives the server.
    created = real_hub.admin(
        "POST", "/users/frank/tokens", json={"scopes": ["custom:eodh:workspace-token!user"]}
    )
    assert created.status_code == 201, created.text
    user_token = created.json()["token"]
    assert real_hub.workspace_token(user_token, server="").status_code == 200

    stopped = real_hub.admin("DELETE", "/users/frank/server")
    assert stopped.status_code in (202, 204), stopped.text
    real_hub.wait_for_server("frank", running=False)
    kc.requests.clear()

    response = real_hub.workspace_token(user_token, server="")
    assert response.status_code == 404
    assert "not running" in response.json()["message"]
    assert real_hub.workspace_token(server_token, server="").status_code in (403, 404)
    assert not kc.grants(EXCHANGE_GRANT)
