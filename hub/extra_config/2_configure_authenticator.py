# ruff: noqa: F821 - `c` (and earlier files' names) come from the chart's config namespace
"""Keycloak login for the hub: EODHAuthenticator against realm eodhp.

Runs after 1_configure_jupyterhub.py in the chart's jupyterhub_config.py namespace
(``c`` and ``eodh_require_env`` already exist there; never call ``get_config()``).

Environment read here (set by the Helm release on the hub container):
  KEYCLOAK_ISSUER_URL  realm issuer, e.g. https://dev.eodatahub.org.uk/keycloak/realms/eodhp
  OAUTH_CLIENT_ID      the hub's Keycloak client
  OAUTH_CLIENT_SECRET  its secret (from AWS Secrets Manager via External Secrets)
  PLATFORM_DOMAIN      where Keycloak sends the browser after logout

Keycloak client settings this relies on: standard flow, redirect URI
``https://<platform>/notebooks/hub/oauth_callback``, valid post-logout redirect URI
``https://<platform>/``, and the ``workspaces`` client scope (adds the claim
EODHAuthenticator copies into ``auth_state["workspaces"]``).
"""

from urllib.parse import urlencode

_eodh_auth_env = eodh_require_env(
    "KEYCLOAK_ISSUER_URL", "OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET", "PLATFORM_DOMAIN"
)
EODH_KEYCLOAK_ISSUER = _eodh_auth_env["KEYCLOAK_ISSUER_URL"].rstrip("/")
EODH_OIDC_ENDPOINT = f"{EODH_KEYCLOAK_ISSUER}/protocol/openid-connect"

c.JupyterHub.authenticator_class = "eodh_jpyauth.auth.EODHAuthenticator"

c.EODHAuthenticator.login_service = "EO DataHub"
c.EODHAuthenticator.client_id = _eodh_auth_env["OAUTH_CLIENT_ID"]
c.EODHAuthenticator.client_secret = _eodh_auth_env["OAUTH_CLIENT_SECRET"]
c.EODHAuthenticator.authorize_url = f"{EODH_OIDC_ENDPOINT}/auth"
c.EODHAuthenticator.token_url = f"{EODH_OIDC_ENDPOINT}/token"
c.EODHAuthenticator.userdata_url = f"{EODH_OIDC_ENDPOINT}/userinfo"
c.EODHAuthenticator.scope = ["openid", "workspaces"]
c.EODHAuthenticator.username_claim = "preferred_username"
# The callback URL is left to OAuthenticator, which derives it from the request host and
# the hub's base URL, so it follows the chart's hub.baseUrl instead of repeating it.

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
