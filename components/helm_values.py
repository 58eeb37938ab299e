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

BASE_URL = "/notebooks"
TEMPLATES_MOUNT = "/srv/jupyterhub/templates"
TEMPLATES_CONFIGMAP = "hub-templates"
HUB_SERVICE_ACCOUNT = "hub"
HOME = "/home/jovyan"


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
    platform_domain: str
    workspaces_domain: str
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

    def __post_init__(self) -> None:
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
        "config": {"CryptKeeper": {"keys": [inputs.crypt_key]}},
        "extraConfig": dict(inputs.extra_config),
        # Read by hub/extra_config; the two client secrets only by reference to the
        # External Secrets target, never by value.
        "extraEnv": {
            "PLATFORM_DOMAIN": inputs.platform_domain,
            "WORKSPACES_DOMAIN": inputs.workspaces_domain,
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
        "debug": {"enabled": inputs.debug},
        "hub": _hub(inputs),
        "proxy": {
            "secretToken": inputs.proxy_secret_token,
            # The ingress fronts the proxy; no cloud load balancer of the chart's own.
            "service": {"type": "ClusterIP"},
            "https": {"enabled": False},
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
