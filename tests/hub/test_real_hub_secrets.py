"""No token or secret in the hub's log, on a page or in an error message.

    assert "Could not get access to workspace 'iota'" in html.unescape(page.text)
a failed exchange, a spawn, renewals that succeed and fail. Then every token the fake
Keycloak ever issued this session (access, refresh and workspace tokens; Keycloak's
refresh tokens are JWTs too), anything shaped like a JWT, and both client secrets are
looked for in the hub's log and in every body a browser or a caller was shown.
"""

from __future__ import annotations

import html
import re

import pytest

from tests.hub.fake_keycloak import EXCHANGE_GRANT
from tests.support.hub_config import release_env

pytestmark = pytest.mark.slow

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+")


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    found = [f"{what}: ...{value[-12:]}" for what, value in secrets.items() if value in text]
    found += [f"JWT-shaped: {m.group(0)[:16]}..." for m in JWT.finditer(text)]
    return found


def test_no_token_or_secret_in_the_log_pages_or_errors(real_hub, kc):
    shown: list[str] = []  # every body a user or a caller was shown, bar the token itself

    # Login, with user tokens that expire within the refresh margin (60 s), so the
    # spawn and every renewal go through the refresh grant first.
    kc.user_token_lifetime = 30
    session = real_hub.login(kc, "henry")
    spawn_page = session.get(f"{real_hub.url}/hub/spawn", timeout=30)
    shown.append(spawn_page.text)

    # A failed exchange at spawn, through the form (the page shows the error) and the
    # REST API.
    kc.exchange_override = (400, {"error": "invalid_request", "error_description": "no"})
    page = session.post(
        f"{real_hub.url}/hub/spawn",
        data={"workspace": "iota", "profile": "eodh", "_xsrf": session.cookies.get("_xsrf")},
        timeout=30,
    )
    assert "Could not get access to workspace 'iota'" in html.unescape(page.text)
    shown.append(page.text)
    real_hub.wait_for_server("henry", running=False)
    failed = real_hub.admin("POST", "/users/henry/server", json={"workspace": "iota"})
    assert failed.status_code >= 400
    shown.append(failed.text)
    real_hub.wait_for_server("henry", running=False)
    kc.exchange_override = None

    # A spawn that works.
    started = real_hub.admin("POST", "/users/henry/server", json={"workspace": "iota"})
    assert started.status_code in (201, 202), started.text
    shown.append(started.text)
    server_token = real_hub.wait_for_record("henry")["env"]["JUPYTERHUB_API_TOKEN"]
    real_hub.wait_for_server("henry", running=True)

    # Renewal: one that works (its body is the token: not counted as shown), one whose
    # exchange fails, one refused for another user's workspace.
    renewed = real_hub.workspace_token(server_token, server="")
    assert renewed.status_code == 200, renewed.text
    kc.exchange_override = (400, {"error": "invalid_grant", "error_description": "nope"})
    failed_renewal = real_hub.workspace_token(server_token, server="")
    assert failed_renewal.status_code == 502
    shown.append(failed_renewal.text)
    kc.exchange_override = None
    shown.append(real_hub.workspace_token(server_token, server="", workspace="x").text)

    assert kc.grants("refresh_token"), "the scenario must include a token refresh"
    assert len(kc.grants(EXCHANGE_GRANT)) >= 3

    env = release_env()
    secrets = {f"issued token {i}": token for i, token in enumerate(kc.issued)}
    secrets["hub client secret"] = env["OAUTH_CLIENT_SECRET"]
    secrets["workspaces client secret"] = env["WORKSPACES_CLIENT_SECRET"]

    log = real_hub.log_file.read_text()
    assert "Could not get access to workspace 'iota'" in html.unescape(page.text)
    assert leaks(log, secrets) == []
    for body in shown:
        assert leaks(body, secrets) == []
