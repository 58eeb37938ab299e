"""What no user action may do, on a real JupyterHub 5.3 with the extra config.

Each scenario has its own user (conftest.USERS) so all share the session's one hub.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from tests.hub.fake_keycloak import EXCHANGE_GRANT

pytestmark = pytest.mark.slow


def test_stopping_servers_and_deleting_the_user_never_deletes_a_volume(real_hub, kc):
    real_hub.login(kc, "erin")
    for _ in range(2):
        real_hub.forget_record("erin")
        assert real_hub.start_default_server("erin", "zeta")["pvc_name"] == "pvc-zeta"
        if _ == 0:
            stopped = real_hub.admin("DELETE", "/users/erin/server")
            assert stopped.status_code in (202, 204), stopped.text
            real_hub.wait_for_server("erin", running=False)
    # Deleting a user with a running server: the hub stops it, then calls the spawner's
    # delete_forever, which is where KubeSpawner deletes the PVC when delete_pvc is on.
    deleted = real_hub.admin("DELETE", "/users/erin")
    assert deleted.status_code == 204, deleted.text

    deletes = [
        (call["method"], call["namespace"], call["name"])
        for call in real_hub.k8s_calls()
        if call["user"] == "erin" and call["method"].startswith("delete")
    ]
    # Both stops went through KubeSpawner's own client (so a PVC delete would show here).
    assert deletes == [("delete_namespaced_pod", "ws-zeta", "jupyter-erin")] * 2


def _set_cookie_headers(response: requests.Response) -> list[str]:
    return [h for r in [*response.history, response] for h in r.raw.headers.getlist("Set-Cookie")]


def test_every_hub_cookie_is_samesite_lax(real_hub, kc):
    kc.login_as = "carol"
    response = requests.Session().get(f"{real_hub.url}/hub/oauth_login", timeout=30)
    response.raise_for_status()
    cookies: dict[str, list[str]] = {}
    for header in _set_cookie_headers(response):
        name, _, rest = header.partition("=")
        if rest.startswith(";") or rest.startswith('"";'):
            continue  # a cookie being cleared carries nothing
        cookies.setdefault(name, []).append(header)
    assert {
        "oauthenticator-state",
        "jupyterhub-session-id",
        "jupyterhub-hub-login",
        "_xsrf",
    } <= set(cookies), cookies
    for name, headers in cookies.items():
        for header in headers:
            attributes = [a.strip().lower() for a in header.split(";")[1:]]
            assert "samesite=lax" in attributes, header
            assert "httponly" in attributes or name == "_xsrf", header


def test_oauth_callback_does_not_follow_the_host_header(real_hub):
    # Straight to the hub, with a forged Host: OAuthenticator would otherwise build the
    # redirect_uri (where Keycloak sends the code) from it.
    response = requests.get(
        f"http://127.0.0.1:{real_hub.hub_port}/notebooks/hub/oauth_login",
        headers={"Host": "attacker.example"},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302
    query = parse_qs(urlparse(response.headers["Location"]).query)
    assert query["redirect_uri"] == [f"{real_hub.url}/hub/oauth_callback"]


def test_a_string_workspaces_claim_refuses_the_login_with_a_clear_message(real_hub, kc):
    kc.login_as = "stringy"
    response = requests.get(f"{real_hub.url}/hub/oauth_login", timeout=30)
    assert response.status_code == 403
    page = html.unescape(response.text)
    assert "sent the 'workspaces' claim as a JSON string" in page
    assert "must be a JSON array of workspace names" in page
    assert real_hub.admin("GET", "/users/stringy").status_code == 404
    assert not kc.grants(EXCHANGE_GRANT)
