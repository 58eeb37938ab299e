"""The hub answers on its one host, and a login through Keycloak comes back to that host.

The real hub's HUB_HOST is its own 127.0.0.1 address (real_hub.py), so everything derived
from it in production (the OAuth callback, the login cookie's host) is what the browser
meets here; only the scheme differs (hub_test_overrides.py). The fake Keycloak, like the
realm's `jupyter` client, refuses any redirect URI other than the registered one.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse


def test_a_login_round_trip_lands_back_on_the_hub_host(real_hub, kc) -> None:
    _, response, authorize = real_hub.login_round_trip(kc, "alice")
    callback = f"http://{real_hub.host}/notebooks/hub/oauth_callback"
    assert parse_qs(authorize.query)["redirect_uri"] == [callback]
    # Keycloak sent the browser back to that callback, and the hub kept it on its host.
    assert any(r.url.startswith(callback) for r in response.history)
    final = urlparse(response.url)
    assert (final.netloc, final.path) == (real_hub.host, "/notebooks/hub/home")

    # The login cookie is host-only: no Domain attribute spreads it to other hosts (the
    # workspaces' <ws>.<domain> hosts run other services).
    login_cookies = [
        header
        for r in response.history
        for header in r.raw.headers.getlist("Set-Cookie")
        if header.startswith("jupyterhub-")
    ]
    assert login_cookies
    for header in login_cookies:
        attributes = [a.strip().lower() for a in header.split(";")[1:]]
        assert not any(a.startswith("domain=") for a in attributes), header
