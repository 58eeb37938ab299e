"""The JupyterHub Helm release, its templates ConfigMap and the ingress for /notebooks."""

from __future__ import annotations

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

# Identity headers the platform's auth layer sets for the services behind it. The hub does
# its own OAuth, so a client must not be able to send these and be believed downstream:
# each is set to empty, which nginx treats as "do not pass".
IDENTITY_HEADERS = (
    "Remote-User",
    "X-Auth-Request-Access-Token",
    "X-Auth-Request-Email",
    "X-Auth-Request-Preferred-Username",
    "X-Auth-Request-User",
    "X-Forwarded-Email",
    "X-Forwarded-User",
)


@dataclass(frozen=True)
class JupyterHubArgs:
    namespace: pulumi.Input[str]
    values: HubValuesInputs
    templates: Mapping[str, str]
    platform_domain: str
    workspaces_domain: str
    tls_secret_name: str | None = None
    # Notebook uploads go through the proxy in one request per file chunk; 2 GiB leaves
    # room for JupyterLab's chunking to be off (older clients).
    max_body_size: str = "2g"
    # Kernels and terminals are long-lived WebSockets; nginx's 60 s default cuts them.
    websocket_timeout_seconds: int = 3600
    helm_timeout_seconds: int = 900
    max_history: int = 10
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.templates:
            raise ValueError("the hub templates ConfigMap would be empty")


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
            opts=pulumi.ResourceOptions(parent=self, depends_on=[templates, *args.depends_on]),
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
        child = pulumi.ResourceOptions(parent=self)
        header_guard = k8s.core.v1.ConfigMap(
            f"{name}-ingress-header-guard",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="notebooks-identity-header-guard", namespace=args.namespace, labels=labels
            ),
            data={header: "" for header in IDENTITY_HEADERS},
            opts=child,
        )
        timeout = str(args.websocket_timeout_seconds)
        backend = k8s.networking.v1.IngressBackendArgs(
            service=k8s.networking.v1.IngressServiceBackendArgs(
                name=PROXY_SERVICE, port=k8s.networking.v1.ServiceBackendPortArgs(name="http")
            )
        )
        path = k8s.networking.v1.HTTPIngressPathArgs(
            path=BASE_URL, path_type="Prefix", backend=backend
        )
        hosts = [args.platform_domain, f"*.{args.workspaces_domain}"]
        k8s.networking.v1.Ingress(
            f"{name}-ingress",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="jupyterhub",
                namespace=args.namespace,
                labels=labels,
                annotations={
                    # The hub authenticates users itself (Keycloak OAuth): the platform's
                    # global auth would demand a second login and strip the hub's cookies.
                    "nginx.ingress.kubernetes.io/enable-global-auth": "false",
                    "nginx.ingress.kubernetes.io/proxy-set-headers": header_guard.metadata.apply(
                        lambda m: f"{m.namespace}/{m.name}"
                    ),
                    "nginx.ingress.kubernetes.io/proxy-read-timeout": timeout,
                    "nginx.ingress.kubernetes.io/proxy-send-timeout": timeout,
                    "nginx.ingress.kubernetes.io/proxy-body-size": args.max_body_size,
                    "nginx.ingress.kubernetes.io/proxy-buffering": "off",
                },
            ),
            spec=k8s.networking.v1.IngressSpecArgs(
                ingress_class_name="nginx",
                rules=[
                    k8s.networking.v1.IngressRuleArgs(
                        host=host, http=k8s.networking.v1.HTTPIngressRuleValueArgs(paths=[path])
                    )
                    for host in hosts
                ],
                tls=[
                    k8s.networking.v1.IngressTLSArgs(hosts=hosts, secret_name=args.tls_secret_name)
                ]
                if args.tls_secret_name
                else None,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[release]),
        )
