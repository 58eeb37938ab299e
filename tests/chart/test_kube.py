"""The small Kubernetes model in tests/chart/kube.py against the documented behaviour.

The cases are the ones Kubernetes' NetworkPolicy page spells out ("Behavior of to and
from selectors", the role=client / user=alice example, default isolation), the
LabelSelector operators of the API reference, and the DNS names of kubernetes/dns'
specification, so a wrong model fails here before it can pass a chart check.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.kube import (
    ContainerPort,
    Pod,
    connection_allowed,
    egress_allowed,
    ingress_allowed,
    peer_matches,
    port_matches,
    resolve_service,
    selector_matches,
    service_link_env,
)


def pod(namespace: str, ns_labels: dict[str, str] | None = None, **labels: str) -> Pod:
    return Pod(
        namespace=namespace,
        labels=labels,
        namespace_labels={"kubernetes.io/metadata.name": namespace, **(ns_labels or {})},
        ports=(ContainerPort(8081, "http"), ContainerPort(8888, "notebook-port")),
    )


def policy(namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": namespace},
        "spec": {"podSelector": {}, **spec},
    }


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchLabels": {"a": "1", "b": "2"}}, {"a": "1"}, False),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
            {"a": "2"},
            True,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
        # NotIn and DoesNotExist select objects without the key.
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {"a": "1"},
            False,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "x"}, False),
        # matchLabels and matchExpressions are ANDed.
        (
            {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]},
            {"a": "1"},
            False,
        ),
    ],
)
def test_label_selectors(selector: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert selector_matches(selector, labels) is expected


def test_label_selector_refuses_what_the_api_refuses() -> None:
    for bad in (
        {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
        {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
        {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]},
        {"matchLabel": {"a": "1"}},
    ):
        with pytest.raises(ValueError):
            selector_matches(bad, {"a": "1"})


def test_peers_follow_the_documented_to_and_from_rules() -> None:
    client_here = pod("prod", role="client")
    client_elsewhere = pod("other", role="client")
    alice_elsewhere = pod("other", {"user": "alice"}, role="client")
    # podSelector alone: pods of the policy's own namespace only.
    only_pods = {"podSelector": {"matchLabels": {"role": "client"}}}
    assert peer_matches(only_pods, "prod", client_here)
    assert not peer_matches(only_pods, "prod", client_elsewhere)
    # One peer with both selectors: matching pods in matching namespaces (AND).
    both = {
        "namespaceSelector": {"matchLabels": {"user": "alice"}},
        "podSelector": {"matchLabels": {"role": "client"}},
    }
    assert peer_matches(both, "prod", alice_elsewhere)
    assert not peer_matches(both, "prod", client_here)
    # namespaceSelector {} with a podSelector: labelled pods in every namespace.
    anywhere = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"role": "client"}}}
    assert peer_matches(anywhere, "prod", client_elsewhere)
    # ipBlock never stands for a pod.
    assert not peer_matches({"ipBlock": {"cidr": "0.0.0.0/0"}}, "prod", client_here)
    with pytest.raises(ValueError):
        peer_matches({}, "prod", client_here)


def test_two_peers_are_ored_and_isolation_needs_a_selecting_policy() -> None:
    target = pod("prod", app="db")
    # The documentation's example: two peers, either admits.
    policies = [
        policy(
            "prod",
            {
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {"namespaceSelector": {"matchLabels": {"user": "alice"}}},
                            {"podSelector": {"matchLabels": {"role": "client"}}},
                        ]
                    }
                ],
            },
        )
    ]
    assert ingress_allowed(policies, pod("other", {"user": "alice"}), target, 8081)
    assert ingress_allowed(policies, pod("prod", role="client"), target, 8081)
    assert not ingress_allowed(policies, pod("other", role="client"), target, 8081)
    # No policy selects pods of another namespace: they are not isolated.
    assert ingress_allowed(policies, pod("other"), pod("elsewhere"), 8081)
    # A selecting policy with no rules isolates (default deny); no from/ports admits all.
    assert not ingress_allowed([policy("prod", {"policyTypes": ["Ingress"]})], pod("x"), target, 1)
    assert ingress_allowed([policy("prod", {"ingress": [{}]})], pod("x"), target, 1)


def test_policy_types_default_and_both_ends_must_allow() -> None:
    source, target = pod("a", app="hub"), pod("b", app="server")
    # Without policyTypes an egress section makes the policy an Egress policy too.
    deny_egress = policy("a", {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]})
    assert not egress_allowed([deny_egress], source, target, 8888)
    ingress_only = policy("a", {"ingress": []})
    assert egress_allowed([ingress_only], source, target, 8888)
    deny_ingress = policy("b", {"policyTypes": ["Ingress"]})
    assert egress_allowed([deny_ingress], source, target, 8888)
    assert not connection_allowed([deny_ingress], source, target, 8888)


def test_ports_named_numbered_and_ranges() -> None:
    target = pod("a")
    assert port_matches(None, 8081, target)
    assert port_matches([{"port": "http"}], 8081, target)
    assert not port_matches([{"port": "http"}], 8888, target)
    assert not port_matches([{"port": "no-such-port"}], 8081, target)
    assert port_matches([{"port": 8000, "endPort": 9000}], 8888, target)
    assert not port_matches([{"port": 8888, "protocol": "UDP"}], 8888, target)
    assert port_matches([{"protocol": "TCP"}], 1, target)


def test_cluster_dns_names() -> None:
    services = [
        {"kind": "Service", "metadata": {"name": "hub", "namespace": "jupyter"}},
        {"kind": "Service", "metadata": {"name": "proxy-api", "namespace": "jupyter"}},
    ]

    def resolved(host: str, namespace: str) -> str | None:
        found = resolve_service(host, namespace, services)
        return None if found is None else found["metadata"]["namespace"]

    assert resolved("hub", "jupyter") == "jupyter"
    assert resolved("hub", "ws-alpha") is None
    assert resolved("hub.jupyter", "ws-alpha") == "jupyter"
    assert resolved("hub.jupyter.svc", "ws-alpha") == "jupyter"
    assert resolved("hub.jupyter.svc.cluster.local", "ws-alpha") == "jupyter"
    assert resolved("hub.jupyter.svc.cluster.local.", "ws-alpha") == "jupyter"
    assert resolved("hub.", "jupyter") is None
    assert resolved("hub.ws-alpha.svc.cluster.local", "jupyter") is None


def test_service_link_variables() -> None:
    services = [
        {
            "kind": "Service",
            "metadata": {"name": "proxy-api", "namespace": "jupyter"},
            "spec": {"ports": [{"name": "http-api", "port": 8001}, {"port": 9}]},
        },
        {
            "kind": "Service",
            "metadata": {"name": "other", "namespace": "elsewhere"},
            "spec": {"ports": [{"port": 1}]},
        },
    ]
    env = service_link_env(services, "jupyter")
    assert env["PROXY_API_SERVICE_PORT"] == "8001"
    assert env["PROXY_API_SERVICE_PORT_HTTP_API"] == "8001"
    assert "PROXY_API_SERVICE_HOST" in env
    assert not [k for k in env if k.startswith("OTHER_")]
