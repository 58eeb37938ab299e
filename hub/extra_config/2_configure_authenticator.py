# ruff: noqa: F821 - `c` (and earlier files' names) come from the chart's config namespace
"""Keycloak login for the hub: EODHAuthenticator against realm eodhp.

Runs after 1_configure_jupyterhub.py in the chart's jupyterhub_config.py namespace
(``c``, ``eodh_require_env`` and ``EODH_HUB_URL`` already exist there; never call ``get_config()``).

Environment read here (set by the Helm release on the hub container):
  KEYCLOAK_ISSUER_URL  realm issuer, e.g. https://dev.eodatahub.org.uk/keycloak/realms/eodhp
  OAUTH_CLIENT_ID      the hub's Keycloak client
  OAUTH_CLIENT_SECRET  its secret (from AWS Secrets Manager via External Secrets)
  PLATFORM_DOMAIN      the web presence, where logout ends

Keycloak client settings this relies on (docs/keycloak.md has them all, with checks):
standard flow, redirect URI ``https://<hub host>/notebooks/hub/oauth_callback``, valid
post-logout redirect URI ``https://<platform>/``, and the ``workspaces`` client scope,
whose claim must be a JSON array of workspace names.
"""

import re
from urllib.parse import urlencode

import jwt
from eodh_jpyauth.auth import EODHAuthenticator as _EODHAuthenticatorBase
from oauthenticator.oauth2 import STATE_COOKIE_NAME as _EODH_STATE_COOKIE_NAME
from oauthenticator.oauth2 import OAuthCallbackHandler as _EODHCallbackHandlerBase
from oauthenticator.oauth2 import OAuthLoginHandler as _EODHLoginHandlerBase
from tornado import web
from tornado.httpclient import HTTPClientError

# A workspace becomes the namespace ws-<name> and the volume claim pvc-<name>. A namespace
# name is an RFC 1123 label of at most 63 characters (a PVC name is a DNS subdomain, up to
# 253, so the namespace is the binding limit): 63 - len("ws-") = 60. eodh-jpyauth passes
# the name through KubeSpawner's safe_slug (kubespawner 7.1 slugs.py), which keeps a name
# only if it starts with a lower-case letter, has no '--' and fits 63 characters, and
# otherwise rewrites it into '<stripped>---<hash>'. Names are refused rather than rewritten:
# a rewritten name would no longer be the workspace's own namespace and volume.
EODH_WORKSPACE_NAME_MAX_LENGTH = 60
_EODH_WORKSPACE_NAME = re.compile(r"[a-z](?:[a-z0-9-]*[a-z0-9])?")
# Top-level prefixes of the platform's shared bucket that belong to its services. A workspace
# of that name would be granted the service's files by the notebook role (its prefix is the
# workspace name), so it is refused at login and spawn. The same list as the marker
# function's (components/marker_function.py PLATFORM_PREFIXES; a test keeps them equal).
EODH_RESERVED_WORKSPACE_NAMES = frozenset({"workflow-harvester"})


def eodh_workspace_name_problem(name) -> str | None:
    """Why ``name`` cannot be a workspace here, or None when it can."""
    if not isinstance(name, str):
        return "a workspace name must be a string"
    if not name:
        return "the name is empty"
    if len(name) > EODH_WORKSPACE_NAME_MAX_LENGTH:
        return (
            f"the name is longer than {EODH_WORKSPACE_NAME_MAX_LENGTH} characters, so its "
            "namespace ws-<name> would exceed Kubernetes' 63"
        )
    if not _EODH_WORKSPACE_NAME.fullmatch(name):
        return (
            "a name may hold only lower-case letters, digits and '-', and must start with "
            "a letter and end with a letter or digit"
        )
    if "--" in name:
        return "a name may not contain '--' (KubeSpawner would replace it with a hashed name)"
    if name in EODH_RESERVED_WORKSPACE_NAMES:
        return "the name is reserved: a platform service keeps its files under it"
    return None


def _eodh_json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a JSON boolean"
    if isinstance(value, int | float):
        return "a JSON number"
    if isinstance(value, str):
        return "a JSON string"
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "a JSON array"
    return type(value).__name__


class WorkspaceClaimError(web.HTTPError):
    """The login token's ``workspaces`` claim has the wrong shape; str() is the message."""

    def __init__(self, message: str):
        super().__init__(403, "%s", message)
        self.message = message

    def __str__(self):
        return self.message


def eodh_workspaces_claim(claims) -> tuple[list[str], list[dict[str, str]]]:
    """(usable workspace names sorted, [{"name", "problem"}] for unusable ones).

    The claim must be a JSON array of strings. Anything else is refused whole: a string
    would otherwise be iterated into one-letter workspaces (eodh-jpyauth sorts the claim),
    an object into its keys. No claim at all means no workspaces.
    """
    if "workspaces" not in claims:
        return [], []
    raw = claims["workspaces"]
    advice = (
        " Your login cannot be used for notebooks until the platform administrators fix "
        "the realm's workspaces mapper."
    )
    if not isinstance(raw, list):
        raise WorkspaceClaimError(
            f"The login service sent the 'workspaces' claim as {_eodh_json_type(raw)}; "
            "it must be a JSON array of workspace names." + advice
        )
    for item in raw:
        if not isinstance(item, str):
            raise WorkspaceClaimError(
                f"The login service's 'workspaces' claim holds {_eodh_json_type(item)}; "
                "every entry must be a workspace name (a JSON string)." + advice
            )
    usable, unusable = set(), {}
    for name in raw:
        problem = eodh_workspace_name_problem(name)
        if problem:
            unusable[name] = problem
        else:
            usable.add(name)
    return sorted(usable), [{"name": n, "problem": p} for n, p in sorted(unusable.items())]


def eodh_token_claims(token) -> dict:
    """A Keycloak JWT's claims, unverified: only read to decide what to offer or refuse.

    The token came straight from Keycloak over TLS; Keycloak and AWS STS verify it wherever
    it grants anything.
    """
    try:
        claims = jwt.decode(token or "", options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def _eodh_state_cookie_name(handler) -> str:
    """The login's OAuth state cookie, ``__Host-`` prefixed like the login cookie (file 1).

    With per-user origins a server's page could plant its owner's state cookie for the hub's
    host (Domain=<HUB_HOST>), then send the browser to the callback with its owner's code:
    the state would match and the victim would be logged in as the server's owner.
    OAuthenticator 17 names it ``oauthenticator-state`` whatever the hub's setting.
    """
    if handler.settings.get("cookie_host_prefix_enabled"):
        return "__Host-" + _EODH_STATE_COOKIE_NAME
    return _EODH_STATE_COOKIE_NAME


class EODHLoginHandler(_EODHLoginHandlerBase):
    def set_state_cookie(self, state_cookie_value):
        self._set_cookie(
            _eodh_state_cookie_name(self), state_cookie_value, expires_days=1, httponly=True
        )


class EODHCallbackHandler(_EODHCallbackHandlerBase):
    def get_state_cookie(self):
        if self._state_cookie is None:
            name = _eodh_state_cookie_name(self)
            self._state_cookie = (self.get_secure_cookie(name) or b"").decode("utf8", "replace")
            self.clear_cookie(name)
        return self._state_cookie


class EODHWorkspaceAuthenticator(_EODHAuthenticatorBase):
    """EODHAuthenticator that refuses a malformed workspaces claim and unusable names.

    Runs at login and at every refresh (JupyterHub's, and the pre-spawn refresh), so the
    auth state's ``workspaces`` only ever holds names that map to their own namespace.
    """

    login_handler = EODHLoginHandler
    callback_handler = EODHCallbackHandler

    def build_auth_state_dict(self, token_info, user_info):
        usable, unusable = eodh_workspaces_claim(eodh_token_claims(token_info.get("access_token")))
        auth_state = super().build_auth_state_dict(token_info, user_info)
        auth_state["workspaces"] = usable
        auth_state["unusable_workspaces"] = unusable
        for item in unusable:
            self.log.warning(
                "Workspace %r of %s cannot be used: %s",
                item["name"],
                user_info.get(self.username_claim),
                item["problem"],
            )
        return auth_state

    async def refresh_user(self, user, handler=None, **kwargs):
        """Keep the session as it is while Keycloak cannot answer.

        OAuthenticator raises on a 5xx, a timeout or a refused connection from the userinfo
        or token endpoint, and JupyterHub turns that into "500: Unhandled error starting
        server" before any spawn, and into a 500 on every page whose refresh is due
        (measured with make load: Keycloak down behind ingress-nginx's 503). An outage is
        not the user's doing and no reason to log them out: the session is kept, running
        servers stay reachable, and a spawn reaches the workspace token exchange, whose
        error says the login service is unavailable (3_configure_spawner.py). A refusal
        (4xx) still ends the session as before.
        """
        try:
            return await super().refresh_user(user, handler, **kwargs)
        except HTTPClientError as e:
            if 400 <= e.code < 500:
                raise
            self.log.warning("Keycloak unavailable refreshing %s: %s", user.name, e)
        except OSError as e:
            self.log.warning("Keycloak unreachable refreshing %s: %s", user.name, e)
        return True


_eodh_auth_env = eodh_require_env(
    "KEYCLOAK_ISSUER_URL", "OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET", "PLATFORM_DOMAIN"
)
EODH_KEYCLOAK_ISSUER = _eodh_auth_env["KEYCLOAK_ISSUER_URL"].rstrip("/")
EODH_OIDC_ENDPOINT = f"{EODH_KEYCLOAK_ISSUER}/protocol/openid-connect"

c.JupyterHub.authenticator_class = EODHWorkspaceAuthenticator

c.EODHAuthenticator.login_service = "EO DataHub"
c.EODHAuthenticator.client_id = _eodh_auth_env["OAUTH_CLIENT_ID"]
c.EODHAuthenticator.client_secret = _eodh_auth_env["OAUTH_CLIENT_SECRET"]
c.EODHAuthenticator.authorize_url = f"{EODH_OIDC_ENDPOINT}/auth"
c.EODHAuthenticator.token_url = f"{EODH_OIDC_ENDPOINT}/token"
c.EODHAuthenticator.userdata_url = f"{EODH_OIDC_ENDPOINT}/userinfo"
c.EODHAuthenticator.scope = ["openid", "workspaces"]
c.EODHAuthenticator.username_claim = "preferred_username"
# Fixed, not guessed: left unset, OAuthenticator derives it from the request's Host header,
# so a request with a forged Host would send Keycloak (and the code) elsewhere. It hangs on
# EODH_HUB_URL (file 1): the host the platform sends users to and registers on the realm's
# client, where the login's state cookie is set when the login starts.
EODH_OAUTH_CALLBACK_URL = f"{EODH_HUB_URL}/hub/oauth_callback"
c.EODHAuthenticator.oauth_callback_url = EODH_OAUTH_CALLBACK_URL

# Anyone the realm lets log in may use the hub; what they can reach is decided per
# workspace by the workspaces claim and the workspace-scoped token.
c.EODHAuthenticator.allow_all = True

# auth_state carries the Keycloak tokens and the workspaces list; the chart supplies the
# encryption key (hub.config.CryptKeeper.keys), without which the hub refuses to start.
c.EODHAuthenticator.enable_auth_state = True
c.EODHAuthenticator.refresh_pre_spawn = True
c.EODHAuthenticator.auth_refresh_age = 300

# Logging out of the hub alone would leave the Keycloak session alive and the next visit
# would log straight back in. Keycloak 18+ ignores the legacy ?redirect_uri= that
# EODHLogoutHandler appends, so the OIDC parameters go into the logout URL itself and
# oauth_logout_redirect_uri stays empty.
c.EODHAuthenticator.enable_logout = True
c.EODHAuthenticator.oauth_logout_url = f"{EODH_OIDC_ENDPOINT}/logout?" + urlencode(
    {
        "client_id": _eodh_auth_env["OAUTH_CLIENT_ID"],
        "post_logout_redirect_uri": f"https://{_eodh_auth_env['PLATFORM_DOMAIN']}/",
    }
)
c.EODHAuthenticator.oauth_logout_redirect_uri = ""
