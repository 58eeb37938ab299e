"""The three extra-config files, loaded the way the chart's hub loads them."""

from __future__ import annotations

import ast

import pytest
from eodh_jpyauth.auth import EODHAuthenticator
from eodh_jpyauth.spawners import KubeSpawner as EODHKubeSpawner
from traitlets.config import Config

from tests.support.hub_config import (
    EXTRA_CONFIG_DIR,
    RELEASE_ENV_VARS,
    TEMPLATES_DIR,
    extra_config_files,
    load_hub_config,
    release_env,
)

ISSUER = "https://dev.eodatahub.org.uk/keycloak/realms/eodhp"


@pytest.fixture
def c() -> Config:
    return load_hub_config(release_env(KEYCLOAK_ISSUER_URL=ISSUER + "/"))["c"]


def test_files_run_in_name_order():
    assert [p.name for p in extra_config_files()] == [
        "1_configure_jupyterhub.py",
        "2_configure_authenticator.py",
        "3_configure_spawner.py",
        "4_workspace_homes.py",
        "5_request_origins.py",
        "6_kubernetes_retries.py",
    ]


def test_classes_resolve_to_eodh_jpyauth(c):
    # The authenticator is eodh-jpyauth's, narrowed by file 2 to check the claim.
    assert issubclass(c.JupyterHub.authenticator_class, EODHAuthenticator)
    assert issubclass(c.JupyterHub.spawner_class, EODHKubeSpawner)
    # File 6 retries the API server's transient errors on top of whatever came before.
    assert "EODHRetryingKubeSpawner" in [k.__name__ for k in c.JupyterHub.spawner_class.mro()]


def test_templates_and_template_vars(c):
    assert c.JupyterHub.template_paths == ["/srv/jupyterhub/templates"]
    assert c.JupyterHub.template_vars["platform_domain"] == "hub.test.invalid"
    assert c.JupyterHub.template_vars["workspaces_domain"] == "workspaces.test.invalid"
    assert c.JupyterHub.template_vars["feedback_url"].startswith("https://hub.test.invalid/")
    spawn = (TEMPLATES_DIR / "spawn.html").read_text()
    assert '{% extends "page.html" %}' in spawn


def test_base_url_is_left_to_the_chart(c):
    assert "base_url" not in c.JupyterHub


def test_authenticator_endpoints_derive_from_one_issuer(c):
    a = c.EODHAuthenticator
    oidc = ISSUER + "/protocol/openid-connect"
    assert a.authorize_url == oidc + "/auth"
    assert a.token_url == oidc + "/token"
    assert a.userdata_url == oidc + "/userinfo"
    assert a.oauth_logout_url.startswith(oidc + "/logout?")
    assert "client_id=test-hub-client" in a.oauth_logout_url
    assert a.enable_logout is True
    assert a.client_id == "test-hub-client"
    assert a.client_secret == "test-client-secret"
    assert a.scope == ["openid", "workspaces"]
    assert a.username_claim == "preferred_username"
    assert a.enable_auth_state is True
    assert a.refresh_pre_spawn is True


def test_authenticator_instance_takes_the_config(c):
    auth = c.JupyterHub.authenticator_class(config=c)
    assert auth.token_url == ISSUER + "/protocol/openid-connect/token"
    assert auth.enable_auth_state and auth.refresh_pre_spawn and auth.enable_logout
    assert auth.allow_all


def test_hub_policies(c):
    # The Resource Catalogue's launches need named servers (test_launch_url.py).
    assert c.JupyterHub.allow_named_servers is True
    assert c.JupyterHub.concurrent_spawn_limit > 0
    # A restarted proxy has no routes until this check puts them back (make load: cut
    # off for up to a minute at the chart's 60 s); test_load_faults.py shortens it.
    assert 0 < c.JupyterHub.last_activity_interval <= 10
    assert 0 < c.JupyterHub.cookie_max_age_days <= 1


@pytest.mark.parametrize(
    ("chart_base_url", "callback"),
    [
        ("/notebooks/", "https://notebooks.test.invalid/notebooks/hub/oauth_callback"),
        ("/notebooks", "https://notebooks.test.invalid/notebooks/hub/oauth_callback"),
        ("/", "https://notebooks.test.invalid/hub/oauth_callback"),
        (None, "https://notebooks.test.invalid/hub/oauth_callback"),
    ],
)
def test_oauth_callback_is_fixed_to_the_hub_host(chart_base_url, callback):
    # The chart's jupyterhub_config.py sets base_url from hub.baseUrl before extra config.
    # HUB_HOST differs from both other domains, so the callback can only have come from it.
    chart = Config()
    if chart_base_url is not None:
        chart.JupyterHub.base_url = chart_base_url
    env = release_env(HUB_HOST="notebooks.test.invalid")
    c = load_hub_config(env, config=chart)["c"]
    assert c.EODHAuthenticator.oauth_callback_url == callback
    assert c.JupyterHub.template_vars["hub_url"] == callback.removesuffix("/hub/oauth_callback")
    assert c.JupyterHub.authenticator_class(config=c).get_callback_url() == callback


def test_hub_cookies_are_samesite_lax_and_chart_settings_survive():
    chart = Config()
    chart.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}
    c = load_hub_config(release_env(), config=chart)["c"]
    assert c.JupyterHub.tornado_settings == {
        "slow_spawn_timeout": 0,
        "cookie_options": {"samesite": "Lax"},
    }


def test_workspace_volumes_are_never_deleted_by_the_hub(c):
    assert c.KubeSpawner.delete_pvc is False


def test_spawner_naming_and_hooks(c):
    k = c.KubeSpawner
    assert k.enable_user_namespaces is True
    assert k.user_namespace_template == "ws-{workspace}"
    assert k.pvc_name_template == "pvc-{workspace}"
    assert callable(k.options_form) and callable(k.options_from_form)
    assert callable(k.pre_spawn_hook)
    assert "profile_list" not in k, "profiles belong to the chart's singleuser.profileList"


def test_workspace_token_scope_is_granted_to_users_and_server_tokens(c):
    scope = "custom:eodh:workspace-token"
    assert scope in c.JupyterHub.custom_scopes
    (user_role,) = [r for r in c.JupyterHub.load_roles if r["name"] == "user"]
    assert "self" in user_role["scopes"] and f"{scope}!user" in user_role["scopes"]
    assert set(c.Spawner.server_token_scopes) == {
        "users:activity!user",
        "access:servers!server",
        f"{scope}!server",
    }
    (route,) = c.JupyterHub.extra_handlers
    assert route[0] == r"/api/eodh/workspace-token"


def test_roles_set_by_the_chart_survive():
    chart = Config()
    chart.JupyterHub.load_roles = [
        {"name": "jupyterhub-idle-culler", "scopes": ["list:users"], "services": ["culler"]},
        {"name": "user", "scopes": ["self", "read:groups"]},
    ]
    roles = load_hub_config(release_env(), config=chart)["c"].JupyterHub.load_roles
    by_name = {r["name"]: r for r in roles}
    assert set(by_name) == {"jupyterhub-idle-culler", "user"}
    assert by_name["user"]["scopes"] == [
        "self",
        "read:groups",
        "custom:eodh:workspace-token!user",
    ]


@pytest.mark.parametrize("missing", RELEASE_ENV_VARS)
def test_missing_variable_stops_loading_with_its_name(missing):
    env = release_env()
    del env[missing]
    with pytest.raises(RuntimeError, match=rf"missing required environment variable.*{missing}"):
        load_hub_config(env)


def test_files_never_call_get_config():
    # In the chart's namespace get_config is z2jh's values getter, not traitlets'.
    for path in EXTRA_CONFIG_DIR.glob("*.py"):
        calls = [
            node
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "get_config"
        ]
        assert not calls, path.name


def test_workspace_environment_is_exactly_the_five_variables():
    env = release_env()
    ns = load_hub_config(env)
    assert ns["workspace_environment"]("alpha", "ws-token", env) == {
        "S3CONTENTS_WORKSPACE_ACCESS_TOKEN": "ws-token",
        "S3CONTENTS_AWS_ROLE_ARN": env["SINGLEUSER_AWS_ROLE_ARN"],
        "S3CONTENTS_AWS_REGION": env["SINGLEUSER_AWS_REGION"],
        "S3CONTENTS_WORKSPACE_BUCKET": env["SINGLEUSER_WORKSPACE_BUCKET"],
        "WORKSPACE": "alpha",
    }
    incomplete = {k: v for k, v in env.items() if k != "SINGLEUSER_WORKSPACE_BUCKET"}
    with pytest.raises(ValueError, match="SINGLEUSER_WORKSPACE_BUCKET"):
        ns["workspace_environment"]("alpha", "ws-token", incomplete)
    with pytest.raises(ValueError, match="token"):
        ns["workspace_environment"]("alpha", "", env)
