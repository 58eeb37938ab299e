"""The JupyterHub Helm release, its templates ConfigMap and the ingress for /notebooks."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from .helm_values import BASE_URL, TEMPLATES_CONFIGMAP, HubValuesInputs, build_values
from .labels import standard_labels

CHART = "jupyterhub"
CHART_VERSION = "4.2.0"
CHART_REPOSITORY = "https://hub.jupyter.org/helm-chart/"
RELEASE_NAME = "jupyterhub"
PROXY_SERVICE = "proxy-public"
# JupyterHub serves its Prometheus metrics at two paths under the hub prefix (jupyterhub 5.3
# handlers/metrics.py: `/metrics$` and `/api/metrics$`). They are for the cluster's
# monitoring only: the public ingress refuses both (`metrics_refusal_snippet`).
METRICS_PATHS = (f"{BASE_URL}/hub/metrics", f"{BASE_URL}/hub/api/metrics")
# What a user server's host serves (userServersDomain): its servers, nothing of the hub's.
USER_SERVERS_PATH = f"{BASE_URL}/user"
# The servers' wildcard host's Ingress (tools/preflight.py reads it).
USER_SERVERS_INGRESS = "jupyterhub-user-servers"

# Request headers through which the platform's auth layer (oauth2-proxy behind ingress-nginx's
# global auth) tells the services behind it who the user is. The hub does its own OAuth and
# must never see a client-sent one: the ingress clears them all before proxying. `*` at the end
# is a prefix (every `X-Auth-Request-...` header oauth2-proxy has or may add).
IDENTITY_HEADERS = (
    "Remote-User",
    "X-Forwarded-User",
    "X-Forwarded-Email",
    "X-Forwarded-Preferred-Username",
    "X-Forwarded-Groups",
    "X-Forwarded-Access-Token",
    "X-Auth-Request-*",
)
HEADER_NAME = re.compile(r"[A-Za-z0-9-]+\*?")
CONFIGURATION_SNIPPET = "nginx.ingress.kubernetes.io/configuration-snippet"


def header_guard_snippet(headers: Sequence[str]) -> str:
    """The ingress-nginx location snippet that removes `headers` from every proxied request.

    ingress-nginx has no per-Ingress annotation that sets or clears request headers (its
    `proxy-set-headers` is a controller ConfigMap key; internal/ingress/annotations/* at
    controller-v1.13.0), so the guard is a `configuration-snippet`. It uses headers-more's
    `more_clear_input_headers`, which the controller's nginx is built with
    (images/nginx/rootfs/build.sh, --add-module=headers-more-nginx-module): it deletes the
    request's headers before proxy_pass copies them, matches names case-insensitively and
    takes a trailing `*` as a prefix, which plain `proxy_set_header X "";` cannot. No quotes:
    the value passes an `annotation-value-word-blocklist` that lists them.
    """
    if not headers:
        raise ValueError("the header guard needs at least one header")
    for header in headers:
        if not HEADER_NAME.fullmatch(header):
            raise ValueError(f"not a header name (or name prefix ending in *): {header!r}")
    return f"more_clear_input_headers {' '.join(headers)};\n"


def metrics_refusal_snippet() -> str:
    """The location snippet that answers the metrics path with 404 instead of proxying it.

    `return` runs in nginx's rewrite phase, before access checks and proxy_pass, and needs
    no braces or quotes (the controller's annotation-value-word-blocklist lists them).
    """
    return "return 404;\n"


@dataclass(frozen=True)
class JupyterHubArgs:
    namespace: pulumi.Input[str]
    values: HubValuesInputs
    templates: Mapping[str, str]
    # The one host the hub is served on; extra hosts answer with a redirect to it.
    hub_host: str
    hub_extra_hosts: Sequence[str] = ()
    tls_secret_name: str | None = None
    # Per-user origins (subdomain_host): `*.<user_servers_domain>` to the proxy, with the
    # wildcard certificate's Secret (None: the controller's default certificate).
    user_servers_domain: str | None = None
    user_servers_tls_secret_name: str | None = None
    # Notebook uploads go through the proxy in one request per file chunk; 2 GiB leaves
    # room for JupyterLab's chunking to be off (older clients).
    max_body_size: str = "2g"
    # Kernels and terminals are long-lived WebSockets; nginx's 60 s default cuts them.
    websocket_timeout_seconds: int = 3600
    helm_timeout_seconds: int = 900
    max_history: int = 10
    protect: bool = True
    """Protect and retain the release: a destroy or a replace would otherwise uninstall the
    chart (the hub, its routes and every object without `helm.sh/resource-policy: keep`)."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.templates:
            raise ValueError("the hub templates ConfigMap would be empty")
        if self.hub_host in self.hub_extra_hosts:
            raise ValueError(f"{self.hub_host} cannot both serve the hub and redirect to it")
        if self.user_servers_tls_secret_name and not self.user_servers_domain:
            raise ValueError("a user servers' certificate without a user servers' domain")


def _ingress_spec(
    hosts: Sequence[str],
    paths: Sequence[k8s.networking.v1.HTTPIngressPathArgs],
    tls_secret_name: str | None,
) -> k8s.networking.v1.IngressSpecArgs:
    """`paths` on each of `hosts`, with TLS for them when a certificate Secret is named."""
    return k8s.networking.v1.IngressSpecArgs(
        ingress_class_name="nginx",
        rules=[
            k8s.networking.v1.IngressRuleArgs(
                host=host, http=k8s.networking.v1.HTTPIngressRuleValueArgs(paths=list(paths))
            )
            for host in hosts
        ],
        tls=[k8s.networking.v1.IngressTLSArgs(hosts=list(hosts), secret_name=tls_secret_name)]
        if tls_secret_name
        else None,
    )


class JupyterHub(pulumi.ComponentResource):
    release_name: pulumi.Output[str]
    status: pulumi.Output[str]

    def __init__(self, name: str, args: JupyterHubArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eodh:kubernetes:JupyterHub", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = standard_labels("jupyterhub")

        templates = k8s.core.v1.ConfigMap(
            f"{name}-templates",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=TEMPLATES_CONFIGMAP, namespace=args.namespace, labels=labels
            ),
            data=dict(args.templates),
            opts=child,
        )
        release = k8s.helm.v3.Release(
            f"{name}-release",
            name=RELEASE_NAME,
            chart=CHART,
            version=CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPOSITORY),
            namespace=args.namespace,
            values=build_values(args.values),
            # A failed upgrade rolls back by itself instead of leaving a half-applied hub.
            atomic=True,
            cleanup_on_fail=True,
            timeout=args.helm_timeout_seconds,
            max_history=args.max_history,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[templates, *args.depends_on],
                protect=args.protect,
                retain_on_delete=args.protect,
            ),
        )
        self._ingress(name, args, labels, release)
        self.release_name = release.name.apply(lambda n: n or RELEASE_NAME)
        self.status = release.status.apply(lambda s: s.status if s else "unknown")
        self.register_outputs({"release_name": self.release_name})

    def _ingress(
        self,
        name: str,
        args: JupyterHubArgs,
        labels: dict[str, str],
        release: k8s.helm.v3.Release,
    ) -> None:
        timeout = str(args.websocket_timeout_seconds)
        backend = k8s.networking.v1.IngressBackendArgs(
            service=k8s.networking.v1.IngressServiceBackendArgs(
                name=PROXY_SERVICE, port=k8s.networking.v1.ServiceBackendPortArgs(name="http")
            )
        )
        path = k8s.networking.v1.HTTPIngressPathArgs(
            path=BASE_URL, path_type="Prefix", backend=backend
        )
        proxied = {
            # Needs the controller's allow-snippet-annotations "true" and
            # annotations-risk-level Critical (docs/operations.md). Without them its
            # admission webhook refuses this Ingress, or, with no webhook, the
            # controller drops the snippet and serves it unguarded (preflight checks).
            CONFIGURATION_SNIPPET: header_guard_snippet(IDENTITY_HEADERS),
            "nginx.ingress.kubernetes.io/proxy-read-timeout": timeout,
            "nginx.ingress.kubernetes.io/proxy-send-timeout": timeout,
            "nginx.ingress.kubernetes.io/proxy-body-size": args.max_body_size,
            "nginx.ingress.kubernetes.io/proxy-buffering": "off",
        }
        # Only the hub's own host: a request for any other host (a forged Host header, a
        # workspace's <ws>.<workspacesDomain>) never reaches the hub through this Ingress.
        self._declare_ingress(
            f"{name}-ingress",
            "jupyterhub",
            args,
            labels,
            proxied,
            _ingress_spec([args.hub_host], [path], args.tls_secret_name),
            release,
        )
        if args.user_servers_domain:
            self._user_servers_ingress(name, args, labels, backend, proxied, release)
        self._metrics_refusal_ingress(name, args, labels, backend, release)
        if args.hub_extra_hosts:
            self._redirect_ingress(name, args, labels, path, release)

    def _declare_ingress(
        self,
        resource_name: str,
        object_name: str,
        args: JupyterHubArgs,
        labels: dict[str, str],
        annotations: dict[str, str],
        spec: k8s.networking.v1.IngressSpecArgs,
        release: k8s.helm.v3.Release,
    ) -> None:
        """One of the hub's Ingresses in its namespace, after the release it routes to."""
        k8s.networking.v1.Ingress(
            resource_name,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=object_name,
                namespace=args.namespace,
                labels=labels,
                annotations={
                    # The hub authenticates users itself (Keycloak OAuth): the platform's
                    # global auth would demand a second login and strip the hub's cookies.
                    "nginx.ingress.kubernetes.io/enable-global-auth": "false",
                    **annotations,
                },
            ),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[release]),
        )

    def _user_servers_ingress(
        self,
        name: str,
        args: JupyterHubArgs,
        labels: dict[str, str],
        backend: k8s.networking.v1.IngressBackendArgs,
        proxied: dict[str, str],
        release: k8s.helm.v3.Release,
    ) -> None:
        """`*.<user_servers_domain>`: each user's servers on a host of their own.

        The proxy routes by host (the chart passes `--host-routing`, components/helm_values.py)
        and sends whatever no server route matches to the hub (its routespec is `/` under
        subdomain_host, jupyterhub 5.3 app.py `_default_hub_routespec`), so this Ingress
        proxies only the servers' prefix: the hub's pages, API and metrics stay on hub_host.
        A stopped server's URL still reaches the hub, which sends the browser to hub_host.
        Same guard, timeouts and body size as the hub's host: the same traffic (kernels,
        uploads), and the same identity headers to clear.
        """
        assert args.user_servers_domain
        servers = k8s.networking.v1.HTTPIngressPathArgs(
            path=USER_SERVERS_PATH, path_type="Prefix", backend=backend
        )
        self._declare_ingress(
            f"{name}-user-servers",
            USER_SERVERS_INGRESS,
            args,
            labels,
            proxied,
            _ingress_spec(
                [f"*.{args.user_servers_domain}"], [servers], args.user_servers_tls_secret_name
            ),
            release,
        )

    def _metrics_refusal_ingress(
        self,
        name: str,
        args: JupyterHubArgs,
        labels: dict[str, str],
        backend: k8s.networking.v1.IngressBackendArgs,
        release: k8s.helm.v3.Release,
    ) -> None:
        """The hub's metrics never leave the cluster through the public host (`METRICS_PATHS`).

        An Exact path becomes `location = <path>` in the controller's nginx
        (ingress-nginx internal/ingress/controller/template/template.go, buildLocation),
        which nginx prefers over the `/notebooks` prefix location, and nginx matches it
        against the normalised URI (percent-decoded, `//` merged), so encoded or doubled
        spellings of the paths are refused too. `/notebooks/hub/metrics/` reaches the hub,
        which answers with a redirect to the refused path. The backend is never used.
        """
        refused = [
            k8s.networking.v1.HTTPIngressPathArgs(path=path, path_type="Exact", backend=backend)
            for path in METRICS_PATHS
        ]
        self._declare_ingress(
            f"{name}-metrics-refusal",
            "jupyterhub-metrics-refusal",
            args,
            labels,
            {CONFIGURATION_SNIPPET: metrics_refusal_snippet()},
            _ingress_spec([args.hub_host], refused, args.tls_secret_name),
            release,
        )

    def _redirect_ingress(
        self,
        name: str,
        args: JupyterHubArgs,
        labels: dict[str, str],
        path: k8s.networking.v1.HTTPIngressPathArgs,
        release: k8s.helm.v3.Release,
    ) -> None:
        """Extra hosts send the browser to the hub's host, path and query kept.

        Served instead, a login would break: OAuthenticator's state cookie is set on the
        host where the login starts, and Keycloak returns to the one registered callback on
        the primary host, where that cookie is missing. ingress-nginx turns
        `permanent-redirect` into `return <code> <url>;` in the location, so nginx expands
        `$request_uri` (the same form jenkins-infra/kubernetes-management PR #2414 runs);
        308 keeps the method and body of a POST.
        """
        hosts = list(args.hub_extra_hosts)
        self._declare_ingress(
            f"{name}-redirect",
            "jupyterhub-redirect",
            args,
            labels,
            {
                "nginx.ingress.kubernetes.io/permanent-redirect": (
                    f"https://{args.hub_host}$request_uri"
                ),
                "nginx.ingress.kubernetes.io/permanent-redirect-code": "308",
            },
            # ingress-nginx only applies a redirect to a rule with a path and backend
            # (kubernetes/ingress-nginx issue 1405); nothing is proxied to it.
            _ingress_spec(hosts, [path], args.tls_secret_name),
            release,
        )
