"""A small stand-in for Keycloak realm ``eodhp`` on 127.0.0.1, for hub tests.

It speaks just enough OIDC for OAuthenticator's code flow (auth, token, userinfo,
logout), the refresh grant, and RFC 8693 token exchange, and it *checks* what it is
sent the way Keycloak would: client credentials, grant type, subject token (signature
and expiry), token types and the requested workspace. Every token request is recorded
for assertions. Tokens are HS256 JWTs signed with an obviously fake key.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt

SIGNING_KEY = "fake-keycloak-signing-key-for-tests-only"
EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
REALM_PATH = "/realms/eodhp"
OIDC_PATH = f"{REALM_PATH}/protocol/openid-connect"


@dataclass
class FakeKeycloak:
    hub_client_id: str
    hub_client_secret: str
    workspaces_client_id: str
    workspaces_client_secret: str
    users: dict[str, list[str]] = field(default_factory=dict)
    # Who the authorize endpoint logs in (there is no login form).
    login_as: str = "alice"
    user_token_lifetime: int = 300
    workspace_token_lifetime: int = 300
    # None, "timeout", "malformed", or (status, json_body): how the next exchanges answer.
    exchange_override: Any = None
    timeout_sleep: float = 3.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    _codes: dict[str, str] = field(default_factory=dict)
    _refresh_tokens: dict[str, str] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None

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
    def user_token(self, username: str, lifetime: int | None = None) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": f"sub-{username}",
            "azp": self.hub_client_id,
            "preferred_username": username,
            "workspaces": self.users[username],
            "iat": now,
            "exp": now + (self.user_token_lifetime if lifetime is None else lifetime),
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, SIGNING_KEY, algorithm="HS256")

    def workspace_token(self, subject: dict[str, Any], workspace: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject["sub"],
            "aud": self.workspaces_client_id,
            "preferred_username": subject["preferred_username"],
            "workspace": workspace,
            "https://aws.amazon.com/tags": {"principal_tags": {"workspace": [workspace]}},
            "iat": now,
            "exp": now + self.workspace_token_lifetime,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, SIGNING_KEY, algorithm="HS256")

    def decode(self, token: str) -> dict[str, Any]:
        """Verify like Keycloak: our signature, not expired."""
        return jwt.decode(token, SIGNING_KEY, algorithms=["HS256"], options={"verify_aud": False})

    def issue_user_tokens(self, username: str) -> dict[str, Any]:
        refresh = secrets.token_urlsafe(16)
        self._refresh_tokens[refresh] = username
        return {
            "access_token": self.user_token(username),
            "refresh_token": refresh,
            "expires_in": self.user_token_lifetime,
            "token_type": "Bearer",
            "scope": "openid workspaces",
        }

    def grants(self, grant_type: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["form"].get("grant_type") == grant_type]


def _client(handler: BaseHTTPRequestHandler, form: dict[str, str]) -> tuple[str, str]:
    auth = handler.headers.get("Authorization", "")
    if auth.startswith("Basic "):
        cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        return cid, secret
    return form.get("client_id", ""), form.get("client_secret", "")


class _Handler(BaseHTTPRequestHandler):
    kc: FakeKeycloak

    def log_message(self, *args):  # keep pytest output readable
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == f"{OIDC_PATH}/auth":
            if query.get("client_id") != self.kc.hub_client_id:
                return self._json(400, {"error": "invalid_client"})
            code = secrets.token_urlsafe(12)
            self.kc._codes[code] = self.kc.login_as
            target = (
                query["redirect_uri"]
                + "?"
                + urlencode({"code": code, "state": query.get("state", "")})
            )
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

    def do_POST(self):
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length", 0))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if url.path != f"{OIDC_PATH}/token":
            return self._json(404, {"error": "not_found"})
        client_id, client_secret = _client(self, form)
        self.kc.requests.append({"form": form, "client_id": client_id})
        grant = form.get("grant_type")
        if grant == EXCHANGE_GRANT:
            return self._exchange(form, client_id, client_secret)
        if (client_id, client_secret) != (self.kc.hub_client_id, self.kc.hub_client_secret):
            return self._json(401, {"error": "unauthorized_client"})
        if grant == "authorization_code":
            username = self.kc._codes.pop(form.get("code", ""), None)
            if username is None:
                return self._json(400, {"error": "invalid_grant"})
            return self._json(200, self.kc.issue_user_tokens(username))
        if grant == "refresh_token":
            username = self.kc._refresh_tokens.get(form.get("refresh_token", ""))
            if username is None:
                return self._json(400, {"error": "invalid_grant"})
            return self._json(200, self.kc.issue_user_tokens(username))
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
        if (client_id, client_secret) != (
            self.kc.workspaces_client_id,
            self.kc.workspaces_client_secret,
        ):
            return self._json(
                401, {"error": "unauthorized_client", "error_description": "Invalid client"}
            )
        if form.get("subject_token_type") != ACCESS_TOKEN_TYPE:
            return self._json(400, {"error": "invalid_request"})
        try:
            subject = self.kc.decode(form.get("subject_token", ""))
        except jwt.PyJWTError:
            return self._json(400, {"error": "invalid_token", "error_description": "Invalid token"})
        scope = form.get("scope", "")
        workspace = scope.removeprefix("workspace:") if scope.startswith("workspace:") else ""
        if not workspace or workspace not in subject.get("workspaces", []):
            return self._json(
                400, {"error": "invalid_scope", "error_description": "Invalid scopes: " + scope}
            )
        return self._json(
            200,
            {
                "access_token": self.kc.workspace_token(subject, workspace),
                "expires_in": self.kc.workspace_token_lifetime,
                "token_type": "Bearer",
                "issued_token_type": ACCESS_TOKEN_TYPE,
            },
        )
