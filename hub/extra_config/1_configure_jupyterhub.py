# ruff: noqa: F821 - `c` (and earlier files' names) come from the chart's config namespace
"""Hub-wide settings for the EO DataHub JupyterHub.

z2jh execs every ``hub.extraConfig`` entry, sorted by key, inside its own
jupyterhub_config.py namespace: ``c`` already exists there and ``get_config`` is the
chart's values getter, so this file uses ``c`` and never calls ``get_config()``.
Files 2 and 3 run after this one in the same namespace and use ``eodh_require_env`` and
``EODH_HUB_URL``.

Environment read here (set by the Helm release on the hub container):
  PLATFORM_DOMAIN    platform host name, e.g. dev.eodatahub.org.uk
  WORKSPACES_DOMAIN  host name under which workspaces are served
  HUB_HOST           the host users reach the hub on (the OAuth callback's and cookie's)
  USER_SERVERS_DOMAIN  optional: each user's servers on <user>.<it> (subdomain_host)

The base URL (/notebooks) belongs to the chart's ``hub.baseUrl``; the chart derives
probes and proxy routes from it, so it is deliberately not set here.
"""

import os


def eodh_require_env(*names):
    """Return the named environment variables, or stop the hub naming every one missing.

    Raising here aborts start-up: JupyterHub sets ``raise_config_file_errors``, so a
    misconfigured release crash-loops with this message instead of serving a broken hub.
    """
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        raise RuntimeError(
            "EODH hub configuration: missing required environment variable(s): "
            + ", ".join(missing)
        )
    return {name: os.environ[name] for name in names}


_eodh_hub_env = eodh_require_env("PLATFORM_DOMAIN", "WORKSPACES_DOMAIN", "HUB_HOST")

# The hub's public URL, without a trailing slash: the one host the platform sends users to
# (eodhp-guide services/jupyter.md: https://eodatahub-workspaces.org.uk/notebooks; the
# launch URLs of docs/explanation/architecture/parameterised-notebook-and-workflow-launch.md)
# and the base URL the chart's jupyterhub_config.py has already put into c (hub.baseUrl).
# The OAuth callback (file 2) and every absolute link to the hub derive from it.
_eodh_base_path = (c.JupyterHub.base_url if "base_url" in c.JupyterHub else "/").strip("/")
EODH_HUB_URL = "/".join(p for p in (f"https://{_eodh_hub_env['HUB_HOST']}", _eodh_base_path) if p)
# Set, not guessed from each request: `next` redirects (the launch URL's next=https://<hub
# host>/notebooks/user/...) are accepted only for this host, and cookies are Secure on https
# (jupyterhub/handlers/base.py _validate_next_url, _set_cookie), whatever the proxies say.
c.JupyterHub.public_url = EODH_HUB_URL + "/"

# Per-user origins (userServersDomain; docs/platform-contract.md): each user's servers on
# https://<user>.<domain>/notebooks/user/<user>/, an origin apart from the hub's, so a page a
# server serves cannot read the hub's pages or its XSRF token. public_url above keeps the
# hub itself (its pages, the OAuth callback, the login cookie) on HUB_HOST: JupyterHub 5.3
# would otherwise derive it from subdomain_host (app.py `_default_public_url`). The chart
# also sees the domain (hub.config; its proxy then routes by host), and the two must agree.
EODH_USER_SERVERS_DOMAIN = os.environ.get("USER_SERVERS_DOMAIN", "")
if not EODH_USER_SERVERS_DOMAIN and c.JupyterHub.get("subdomain_host"):
    # Left alone, JupyterHub would put every user on <user>.<HUB_HOST> (the hook's default
    # domain), e.g. a workspace's host when the hub is served on the workspaces domain.
    raise RuntimeError(
        f"EODH hub configuration: the chart sets subdomain_host "
        f"{c.JupyterHub.subdomain_host!r} but USER_SERVERS_DOMAIN is not set"
    )
if EODH_USER_SERVERS_DOMAIN:
    import hashlib as _eodh_hashlib

    from jupyterhub.utils import _strict_dns_safe_encode as _eodh_dns_label
    from jupyterhub.utils import _trim_and_hash as _eodh_trim_and_hash

    _eodh_subdomain_host = f"https://{EODH_USER_SERVERS_DOMAIN}"
    if c.JupyterHub.get("subdomain_host", _eodh_subdomain_host) != _eodh_subdomain_host:
        raise RuntimeError(
            f"EODH hub configuration: the chart's subdomain_host "
            f"{c.JupyterHub.subdomain_host!r} is not USER_SERVERS_DOMAIN "
            f"{EODH_USER_SERVERS_DOMAIN!r}"
        )
    c.JupyterHub.subdomain_host = _eodh_subdomain_host

    def eodh_subdomain_hook(name, domain, kind):
        """``<label>.<USER_SERVERS_DOMAIN>``, not under the hub's host.

        JupyterHub hands the hook the hub's domain (public_url's host, HUB_HOST: app.py
        `domain`, user.py `User.domain`): its hosts there would be the workspaces'
        ``<ws>.<workspacesDomain>`` when the hub is served on that domain. The label is
        JupyterHub's default "idna" one (utils.py `_strict_dns_safe_encode`): a name that is
        already one DNS label stays as it is; anything else (dots, '@', '_', '--', non-ASCII,
        more than 63 characters, all digits) becomes its IDNA form or ``u-<stub>--<hash>``,
        always one label, and never one a plain name could also be (both hold '--', and a
        name holding '--' is hashed). Upper case never arrives: JupyterHub lower-cases every
        name at login, in the API and in config (auth.py `normalize_username`).

        The hash is 128 bits, not JupyterHub's 28 (`_trim_and_hash`: sha256[:7]): two names
        on one host share an origin, and 28 bits collide after some 16,000 tries of names
        the realm could hold (john.smith.6130 and john.smith.8881). At most 44 characters.
        """
        label = _eodh_dns_label(name)
        if label == _eodh_trim_and_hash(name):
            stub = label.removeprefix("u-").rpartition("--")[0]
            digest = _eodh_hashlib.sha256(name.encode("utf8")).hexdigest()[:32]
            label = f"u-{stub}--{digest}"
        suffix = "" if kind == "user" else f"--{kind}"
        return f"{label}{suffix}.{EODH_USER_SERVERS_DOMAIN}"

    c.JupyterHub.subdomain_hook = eodh_subdomain_hook

    # A server's page can still set cookies for a parent domain its host shares with the hub
    # (Domain=<HUB_HOST>, Path=/notebooks/hub/: "cookie tossing"); the hub would read the
    # planted login cookie (tornado keeps the last of two same-named ones) and the user
    # would act as the server's owner. `__Host-` cookies cannot be set with a Domain, so only
    # the hub's own host can set the login cookie. The prefix requires Path=/: the login
    # cookie goes to every path of HUB_HOST (docs/platform-contract.md §5). Servers get it
    # too (JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED: their cookies on their user's host, Path=/).
    c.JupyterHub.cookie_host_prefix_enabled = True

# The release mounts hub/templates (spawn.html) here from a ConfigMap.
c.JupyterHub.template_paths = ["/srv/jupyterhub/templates"]
c.JupyterHub.template_vars = {
    "platform_domain": _eodh_hub_env["PLATFORM_DOMAIN"],
    "workspaces_domain": _eodh_hub_env["WORKSPACES_DOMAIN"],
    # Absolute links to the hub name its one host: the login cookie lives only there.
    "hub_url": EODH_HUB_URL,
    "platform_url": f"https://{_eodh_hub_env['PLATFORM_DOMAIN']}",
    "workspaces_url": f"https://{_eodh_hub_env['PLATFORM_DOMAIN']}/workspaces",
    "feedback_url": f"https://{_eodh_hub_env['PLATFORM_DOMAIN']}/feedback",
}

# The Resource Catalogue launches notebooks on named servers
# (/hub/spawn/<user>/<server>?workspace=<ws>, eodhp-guide parameterised-notebook-and-
# workflow-launch.md), and the user docs offer them. Each server has its own pod; a user
# keeps at most one per workspace (file 3, eodh_replace_same_workspace_servers).
# named_server_limit_per_user stays 0: JupyterHub 5.3 counts stopped named servers too
# (handlers/pages.py SpawnHandler._get: user.all_spawners(include_default=False)), and
# every launch names a new server, so any limit would end a user's launches until they
# delete old servers. Running servers are bounded by one per workspace the user is in.
c.JupyterHub.allow_named_servers = True

# Every spawn costs a Keycloak token exchange and Kubernetes API calls; cap bursts
# (e.g. a training session starting together) rather than the number of running servers,
# which the cluster autoscaler bounds.
c.JupyterHub.concurrent_spawn_limit = 20
c.JupyterHub.active_server_limit = 0

# The chart runs the proxy in its own pod and the hub does not watch it: a restarted proxy
# has no routes until the hub's last-activity update puts them back, every 60 s in the
# chart (vendor/jupyterhub-4.2.0/files/hub/jupyterhub_config.py). Meanwhile every user's
# notebook answers "Redirect loop detected" (make load: 53 s cut off). Each update is one
# GET of the proxy's routes and one database commit, cheap at hundreds of servers.
c.JupyterHub.last_activity_interval = 10

# Keycloak's SSO session ends well within a day; a longer hub cookie would only keep a
# session whose tokens can no longer be refreshed.
c.JupyterHub.cookie_max_age_days = 1

# SameSite=Lax on every hub cookie: a cross-site POST (a form on another site posting to
# /hub/spawn or the API) arrives without the login cookie, while top-level navigation
# (the OAuth callback from Keycloak) still carries it. JupyterHub 5.3 applies
# tornado_settings["cookie_options"] in BaseHandler._set_cookie (login, session and
# OAuth state cookies) and copies it into xsrf_cookie_kwargs for _xsrf (jupyterhub/app.py).
# The chart already put settings of its own here (slow_spawn_timeout): merge, not replace.
_eodh_tornado = dict(c.JupyterHub.tornado_settings) if "tornado_settings" in c.JupyterHub else {}
_eodh_tornado["cookie_options"] = {**_eodh_tornado.get("cookie_options", {}), "samesite": "Lax"}
c.JupyterHub.tornado_settings = _eodh_tornado

# Long sessions (docs/hub-token-refresh.md): a notebook server renews its workspace token
# at GET {JUPYTERHUB_API_URL}/eodh/workspace-token with its own API token. The custom
# scope is held by every user (via the `user` role) and requested for server tokens, so
# JupyterHub grants it to a server token filtered to that server's owner only.
EODH_WORKSPACE_TOKEN_SCOPE = "custom:eodh:workspace-token"

c.JupyterHub.custom_scopes = {
    EODH_WORKSPACE_TOKEN_SCOPE: {
        "description": "Obtain a fresh workspace-scoped access token for one's own server.",
    },
}

# The chart may already have appended roles (hub.loadRoles, the idle culler's): keep
# them, and extend a chart-defined `user` role instead of replacing it.
_eodh_roles = list(c.JupyterHub.load_roles) if "load_roles" in c.JupyterHub else []
_eodh_user_role = next((r for r in _eodh_roles if r.get("name") == "user"), None)
if _eodh_user_role is None:
    _eodh_user_role = {"name": "user", "scopes": ["self"]}
    _eodh_roles.append(_eodh_user_role)
_eodh_user_role["scopes"] = [
    *_eodh_user_role.get("scopes", ["self"]),
    f"{EODH_WORKSPACE_TOKEN_SCOPE}!user",
]
c.JupyterHub.load_roles = _eodh_roles

# JupyterHub's default server-token scopes (the `server` role) plus ours; JupyterHub
# intersects these with the owner's own scopes when it issues the token. Ours is filtered
# to the server itself (!server expands to !server=<user>/<server>, inside the owner's
# !user grant): with !user, a server in one workspace could get the workspace token of
# its owner's server in another (named servers).
c.Spawner.server_token_scopes = [
    "users:activity!user",
    "access:servers!server",
    f"{EODH_WORKSPACE_TOKEN_SCOPE}!server",
]
