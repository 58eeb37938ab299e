"""Issue 18, section 2: what a page other than the hub's own can make the hub do.

On the real hub (tests/hub/real_hub.py): a logged-in user's cookie must not let another
page start their servers (hub/extra_config/5_request_origins.py), and a server's own API
token must not act on its owner's other servers (file 1's scopes, file 3's endpoint).
The Chromium test sends the forged request from a real page on another origin of the
same site, as a workspace host would.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from selenium.webdriver.support.ui import WebDriverWait

from tests.hub.fake_keycloak import EXCHANGE_GRANT
from tests.hub.test_spawn_browser import login

# What a no-cors fetch from a page on another host of the same site carries.
SAME_SITE_NO_CORS = {
    "Sec-Fetch-Site": "same-site",
    "Sec-Fetch-Mode": "no-cors",
    "Sec-Fetch-Dest": "empty",
    "Origin": "http://127.0.0.1:1",
}


def _servers(real_hub, username: str) -> dict:
    return real_hub.admin("GET", f"/users/{username}").json().get("servers") or {}


@pytest.mark.parametrize(
    "headers",
    [
        SAME_SITE_NO_CORS,
        {**SAME_SITE_NO_CORS, "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        # An older browser without Fetch Metadata: the Origin alone decides.
        {"Origin": "null"},
        # A notebook server's page on the hub's own origin, referrer not suppressed.
        {
            "Sec-Fetch-Site": "same-origin",
            "Sec-Fetch-Mode": "no-cors",
            "Referer": "{url}/user/victor/lab",
        },
    ],
    ids=["same-site", "cross-site", "origin-null", "server-page"],
)
def test_a_forged_request_with_the_users_cookie_starts_nothing(real_hub, kc, headers) -> None:
    session = real_hub.login(kc, "victor")
    headers = {k: v.format(url=real_hub.url) for k, v in headers.items()}
    if "Origin" not in headers and "Referer" in headers:
        headers["Origin"] = real_hub.url.split("/notebooks")[0]
    # No Content-Type (a Blob body): the API accepts it as JSON, and no-cors skips XSRF.
    response = session.post(
        f"{real_hub.url}/hub/api/users/victor/server",
        data=json.dumps({"workspace": "lambda"}),
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 403, response.text
    assert _servers(real_hub, "victor") == {}
    assert real_hub.record("victor") is None


def test_a_servers_token_acts_only_on_its_own_server(real_hub, kc) -> None:
    real_hub.login(kc, "victor")
    token = real_hub.start_default_server("victor", "kappa")["env"]["JUPYTERHUB_API_TOKEN"]
    # The same owner's named server in their other workspace.
    named = real_hub.admin(
        "POST", "/users/victor/servers/lambda-server", json={"workspace": "lambda"}
    )
    assert named.status_code in (201, 202), named.text
    named_token = real_hub.wait_for_record("victor~lambda-server")["env"]["JUPYTERHUB_API_TOKEN"]
    try:
        auth = {"Authorization": f"token {token}"}
        scopes = real_hub_request(real_hub, "GET", "/user", auth).json()["scopes"]
        assert "custom:eodh:workspace-token!server=victor/" in scopes
        assert "custom:eodh:workspace-token!user=victor" not in scopes
        # Restart it elsewhere, stop a server, mint tokens: none is a server's to do.
        for method, path, body in [
            ("POST", "/users/victor/server", {"workspace": "lambda"}),
            ("DELETE", "/users/victor/servers/lambda-server", None),
            ("POST", "/users/victor/servers/third", {"workspace": "lambda"}),
            ("POST", "/users/victor/tokens", {"scopes": ["servers!user"]}),
        ]:
            response = real_hub_request(real_hub, method, path, auth, body)
            assert response.status_code == 403, (method, path, response.text)
        kc.requests.clear()
        other = real_hub.workspace_token(token, server="lambda-server")
        assert other.status_code == 403, other.text
        assert not kc.grants(EXCHANGE_GRANT)
        # Each server still renews its own workspace's token.
        own = real_hub.workspace_token(token, server="")
        assert own.status_code == 200 and own.json()["workspace"] == "kappa", own.text
        named_own = real_hub.workspace_token(named_token, server="lambda-server")
        assert named_own.status_code == 200 and named_own.json()["workspace"] == "lambda"
        assert real_hub.workspace_token(named_token, server="").status_code == 403
    finally:
        real_hub.admin("DELETE", "/users/victor/servers/lambda-server")
        real_hub.admin("DELETE", "/users/victor/server")
        real_hub.wait_for_server("victor", running=False)
        for stem in ("victor", "victor~lambda-server"):
            real_hub.forget_record(stem)


def real_hub_request(real_hub, method: str, path: str, headers: dict, body=None):
    import requests

    return requests.request(
        method, f"{real_hub.api_url}{path}", headers=headers, json=body, timeout=30
    )


@pytest.fixture
def same_site_page(real_hub) -> Iterator[str]:
    """A page on 127.0.0.1 at another port: another origin of the hub's site."""
    target = f"{real_hub.url}/hub/api/users/wendy/server"
    page = f"""<!doctype html><title>loading</title><script>
fetch({json.dumps(target)}, {{method: "POST", mode: "no-cors", credentials: "include",
  body: new Blob([JSON.stringify({{workspace: "mu"}})])}})
  .then(() => {{ document.title = "sent"; }}, (e) => {{ document.title = "failed " + e; }});
</script>""".encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_a_page_on_a_same_site_host_cannot_start_a_server_in_chromium(
    browser,
    real_hub,
    kc,
    same_site_page,
) -> None:
    login(browser, real_hub, kc, "wendy")
    browser.get(same_site_page)
    WebDriverWait(browser, 30).until(lambda b: b.title != "loading")
    # The request went out (an opaque response); the hub refused it.
    assert browser.title == "sent"
    assert _servers(real_hub, "wendy") == {}
    assert real_hub.record("wendy") is None
    assert "Refused POST /notebooks/hub/api/users/wendy/server" in real_hub.log_file.read_text()
