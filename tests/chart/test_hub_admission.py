"""Issue 18, section 3: the hub's Kubernetes powers end at ws-* namespaces.

The admission policies each stack declares (components/admission.py) are evaluated with a
real CEL engine (tests/support/admission.py) over the pod KubeSpawner really builds from
the rendered chart (tests/chart/hub_pod.py) and over hostile variants of it, as requests
from the hub's service account and from others.
"""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

from eodh_jupyterhub.offline import Recording
from tests.chart.hub_pod import RenderedRelease, Spawn, render_release, spawn_in_workspace
from tests.support.admission import Request, refusals
from tests.support.recordings import recording_for

POLICY = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
BINDING = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"
HUB = "system:serviceaccount:jupyter:hub"


def _policies(recording: Recording) -> dict[str, dict[str, Any]]:
    return {p.inputs["metadata"]["name"]: p.plain_inputs for p in recording.of_type(POLICY)}


@pytest.fixture(scope="module")
def policies() -> dict[str, dict[str, Any]]:
    return _policies(recording_for("dev"))


@pytest.fixture(scope="module")
def release() -> RenderedRelease:
    return render_release(recording_for("dev"))


@pytest.fixture(scope="module")
def spawn(release: RenderedRelease, tmp_path_factory: pytest.TempPathFactory) -> Spawn:
    return spawn_in_workspace(
        release, tmp_path_factory.mktemp("admission"), username="alice", workspace="alpha"
    )


def _decide(
    policies: dict[str, dict[str, Any]], request: Request, obj: dict[str, Any] | None = None
) -> list[str]:
    """Every refusal any policy gives; [] means admitted."""
    found: list[str] = []
    for policy in policies.values():
        found.extend(refusals(policy, request, obj) or [])
    return found


def test_every_policy_is_bound_to_deny_for_the_hub_only(recording: Recording) -> None:
    policies = _policies(recording)
    assert set(policies) == {"eodh-hub-workspaces-only", "eodh-hub-workspace-pods"}
    bindings = {
        b.plain_inputs["spec"]["policyName"]: b.plain_inputs for b in recording.of_type(BINDING)
    }
    assert set(bindings) == set(policies)
    for binding in bindings.values():
        assert binding["spec"] == {
            "policyName": binding["metadata"]["name"],
            "validationActions": ["Deny"],
        }
    for policy in policies.values():
        assert policy["spec"]["failurePolicy"] == "Fail"
        assert policy["spec"]["matchConditions"] == [
            {
                "name": "hub-service-account",
                "expression": f"request.userInfo.username == '{HUB}'",
            }
        ]


def test_the_hub_does_what_kubespawner_does_in_its_workspace(
    policies: dict[str, dict[str, Any]], spawn: Spawn
) -> None:
    namespace = spawn.namespace
    assert namespace == "ws-alpha"
    claim = {"metadata": {"name": "pvc-alpha", "namespace": namespace}, "spec": {}}
    steps = [
        (Request("CREATE", "namespaces", name=namespace), {"metadata": {"name": namespace}}),
        (Request("CREATE", "persistentvolumeclaims", namespace, "pvc-alpha"), claim),
        (Request("CREATE", "pods", namespace, "jupyter-alice"), spawn.pod),
        (Request("DELETE", "pods", namespace, "jupyter-alice"), None),
    ]
    for request, obj in steps:
        assert _decide(policies, request, obj) == [], request
    # The pod the chart makes carries the privileged metadata blocker and the hub's own
    # unprivileged one (hub/extra_config/4_workspace_homes.py); both are admitted.
    init_containers = spawn.pod["spec"]["initContainers"]
    assert [c["name"] for c in init_containers] == [
        "block-cloud-metadata",
        "eodh-home-check",
        "eodh-kernel-specs",
    ]
    for hubs_own in init_containers[1:]:
        assert "privileged" not in (hubs_own.get("securityContext") or {})
    # The home check sees the whole workspace volume, and only reads it.
    assert [m.get("readOnly") for m in init_containers[1]["volumeMounts"]] == [True]
    kubernetes_validate.validate(spawn.pod, "1.31", strict=True)


@pytest.mark.parametrize(
    "request_",
    [
        Request("CREATE", "pods", "kube-system", "x"),
        Request("CREATE", "pods", "jupyter", "x"),
        Request("DELETE", "pods", "kube-system", "coredns-1"),
        Request("CREATE", "secrets", "jupyter", "x"),
        Request("CREATE", "namespaces", name="kube-workspaces"),
        Request("DELETE", "namespaces", name="kube-system"),
        Request("CREATE", "clusterrolebindings", name="x", group="rbac.authorization.k8s.io"),
        Request("CONNECT", "pods", "kube-system", "etcd", subresource="exec"),
        Request("CREATE", "persistentvolumeclaims", "jupyter", "hub-db-dir"),
        # A namespace whose name merely contains the prefix.
        Request("CREATE", "pods", "not-ws-alpha", "x"),
    ],
    ids=lambda r: f"{r.operation}-{r.resource}-{r.namespace or r.name}",
)
def test_the_hub_is_refused_outside_workspace_namespaces(
    policies: dict[str, dict[str, Any]], spawn: Spawn, request_: Request
) -> None:
    obj = spawn.pod if request_.resource == "pods" and request_.operation == "CREATE" else None
    assert "the hub may only act inside ws-* workspace namespaces" in _decide(
        policies, request_, obj
    )
    # The same request from anyone else is not this policy's business.
    other = Request(**{**request_.__dict__, "username": "system:serviceaccount:kube-system:x"})
    assert _decide(policies, other, obj) == []


def _hostile(pod: dict[str, Any], change: str) -> dict[str, Any]:
    pod = copy.deepcopy(pod)
    spec = pod["spec"]
    notebook = spec["containers"][0]
    blocker = spec["initContainers"][0]
    if change == "hostNetwork":
        spec["hostNetwork"] = True
    elif change == "hostPID":
        spec["hostPID"] = True
    elif change == "hostIPC":
        spec["hostIPC"] = True
    elif change == "hostPath":
        spec["volumes"].append({"name": "root", "hostPath": {"path": "/"}})
    elif change == "token-mounted":
        spec["automountServiceAccountToken"] = True
    elif change == "token-by-default":
        del spec["automountServiceAccountToken"]
    elif change == "projected-token":
        spec["volumes"].append(
            {
                "name": "token",
                "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]},
            }
        )
    elif change == "privileged-notebook":
        notebook["securityContext"]["privileged"] = True
    elif change == "capabilities-notebook":
        notebook["securityContext"]["capabilities"] = {"add": ["SYS_ADMIN"]}
    elif change == "blocker-other-command":
        blocker["command"] = ["sh", "-c", "chroot /host"]
    elif change == "blocker-extra-args":
        blocker["args"] = ["--jump", "ACCEPT"]
    elif change == "blocker-other-image":
        blocker["image"] = "docker.io/attacker/k8s-network-tools:1"
    elif change == "privileged-init":
        spec["initContainers"].append({**blocker, "name": "second"})
    elif change == "privileged-ephemeral":
        spec["ephemeralContainers"] = [
            {"name": "debug", "image": "busybox", "securityContext": {"privileged": True}}
        ]
    else:
        raise AssertionError(change)
    return pod


HOSTILE = {
    "hostNetwork": "network, PID or IPC",
    "hostPID": "network, PID or IPC",
    "hostIPC": "network, PID or IPC",
    "hostPath": "hostPath",
    "token-mounted": "automountServiceAccountToken",
    "token-by-default": "automountServiceAccountToken",
    "projected-token": "service account token",
    "privileged-notebook": "privileged containers",
    "capabilities-notebook": "containers may not add capabilities",
    "blocker-other-command": "privileged initContainers",
    "blocker-extra-args": "privileged initContainers",
    "blocker-other-image": "privileged initContainers",
    "privileged-init": "privileged initContainers",
    "privileged-ephemeral": "privileged ephemeralContainers",
}


@pytest.mark.parametrize("change", sorted(HOSTILE))
def test_hostile_pods_are_refused_in_workspaces(
    policies: dict[str, dict[str, Any]], spawn: Spawn, change: str
) -> None:
    pod = _hostile(spawn.pod, change)
    request = Request("CREATE", "pods", "ws-alpha", "jupyter-alice")
    found = _decide(policies, request, pod)
    assert any(HOSTILE[change] in message for message in found), found
    # No expression errored: each refusal is the rule's own, not a missing guard.
    assert not [m for m in found if "expression error" in m]


def test_ephemeral_containers_are_checked_on_their_subresource(
    policies: dict[str, dict[str, Any]], spawn: Spawn
) -> None:
    request = Request(
        "UPDATE", "pods", "ws-alpha", "jupyter-alice", subresource="ephemeralcontainers"
    )
    assert _decide(policies, request, spawn.pod) == []
    found = _decide(policies, request, _hostile(spawn.pod, "privileged-ephemeral"))
    assert "workspace pods may not run privileged ephemeralContainers" in found


def test_a_minimal_pod_needs_no_optional_field(policies: dict[str, dict[str, Any]]) -> None:
    # Every optional field absent: the guards must hold without them (an unguarded read
    # errors, and an error under failurePolicy Fail refuses).
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"automountServiceAccountToken": False, "containers": [{"name": "c"}]},
    }
    assert _decide(policies, Request("CREATE", "pods", "ws-alpha", "p"), pod) == []


def test_the_chart_grants_the_hub_nothing_in_its_own_namespace(release: RenderedRelease) -> None:
    # z2jh's hub Role would grant Secrets (the TLS key among them) in the release namespace;
    # tests/program/test_hub_rbac.py runs KubeSpawner's whole lifecycle on the ClusterRole alone.
    kinds = {m["kind"] for m in release.manifests}
    assert not kinds & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}, kinds
    (account,) = release.of_kind("ServiceAccount")
    assert account["metadata"]["name"] == "hub"
