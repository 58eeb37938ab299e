"""Admission policies that end the hub's Kubernetes powers at the workspace namespaces.

RBAC cannot scope the hub's ClusterRole to a namespace-name pattern (components/rbac.py),
so a stolen hub token could create pods in any namespace, kube-system included. A
ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, GA in Kubernetes 1.30; the
API server evaluates its CEL in-process, no webhook to run) closes that gap:

- ``workspaces-only``: every write the hub's service account makes (any resource, any
  verb the admission chain sees: create, update, delete, connect) must be inside a ``ws-*``
  namespace, or be the creation of such a namespace. KubeSpawner with
  enable_user_namespaces (hub/extra_config/3_configure_spawner.py) writes nothing in the
  hub's own namespace: its pods, claims and namespaces are all ``ws-*``. Reads (get, list,
  watch: the reflectors) never pass admission; RBAC alone governs them.
- ``workspace-pods``: a pod the hub creates may not reach the node: no privileged
  container, no hostPath volume, no host network/PID/IPC namespace, no added capabilities,
  and no service-account token (automountServiceAccountToken explicitly false, no
  projected token volume). The one exception is the chart's own cloud-metadata blocker,
  an init container the chart makes privileged to run one fixed iptables rule
  (vendor/jupyterhub-4.2.0/files/hub/jupyterhub_config.py l. 431-463,
  singleuser.cloudMetadata.blockWithIptables): it is allowed only in exactly that shape.
  The chart's singleuser NetworkPolicy lives in the release namespace and so does not
  cover servers in ws-*; that init container is what keeps them off the node's metadata
  service (and its instance role).

Each field the expressions read is guarded with ``has()``: the API server's typed CEL
errors on an absent field, and an error with failurePolicy Fail refuses the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from .labels import standard_labels

WORKSPACE_NAMESPACE_PREFIX = "ws-"
API_VERSION = "admissionregistration.k8s.io/v1"
BOUNDARY_POLICY = "eodh-hub-workspaces-only"
POD_POLICY = "eodh-hub-workspace-pods"

# The chart's metadata blocker, as its jupyterhub_config.py builds it (l. 439-461) with
# singleuser.cloudMetadata.ip at its default. Its image is singleuser.networkTools.image.
METADATA_BLOCKER_NAME = "block-cloud-metadata"
METADATA_BLOCKER_IMAGE = "quay.io/jupyterhub/k8s-network-tools:"
METADATA_BLOCKER_COMMAND = (
    "iptables",
    "--append",
    "OUTPUT",
    "--protocol",
    "tcp",
    "--destination",
    "169.254.169.254",
    "--destination-port",
    "80",
    "--jump",
    "DROP",
)

# Pod fields that hold containers; each has its own type in the API server's CEL type
# checker (Container, EphemeralContainer), so each gets its own expression.
CONTAINER_FIELDS = ("containers", "initContainers", "ephemeralContainers")


def hub_username(namespace: str, service_account: str) -> str:
    """The user name the API server gives a service account's requests."""
    return f"system:serviceaccount:{namespace}:{service_account}"


def _cel_string(value: str) -> str:
    if "'" in value or "\\" in value:
        raise ValueError(f"not a plain CEL string: {value!r}")
    return f"'{value}'"


def hub_match_condition(namespace: str, service_account: str) -> dict[str, str]:
    return {
        "name": "hub-service-account",
        "expression": "request.userInfo.username == "
        + _cel_string(hub_username(namespace, service_account)),
    }


def _flag_off(path: str) -> str:
    return f"!(has({path}) && {path} == true)"


def _metadata_blocker(container: str) -> str:
    command = ", ".join(_cel_string(part) for part in METADATA_BLOCKER_COMMAND)
    return (
        f"({container}.name == {_cel_string(METADATA_BLOCKER_NAME)}"
        f" && {container}.image.startsWith({_cel_string(METADATA_BLOCKER_IMAGE)})"
        f" && has({container}.command) && {container}.command == [{command}]"
        f" && !has({container}.args))"
    )


def _every_container(field: str, condition: str) -> str:
    return f"!has(object.spec.{field}) || object.spec.{field}.all(c, {condition})"


def _container_rule(field: str, condition: str) -> str:
    if field == "initContainers":
        condition = f"{condition} || {_metadata_blocker('c')}"
    return _every_container(field, condition)


NOT_PRIVILEGED = (
    "!has(c.securityContext) || !has(c.securityContext.privileged)"
    " || c.securityContext.privileged == false"
)
NO_ADDED_CAPABILITIES = (
    "!has(c.securityContext) || !has(c.securityContext.capabilities)"
    " || !has(c.securityContext.capabilities.add)"
    " || size(c.securityContext.capabilities.add) == 0"
)


def pod_validations() -> list[dict[str, str]]:
    """Each refusal with its own message, so a refused spawn says what was wrong."""
    validations = [
        {
            "expression": " && ".join(
                _flag_off(f"object.spec.{flag}") for flag in ("hostNetwork", "hostPID", "hostIPC")
            ),
            "message": "workspace pods may not share the node's network, PID or IPC namespace",
        },
        {
            "expression": "!has(object.spec.volumes)"
            " || object.spec.volumes.all(v, !has(v.hostPath))",
            "message": "workspace pods may not mount hostPath volumes",
        },
        {
            "expression": "has(object.spec.automountServiceAccountToken)"
            " && object.spec.automountServiceAccountToken == false",
            "message": "workspace pods must set automountServiceAccountToken: false",
        },
        {
            "expression": "!has(object.spec.volumes) || object.spec.volumes.all(v,"
            " !has(v.projected) || !has(v.projected.sources)"
            " || v.projected.sources.all(s, !has(s.serviceAccountToken)))",
            "message": "workspace pods may not mount a service account token",
        },
    ]
    for field in CONTAINER_FIELDS:
        validations.append(
            {
                "expression": _container_rule(field, NOT_PRIVILEGED),
                "message": f"workspace pods may not run privileged {field}",
            }
        )
        validations.append(
            {
                "expression": _container_rule(field, NO_ADDED_CAPABILITIES),
                "message": f"workspace pods' {field} may not add capabilities",
            }
        )
    for validation in validations:
        validation["reason"] = "Forbidden"
    return validations


BOUNDARY_VALIDATION = {
    # A Namespace is cluster-scoped: its own name decides. Everything else must be inside
    # a ws-* namespace; a cluster-scoped object (request.namespace "") never is.
    "expression": "request.resource.group == '' && request.resource.resource == 'namespaces'"
    f" ? request.name.startsWith({_cel_string(WORKSPACE_NAMESPACE_PREFIX)})"
    f" : request.namespace.startsWith({_cel_string(WORKSPACE_NAMESPACE_PREFIX)})",
    "message": "the hub may only act inside ws-* workspace namespaces",
    "reason": "Forbidden",
}


def boundary_policy_spec(match_condition: Any) -> dict[str, Any]:
    return {
        "failurePolicy": "Fail",
        "matchConstraints": {
            # "*/*": every resource and every subresource (pods/exec, pods/eviction, ...).
            "resourceRules": [
                {
                    "apiGroups": ["*"],
                    "apiVersions": ["*"],
                    "operations": ["*"],
                    "resources": ["*/*"],
                }
            ]
        },
        "matchConditions": [match_condition],
        "validations": [dict(BOUNDARY_VALIDATION)],
    }


def pod_policy_spec(match_condition: Any) -> dict[str, Any]:
    return {
        "failurePolicy": "Fail",
        "matchConstraints": {
            # Ephemeral containers arrive as an update of this subresource, with the Pod.
            "resourceRules": [
                {
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": ["pods", "pods/ephemeralcontainers"],
                }
            ]
        },
        "matchConditions": [match_condition],
        "validations": pod_validations(),
    }


POLICY_SPECS = {BOUNDARY_POLICY: boundary_policy_spec, POD_POLICY: pod_policy_spec}


def _bound_name(
    policy: k8s.admissionregistration.v1.ValidatingAdmissionPolicy, fallback: str
) -> pulumi.Output[str]:
    # Through the policy's output, so the binding waits for the policy it names.
    return policy.metadata.apply(lambda metadata: metadata.name or fallback)


@dataclass(frozen=True)
class HubAdmissionArgs:
    # The hub's namespace: part of its service account's user name.
    namespace: pulumi.Input[str]
    service_account: str = "hub"


class HubAdmission(pulumi.ComponentResource):
    policy_names: list[str]

    def __init__(
        self, name: str, args: HubAdmissionArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("eodh:kubernetes:HubAdmission", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = standard_labels("hub-admission")
        condition = pulumi.Output.from_input(args.namespace).apply(
            lambda namespace: hub_match_condition(namespace, args.service_account)
        )
        for policy_name, spec in POLICY_SPECS.items():
            short = policy_name.removeprefix("eodh-hub-")
            policy = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
                f"{name}-{short}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=policy_name, labels=labels),
                # API-shaped (camelCase) dicts, passed through as written: the tests
                # evaluate exactly what is deployed.
                spec=cast(Any, spec(condition)),
                opts=child,
            )
            # Without a binding a policy does nothing; Deny refuses the request.
            k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
                f"{name}-{short}-binding",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=policy_name, labels=labels),
                spec=cast(
                    Any,
                    {
                        "policyName": _bound_name(policy, policy_name),
                        "validationActions": ["Deny"],
                    },
                ),
                opts=child,
            )
        self.policy_names = list(POLICY_SPECS)
        self.register_outputs({"policy_names": self.policy_names})
