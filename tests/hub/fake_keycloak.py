"""A small stand-in for Keycloak realm ``eodhp`` on 127.0.0.1, for hub tests.

It speaks just enough OIDC for OAuthenticator's code flow (auth, token, userinfo,
logout), the refresh grant, and RFC 8693 token exchange, and it *checks* what it is
sent the way Keycloak 24 (the platform's version, run with ``--features=token-exchange``,
i.e. the legacy v1 exchange) does. The rules and where they come from:

* authorization endpoint: ``redirect_uri`` must be the client's registered one, and every
  requested scope other than ``openid`` must be one of the client's scopes, else
  ``invalid_scope`` (AuthorizationEndpointChecker.checkValidScope);
* exchange (DefaultTokenExchangeProvider.tokenExchange / exchangeClientToClient): client
  credentials; a ``subject_token_type`` other than access token is ``invalid_token``;
  the subject token must verify; with no ``audience`` parameter a confidential client
  that is not the subject token's holder (``azp``) must be in its ``aud``, else 403
  ``access_denied`` "Client is not within the token audience"; the requested scopes are
  *silently filtered* (dynamic scopes: by the part before ':') to those in the subject
  token's ``scope`` and among the exchanging client's scopes; the issued token's ``azp``
  is the exchanging client.
* modelled on the platform, not on Keycloak itself: the ``workspace:<name>`` scope maps
  the user's *current* membership (an exact entry of their workspaces list) to the
  ``workspace`` claim and the AWS session tag; a workspace the user is not a member of
  is ``invalid_scope``.

``aud`` is a string when there is one audience and a list otherwise, as Keycloak
serialises it. Every token request is recorded, and every token issued is kept in
``issued`` (so tests can look for them where they must not be). Tokens are HS256 JWTs
signed with an obviously fake key (Keycloak signs RS256; the hub never verifies them).

Faults, all off by default (bench/load and tests/hub/test_load_faults.py use them):
``latency`` delays every answer; ``outage`` answers the chosen endpoints with a fixed
reply instead: ``KEYCLOAK_DOWN`` is what ingress-nginx serves when no
Keycloak pod is ready (nginx's own 503 page, not JSON), ``KEYCLOAK_REFUSING`` and
``SESSION_NOT_ACTIVE`` are Keycloak's own token errors, in its OAuth2ErrorRepresentation
body ``{"error", "error_description"}`` (keycloak/keycloak core
org/keycloak/representations/idm/OAuth2ErrorRepresentation.java, RFC 6749 section 5.2).
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt

from tests.support.json_http import JsonRequestHandler

SIGNING_KEY = "fake-keycloak-signing-key-for-tests-only"
EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
REFRESH_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"
REALM_PATH = "/realms/eodhp"
OIDC_PATH = f"{REALM_PATH}/protocol/openid-connect"


# nginx's built-in error page, as ingress-nginx serves it for a backend with no ready
# endpoint (Keycloak restarting or down): status 503, text/html.
NGINX_503_PAGE = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
    "<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class KeycloakOutage:
    """A fixed reply instead of the real one, on the named endpoints (auth, token, userinfo).

    ``grants`` narrows a token-endpoint outage to some grant types (None: every grant).
    ``body`` is sent as JSON unless it is a str, which is sent as text/html.
    """

    status: int
    body: Any
    endpoints: tuple[str, ...] = ("auth", "token", "userinfo")
    grants: tuple[str, ...] | None = None


KEYCLOAK_DOWN = KeycloakOutage(503, NGINX_503_PAGE)
# A realm that stops allowing the exchange (a token-exchange permission removed): Keycloak
# 24's DefaultTokenExchangeProvider answers 403 access_denied.
KEYCLOAK_REFUSING = KeycloakOutage(
    403,
    {"error": "access_denied", "error_description": "Client not allowed to exchange"},
    endpoints=("token",),
    grants=("urn:ietf:params:oauth:grant-type:token-exchange",),
)
# The SSO session ended (Keycloak restarted without persistent sessions, or an admin
# logged everyone out): a refresh is refused with 400 invalid_grant (TokenManager).
SESSION_NOT_ACTIVE = KeycloakOutage(
    400,
    {"error": "invalid_grant", "error_description": "Session not active"},
    endpoints=("token",),
    grants=("refresh_token",),
)


@dataclass
class FakeKeycloak:
    hub_client_id: str
    hub_client_secret: str
    workspaces_client_id: str
    workspaces_client_secret: str
    # The workspaces claim as the realm's mapper emits it: normally a list of names, but
    # any JSON value can be put here to play a misconfigured mapper.
    users: dict[str, Any] = field(default_factory=dict)
    # Client scopes of the hub client (default or optional): what /auth accepts, and the
    # defaults every user token's `scope` carries. `workspace` is the dynamic scope the
    # exchange's workspace:<name> is filtered against (docs/keycloak.md).
    hub_client_scopes: tuple[str, ...] = ("profile", "email", "workspaces", "workspace")
    hub_default_scopes: tuple[str, ...] = ("profile", "email", "workspace")
    workspaces_client_scopes: tuple[str, ...] = ("profile", "email", "workspace")
    # Who a user token is for besides the hub (an Audience mapper on the hub client).
    # None: the workspaces client and "account" (see __post_init__).
    user_token_audience: tuple[str, ...] | None = None
    redirect_uri: str | None = None
    # Who the authorize endpoint logs in (there is no login form).
    login_as: str = "alice"
    user_token_lifetime: int = 300
    workspace_token_lifetime: int = 300
    # None, "timeout", "malformed", or (status, json_body): how the next exchanges answer.
    exchange_override: Any = None
    timeout_sleep: float = 3.0
    # Faults (module docstring): seconds added to every answer, and a fixed reply.
    latency: float = 0.0
    outage: KeycloakOutage | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    _codes: dict[str, tuple[str, str]] = field(default_factory=dict)
    _refresh_tokens: dict[str, str] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        if self.user_token_audience is None:
            self.user_token_audience = (self.workspaces_client_id, "account")

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> FakeKeycloak:
        handler = type("Handler", (_Handler,), {"kc": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def issuer(self) -> str:
        return self.base_url + REALM_PATH

    # -- tokens ----------------------------------------------------------------------
    def _sign(self, claims: dict[str, Any]) -> str:
        token = jwt.encode(claims, SIGNING_KEY, algorithm="HS256")
        self.issued.append(token)
        return token

    def user_scope(self, requested: str = "openid workspaces") -> str:
        scopes = [*requested.split(), *self.hub_default_scopes]
        return " ".join(dict.fromkeys(scopes))

    def user_token(
        self, username: str, lifetime: int | None = None, scope: str | None = None
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": f"sub-{username}",
            "typ": "Bearer",
            "azp": self.hub_client_id,
            "aud": _aud([a for a in self.user_token_audience or () if a != self.hub_client_id]),
            "scope": scope if scope is not None else self.user_scope(),
            "preferred_username": username,
            "iat": now,
            "exp": now + (self.user_token_lifetime if lifetime is None else lifetime),
            "jti": secrets.token_hex(8),
        }
        if claims["aud"] is None:
            del claims["aud"]
        if self.users.get(username, _NO_CLAIM) is not _NO_CLAIM:
            claims["workspaces"] = self.users[username]
        return self._sign(claims)

    def refresh_token(self, username: str, scope: str) -> str:
        """Keycloak's refresh tokens are JWTs too (typ Refresh, signed HS512 there)."""
        now = int(time.time())
        return self._sign(
            {
                "iss": self.issuer,
                "aud": self.issuer,
                "sub": f"sub-{username}",
                "typ": "Refresh",
                "azp": self.hub_client_id,
                "scope": scope,
                "iat": now,
                "exp": now + 1800,
                "jti": secrets.token_hex(8),
            }
        )

    def workspace_token(
        self, subject: dict[str, Any], scopes: list[str], workspace: str | None
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject["sub"],
            "typ": "Bearer",
            # issuedFor(client): the exchanging client (DefaultTokenExchangeProvider).
            "azp": self.workspaces_client_id,
            "aud": "account",
            "scope": " ".join(scopes),
            "preferred_username": subject["preferred_username"],
            "iat": now,
            "exp": now + self.workspace_token_lifetime,
            "jti": secrets.token_hex(8),
        }
        if workspace is not None:
            claims["workspace"] = workspace
            claims["https://aws.amazon.com/tags"] = {"principal_tags": {"workspace": [workspace]}}
        return self._sign(claims)

    def decode(self, token: str) -> dict[str, Any]:
        """Verify like Keycloak: our signature, not expired."""
        return jwt.decode(token, SIGNING_KEY, algorithms=["HS256"], options={"verify_aud": False})

    def issue_user_tokens(self, username: str, requested: str = "openid workspaces") -> dict:
        scope = self.user_scope(requested)
        refresh = self.refresh_token(username, scope)
        self._refresh_tokens[refresh] = username
        return {
            "access_token": self.user_token(username, scope=scope),
            "refresh_token": refresh,
            "expires_in": self.user_token_lifetime,
            "refresh_expires_in": 1800,
            "token_type": "Bearer",
            "scope": scope,
        }

    def grants(self, grant_type: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["form"].get("grant_type") == grant_type]

    @classmethod
    def for_release(cls, users: dict[str, Any]) -> FakeKeycloak:
        """The realm with the clients the release's (fake) environment names, started."""
        from tests.support.hub_config import release_env

        env = release_env()
        return cls(
            hub_client_id=env["OAUTH_CLIENT_ID"],
            hub_client_secret=env["OAUTH_CLIENT_SECRET"],
            workspaces_client_id=env["WORKSPACES_CLIENT_ID"],
            workspaces_client_secret=env["WORKSPACES_CLIENT_SECRET"],
            users=users,
        ).start()


_NO_CLAIM = object()


def _aud(audiences: list[str]) -> str | list[str] | None:
    """Keycloak writes a single audience as a string, several as a list."""
    if not audiences:
        return None
    return audiences[0] if len(audiences) == 1 else list(audiences)


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if aud is None:
        return []
    return [aud] if isinstance(aud, str) else list(aud)


def _client(handler: BaseHTTPRequestHandler, form: dict[str, str]) -> tuple[str, str]:
    auth = handler.headers.get("Authorization", "")
    if auth.startswith("Basic "):
        cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        return cid, secret
    return form.get("client_id", ""), form.get("client_secret", "")


class _Handler(JsonRequestHandler):
    kc: FakeKeycloak

    def _faulted(self, endpoint: str, grant: str | None = None) -> bool:
        """Apply the configured latency, then the outage if it covers this request."""
        if self.kc.latency:
            time.sleep(self.kc.latency)
        outage = self.kc.outage
        if outage is None or endpoint not in outage.endpoints:
            return False
        if outage.grants is not None and grant not in outage.grants:
            return False
        if isinstance(outage.body, str):
            data = outage.body.encode()
            self.send_response(outage.status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self._json(outage.status, outage.body)
        return True

    def do_GET(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        endpoint = url.path.removeprefix(f"{OIDC_PATH}/")
        if self._faulted(endpoint):
            return None
        if url.path == f"{OIDC_PATH}/auth":
            # Keycloak shows an error page, never a redirect, for an unknown client
            # (AuthorizationEndpoint.checkClient: Messages.CLIENT_NOT_FOUND) or an unregistered
            # redirect URI (AuthorizationEndpointChecker.checkRedirectUri).
            if query.get("client_id") != self.kc.hub_client_id:
                return self._page(400, "Client not found.")
            redirect_uri = query.get("redirect_uri", "")
            if self.kc.redirect_uri is not None and redirect_uri != self.kc.redirect_uri:
                return self._page(400, "Invalid parameter: redirect_uri")
            requested = query.get("scope", "")
            unknown = [
                s for s in requested.split() if s != "openid" and s not in self.kc.hub_client_scopes
            ]
            if unknown:
                params = {
                    "error": "invalid_scope",
                    "error_description": "Invalid scopes: " + requested,
                }
            else:
                code = secrets.token_urlsafe(12)
                # OIDC's login_hint fills in Keycloak's login form; with no form here it
                # names who logs in, so many users can log in at once (bench/load).
                hint = query.get("login_hint")
                who = hint if hint in self.kc.users else self.kc.login_as
                self.kc._codes[code] = (who, requested)
                params = {"code": code}
            target = redirect_uri + "?" + urlencode({**params, "state": query.get("state", "")})
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()
            return None
        if url.path == f"{OIDC_PATH}/userinfo":
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            try:
                claims = self.kc.decode(token)
            except jwt.PyJWTError:
                return self._json(401, {"error": "invalid_token"})
            return self._json(
                200, {"sub": claims["sub"], "preferred_username": claims["preferred_username"]}
            )
        if url.path == f"{OIDC_PATH}/logout":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"logged out of fake keycloak")
            return None
        return self._json(404, {"error": "not_found"})

    def _page(self, status: int, message: str) -> None:
        body = f"<html><body><p id='kc-error-message'>{message}</p></body></html>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html;charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length", 0))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if url.path != f"{OIDC_PATH}/token":
            return self._json(404, {"error": "not_found"})
        client_id, client_secret = _client(self, form)
        self.kc.requests.append({"form": form, "client_id": client_id})
        grant = form.get("grant_type")
        if self._faulted("token", grant):
            return None
        if grant == EXCHANGE_GRANT:
            return self._exchange(form, client_id, client_secret)
        if (client_id, client_secret) != (self.kc.hub_client_id, self.kc.hub_client_secret):
            return self._json(401, {"error": "unauthorized_client"})
        if grant == "authorization_code":
            login = self.kc._codes.pop(form.get("code", ""), None)
            if login is None:
                return self._json(400, {"error": "invalid_grant"})
            return self._json(200, self.kc.issue_user_tokens(*login))
        if grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            username = self.kc._refresh_tokens.get(refresh)
            if username is None:
                return self._json(400, {"error": "invalid_grant"})
            scope = self.kc.decode(refresh).get("scope", "openid")
            return self._json(200, self.kc.issue_user_tokens(username, scope))
        return self._json(400, {"error": "unsupported_grant_type"})

    def _exchange(self, form, client_id, client_secret):
        override = self.kc.exchange_override
        if override == "timeout":
            time.sleep(self.kc.timeout_sleep)
            # The client has given up by now, which is the point.
            with contextlib.suppress(OSError):
                self._json(503, {"error": "too_late"})
            return None
        if override == "malformed":
            data = b'{"access_token": "unterminated'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        if isinstance(override, tuple):
            return self._json(*override)
        kc = self.kc
        if (client_id, client_secret) != (kc.workspaces_client_id, kc.workspaces_client_secret):
            return self._json(
                401,
                {
                    "error": "unauthorized_client",
                    "error_description": "Invalid client or Invalid client credentials",
                },
            )
        subject_token_type = form.get("subject_token_type")
        if subject_token_type is not None and subject_token_type != ACCESS_TOKEN_TYPE:
            return self._json(
                400,
                {
                    "error": "invalid_token",
                    "error_description": "Invalid token type, must be access token",
                },
            )
        try:
            subject = kc.decode(form.get("subject_token", ""))
            if subject.get("typ") != "Bearer":
                raise jwt.InvalidTokenError("not an access token")
        except jwt.PyJWTError:
            return self._json(400, {"error": "invalid_token", "error_description": "Invalid token"})
        requested_type = form.get("requested_token_type") or REFRESH_TOKEN_TYPE
        if requested_type not in (ACCESS_TOKEN_TYPE, REFRESH_TOKEN_TYPE):
            return self._json(
                400,
                {
                    "error": "invalid_request",
                    "error_description": "requested_token_type unsupported",
                },
            )
        if "audience" in form:
            # Exchanging to another client needs a token-exchange permission on it; the hub
            # never asks for one, so the fake does not model that path.
            return self._json(
                403,
                {"error": "access_denied", "error_description": "Client not allowed to exchange"},
            )
        if subject.get("azp") != client_id and client_id not in _audiences(subject):
            return self._json(
                403,
                {
                    "error": "access_denied",
                    "error_description": "Client is not within the token audience",
                },
            )
        subject_scopes = {s.split(":")[0] for s in subject.get("scope", "").split()}
        if "scope" in form:
            scopes = [s for s in form["scope"].split() if s.split(":")[0] in subject_scopes]
        else:
            scopes = subject.get("scope", "").split()
        # Silently dropped, not refused: Keycloak 24's legacy exchange filters the list.
        scopes = [
            s for s in scopes if s == "openid" or s.split(":")[0] in kc.workspaces_client_scopes
        ]
        workspaces = [s.removeprefix("workspace:") for s in scopes if s.startswith("workspace:")]
        current = kc.users.get(subject["preferred_username"])
        for workspace in workspaces:
            if not isinstance(current, list) or workspace not in current:
                return self._json(
                    400,
                    {
                        "error": "invalid_scope",
                        "error_description": "Invalid scopes: " + form.get("scope", ""),
                    },
                )
        workspace = workspaces[0] if len(workspaces) == 1 else None
        return self._json(
            200,
            {
                "access_token": kc.workspace_token(subject, scopes, workspace),
                "expires_in": kc.workspace_token_lifetime,
                "token_type": "Bearer",
                "issued_token_type": ACCESS_TOKEN_TYPE,
                "scope": " ".join(scopes),
            },
        )
