"""Can a server KubeSpawner built reach the hub, and can the hub and proxy reach it?

Each check returns the problems it finds (empty when all is well), so a test can both
require none for every stack and show that a broken release is caught.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from tests.chart.hub_pod import NAMESPACE_NAME_LABEL, RenderedRelease, Spawn
from tests.chart.kube import (
    ContainerPort,
    Pod,
    connection_allowed,
    resolve_service,
    selector_matches,
)

# The hub URLs a server is given; the server calls both (API and activity reports).
HUB_URL_VARIABLES = ("JUPYTERHUB_API_URL", "JUPYTERHUB_ACTIVITY_URL")


def _ports(containers: list[Mapping[str, Any]]) -> tuple[ContainerPort, ...]:
    return tuple(
        ContainerPort(int(p["containerPort"]), p.get("name"), p.get("protocol", "TCP"))
        for container in containers
        for p in container.get("ports") or []
    )


def deployment_pod(release: RenderedRelease, name: str) -> Pod:
    """A pod of the rendered Deployment, in the release namespace."""
    template = release.one("Deployment", name)["spec"]["template"]
    return Pod(
        namespace=release.namespace,
        labels=template["metadata"]["labels"],
        namespace_labels={NAMESPACE_NAME_LABEL: release.namespace},
        ports=_ports(template["spec"]["containers"]),
    )


def server_pod(spawn: Spawn, namespace_labels: Mapping[str, str] | None = None) -> Pod:
    return Pod(
        namespace=spawn.namespace,
        labels=spawn.pod["metadata"]["labels"],
        namespace_labels=spawn.namespace_labels if namespace_labels is None else namespace_labels,
        ports=_ports(spawn.pod["spec"]["containers"]),
    )


def preexisting_namespace_labels(spawn: Spawn) -> dict[str, str]:
    """The labels of a ws-* namespace the platform created before KubeSpawner's create.

    The platform's workspace-controller creates ws-<name> with no labels
    (EO-DataHub/eodhp-workspace-controller internal/controller/namespaces.go); KubeSpawner's
    create then gets 409 and labels nothing (kubespawner 7.1 spawner.py _ensure_namespace).
    Only the API server's own name label is there.
    """
    return {NAMESPACE_NAME_LABEL: spawn.namespace}


def hub_url_problems(release: RenderedRelease, spawn: Spawn) -> list[str]:
    """Each hub URL in the server's environment must name a rendered Service that a pod in
    the server's namespace resolves, that selects the hub pod, on one of its ports."""
    problems = []
    services = release.of_kind("Service")
    hub = deployment_pod(release, "hub")
    for variable in HUB_URL_VARIABLES:
        url = spawn.env.get(variable)
        if not url:
            problems.append(f"{variable} is not set")
            continue
        parts = urlsplit(url)
        service = resolve_service(parts.hostname or "", spawn.namespace, services)
        if service is None:
            problems.append(
                f"{variable}={url}: {parts.hostname} does not resolve from {spawn.namespace}"
            )
            continue
        if not selector_matches({"matchLabels": service["spec"]["selector"]}, hub.labels) or (
            service["metadata"]["namespace"] != hub.namespace
        ):
            problems.append(
                f"{variable}={url}: Service {service['metadata']['name']} is not the hub's"
            )
            continue
        ports = [p for p in service["spec"]["ports"] if p["port"] == parts.port]
        if not ports:
            problems.append(f"{variable}={url}: the hub Service has no port {parts.port}")
    return problems


def hub_service_ports(release: RenderedRelease) -> list[int]:
    """The hub container ports behind the Services that select the hub pod."""
    hub = deployment_pod(release, "hub")
    ports = []
    for service in release.of_kind("Service"):
        if service["metadata"]["namespace"] != hub.namespace:
            continue
        if not selector_matches({"matchLabels": service["spec"].get("selector") or {}}, hub.labels):
            continue
        for port in service["spec"]["ports"]:
            target = hub.resolve_port(port.get("targetPort", port["port"]))
            assert target is not None, f"the hub container has no port {port.get('targetPort')}"
            ports.append(target)
    assert ports, "no rendered Service selects the hub pod"
    return ports


def server_to_hub_problems(release: RenderedRelease, spawn: Spawn) -> list[str]:
    """The rendered NetworkPolicies must let the server open the hub's API port (behind
    the hub Service), whether KubeSpawner created the namespace or found it there."""
    problems = []
    hub = deployment_pod(release, "hub")
    cases = {
        "created by KubeSpawner": spawn.namespace_labels,
        "created beforehand by the platform": preexisting_namespace_labels(spawn),
    }
    for port in hub_service_ports(release):
        for case, namespace_labels in cases.items():
            server = server_pod(spawn, namespace_labels)
            if not connection_allowed(release.of_kind("NetworkPolicy"), server, hub, port):
                problems.append(
                    f"server in {spawn.namespace} ({case}, labels {namespace_labels}) "
                    f"may not reach hub port {port}"
                )
    return problems


def notebook_port(spawn: Spawn) -> int:
    # KubeSpawner connects to the port it gave the notebook container.
    (port,) = [p for p in server_pod(spawn).ports if p.name == "notebook-port"]
    return port.port


def to_server_problems(release: RenderedRelease, spawn: Spawn) -> list[str]:
    """The hub (API calls to the server) and the proxy (users' traffic) must reach it."""
    problems = []
    port = notebook_port(spawn)
    for source in ("hub", "proxy"):
        for case, namespace_labels in (
            ("created by KubeSpawner", spawn.namespace_labels),
            ("created beforehand by the platform", preexisting_namespace_labels(spawn)),
        ):
            server = server_pod(spawn, namespace_labels)
            if not connection_allowed(
                release.of_kind("NetworkPolicy"), deployment_pod(release, source), server, port
            ):
                problems.append(
                    f"{source} may not reach the server in {spawn.namespace} ({case}) on {port}"
                )
    return problems
