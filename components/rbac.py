"""Cluster-wide RBAC for the hub: KubeSpawner works in per-workspace `ws-*` namespaces."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .labels import standard_labels

# Exactly the calls KubeSpawner 7.1.0 makes (kubespawner/spawner.py, reflector.py) with this
# hub's settings: enable_user_namespaces, events on, storage_pvc_ensure, delete_pvc off,
# no internal_ssl and no services_enabled (so no Secrets or Services).
# - namespaces: `create` only. `_ensure_namespace` calls create_namespace and treats 409 as
#   "exists"; nothing reads, lists or deletes a namespace. A stolen hub token can therefore
#   create namespaces but never delete one (kube-system included).
# - pods: `create` (`_make_create_pod_request`: create_namespaced_pod), `delete`
#   (`_make_delete_pod_request`, from `stop` and from a 409 on create), `list` and `watch`
#   (the pod reflector: list_pod_for_all_namespaces, then a watch on it). Nothing calls
#   read_namespaced_pod: the reflector's cache answers `poll`.
# - persistentvolumeclaims: `create` (`_make_create_pvc_request`; 409 = exists) and `get`
#   (read_namespaced_persistent_volume_claim after a 403 on create, which a ResourceQuota
#   gives even when the claim exists; also `_check_pvc_exists` for pre-7 state). No `delete`:
#   only `delete_forever` deletes a claim, and only with delete_pvc on; pvc-{workspace} is
#   the whole workspace's home, so the API refuses it even if that setting is turned back on.
# - events: `list` and `watch` (the event reflector: list_event_for_all_namespaces).
# Kubernetes RBAC cannot scope a ClusterRole to a namespace-name pattern, so the binding is
# cluster-wide; no wildcard verb or resource is granted. components/admission.py refuses
# every write of this account outside ws-* and any pod that could reach the node. The
# chart's own namespaced Role is off (helm_values: rbac.create false).
HUB_RULES: list[dict[str, list[str]]] = [
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete", "list", "watch"]},
    {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["create", "get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list", "watch"]},
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
