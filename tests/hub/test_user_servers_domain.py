"""userServersDomain: each user's servers on `<user>.<domain>`, the hub on its own host.

The extra config as the chart loads it (hostile user names, a chart value that disagrees),
then one real hub (tests/hub/real_hub.py) started with USER_SERVERS_DOMAIN, as the release
sets it: JupyterHub starts its proxy with --host-routing there, as the chart's proxy
deployment does when it sees hub.config.JupyterHub.subdomain_host. The login must stay on
the hub's host, a server's URL must be on its user's host, and that host's pages must not
make the hub change anything with the user's cookie (5_request_origins.py).
"""

from __future__ import annotations

import json
import re
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import parse_qs, quote, urlparse

import pytest
import requests
from jupyterhub.app import JupyterHub
from tornado.web import create_signed_value, decode_signed_value
from traitlets.config import Config

from tests.hub.conftest import PROFILES
from tests.support.hub_config import load_hub_config, release_env

DOMAIN = "users.test.invalid"
HUB_HOST = "notebooks.test.invalid"
# RFC 1123 label, not all digits (JupyterHub's own rule, utils.py `_is_dns_safe`).
DNS_LABEL = re.compile(r"(?!\d+\Z)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def _config(chart_subdomain_host: str | None = None) -> Config:
    chart = Config()
    chart.JupyterHub.base_url = "/notebooks/"
    if chart_subdomain_host:
        chart.JupyterHub.subdomain_host = chart_subdomain_host
    env = release_env(HUB_HOST=HUB_HOST, USER_SERVERS_DOMAIN=DOMAIN)
    return load_hub_config(env, config=chart)["c"]


def test_the_hub_stays_on_its_host_and_servers_move_to_the_users_domain() -> None:
    c = _config(chart_subdomain_host=f"https://{DOMAIN}")
    app = JupyterHub(config=c)
    assert app.subdomain_host == f"https://{DOMAIN}"
    # Left to JupyterHub, public_url (the hub's pages, cookies, `next` checks) would follow
    # subdomain_host (app.py `_default_public_url`).
    assert app.public_url == f"https://{HUB_HOST}/notebooks/"
    assert c.EODHAuthenticator.oauth_callback_url == (
        f"https://{HUB_HOST}/notebooks/hub/oauth_callback"
    )
    # The hook gets the hub's domain (HUB_HOST) and puts the user under DOMAIN instead.
    assert app.domain == HUB_HOST
    assert app.subdomain_hook("alice", app.domain, "user") == f"alice.{DOMAIN}"


HOSTILE_NAMES = [
    "alice",
    "o.dd_user@example.org",
    # Would be a host of the hub's domain, or another user's label, taken literally.
    f"evil.{HUB_HOST}",
    "alice.bob",
    "a--b",
    "xn--mile-9oa",
    "émile",
    "\u0430lice",  # Cyrillic a
    "12345",
    "-lead",
    "tail-",
    "x" * 80,
    "../../hub",
    "name with space",
    "%2e%2e",
]


def test_every_user_name_becomes_one_dns_label_of_its_own() -> None:
    hook = _config().JupyterHub.subdomain_hook
    labels = {}
    for name in HOSTILE_NAMES:
        host = hook(name, HUB_HOST, "user")
        label, _, rest = host.partition(".")
        assert rest == DOMAIN, (name, host)
        assert DNS_LABEL.fullmatch(label), (name, host)
        labels[name] = label
    # Distinct names, distinct hosts; and a user literally named like another's encoded
    # label does not get that host.
    assert len(set(labels.values())) == len(HOSTILE_NAMES)
    for name, label in labels.items():
        if label != name:
            assert hook(label, HUB_HOST, "user") != f"{label}.{DOMAIN}", (name, label)


def test_hashed_labels_carry_128_bits() -> None:
    """JupyterHub's fallback keeps 28 bits of sha256 (utils.py `_trim_and_hash`): these two
    realm-legal names share its label u-johnsmit--<7 hex>, and so would share an origin."""
    hook = _config().JupyterHub.subdomain_hook
    first, second = (hook(n, HUB_HOST, "user") for n in ("john.smith.6130", "john.smith.8881"))
    assert first != second
    for name in [*HOSTILE_NAMES, "john.smith.6130", "\u00e9" * 80, "@" * 200]:
        label = hook(name, HUB_HOST, "user").removesuffix(f".{DOMAIN}")
        assert len(label) <= 63 and DNS_LABEL.fullmatch(label), (name, label)
        if label.startswith("u-"):
            assert re.fullmatch(r"u-[a-z0-9]{1,8}--[0-9a-f]{32}", label), (name, label)
    # Names that are already a label, or have an IDNA form, keep JupyterHub's label.
    assert hook("alice", HUB_HOST, "user") == f"alice.{DOMAIN}"
    assert hook("\u00e9mile", HUB_HOST, "user") == f"xn--mile-9oa.{DOMAIN}"


def test_a_chart_subdomain_host_other_than_the_hubs_stops_the_hub() -> None:
    with pytest.raises(RuntimeError, match="is not USER_SERVERS_DOMAIN"):
        _config(chart_subdomain_host="https://elsewhere.test.invalid")


def test_a_chart_subdomain_host_without_the_release_setting_stops_the_hub() -> None:
    # JupyterHub's own hook would put users on <user>.<HUB_HOST>: a workspace's host.
    chart = Config()
    chart.JupyterHub.subdomain_host = f"https://{DOMAIN}"
    with pytest.raises(RuntimeError, match="USER_SERVERS_DOMAIN is not set"):
        load_hub_config(release_env(HUB_HOST=HUB_HOST), config=chart)


def test_without_the_setting_servers_share_the_hubs_host() -> None:
    c = load_hub_config(release_env(HUB_HOST=HUB_HOST))["c"]
    assert "subdomain_host" not in c.JupyterHub
    assert "subdomain_hook" not in c.JupyterHub


# -- the real hub ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def subdomain_hub(keycloak, kubeconfig, tmp_path_factory):
    from tests.hub.real_hub import RealHub

    hub = RealHub(
        workdir=tmp_path_factory.mktemp("subdomain-hub"),
        issuer=keycloak.issuer,
        profiles=PROFILES,
        kubeconfig=kubeconfig,
        env_overrides={"USER_SERVERS_DOMAIN": DOMAIN},
    )
    hub.start()
    yield hub
    hub.stop()


@pytest.mark.slow
def test_per_user_origins_on_a_real_hub(subdomain_hub, kc, monkeypatch) -> None:
    hub = subdomain_hub
    # `__Host-` cookies are always Secure and this hub is plain http on 127.0.0.1, an origin
    # browsers treat as potentially trustworthy and send Secure cookies to; http.cookiejar
    # (requests copies the jar per request, default policy included) would not.
    monkeypatch.setattr(DefaultCookiePolicy, "return_ok_secure", lambda *_: True)
    # The realm's one redirect URI: this hub's callback (the session hub's is another port).
    callback = f"http://{hub.host}/notebooks/hub/oauth_callback"
    kc.redirect_uri = callback

    # 1. The login round trip starts and ends on the hub's host.
    session, response, authorize = hub.login_round_trip(kc, "alice")
    assert parse_qs(authorize.query)["redirect_uri"] == [callback]
    final = urlparse(response.url)
    assert (final.netloc, final.path) == (hub.host, "/notebooks/hub/home")
    cookies = {
        header.split("=", 1)[0]: [a.strip().lower() for a in header.split(";")[1:]]
        for r in response.history
        for header in r.raw.headers.getlist("Set-Cookie")
    }
    # The login cookie and the login's OAuth state cookie are `__Host-` cookies: host-only
    # and on Path=/, so a server's page whose host shares a parent domain with the hub's
    # cannot plant either for the hub (browsers refuse a `__Host-` cookie with a Domain).
    # JupyterHub gives the session id (not a credential: it only ties tokens to a browser
    # session for logout, handlers/base.py set_session_cookie) the hub's domain, which the
    # users' hosts are under when the users' domain is under HUB_HOST.
    assert "jupyterhub-hub-login" not in cookies and "oauthenticator-state" not in cookies
    for name in ("__Host-jupyterhub-hub-login", "__Host-oauthenticator-state"):
        assert "path=/" in cookies[name] and "secure" in cookies[name], (name, cookies[name])
        assert not [a for a in cookies[name] if a.startswith("domain=")], (name, cookies[name])
    for name, attributes in cookies.items():
        domains = [a for a in attributes if a.startswith("domain=")]
        assert domains in ([], ["domain=127.0.0.1"]), (name, attributes)
    # What a page on another host under the hub's domain could still plant: a login cookie
    # without the prefix, here validly signed for alice, as the hub issued it before. The hub
    # no longer reads that name; the same value under the prefixed name logs in.
    # (Tornado quotes signed values: they hold '|' and '='.)
    login_cookie = session.cookies["__Host-jupyterhub-hub-login"].strip('"')
    secret = bytes.fromhex((hub.workdir / "cookie_secret").read_text().strip())
    cookie_id = decode_signed_value(secret, "__Host-jupyterhub-hub-login", login_cookie)
    planted = create_signed_value(secret, "jupyterhub-hub-login", cookie_id).decode()
    for cookie, logged_in in (
        (f"__Host-jupyterhub-hub-login={login_cookie}", True),
        (f"jupyterhub-hub-login={planted}", False),
    ):
        home = requests.get(
            f"{hub.url}/hub/home", headers={"Cookie": cookie}, allow_redirects=False, timeout=30
        )
        assert (home.status_code == 200) == logged_in, (cookie.split("=")[0], home.status_code)
    # Likewise a planted state cookie: alice's own, with a code for alice, sent to the hub's
    # callback by a page of hers, must not log the browser in as alice (login CSRF).
    attacker = requests.Session()
    started = attacker.get(f"{hub.url}/hub/oauth_login", allow_redirects=False, timeout=30)
    state = attacker.cookies["__Host-oauthenticator-state"].strip('"')
    back_with_code = attacker.get(started.headers["Location"], allow_redirects=False, timeout=30)
    planted = create_signed_value(
        secret,
        "oauthenticator-state",
        decode_signed_value(secret, "__Host-oauthenticator-state", state),
    ).decode()
    victim = requests.get(
        back_with_code.headers["Location"],
        headers={"Cookie": f"oauthenticator-state={planted}"},
        allow_redirects=False,
        timeout=30,
    )
    assert victim.status_code == 400, victim.status_code
    assert "hub-login" not in victim.headers.get("Set-Cookie", ""), victim.headers

    # 2. A page on alice's own server host cannot make the hub start anything.
    forged = {"Origin": f"https://alice.{DOMAIN}", "Sec-Fetch-Mode": "no-cors"}
    for headers in (forged, {**forged, "Sec-Fetch-Site": "same-site"}):
        refused = session.post(
            f"{hub.url}/hub/api/users/alice/server",
            data=json.dumps({"workspace": "alpha"}),
            headers=headers,
            timeout=30,
        )
        assert refused.status_code == 403, refused.text
    assert hub.record("alice") is None

    # 3. A server's URL is on its user's host, and the proxy routes that host to it.
    record = hub.start_default_server("alice", "alpha")
    server = hub.admin("GET", "/users/alice").json()["servers"][""]
    assert server["url"] == f"https://alice.{DOMAIN}/notebooks/user/alice/"
    env = record["env"]
    # The server's own cookies are `__Host-` ones too, on its user's host.
    assert env["JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED"] == "1"
    assert env["JUPYTERHUB_OAUTH_CALLBACK_URL"] == (
        f"https://alice.{DOMAIN}/notebooks/user/alice/oauth_callback"
    )
    # The server sends the browser to the hub's own host to log in (services/auth.py
    # HubOAuth.hub_host): the hub, not Keycloak, is its OAuth provider.
    assert env["JUPYTERHUB_HOST"] == f"http://{hub.host}"
    proxied = requests.get(
        f"http://{hub.host}/notebooks/user/alice/",
        headers={"Host": f"alice.{DOMAIN}"},
        allow_redirects=False,
        timeout=30,
    )
    assert proxied.status_code == 200 and "stub notebook" in proxied.text
    # The server logs its user in with the hub (the hub is its OAuth provider, Keycloak is not
    # involved): the browser, coming from the server's host, GETs the hub's authorize
    # endpoint, which the origin check leaves alone, and comes back to the server's host with
    # a code; the server (no browser headers) trades it for a token with its own secret.
    server_callback = env["JUPYTERHUB_OAUTH_CALLBACK_URL"]
    authorize = session.get(
        f"{hub.url}/hub/api/oauth2/authorize",
        params={
            "client_id": env["JUPYTERHUB_CLIENT_ID"],
            "redirect_uri": server_callback,
            "response_type": "code",
            "state": "s",
        },
        headers={"Sec-Fetch-Site": "same-site", "Referer": f"https://alice.{DOMAIN}/"},
        allow_redirects=False,
        timeout=30,
    )
    assert authorize.status_code == 302, authorize.text
    back = urlparse(authorize.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == server_callback
    token = requests.post(
        f"{hub.api_url}/oauth2/token",
        data={
            "client_id": env["JUPYTERHUB_CLIENT_ID"],
            "client_secret": env["JUPYTERHUB_API_TOKEN"],
            "grant_type": "authorization_code",
            "code": parse_qs(back.query)["code"][0],
            "redirect_uri": server_callback,
        },
        timeout=30,
    )
    assert token.status_code == 200 and token.json()["access_token"], token.text
    # The old address on the hub's host reaches the hub, which sends it to the user's host.
    moved = session.get(f"{hub.url}/user/alice/lab", allow_redirects=False, timeout=30)
    moved = session.get(moved.headers["Location"], allow_redirects=False, timeout=30)
    # (JupyterHub counts the hop in ?redirects=, its guard against a proxy without the route.)
    target = urlparse(moved.headers["Location"])
    assert (target.netloc, target.path) == (f"alice.{DOMAIN}", "/notebooks/user/alice/lab")

    # 4. An odd name from the realm gets a host of its own under the domain.
    odd = "o.dd_user@example.org"
    kc.users[odd] = ["beta"]
    kc.login_as = odd
    requests.Session().get(f"{hub.url}/hub/oauth_login", timeout=30).raise_for_status()
    hub.start_default_server(odd, "beta")
    url = hub.admin("GET", f"/users/{quote(odd)}").json()["servers"][""]["url"]
    host = urlparse(url).hostname or ""
    label, _, rest = host.partition(".")
    assert rest == DOMAIN and DNS_LABEL.fullmatch(label) and label.startswith("u-odduser"), url
