"""The hub changes nothing for a request that another page made the browser send.

JupyterHub 5.3's XSRF check skips ``Sec-Fetch-Mode: no-cors`` requests
(jupyterhub/_xsrf_utils.py, ``_needs_check_xsrf``), and its API accepts a cookie-
authenticated POST with no Content-Type (apihandlers/base.py,
``check_post_content_type``). So any page whose requests carry the hub's cookie can start
or restart a user's servers with chosen options by a no-cors ``fetch``. SameSite=Lax (file
1) keeps the cookie off cross-site requests only; same-site hosts (every
``*.eodatahub-workspaces.org.uk`` workspace host, and with userServersDomain a server's own
``<user>.<userServersDomain>``, same-site whenever that domain shares the hub's registrable
domain) still send it.

Before any hub handler runs, a request with a method other than GET/HEAD/OPTIONS is
refused (403) when the browser says it came from another origin:
- ``Sec-Fetch-Site`` (sent by every current browser) is ``same-site`` or ``cross-site``;
- ``Origin`` is present and names another host than the request's (``null`` included);
- ``Referer`` is a page of a notebook server (``<base_url>user/...``) on the hub's origin.

With userServersDomain (file 1, subdomain_host) a server's page is another origin: its
forged POST carries ``Origin: https://<user>.<userServersDomain>`` and ``Sec-Fetch-Site``
``same-site`` or ``cross-site``, and the first two rules refuse it; the browser's same-origin
policy already keeps the page from reading the hub's pages and XSRF token. What a server's
page legitimately sends the hub is navigation and the OAuth round trip (a GET of
``/hub/api/oauth2/authorize``, which for the user's own server skips the confirmation form
and redirects back to it, jupyterhub 5.3 apihandlers/auth.py ``needs_oauth_confirm``; the
form, where shown, is the hub's own page posting to the hub): nothing here refuses a GET.

Without userServersDomain servers share the hub's origin, and a script there can suppress
or choose its Referer, so the last rule stops only a careless page; what stops a planted
one is that no other member can plant code in a user's server (4_workspace_homes.py).
Non-browser clients (a server's API token, the culler) send none of these headers and are
unaffected.
"""

from urllib.parse import urlsplit

from jupyterhub.handlers.base import BaseHandler
from tornado import web

EODH_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
EODH_SAME_ORIGIN_SITES = frozenset({"same-origin", "none"})


def eodh_forged_request_problem(method, headers, own_host, base_url):
    """Why a state-changing request looks sent by another page, or None.

    Origins are compared by host (and port) only: behind ingress-nginx and the chart's
    proxy the hub sees ``X-Forwarded-Proto: https,http`` and tornado keeps the last entry,
    so its idea of the scheme is the proxy's, not the browser's.
    """
    if method.upper() in EODH_SAFE_METHODS:
        return None
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site.lower() not in EODH_SAME_ORIGIN_SITES:
        return f"the hub does not accept {site} requests that change anything"
    origin = headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc.lower() != own_host.lower():
        return "the hub does not accept requests from pages of another origin"
    referer = headers.get("Referer")
    if referer:
        parts = urlsplit(referer)
        if parts.netloc.lower() == own_host.lower() and parts.path.startswith(
            f"{base_url.rstrip('/')}/user/"
        ):
            return "the hub does not accept changes sent by a notebook server's pages"
    return None


def _eodh_checked_prepare(prepare):
    async def checked_prepare(self):
        request = self.request
        problem = eodh_forged_request_problem(
            request.method, request.headers, request.host, self.base_url
        )
        if problem:
            self.log.warning(
                "Refused %s %s: %s (Origin %r, Sec-Fetch-Site %r)",
                request.method,
                request.path,
                problem,
                request.headers.get("Origin"),
                request.headers.get("Sec-Fetch-Site"),
            )
            raise web.HTTPError(403, problem)
        return await prepare(self)

    checked_prepare.eodh_origin_check = True
    return checked_prepare


# Every hub page and API handler (APIHandler included) inherits BaseHandler.prepare;
# config may be loaded more than once per process (tests), so wrap only once.
if not getattr(BaseHandler.prepare, "eodh_origin_check", False):
    BaseHandler.prepare = _eodh_checked_prepare(BaseHandler.prepare)
