"""Values for the zero-to-jupyterhub 4.2.0 chart, built from typed inputs.

Pure: the same inputs give the same dict (and byte-identical JSON). Secret-bearing inputs
arrive as Pulumi Outputs marked secret and are placed where the chart expects them; nothing
here reads configuration or files beyond the hub/ folder it is pointed at.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from .hub_metrics import METRICS_SERVICE, MetricsScraper, metrics_role, scraper_ingress_rule

BASE_URL = "/notebooks"
TEMPLATES_MOUNT = "/srv/jupyterhub/templates"
TEMPLATES_CONFIGMAP = "hub-templates"
HUB_SERVICE_ACCOUNT = "hub"
HOME = "/home/jovyan"

# The chart names every resource "<fullname>-<short name>", or just "<short name>" when
# fullnameOverride is the empty string (vendor/jupyterhub-4.2.0/templates/_helpers-names.tpl:
# "jupyterhub.fullname", l. 22-56, returns fullnameOverride whenever it is a string (l. 46);
# "jupyterhub.fullname.dash", l. 62, appends "-" only to a non-empty one; the hub is
# "jupyterhub.hub.fullname", l. 75). Passed explicitly so the names below do not hang on
# the chart's default.
FULLNAME_OVERRIDE = ""
# templates/hub/service.yaml l. 29: the hub Service listens on 8081 whatever the values.
HUB_SERVICE_PORT = 8081
# KubeSpawner's default port, and the port of the chart's own hub/proxy -> singleuser-server
# egress rules (templates/hub/netpol.yaml l. 72-79, templates/proxy/netpol.yaml l. 96-103).
NOTEBOOK_PORT = 8888
# The chart's app label: nameOverride (unset here) or the chart name
# (templates/_helpers.tpl "jupyterhub.appLabel"); KubeSpawner gets the same from the
# chart's jupyterhub_config.py (common_labels["app"]).
CHART_APP_LABEL = "jupyterhub"
# Kubernetes DNS serves <service>.<namespace>.svc.<cluster domain>; EKS's cluster domain is
# always cluster.local. A fully qualified name resolves from every namespace.
CLUSTER_DOMAIN = "cluster.local"


def chart_resource_name(short_name: str) -> str:
    """The name the chart gives a resource (e.g. "hub"), with the values built here."""
    return f"{FULLNAME_OVERRIDE}-{short_name}" if FULLNAME_OVERRIDE else short_name


def hub_connect_url(release_namespace: pulumi.Input[str]) -> pulumi.Input[str]:
    """How notebook servers (in ws-* namespaces) and the proxy reach the hub's API.

    The chart's own jupyterhub_config.py (files/hub/jupyterhub_config.py l. 105) sets
    http://hub:8081, a short name that resolves only inside the release namespace;
    hub.config is applied after it (l. 490, ``c[app].update(cfg)``) and wins.
    """

    def url(namespace: str) -> str:
        service = chart_resource_name("hub")
        return f"http://{service}.{namespace}.svc.{CLUSTER_DOMAIN}:{HUB_SERVICE_PORT}"

    # A plain name stays plain, so values built from plain inputs stay plain data.
    if isinstance(release_namespace, str):
        return url(release_namespace)
    return pulumi.Output.concat(release_namespace).apply(url)


def notebook_egress_rule(release_name: str) -> dict[str, Any]:
    """Egress to the release's notebook servers in any namespace, on the notebook port.

    The chart's own hub/proxy -> singleuser-server rules (templates/hub/netpol.yaml
    l. 72-79, templates/proxy/netpol.yaml l. 96-103) use a bare podSelector, which selects
    pods of the policy's namespace only. The default egressAllowRules.privateIPs (values.yaml
    l. 120 and 251, rendered as ipBlocks 10/8, 172.16/12, 192.168/16 by
    templates/_helpers-netpol.tpl) are no substitute: Kubernetes' NetworkPolicy docs say
    ipBlock "should be cluster-external IPs" and leave it to the network plugin whether it
    matches pod IPs (values.schema.yaml l. 806-811 warns it does not under Cilium), and EKS
    pods may take addresses outside those ranges (custom networking in 100.64/10).

    ws-* namespaces cannot be told apart by a label: the platform's workspace-controller
    creates them unlabelled before KubeSpawner's create (which then gets 409 and labels
    nothing), so any namespace is allowed and the pod labels KubeSpawner gives every server
    (component, app, release) do the selecting.
    """
    return {
        "to": [
            {
                "namespaceSelector": {},
                "podSelector": {
                    "matchLabels": {
                        "component": "singleuser-server",
                        "app": CHART_APP_LABEL,
                        "release": release_name,
                    }
                },
            }
        ],
        "ports": [{"port": NOTEBOOK_PORT, "protocol": "TCP"}],
    }


@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class NotebookResources:
    cpu_guarantee: float
    cpu_limit: float
    memory_guarantee: str
    memory_limit: str


def extra_config(extra_config_dir: Path) -> dict[str, str]:
    """hub.extraConfig: each file under its stem; the chart execs them sorted by key."""
    files = sorted(extra_config_dir.glob("*.py"))
    if not files:
        raise FileNotFoundError(f"no extra config files in {extra_config_dir}")
    return {path.stem: path.read_text() for path in files}


def template_files(templates_dir: Path) -> dict[str, str]:
    """The hub-templates ConfigMap data: every file of hub/templates (ConfigMaps are flat)."""
    files = sorted(p for p in templates_dir.iterdir() if p.is_file())
    if not files:
        raise FileNotFoundError(f"no templates in {templates_dir}")
    return {path.name: path.read_text() for path in files}


def content_checksum(files: Mapping[str, str]) -> str:
    """Stable over file order; changes when any name or content changes."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class Profile:
    slug: str
    display_name: str
    description: str
    image: ImageRef
    default: bool = False

    def as_value(self) -> dict[str, Any]:
        # KubeSpawner's profile_list shape: the image is a kubespawner_override.
        profile: dict[str, Any] = {
            "display_name": self.display_name,
            "slug": self.slug,
            "description": self.description,
            "kubespawner_override": {"image": str(self.image)},
        }
        if self.default:
            profile["default"] = True
        return profile


@dataclass(frozen=True)
class HubValuesInputs:
    hub_image: ImageRef
    notebook_image: ImageRef
    profiles: tuple[Profile, ...]
    extra_config: Mapping[str, str]
    templates_checksum: str
    # The Helm release's name and namespace: the hub URL and NetworkPolicy selectors name them.
    release_name: str
    release_namespace: pulumi.Input[str]
    platform_domain: str
    workspaces_domain: str
    # The host users reach the hub on: the OAuth callback's and the cookie's.
    hub_host: str
    keycloak_issuer: str
    hub_client_id: str
    workspaces_client_id: str
    oauth_secret_name: pulumi.Input[str]
    oauth_client_secret_key: str
    workspaces_client_secret_key: str
    aws_region: str
    notebook_role_arn: pulumi.Input[str]
    workspace_bucket: pulumi.Input[str]
    cookie_secret: pulumi.Input[str]
    proxy_secret_token: pulumi.Input[str]
    crypt_key: pulumi.Input[str]
    debug: bool
    resources: NotebookResources
    node_affinity: Mapping[str, tuple[str, ...]]
    storage_class: str
    storage_capacity: str
    cull_timeout_seconds: int
    # `<user>.<user_servers_domain>` per user (subdomain_host); None: servers on hub_host.
    user_servers_domain: str | None = None
    # Both or neither: the pods that may scrape the hub's metrics, and the token they send.
    metrics_scraper: MetricsScraper | None = None
    metrics_token: pulumi.Input[str] | None = None

    def __post_init__(self) -> None:
        if (self.metrics_scraper is None) != (self.metrics_token is None):
            raise ValueError("a metrics scraper and a metrics token go together")
        defaults = [p for p in self.profiles if p.default]
        if len(defaults) != 1:
            raise ValueError(f"exactly one default profile is needed, got {len(defaults)}")
        slugs = [p.slug for p in self.profiles]
        if len(set(slugs)) != len(slugs):
            raise ValueError(f"profile slugs must be unique: {slugs}")
        if list(self.extra_config) != sorted(self.extra_config):
            raise ValueError("extra config must be given in the order the chart runs it")


def _secret_env(secret_name: pulumi.Input[str], key: str) -> dict[str, Any]:
    return {"valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}


def _hub(inputs: HubValuesInputs) -> dict[str, Any]:
    return {
        "baseUrl": BASE_URL,
        "image": {"name": inputs.hub_image.repository, "tag": inputs.hub_image.tag},
        "cookieSecret": inputs.cookie_secret,
        "config": {
            "CryptKeeper": {"keys": [inputs.crypt_key]},
            "JupyterHub": {"hub_connect_url": hub_connect_url(inputs.release_namespace)},
        },
        # The hub database (users, servers, encrypted auth state) lives on this claim. The
        # release is atomic: a failed install or upgrade is rolled back by uninstalling what
        # Helm created, and `helm uninstall` deletes a PVC unless it carries this annotation
        # (helm pkg/action/resource_policy.go). The claim then outlives any release.
        "db": {"pvc": {"annotations": {"helm.sh/resource-policy": "keep"}}},
        "networkPolicy": {
            # Admits the servers in ws-* namespaces: with "accept" the chart's hub policy
            # lets in pods labelled hub.jupyter.org/network-access-hub=true from any
            # namespace (templates/hub/netpol.yaml l. 44-53: "source 1" gains an empty
            # namespaceSelector), and KubeSpawner puts that label on every server (the
            # chart's default singleuser.extraLabels, values.yaml l. 393-394, passed as
            # KubeSpawner.extra_labels by files/hub/jupyterhub_config.py l. 151). With
            # "ignore" the label counts only inside the release namespace. No namespace
            # label is needed, which matters: ws-* namespaces are made by the platform.
            "interNamespaceAccessLabels": "accept",
            "egress": [notebook_egress_rule(inputs.release_name)],
        },
        "extraConfig": dict(inputs.extra_config),
        # Read by hub/extra_config; the two client secrets only by reference to the
        # External Secrets target, never by value.
        "extraEnv": {
            "PLATFORM_DOMAIN": inputs.platform_domain,
            "WORKSPACES_DOMAIN": inputs.workspaces_domain,
            "HUB_HOST": inputs.hub_host,
            "KEYCLOAK_ISSUER_URL": inputs.keycloak_issuer,
            "OAUTH_CLIENT_ID": inputs.hub_client_id,
            "OAUTH_CLIENT_SECRET": _secret_env(
                inputs.oauth_secret_name, inputs.oauth_client_secret_key
            ),
            "WORKSPACES_CLIENT_ID": inputs.workspaces_client_id,
            "WORKSPACES_CLIENT_SECRET": _secret_env(
                inputs.oauth_secret_name, inputs.workspaces_client_secret_key
            ),
            "SINGLEUSER_AWS_REGION": inputs.aws_region,
            "SINGLEUSER_AWS_ROLE_ARN": inputs.notebook_role_arn,
            "SINGLEUSER_WORKSPACE_BUCKET": inputs.workspace_bucket,
        },
        "extraVolumes": [{"name": TEMPLATES_CONFIGMAP, "configMap": {"name": TEMPLATES_CONFIGMAP}}],
        "extraVolumeMounts": [
            {"name": TEMPLATES_CONFIGMAP, "mountPath": TEMPLATES_MOUNT, "readOnly": True}
        ],
        # A ConfigMap change does not restart the hub by itself; this pod annotation does,
        # and it moves only when the templates do.
        "annotations": {"checksum/hub-templates": inputs.templates_checksum},
        "serviceAccount": {"create": True, "name": HUB_SERVICE_ACCOUNT},
    }


def _with_user_servers_domain(inputs: HubValuesInputs, hub: dict[str, Any]) -> dict[str, Any]:
    """Per-user origins (docs/platform-contract.md): the same domain to the chart and the hub.

    The chart starts its proxy with `--host-routing` only when it sees
    `hub.config.JupyterHub.subdomain_host` (templates/proxy/deployment.yaml l. 103-105):
    without it the hub's host-prefixed routes never match. File 1 reads USER_SERVERS_DOMAIN,
    as it reads HUB_HOST, and refuses to start if the chart's value says otherwise.
    """
    if not inputs.user_servers_domain:
        return hub
    hub["config"]["JupyterHub"]["subdomain_host"] = f"https://{inputs.user_servers_domain}"
    hub["extraEnv"]["USER_SERVERS_DOMAIN"] = inputs.user_servers_domain
    return hub


def _with_metrics_access(inputs: HubValuesInputs, hub: dict[str, Any]) -> dict[str, Any]:
    """The scraper's way in (components/hub_metrics.py), added to the hub's values."""
    if inputs.metrics_scraper is None:
        return hub
    hub["networkPolicy"]["ingress"] = [
        scraper_ingress_rule(inputs.metrics_scraper, HUB_SERVICE_PORT)
    ]
    # The chart keeps the token in the hub Secret and hands it to JupyterHub as the
    # service's api_token (files/hub/jupyterhub_config.py l. 403-413).
    hub["services"] = {METRICS_SERVICE: {"apiToken": inputs.metrics_token}}
    role = metrics_role()
    hub["loadRoles"] = {role.pop("name"): role}
    return hub


def _node_affinity(affinity: Mapping[str, tuple[str, ...]]) -> list[dict[str, Any]]:
    return [
        {"matchExpressions": [{"key": label, "operator": "In", "values": list(values)}]}
        for label, values in sorted(affinity.items())
    ]


def _singleuser(inputs: HubValuesInputs) -> dict[str, Any]:
    resources = inputs.resources
    return {
        "image": {"name": inputs.notebook_image.repository, "tag": inputs.notebook_image.tag},
        "profileList": [p.as_value() for p in inputs.profiles],
        "cpu": {"guarantee": resources.cpu_guarantee, "limit": resources.cpu_limit},
        "memory": {"guarantee": resources.memory_guarantee, "limit": resources.memory_limit},
        "extraNodeAffinity": {"required": _node_affinity(inputs.node_affinity)},
        # One volume per workspace, shared by the workspace's members (EFS: ReadWriteMany).
        "storage": {
            "type": "dynamic",
            "capacity": inputs.storage_capacity,
            "homeMountPath": HOME,
            "dynamic": {
                "storageClass": inputs.storage_class,
                "pvcNameTemplate": "pvc-{workspace}",
                "volumeNameTemplate": "volume-{workspace}",
                "storageAccessModes": ["ReadWriteMany"],
            },
        },
    }


def build_values(inputs: HubValuesInputs) -> dict[str, Any]:
    return {
        "fullnameOverride": FULLNAME_OVERRIDE,
        "debug": {"enabled": inputs.debug},
        "hub": _with_metrics_access(inputs, _with_user_servers_domain(inputs, _hub(inputs))),
        "proxy": {
            "secretToken": inputs.proxy_secret_token,
            # The ingress fronts the proxy; no cloud load balancer of the chart's own.
            "service": {"type": "ClusterIP"},
            "https": {"enabled": False},
            # The proxy forwards each user's traffic to the server's pod in ws-*.
            "chp": {"networkPolicy": {"egress": [notebook_egress_rule(inputs.release_name)]}},
        },
        "singleuser": _singleuser(inputs),
        # The cluster autoscaler packs nodes on EKS; the chart's scheduler and placeholders
        # would fight it, and the pre-puller's hook would hold every upgrade for minutes.
        "scheduling": {
            "userScheduler": {"enabled": False},
            "podPriority": {"enabled": False},
            "userPlaceholder": {"enabled": False},
        },
        "prePuller": {"hook": {"enabled": False}, "continuous": {"enabled": False}},
        "cull": {
            "enabled": True,
            "timeout": inputs.cull_timeout_seconds,
            "every": 300,
            "users": False,
            "removeNamedServers": False,
        },
        "ingress": {"enabled": False},
        # The chart's own hub Role (templates/hub/rbac.yaml) grants get/list/watch/create/
        # delete on pods, claims, secrets and services in the release namespace: Secrets
        # there include the TLS key and the OAuth clients'. With user namespaces KubeSpawner
        # works only through the ClusterRole (components/rbac.py) in ws-*, so nothing here
        # needs the Role. rbac.create also gates the user scheduler's RBAC (disabled above)
        # and nothing else in z2jh 4.2.0; the hub's service account stays
        # (hub.serviceAccount.create).
        "rbac": {"create": False},
    }


@dataclass(frozen=True)
class HubFiles:
    """What the hub/ folder contributes to the release."""

    extra_config: Mapping[str, str]
    templates: Mapping[str, str]

    @classmethod
    def read(cls, hub_dir: Path) -> HubFiles:
        return cls(
            extra_config=extra_config(hub_dir / "extra_config"),
            templates=template_files(hub_dir / "templates"),
        )
