"""Just enough of Kubernetes to ask "can this pod reach that one?" of rendered manifests.

Each rule here follows the Kubernetes documentation and API reference, not the chart:
- Label selectors (API reference, meta/v1 LabelSelector): matchLabels and matchExpressions
  are ANDed; an empty selector selects everything; ``NotIn`` and ``DoesNotExist`` also
  select objects that lack the key.
- NetworkPolicy (concepts/services-networking/network-policies, "Behavior of to and from
  selectors"): a peer with only ``podSelector`` selects pods in the policy's own namespace;
  only ``namespaceSelector`` selects every pod of matching namespaces; both in one peer
  select matching pods in matching namespaces. Peers of one rule are ORed, a rule needs a
  matching peer and a matching port, and a missing or empty ``from``/``to`` or ``ports``
  matches everything. A pod is isolated in one direction once any policy of its namespace
  selects it with that policy type (``policyTypes`` defaults to Ingress, plus Egress when
  the policy has egress rules); an isolated pod takes only what some rule allows. A
  connection needs both the source's egress and the destination's ingress.
- ``ipBlock`` peers are never taken to match a pod: the same page says they "should be
  cluster-external IPs, since Pod IPs are ephemeral and unpredictable", and whether they
  apply to pod traffic is left to the network plugin. Pod-to-pod access proven here holds
  on any plugin.
- A named port in a rule names a container port of the destination pod (the policy's own
  pod for ingress, the peer for egress); ``protocol`` defaults to TCP; ``endPort`` makes a
  numeric port a range.
- Cluster DNS (kubernetes/dns docs/specification.md, and the kubelet's resolv.conf for
  dnsPolicy ClusterFirst): a Service has the name ``<service>.<namespace>.svc.<zone>``;
  a pod's search list is ``<its namespace>.svc.<zone> svc.<zone> <zone>`` with ndots:5.
- Service environment variables (concepts/services-networking/service, "Environment
  variables"): the kubelet gives every container ``{SVC}_SERVICE_HOST`` and
  ``{SVC}_SERVICE_PORT`` (the first port; plus ``{SVC}_SERVICE_PORT_{PORT NAME}``) for each
  Service of its namespace, the name upper-cased with dashes turned into underscores.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

CLUSTER_ZONE = "cluster.local"
NDOTS = 5


@dataclass(frozen=True)
class ContainerPort:
    port: int
    name: str | None = None
    protocol: str = "TCP"


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: Mapping[str, str]
    namespace_labels: Mapping[str, str]
    ports: tuple[ContainerPort, ...] = field(default_factory=tuple)

    def resolve_port(self, port: int | str) -> int | None:
        if isinstance(port, int):
            return port
        named = [p.port for p in self.ports if p.name == port]
        return named[0] if named else None


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """meta/v1 LabelSelector semantics. None (field absent) is decided by the caller."""
    selector = selector or {}
    unknown = set(selector) - {"matchLabels", "matchExpressions"}
    if unknown:
        raise ValueError(f"not a LabelSelector field: {sorted(unknown)}")
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != str(value):
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = [str(v) for v in expression.get("values") or []]
        if operator == "In":
            if not values:
                raise ValueError(f"In needs values: {expression}")
            if labels.get(key) not in values:
                return False
        elif operator == "NotIn":
            if not values:
                raise ValueError(f"NotIn needs values: {expression}")
            if key in labels and labels[key] in values:
                return False
        elif operator == "Exists":
            if values:
                raise ValueError(f"Exists takes no values: {expression}")
            if key not in labels:
                return False
        elif operator == "DoesNotExist":
            if values:
                raise ValueError(f"DoesNotExist takes no values: {expression}")
            if key in labels:
                return False
        else:
            raise ValueError(f"unknown selector operator {operator!r}")
    return True


def peer_matches(peer: Mapping[str, Any], policy_namespace: str, pod: Pod) -> bool:
    """One NetworkPolicyPeer of a policy living in ``policy_namespace``."""
    unknown = set(peer) - {"podSelector", "namespaceSelector", "ipBlock"}
    if unknown:
        raise ValueError(f"not a NetworkPolicyPeer field: {sorted(unknown)}")
    if "ipBlock" in peer:
        if "podSelector" in peer or "namespaceSelector" in peer:
            raise ValueError("ipBlock cannot be combined with selectors in one peer")
        return False
    if "podSelector" not in peer and "namespaceSelector" not in peer:
        raise ValueError("an empty NetworkPolicyPeer is invalid")
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], pod.namespace_labels):
            return False
    elif pod.namespace != policy_namespace:
        # podSelector alone: the policy's own namespace only.
        return False
    return "podSelector" not in peer or selector_matches(peer["podSelector"], pod.labels)


def port_matches(rule_ports: Iterable[Mapping[str, Any]] | None, port: int, target: Pod) -> bool:
    """Does a rule's ``ports`` admit TCP ``port`` on ``target`` (the destination pod)?"""
    rule_ports = list(rule_ports or [])
    if not rule_ports:
        return True
    for entry in rule_ports:
        if entry.get("protocol", "TCP") != "TCP":
            continue
        if "port" not in entry:
            return True
        raw = entry["port"]
        number = target.resolve_port(int(raw) if isinstance(raw, int | float) else raw)
        if number is None:
            continue
        end = entry.get("endPort")
        if end is not None and not isinstance(raw, int | float):
            raise ValueError("endPort needs a numeric port")
        if number <= port <= (int(end) if end is not None else number):
            return True
    return False


def _policy_types(policy: Mapping[str, Any]) -> list[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return list(spec["policyTypes"])
    return ["Ingress", *(["Egress"] if "egress" in spec else [])]


def _selecting(policies: Iterable[Mapping[str, Any]], pod: Pod, direction: str):
    for policy in policies:
        if policy.get("kind") != "NetworkPolicy":
            continue
        if policy["metadata"]["namespace"] != pod.namespace:
            continue
        if direction not in _policy_types(policy):
            continue
        if selector_matches(policy["spec"]["podSelector"], pod.labels):
            yield policy


def ingress_allowed(
    policies: Iterable[Mapping[str, Any]], source: Pod, target: Pod, port: int
) -> bool:
    selecting = list(_selecting(policies, target, "Ingress"))
    if not selecting:
        return True
    for policy in selecting:
        namespace = policy["metadata"]["namespace"]
        for rule in policy["spec"].get("ingress") or []:
            peers = rule.get("from") or []
            if (not peers or any(peer_matches(p, namespace, source) for p in peers)) and (
                port_matches(rule.get("ports"), port, target)
            ):
                return True
    return False


def egress_allowed(
    policies: Iterable[Mapping[str, Any]], source: Pod, target: Pod, port: int
) -> bool:
    selecting = list(_selecting(policies, source, "Egress"))
    if not selecting:
        return True
    for policy in selecting:
        namespace = policy["metadata"]["namespace"]
        for rule in policy["spec"].get("egress") or []:
            peers = rule.get("to") or []
            if (not peers or any(peer_matches(p, namespace, target) for p in peers)) and (
                port_matches(rule.get("ports"), port, target)
            ):
                return True
    return False


def connection_allowed(
    policies: Iterable[Mapping[str, Any]], source: Pod, target: Pod, port: int
) -> bool:
    policies = list(policies)
    return egress_allowed(policies, source, target, port) and ingress_allowed(
        policies, source, target, port
    )


def resolve_service(
    host: str, client_namespace: str, services: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The Service a pod in ``client_namespace`` reaches by ``host``, or None (NXDOMAIN)."""
    records = {
        f"{s['metadata']['name']}.{s['metadata']['namespace']}.svc.{CLUSTER_ZONE}": s
        for s in services
        if s.get("kind") == "Service"
    }
    if host.endswith("."):
        candidates = [host[:-1]]
    else:
        search = [f"{client_namespace}.svc.{CLUSTER_ZONE}", f"svc.{CLUSTER_ZONE}", CLUSTER_ZONE]
        expanded = [f"{host}.{domain}" for domain in search]
        candidates = [*expanded, host] if host.count(".") < NDOTS else [host, *expanded]
    for name in candidates:
        if name in records:
            return records[name]
    return None


def service_link_env(services: Iterable[Mapping[str, Any]], namespace: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for index, service in enumerate(
        s
        for s in services
        if s.get("kind") == "Service" and s["metadata"]["namespace"] == namespace
    ):
        prefix = service["metadata"]["name"].upper().replace("-", "_")
        ports = service["spec"].get("ports") or []
        # Services rendered offline have no cluster IP yet; any address stands in.
        env[f"{prefix}_SERVICE_HOST"] = f"10.100.0.{index + 1}"
        if ports:
            env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for port in ports:
            if port.get("name"):
                suffix = port["name"].upper().replace("-", "_")
                env[f"{prefix}_SERVICE_PORT_{suffix}"] = str(port["port"])
    return env
