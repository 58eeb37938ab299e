# ruff: noqa: F821 - `c` (and earlier files' names) come from the chart's config namespace
"""Workspace spawning: options form, workspace check, token exchange, token renewal.

Runs after 1_configure_jupyterhub.py and 2_configure_authenticator.py in the chart's
jupyterhub_config.py namespace (``c``, ``eodh_require_env`` and file 2's workspace-name
and claim helpers already exist there; never call ``get_config()``). Profiles are not
defined here: they come from the chart's ``singleuser.profileList`` (KubeSpawner
``profile_list``).

Environment read here (set by the Helm release on the hub container):
  KEYCLOAK_ISSUER_URL          realm issuer; the token endpoint is derived from it
  WORKSPACES_CLIENT_ID         Keycloak client allowed to exchange tokens for workspaces
  WORKSPACES_CLIENT_SECRET     its secret
  SINGLEUSER_AWS_REGION        } copied into every notebook's environment
  SINGLEUSER_AWS_ROLE_ARN      } (see workspace_environment)
  SINGLEUSER_WORKSPACE_BUCKET  }

Token exchange (RFC 8693) as the EODH realm takes it: the workspaces client posts to
``{issuer}/protocol/openid-connect/token`` with client_secret_post credentials,
``grant_type=urn:ietf:params:oauth:grant-type:token-exchange``, the user's access token as
``subject_token`` (type access_token), ``requested_token_type`` access_token and the
workspace requested as the scope ``workspace:<name>`` (a dynamic client scope on the
workspaces client; it makes Keycloak emit ``principal_tags.workspace`` for IAM).
Everything about that request lives in ``workspace_exchange_params``.

Long sessions: see docs/hub-token-refresh.md. Notebook servers call
GET {JUPYTERHUB_API_URL}/eodh/workspace-token?server=<JUPYTERHUB_SERVER_NAME>
with their own API token (scope custom:eodh:workspace-token!user, file 1).
"""

import json
import pprint
import time
from collections.abc import Mapping
from urllib.parse import urlencode

import jinja2
import jwt
from eodh_jpyauth.spawners import KubeSpawner as _EODHJpyauthKubeSpawner
from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.scopes import has_scope
from jupyterhub.user import User
from jupyterhub.utils import maybe_future
from kubespawner.slugs import safe_slug
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

_eodh_spawn_env = eodh_require_env(
    "KEYCLOAK_ISSUER_URL",
    "WORKSPACES_CLIENT_ID",
    "WORKSPACES_CLIENT_SECRET",
    "SINGLEUSER_AWS_REGION",
    "SINGLEUSER_AWS_ROLE_ARN",
    "SINGLEUSER_WORKSPACE_BUCKET",
)

EODH_TOKEN_URL = (
    _eodh_spawn_env["KEYCLOAK_ISSUER_URL"].rstrip("/") + "/protocol/openid-connect/token"
)
# A spawn waits on this call; Keycloak answers in well under a second when healthy.
EODH_EXCHANGE_TIMEOUT_SECONDS = 10.0
# Exchanging a subject token that expires mid-request gets a confusing invalid_token
# error, so a token this close to expiry is refreshed first.
EODH_SUBJECT_TOKEN_MIN_TTL_SECONDS = 60
EODH_TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
EODH_ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


def workspace_environment(workspace: str, access_token: str, env: Mapping[str, str]):
    """The five variables a notebook needs for its workspace's S3 drive.

    ``env`` is the hub's environment (its SINGLEUSER_* settings). Shared with the notebook
    image's tests, which feed the result to the notebook's jupyter_server_config.py.
    """
    missing = [
        name
        for name in (
            "SINGLEUSER_AWS_ROLE_ARN",
            "SINGLEUSER_AWS_REGION",
            "SINGLEUSER_WORKSPACE_BUCKET",
        )
        if not env.get(name)
    ]
    if missing:
        raise ValueError("missing hub setting(s): " + ", ".join(missing))
    if not workspace:
        raise ValueError("no workspace given")
    if not access_token:
        raise ValueError("no workspace access token given")
    return {
        "S3CONTENTS_WORKSPACE_ACCESS_TOKEN": access_token,
        "S3CONTENTS_AWS_ROLE_ARN": env["SINGLEUSER_AWS_ROLE_ARN"],
        "S3CONTENTS_AWS_REGION": env["SINGLEUSER_AWS_REGION"],
        "S3CONTENTS_WORKSPACE_BUCKET": env["SINGLEUSER_WORKSPACE_BUCKET"],
        "WORKSPACE": workspace,
    }


class WorkspaceTokenError(Exception):
    """Keycloak did not give us a usable workspace token; the message is user-facing."""


class SpawnRefused(web.HTTPError):
    """An HTTPError whose str() is just the message.

    The spawn page shows ``str(exception)``; tornado's default adds "HTTP 403: Forbidden"
    noise. The REST API still gets the status code and the message.
    """

    def __init__(self, status_code: int, message: str):
        # Passed as an argument so a '%' in a workspace name cannot break formatting.
        super().__init__(status_code, "%s", message)
        self.message = message

    def __str__(self):
        return self.message


def workspace_exchange_params(subject_token, workspace, client_id, client_secret):
    """The RFC 8693 form for Keycloak; the one place that knows how a workspace is asked."""
    return {
        "grant_type": EODH_TOKEN_EXCHANGE_GRANT,
        "client_id": client_id,
        "client_secret": client_secret,
        "subject_token": subject_token,
        "subject_token_type": EODH_ACCESS_TOKEN_TYPE,
        "requested_token_type": EODH_ACCESS_TOKEN_TYPE,
        "scope": f"workspace:{workspace}",
    }


def token_expires_at(token: str):
    """The ``exp`` of a JWT, or None when it has none or is not a JWT.

    Only used to decide when to renew: the token came straight from Keycloak over TLS,
    and Keycloak (and AWS STS) verify it wherever it is used.
    """
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    return float(exp) if isinstance(exp, int | float) else None


def _keycloak_error(body: bytes) -> str:
    try:
        payload = json.loads(body)
    except ValueError:
        return "no error details"
    if not isinstance(payload, dict):
        return "no error details"
    parts = [str(payload[k]) for k in ("error", "error_description") if payload.get(k)]
    return ": ".join(parts) or "no error details"


async def exchange_workspace_token(
    subject_token: str,
    workspace: str,
    *,
    token_url: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    timeout: float | None = None,
) -> dict:
    """Exchange a user's access token for one scoped to ``workspace``.

    Returns ``{"access_token", "expires_at" (epoch seconds), "workspace"}``; raises
    WorkspaceTokenError with a message fit for the user on any failure, so no caller can
    go on with a missing or unusable token. Messages never contain tokens.
    """
    token_url = token_url or EODH_TOKEN_URL
    timeout = EODH_EXCHANGE_TIMEOUT_SECONDS if timeout is None else timeout
    params = workspace_exchange_params(
        subject_token,
        workspace,
        client_id or _eodh_spawn_env["WORKSPACES_CLIENT_ID"],
        client_secret or _eodh_spawn_env["WORKSPACES_CLIENT_SECRET"],
    )
    request = HTTPRequest(
        token_url,
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
        body=urlencode(params),
        connect_timeout=timeout,
        request_timeout=timeout,
    )
    try:
        response = await AsyncHTTPClient().fetch(request)
    except HTTPClientError as e:
        if e.code == 599 or e.response is None:
            raise WorkspaceTokenError(
                f"the login service did not answer the token exchange within {timeout:g} s ({e})"
            ) from None
        if e.code >= 500:
            # Keycloak down or restarting (ingress-nginx answers 503 with its own page).
            raise WorkspaceTokenError(
                f"the login service is unavailable (HTTP {e.code}); this is not a problem "
                "with your account"
            ) from None
        raise WorkspaceTokenError(
            f"the login service refused the token exchange (HTTP {e.code}, "
            f"{_keycloak_error(e.response.body)})"
        ) from None
    except OSError as e:
        raise WorkspaceTokenError(f"could not reach the login service ({e})") from None

    try:
        payload = json.loads(response.body)
    except ValueError:
        raise WorkspaceTokenError(
            "the login service answered the token exchange with invalid JSON"
        ) from None
    access_token = payload.get("access_token") if isinstance(payload, dict) else None
    if not isinstance(access_token, str) or not access_token:
        raise WorkspaceTokenError("the login service's answer holds no access token")
    _check_workspace_token(access_token, workspace, params["client_id"])

    expires_in = payload.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        expires_at = time.time() + expires_in
    else:
        expires_at = token_expires_at(access_token)
    if expires_at is None:
        raise WorkspaceTokenError("the login service's token has no expiry")
    return {"access_token": access_token, "expires_at": int(expires_at), "workspace": workspace}


def _check_workspace_token(access_token: str, workspace: str, client_id: str) -> None:
    """Refuse a token AWS would refuse, while the user can still be told why.

    Keycloak 24's legacy exchange silently drops a requested scope the realm does not
    allow (DefaultTokenExchangeProvider filters the scope list; docs/keycloak.md), which
    would give a token without the workspace's session tag. The role's trust policy
    compares <provider>:aud with the token's azp, which Keycloak sets to the exchanging
    client, and requires exactly one workspace tag.
    """
    claims = eodh_token_claims(access_token)
    tags = claims.get("https://aws.amazon.com/tags")
    principal_tags = tags.get("principal_tags") if isinstance(tags, dict) else None
    tagged = principal_tags.get("workspace") if isinstance(principal_tags, dict) else None
    if tagged != [workspace]:
        raise WorkspaceTokenError(
            f"the login service's token carries no session tag for workspace '{workspace}' "
            "(the realm did not grant the workspace scope)"
        )
    if claims.get("azp") != client_id:
        raise WorkspaceTokenError(
            "the login service's token was not issued to the workspaces client, so AWS "
            "would refuse it"
        )


async def eodh_fresh_auth_state(authenticator, user, min_ttl=None) -> dict:
    """The user's auth state with an access token valid for at least ``min_ttl`` seconds.

    OAuthenticator's own refresh only renews a token that the userinfo endpoint already
    rejects, which is too late for a token exchange, so renew by expiry here.
    """
    min_ttl = EODH_SUBJECT_TOKEN_MIN_TTL_SECONDS if min_ttl is None else min_ttl
    auth_state = await user.get_auth_state()
    if not auth_state or not auth_state.get("access_token"):
        raise WorkspaceTokenError("your login session holds no tokens; log out and log in again")
    expires_at = token_expires_at(auth_state["access_token"])
    if expires_at is not None and expires_at - time.time() > min_ttl:
        return auth_state

    refresh_token = auth_state.get("refresh_token")
    if not refresh_token:
        raise WorkspaceTokenError("your login session has expired; log out and log in again")
    try:
        params = authenticator.build_refresh_token_request_params(refresh_token)
        token_info = await authenticator.get_token_info(None, params)
        # Keycloak may not rotate the refresh token; keep the one that still works.
        token_info["refresh_token"] = token_info.get("refresh_token") or refresh_token
        user_info = await authenticator.token_to_user(token_info)
        new_state = await maybe_future(authenticator.build_auth_state_dict(token_info, user_info))
    except WorkspaceClaimError:
        raise
    except Exception as e:
        authenticator.log.warning("Refreshing tokens for %s failed: %s", user.name, e)
        raise WorkspaceTokenError(
            "your login session could not be renewed; log out and log in again"
        ) from None
    await user.save_auth_state(new_state)
    return new_state


def eodh_check_workspace(workspace, auth_state) -> str:
    """Refuse an unusable name, and any workspace the login token does not list.

    Membership is read from the access token's own claim, checked again here, rather than
    from the stored list: an auth state saved before the claim was checked may hold a
    string claim split into letters.
    """
    token_claims = eodh_token_claims((auth_state or {}).get("access_token"))
    workspaces, _ = eodh_workspaces_claim(token_claims)
    if not workspaces:
        raise SpawnRefused(
            403,
            "Your account is not a member of any workspace, and a notebook server runs "
            "inside one. Join or create a workspace, then log out and log in again.",
        )
    if workspace is None or workspace == "":
        raise SpawnRefused(400, "Choose a workspace to start your server in.")
    problem = eodh_workspace_name_problem(workspace)
    if problem:
        raise SpawnRefused(400, f"Workspace '{workspace}' cannot be used: {problem}.")
    if workspace not in workspaces:
        raise SpawnRefused(
            403,
            f"You are not a member of workspace '{workspace}'. "
            f"Your workspaces: {', '.join(workspaces)}.",
        )
    return workspace


async def eodh_workspace_token(user, authenticator, workspace) -> dict:
    """Current membership check plus a fresh exchange: shared by spawn and renewal."""
    auth_state = await eodh_fresh_auth_state(authenticator, user)
    eodh_check_workspace(workspace, auth_state)
    return await exchange_workspace_token(auth_state["access_token"], workspace)


async def eodh_profiles(spawner) -> list:
    """The chart's profile list, initialised exactly as KubeSpawner will load it.

    Using KubeSpawner's own initialisation keeps the slugs in the form identical to the
    ones ``load_user_options`` looks up.
    """
    profiles = spawner.profile_list
    if callable(profiles):
        profiles = await maybe_future(profiles(spawner))
    profiles = spawner._sorted_dict_values(profiles or [])
    return spawner._get_initialized_profile_list(profiles)


_eodh_form = jinja2.Environment(autoescape=True).from_string(
    """\
<div class="mb-3 eodh-workspace-field">
  <label for="eodh-workspace" class="form-label"><strong>Workspace</strong></label>
  {%- if workspaces %}
  <select id="eodh-workspace" name="workspace" class="form-select form-control" required
          aria-describedby="eodh-workspace-help">
    {%- for ws in workspaces %}
    <option value="{{ ws }}"{% if ws == selected_workspace %} selected{% endif %}>{{ ws }}</option>
    {%- endfor %}
  </select>
  <div id="eodh-workspace-help" class="form-text">
    Your server starts in this workspace, with its shared storage and its S3 data.
  </div>
  {%- else %}
  <p id="eodh-workspace-none" class="form-text">No workspaces are available to you.</p>
  {%- endif %}
</div>
{%- if profiles %}
<fieldset class="mb-3 eodh-profile-field">
  <legend class="form-label fs-6"><strong>Environment</strong></legend>
  {%- for p in profiles %}
  <div class="form-check">
    <input class="form-check-input" type="radio" name="profile" id="eodh-profile-{{ p.slug }}"
           value="{{ p.slug }}"{% if p.slug == selected_profile %} checked{% endif %}>
    <label class="form-check-label" for="eodh-profile-{{ p.slug }}">
      {{ p.display_name -}}
      {% if p.description %}<span class="text-muted">: {{ p.description }}</span>{% endif %}
    </label>
  </div>
  {%- endfor %}
</fieldset>
{%- endif %}
"""
)


async def eodh_options_form(spawner) -> str:
    """Workspace dropdown (from the auth state) and profile choice.

    Never empty: an empty form makes JupyterHub spawn without asking for a workspace.
    """
    auth_state = await spawner.user.get_auth_state()
    workspaces = list((auth_state or {}).get("workspaces") or [])
    profiles = await eodh_profiles(spawner)
    previous = spawner.user_options or {}
    selected_workspace = previous.get("workspace")
    if selected_workspace not in workspaces:
        selected_workspace = workspaces[0] if workspaces else None
    slugs = [p["slug"] for p in profiles]
    selected_profile = previous.get("profile")
    if selected_profile not in slugs:
        selected_profile = next((p["slug"] for p in profiles if p.get("default")), None)
    return _eodh_form.render(
        workspaces=workspaces,
        selected_workspace=selected_workspace,
        profiles=profiles,
        selected_profile=selected_profile,
    )


async def eodh_options_from_form(formdata, spawner) -> dict:
    """Parse the form with eodh-jpyauth's parser, then refuse foreign workspaces early.

    Checking here shows the refusal on the form before JupyterHub records a spawn; the
    pre-spawn hook checks again for spawns through the REST API.
    """
    # Only a launch link's query sets it again, after this parser (options_from_query).
    spawner._eodh_spawn_from_link = False
    options = spawner._options_from_form(formdata)
    eodh_check_workspace(options.get("workspace"), await spawner.user.get_auth_state())
    profiles = await eodh_profiles(spawner)
    slugs = [p["slug"] for p in profiles]
    profile = options.get("profile")
    if profiles and profile is not None and profile not in slugs:
        # KubeSpawner would refuse it only after the token exchange, at start.
        raise SpawnRefused(
            400,
            f"There is no environment '{profile}'. Choose one of: {', '.join(slugs)}.",
        )
    return options


async def eodh_pre_spawn_hook(spawner):
    """Runs before every spawn, before anything exists in Kubernetes.

    A server must never start without a valid workspace token: every failure here is
    raised, which fails the spawn with the message on the spawn page.
    """
    workspace = (spawner.user_options or {}).get("workspace")
    try:
        token = await eodh_workspace_token(spawner.user, spawner.authenticator, workspace)
    except WorkspaceTokenError as e:
        spawner.log.warning("Workspace token for %s failed: %s", spawner._log_name, e)
        raise SpawnRefused(
            502, f"Could not get access to workspace '{workspace}': {e}. Please try again."
        ) from None
    spawner.environment = {
        **spawner.environment,
        **workspace_environment(workspace, token["access_token"], _eodh_spawn_env),
    }
    from_link = getattr(spawner, "_eodh_spawn_from_link", False)
    spawner._eodh_spawn_from_link = False
    await eodh_replace_same_workspace_servers(spawner, workspace, stop_running=not from_link)


def eodh_server_workspace(spawner):
    """The workspace a server runs (or is starting) in: its chosen options first, since a
    pending server's spawner has not loaded them yet."""
    return (spawner.user_options or {}).get("workspace") or getattr(spawner, "workspace", None)


def eodh_refuse_link_over_running_server(spawner, workspace):
    """A launch link (a GET) never stops a server: it refuses while one runs there.

    Any page can send the user's browser to /hub/spawn/<user>/<name>?workspace=<ws> (a
    top-level navigation carries the SameSite=Lax session cookie; the origin check in
    hub/extra_config/5_request_origins.py covers only POST and the like), so a link that
    replaced servers would let any site stop the user's work. The form's POST still does.
    """
    for other in list(getattr(spawner.user, "spawners", {}).values()):
        if other is spawner or eodh_server_workspace(other) != workspace:
            continue
        if other.ready or other.pending:
            raise SpawnRefused(
                409,
                f"Your server '{other.name or 'default'}' is running in workspace "
                f"'{workspace}'. A link never stops a running server: stop it on the Home "
                "page first, or start this one with the form below.",
            )


async def eodh_replace_same_workspace_servers(spawner, workspace, *, stop_running=True):
    """One server per user per workspace: starting one stops the user's other server there.

    The user docs promise it (eodh-userdocs notebooks-start.md, "Named servers": a new server
    for a workspace that already has one of yours shuts the previous one down). Each server
    has its own pod (jupyter-{user_server}), so the two never fight over one name; the old
    one is stopped the way JupyterHub's own stop does it (route first, then KubeSpawner's
    stop deletes its pod), and it stays listed, stopped, on the home page.

    A start from a launch link (``stop_running=False``) stops nothing: it is refused
    instead (eodh_refuse_link_over_running_server).

    The scan and the claim run with no await between them, so of two spawns into one
    workspace racing on the hub's event loop, the second to get here is refused (409)
    rather than both stopping each other.
    """
    spawner._eodh_workspace_claim = None
    user = spawner.user
    replaced = []
    for name, other in list(getattr(user, "spawners", {}).items()):
        if other is spawner or eodh_server_workspace(other) != workspace:
            continue
        if other.ready:
            replaced.append(name)
        elif other.pending == "spawn" and getattr(other, "_eodh_workspace_claim", None) == (
            workspace
        ):
            raise SpawnRefused(
                409,
                f"Your server '{other.name or 'default'}' is already starting in workspace "
                f"'{workspace}'. Wait for it, or stop it, then try again.",
            )
    if replaced and not stop_running:
        # Started from a link and a server came up there since the link's own check.
        eodh_refuse_link_over_running_server(spawner, workspace)
    spawner._eodh_workspace_claim = workspace
    proxy = getattr(user, "settings", {}).get("proxy")
    for name in replaced:
        spawner.log.info(
            "Stopping %s's server %r: %r starts in the same workspace %s",
            user.name,
            name,
            spawner.name,
            workspace,
        )
        if proxy is not None:
            await proxy.delete_user(user, name)
        await user.stop(name)


def eodh_modify_pod_hook(spawner, pod):
    """Keep the pod's tokens out of the log when Kubernetes refuses the pod.

    KubeSpawner 7.1 logs ``pod.to_str()``, the whole manifest with every env value, when
    the pod create call fails (spawner.py, _make_create_pod_request: "Failed for %s").
    The env holds the workspace token and the server's hub API token, so the manifest is
    printed with env values withheld. The pod sent to Kubernetes is unchanged.
    """

    def manifest_without_env_values():
        manifest = pod.to_dict()
        spec = manifest.get("spec") or {}
        for container in [*(spec.get("containers") or []), *(spec.get("init_containers") or [])]:
            for variable in container.get("env") or []:
                if variable.get("value") is not None:
                    variable["value"] = "<withheld>"
        return pprint.pformat(manifest)

    pod.to_str = manifest_without_env_values
    return pod


class WorkspaceTokenHandler(APIHandler):
    """GET {hub API}/eodh/workspace-token?server=<name>: a fresh token for a running server.

    Only a token holding custom:eodh:workspace-token for the server's owner gets through:
    a server's own API token does (file 1 grants it, filtered to its owner); another
    user's server token does not.
    """

    async def get(self):
        requester = self.current_user
        if requester is None:
            raise web.HTTPError(403, "Missing or invalid credentials.")
        server_name = self.get_argument("server", "")
        user_name = self.get_argument("user", "") or (
            requester.name if isinstance(requester, User) else ""
        )
        # Per server: a server's own token holds the scope for itself only (file 1); the
        # owner's user-wide grant covers each of their servers.
        scope = f"{EODH_WORKSPACE_TOKEN_SCOPE}!server={user_name}/{server_name}"
        if not user_name or not has_scope(scope, self.parsed_scopes, db=self.db):
            raise web.HTTPError(403, "This token may not obtain workspace tokens for that user.")

        user = self.find_user(user_name)
        if user is None or server_name not in user.orm_spawners:
            raise web.HTTPError(404, "No such server.")
        spawner = user.spawners[server_name]
        if not spawner.active:
            raise web.HTTPError(404, "That server is not running.")
        workspace = spawner.workspace or (spawner.user_options or {}).get("workspace")
        if not workspace:
            raise web.HTTPError(409, "That server was not started in a workspace.")
        # A server only ever gets its own workspace's token, whatever it asks for.
        asked = self.get_argument("workspace", None)
        if asked is not None and asked != workspace:
            raise web.HTTPError(
                400, "A server's workspace token is always for the workspace it runs in."
            )

        try:
            token = await eodh_workspace_token(user, self.authenticator, workspace)
        except SpawnRefused as e:
            raise web.HTTPError(403, "%s", e.message) from None
        except WorkspaceTokenError as e:
            self.log.warning("Workspace token renewal for %s failed: %s", user.name, e)
            self.set_status(502)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"message": f"Could not renew the workspace token: {e}"}))
            return
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(token))


class EODHKubeSpawner(_EODHJpyauthKubeSpawner):
    """eodh-jpyauth's workspace spawner, with KubeSpawner's safe names and launch URLs."""

    def _expand_user_properties(self, template, slug_scheme=None):
        """KubeSpawner 7.1's own expansion ("safe" scheme) plus ``{workspace}``.

        eodh-jpyauth replaces it with one that joins ``safe_slug(username)--
        safe_slug(servername)`` unbounded: a long user name and a launch's server name then
        make a pod name Kubernetes refuses, and the default server gets a hash for a name.
        KubeSpawner's ``{user_server}`` (kubespawner/spawner.py _expand_user_properties,
        slugs.py multi_slug) is at most 48 characters and, once shortened, ends in a hash of
        the full user and server names, so no two users or servers share a pod name.
        Workspace names are already refused unless safe_slug keeps them unchanged (file 2).
        """
        workspace = safe_slug(self.workspace or "")
        return super(_EODHJpyauthKubeSpawner, self)._expand_user_properties(
            template.replace("{workspace}", workspace), slug_scheme="safe"
        )

    def options_from_query(self, query_data):
        """The Resource Catalogue's launch URL: /hub/spawn/<user>/<server>?workspace=<ws>.

        JupyterHub passes query arguments (all but ``next``) here and spawns straight away
        (jupyterhub/handlers/pages.py SpawnHandler.get); the base class would call
        ``options_from_form(query_data)`` without the spawner, which the form parser needs.
        The query goes through the form's parser and checks (membership and names), so a
        refusal happens before anything is exchanged or created. A refused launch answers
        with its status (a non-member gets 403; a workspace where one of the user's servers
        runs, 409: a link never stops one) and the message above the form.
        """
        return self._eodh_checked_query(query_data)

    async def _eodh_checked_query(self, query_data):
        try:
            options = await maybe_future(self.run_options_from_form(query_data))
            eodh_refuse_link_over_running_server(self, options.get("workspace"))
            self._eodh_spawn_from_link = True
            return options
        except SpawnRefused as refused:
            handler = getattr(self, "handler", None)
            if handler is not None:
                handler.set_status(refused.status_code)
            raise


c.JupyterHub.spawner_class = EODHKubeSpawner
# eodh-jpyauth expands only username/workspace/servername/user_server: KubeSpawner's
# default namespace template ({hubnamespace}-{username}) would raise KeyError.
c.KubeSpawner.enable_user_namespaces = True
c.KubeSpawner.user_namespace_template = "ws-{workspace}"
c.KubeSpawner.pvc_name_template = "pvc-{workspace}"
# One pod per server (the default server: jupyter-<user>), unique across users and servers.
c.KubeSpawner.pod_name_template = "jupyter-{user_server}"
# KubeSpawner 7.1 defaults delete_pvc to True: deleting a hub user (or a named server) then
# deletes pvc_name, and pvc-{workspace} is the whole workspace's shared volume. No hub
# action may delete workspace data; volumes go when the workspace does (workspace services).
c.KubeSpawner.delete_pvc = False
c.KubeSpawner.options_form = eodh_options_form
c.KubeSpawner.options_from_form = eodh_options_from_form
c.KubeSpawner.pre_spawn_hook = eodh_pre_spawn_hook


def eodh_post_stop_hook(spawner):
    """A stopped server claims no workspace: a later start there is not 'already starting'."""
    spawner._eodh_workspace_claim = None


c.KubeSpawner.post_stop_hook = eodh_post_stop_hook
c.KubeSpawner.modify_pod_hook = eodh_modify_pod_hook

# Deprecated since 3.1 in favour of services but still supported in 5.3; a service would
# need admin:auth_state and its own copy of the exchange, so the handler stays in the hub.
# The hub prefixes these with its own URL, giving {JUPYTERHUB_API_URL}/eodh/workspace-token.
c.JupyterHub.extra_handlers = [(r"/api/eodh/workspace-token", WorkspaceTokenHandler)]
