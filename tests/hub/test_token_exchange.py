"""The pre-spawn token exchange against a real HTTP server on 127.0.0.1 (fake Keycloak)."""

from __future__ import annotations

import re
import time

import jwt
import pytest
from tornado import web

from tests.hub.fake_keycloak import EXCHANGE_GRANT
from tests.support.hub_config import load_hub_config

S3_TOKEN = "S3CONTENTS_WORKSPACE_ACCESS_TOKEN"


def spawn_with(make_spawner, user, workspace, **spawner_kwargs):
    spawner = make_spawner(user, **spawner_kwargs)
    spawner.user_options = {"workspace": workspace, "profile": "eodh"}
    return spawner


def test_success_puts_the_workspace_token_into_the_notebook_environment(
    run, make_spawner, kc, hub_env
):
    spawner = spawn_with(make_spawner, "alice", "beta")
    subject = spawner.user.auth_state["access_token"]

    run(spawner.run_pre_spawn_hook())

    (request,) = kc.grants(EXCHANGE_GRANT)
    form = request["form"]
    assert request["client_id"] == hub_env["WORKSPACES_CLIENT_ID"]
    assert form["client_secret"] == hub_env["WORKSPACES_CLIENT_SECRET"]
    assert form["subject_token"] == subject
    assert form["subject_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert form["requested_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert form["scope"] == "workspace:beta"

    env = spawner.environment
    claims = kc.decode(env[S3_TOKEN])
    assert claims["workspace"] == "beta"
    assert claims["https://aws.amazon.com/tags"]["principal_tags"]["workspace"] == ["beta"]
    assert env["WORKSPACE"] == "beta"
    assert env["S3CONTENTS_AWS_ROLE_ARN"] == hub_env["SINGLEUSER_AWS_ROLE_ARN"]
    assert env["S3CONTENTS_AWS_REGION"] == hub_env["SINGLEUSER_AWS_REGION"]
    assert env["S3CONTENTS_WORKSPACE_BUCKET"] == hub_env["SINGLEUSER_WORKSPACE_BUCKET"]
    # And it reaches the pod: the spawner's own environment for the container.
    spawner.user_options = {"workspace": "beta"}
    run(spawner.load_user_options())
    assert spawner.get_env()[S3_TOKEN] == env[S3_TOKEN]
    assert spawner.get_env()["WORKSPACE"] == "beta"


def _refused(run, spawner) -> web.HTTPError:
    with pytest.raises(web.HTTPError) as failure:
        run(spawner.run_pre_spawn_hook())
    assert S3_TOKEN not in spawner.environment, "no server may start without a token"
    return failure.value


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            (400, {"error": "invalid_request", "error_description": "Token exchange disabled"}),
            r"refused the token exchange \(HTTP 400, invalid_request: Token exchange disabled\)",
        ),
        (
            (401, {"error": "unauthorized_client"}),
            r"refused the token exchange \(HTTP 401, unauthorized_client\)",
        ),
        ("malformed", "answered the token exchange with invalid JSON"),
        ((200, {"token_type": "Bearer"}), "holds no access token"),
    ],
)
def test_error_answers_fail_the_spawn_clearly(run, make_spawner, kc, override, expected):
    kc.exchange_override = override
    error = _refused(run, spawn_with(make_spawner, "alice", "alpha"))
    assert error.status_code == 502
    assert str(error).startswith("Could not get access to workspace 'alpha': ")
    assert re.search(expected, str(error))
    assert kc.grants(EXCHANGE_GRANT), "the exchange was attempted"


def test_timeout_fails_the_spawn_clearly(run, make_spawner, kc, hub_ns):
    kc.exchange_override = "timeout"
    kc.timeout_sleep = 2.0
    hub_ns["EODH_EXCHANGE_TIMEOUT_SECONDS"] = 0.3
    started = time.monotonic()
    error = _refused(run, spawn_with(make_spawner, "alice", "alpha"))
    assert time.monotonic() - started < 1.5
    assert "did not answer the token exchange within 0.3 s" in str(error)


def test_wrong_workspaces_client_secret_is_a_401_from_the_server(
    run, make_spawner, kc, hub_ns, hub_env
):
    # Not an override: the fake server itself checks the client credentials.
    env = dict(hub_env, WORKSPACES_CLIENT_SECRET="wrong-test-secret")
    hub_ns.update(load_hub_config(env))
    error = _refused(run, spawn_with(make_spawner, "alice", "alpha"))
    assert "HTTP 401, unauthorized_client: Invalid client" in str(error)


def test_server_rejects_a_workspace_the_subject_token_does_not_carry(run, hub_ns, kc):
    # The exchange itself, given a workspace outside the user's claim (the hub refuses
    # that earlier; this proves the fake server checks the requested workspace).
    subject = kc.user_token("alice")
    with pytest.raises(hub_ns["WorkspaceTokenError"], match="invalid_scope"):
        run(hub_ns["exchange_workspace_token"](subject, "gamma"))
    ok = run(hub_ns["exchange_workspace_token"](subject, "alpha"))
    assert ok["workspace"] == "alpha"
    assert abs(ok["expires_at"] - (time.time() + kc.workspace_token_lifetime)) < 5


def test_unreachable_keycloak_fails_clearly(run, hub_ns):
    with pytest.raises(hub_ns["WorkspaceTokenError"], match=r"within|reach"):
        run(
            hub_ns["exchange_workspace_token"](
                "x", "alpha", token_url="http://127.0.0.1:9/token", timeout=1
            )
        )


# alice is a member of alpha and beta: a part of one of those names is still another workspace
# (a membership test by substring, or by prefix, would let "alph" through).
@pytest.mark.parametrize("workspace", ["gamma", "alph", "lpha", "bet", "a", "alpha-beta"])
def test_foreign_workspace_is_refused_before_any_exchange(run, make_spawner, kc, workspace):
    error = _refused(run, spawn_with(make_spawner, "alice", workspace))
    assert error.status_code == 403
    assert f"not a member of workspace '{workspace}'" in str(error)
    assert not kc.grants(EXCHANGE_GRANT)


def test_expiring_user_token_is_refreshed_before_the_exchange(run, make_spawner, kc):
    tokens = kc.issue_user_tokens("alice")
    stale = dict(
        access_token=kc.user_token("alice", lifetime=20),
        refresh_token=tokens["refresh_token"],
        workspaces=["alpha", "beta"],
    )
    spawner = spawn_with(make_spawner, "alice", "alpha", auth_state=stale)

    run(spawner.run_pre_spawn_hook())

    assert len(kc.grants("refresh_token")) == 1
    (saved,) = spawner.user.saved
    assert saved["access_token"] != stale["access_token"]
    assert saved["workspaces"] == ["alpha", "beta"]
    (exchange,) = kc.grants(EXCHANGE_GRANT)
    assert exchange["form"]["subject_token"] == saved["access_token"]
    assert jwt.decode(saved["access_token"], options={"verify_signature": False})["exp"] > (
        time.time() + 60
    )


def test_revoked_membership_is_noticed_on_refresh(run, make_spawner, kc):
    tokens = kc.issue_user_tokens("dave")
    stale = dict(
        access_token=kc.user_token("dave", lifetime=5),
        refresh_token=tokens["refresh_token"],
        workspaces=["delta", "epsilon"],
    )
    spawner = spawn_with(make_spawner, "dave", "epsilon", auth_state=stale)
    kc.users["dave"] = ["delta"]
    try:
        error = _refused(run, spawner)
    finally:
        kc.users["dave"] = ["delta", "epsilon"]
    assert "not a member of workspace 'epsilon'" in str(error)
    assert not kc.grants(EXCHANGE_GRANT)


def test_dead_session_asks_to_log_in_again(run, make_spawner, kc):
    stale = dict(
        access_token=kc.user_token("alice", lifetime=5),
        refresh_token="unknown-refresh-token",
        workspaces=["alpha"],
    )
    error = _refused(run, spawn_with(make_spawner, "alice", "alpha", auth_state=stale))
    assert "log out and log in again" in str(error)


def test_a_refused_pod_is_logged_without_its_tokens(run, make_spawner, kc, caplog):
    # KubeSpawner logs the whole pod manifest when Kubernetes refuses the pod (a quota or
    # an admission webhook); its env holds the workspace token and the hub API token.
    from kubernetes_asyncio.client.rest import ApiException

    class RefusingApi:
        async def create_namespaced_pod(self, namespace, body):
            raise ApiException(status=403, reason="Forbidden")

    spawner = spawn_with(make_spawner, "alice", "alpha")
    spawner.api_token = "hub-api-token-for-this-server-0123456789"
    run(spawner.run_pre_spawn_hook())
    run(spawner.load_user_options())
    workspace_token = spawner.environment[S3_TOKEN]

    async def create():
        pod = await spawner.get_pod_manifest()
        pod = spawner.modify_pod_hook(spawner, pod)
        assert {e.name: e.value for e in pod.spec.containers[0].env}[S3_TOKEN] == workspace_token
        spawner.api = RefusingApi()
        await spawner._make_create_pod_request(pod, 5)

    with caplog.at_level("DEBUG"), pytest.raises(ApiException):
        run(create())
    assert "Failed for" in caplog.text and "jupyter-alice" in caplog.text
    assert workspace_token not in caplog.text
    assert spawner.api_token not in caplog.text
