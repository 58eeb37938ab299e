"""Cluster-wide RBAC for the hub: KubeSpawner works in per-workspace `ws-*` namespaces."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .labels import standard_labels

# Exactly what eodh_jpyauth's KubeSpawner calls: it creates the workspace namespace and PVC on
# first spawn, creates/deletes the pod, and its reflectors list+watch pods and events.
# Kubernetes RBAC cannot scope a ClusterRole to a namespace-name pattern, so the binding is
# cluster-wide; no wildcard verb or resource is granted.
SPAWNER_VERBS = ["create", "delete", "get", "list", "watch"]
HUB_RULES: list[dict[str, list[str]]] = [
    {
        "apiGroups": [""],
        "resources": ["namespaces", "persistentvolumeclaims", "pods"],
        "verbs": SPAWNER_VERBS,
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
]


@dataclass(frozen=True)
class HubRbacArgs:
    namespace: pulumi.Input[str]
    service_account: str = "hub"
    role_name: str = "hub"


class HubRbac(pulumi.ComponentResource):
    cluster_role_name: pulumi.Output[str]

    def __init__(self, name: str, args: HubRbacArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eodh:kubernetes:HubRbac", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = standard_labels("hub-rbac")
        role = k8s.rbac.v1.ClusterRole(
            f"{name}-cluster-role",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.role_name, labels=labels),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=rule["apiGroups"], resources=rule["resources"], verbs=rule["verbs"]
                )
                for rule in HUB_RULES
            ],
            opts=child,
        )
        role_name = role.metadata.apply(lambda m: m.name or args.role_name)
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-cluster-role-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.role_name, labels=labels),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io",
                kind="ClusterRole",
                name=role_name,
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(
                    kind="ServiceAccount", name=args.service_account, namespace=args.namespace
                )
            ],
            opts=child,
        )
        self.cluster_role_name = role_name
        self.register_outputs({"cluster_role_name": self.cluster_role_name})
