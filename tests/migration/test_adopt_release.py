"""The Helm adoption: which objects are marked, that marking only adds metadata, and that the
hub database claim (`hub-db-dir`) is neither replaced nor left to a failed install's uninstall.

Helm behaviour relied on (helm v3.19 source): `checkOwnership` wants exactly the label and two
annotations below; an adopting install patches against the rendered object, and only `--force`
replaces (pkg/kube/client.go `updateResource`); a failed atomic install uninstalls, keeping only
objects rendered with `helm.sh/resource-policy: keep` (pkg/action/install.go, resource_policy.go).
"""

from __future__ import annotations

import copy

import pytest

from tests.support.recordings import recording_for
from tools import adopt_release


@pytest.fixture(scope="module")
def dev_release() -> tuple[dict, list[dict]]:
    (release,) = recording_for("dev").of_type("kubernetes:helm.sh/v3:Release")
    inputs = release.plain_inputs
    return inputs, adopt_release.render_chart(inputs["values"], inputs["namespace"])


def test_the_objects_marked_are_the_releases(dev_release) -> None:
    _, documents = dev_release
    refs = {o.kubectl_ref for o in adopt_release.release_objects(documents, "jupyter")}
    for expected in (
        "persistentvolumeclaim/hub-db-dir",
        "deployment.apps/hub",
        "deployment.apps/proxy",
        "secret/hub",
        "configmap/hub",
        "service/proxy-public",
        "serviceaccount/hub",
        "networkpolicy.networking.k8s.io/hub",
    ):
        assert expected in refs


def test_marking_only_adds_helms_ownership_metadata(dev_release) -> None:
    _, documents = dev_release
    objects = adopt_release.release_objects(documents, "jupyter")
    commands = adopt_release.adoption_commands(objects, "eodhp-dev", "jupyter")
    assert len(commands) == 2 * len(objects)
    for command in commands:
        assert command[:5] == ["kubectl", "--context", "eodhp-dev", "-n", "jupyter"]
        assert command[5] in ("label", "annotate")
        assert command[-1] == "--overwrite"
    pvc_commands = [c for c in commands if c[6] == "persistentvolumeclaim/hub-db-dir"]
    assert [c[7:-1] for c in pvc_commands] == [
        ["app.kubernetes.io/managed-by=Helm"],
        ["meta.helm.sh/release-name=jupyterhub", "meta.helm.sh/release-namespace=jupyter"],
    ]


def test_hooks_are_not_adopted() -> None:
    documents = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "x", "annotations": {"helm.sh/hook": "test"}},
        },
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hub"}},
    ]
    assert [o.name for o in adopt_release.release_objects(documents, "jupyter")] == ["hub"]


# The claim as ArgoCD made it from the same chart: the default StorageClass admission filled in
# storageClassName, the binder the volume; the chart sets neither.
LIVE_PVC = {
    "apiVersion": "v1",
    "kind": "PersistentVolumeClaim",
    "metadata": {"name": "hub-db-dir", "namespace": "jupyter", "labels": {"app": "jupyterhub"}},
    "spec": {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
        "storageClassName": "gp2",
        "volumeMode": "Filesystem",
        "volumeName": "pvc-0b1e7c2a-5d0e-4f53-9a51-3c1f7e2d4b6a",
    },
    "status": {"phase": "Bound"},
}


def test_the_rendered_claim_is_the_running_one(dev_release) -> None:
    _, documents = dev_release
    pvc = adopt_release.hub_db_pvc(documents)
    assert pvc["metadata"]["name"] == "hub-db-dir"
    assert pvc["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
    }
    assert adopt_release.pvc_conflicts(pvc, LIVE_PVC) == []


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda s: s["resources"]["requests"].update(storage="10Gi"), "cannot shrink"),
        (lambda s: s.update(accessModes=["ReadWriteMany"]), "accessModes"),
    ],
)
def test_a_claim_the_install_would_have_to_change_is_refused(dev_release, change, expected) -> None:
    _, documents = dev_release
    live = copy.deepcopy(LIVE_PVC)
    change(live["spec"])
    problems = adopt_release.pvc_conflicts(adopt_release.hub_db_pvc(documents), live)
    assert any(expected in p for p in problems), problems


def test_storage_class_set_by_values_must_match_the_live_one() -> None:
    rendered = {"spec": {"storageClassName": "gp3", "accessModes": ["ReadWriteOnce"]}}
    assert adopt_release.pvc_conflicts(rendered, LIVE_PVC) == ["storageClassName 'gp2' -> 'gp3'"]


@pytest.fixture
def dev_program(dev_release, monkeypatch) -> None:
    """main() reads the program's release; reuse the session's recording of it."""
    inputs, _ = dev_release
    monkeypatch.setattr(
        adopt_release, "_release_from_program", lambda stack: (inputs, inputs["values"])
    )


def _steps(capsys) -> list[str]:
    assert adopt_release.main(["dev"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("# dry run")
    return [line for line in lines if not line.startswith("#")]


def test_release_never_replaces_and_the_disk_outlives_its_claim(
    dev_release, dev_program, capsys
) -> None:
    inputs, _ = dev_release
    # updateResource replaces (delete + create) only with --force.
    assert not inputs.get("forceUpdate")
    steps = _steps(capsys)
    assert all(" delete " not in s and " replace " not in s and " apply " not in s for s in steps)
    # `keep` guards only a Helm uninstall; a deleted namespace deletes the claim, and a
    # dynamically provisioned volume goes with its claim unless it is Retain: always first.
    retain = [s for s in steps if "persistentVolumeReclaimPolicy" in s]
    assert retain == [steps[0]] and '"Retain"' in steps[0]
    assert "get pvc hub-db-dir -o jsonpath='{.spec.volumeName}'" in steps[0]


def _running(documents: list[dict]) -> dict[tuple[str, str], dict]:
    """The chart's objects as the API server returns them after ArgoCD applied the same render:
    server-set fields added (ids, status, a Service's clusterIP, the claim's class and volume)."""
    live = {}
    for doc in documents:
        obj = copy.deepcopy(doc)
        obj["metadata"].update(uid="6f1c", resourceVersion="4711", namespace="jupyter")
        if obj["kind"] == "Service":
            obj["spec"].setdefault("clusterIP", "10.100.7.12")
        if obj["kind"] == "PersistentVolumeClaim":
            obj["spec"].update(storageClassName="gp2", volumeName="pvc-0b1e7c2a")
        if obj["kind"] == "Deployment":
            obj["status"] = {"replicas": 1}
        live[(obj["kind"], obj["metadata"]["name"])] = obj
    return live


def _apply(monkeypatch, live: dict[tuple[str, str], dict], capsys) -> tuple[int, list, str]:
    ran: list = []
    monkeypatch.setattr(adopt_release, "read_live", lambda ctx, o: live.get((o.kind, o.name)))
    monkeypatch.setattr(adopt_release.subprocess, "run", lambda *a, **k: ran.append(a))
    code = adopt_release.main(["dev", "--apply"])
    return code, ran, capsys.readouterr().err


def test_objects_rendered_as_the_chart_renders_them_are_adopted(
    dev_release, dev_program, monkeypatch, capsys
) -> None:
    _, documents = dev_release
    assert (
        adopt_release.adoption_refusals(
            documents, "jupyter", lambda o: _running(documents).get((o.kind, o.name))
        )
        == []
    )
    code, ran, err = _apply(monkeypatch, _running(documents), capsys)
    assert (code, err) == (0, "")
    assert len(ran) == 1 + 2 * len(adopt_release.release_objects(documents, "jupyter"))


def _edit_selector(live: dict) -> None:
    # ArgoCD's Application rendered the chart as release `jhub`: every selector says so.
    for name in ("hub", "proxy"):
        live[("Deployment", name)]["spec"]["selector"]["matchLabels"]["release"] = "jhub"


def _drop_claim(live: dict) -> None:
    del live[("PersistentVolumeClaim", "hub-db-dir")]


def _immutable_secret(live: dict) -> None:
    live[("Secret", "hub")]["immutable"] = True


@pytest.mark.parametrize(
    "edit, expected",
    [
        (
            _edit_selector,
            [
                'deployment.apps/hub: spec.selector {"matchLabels": {"app": "jupyterhub", '
                '"component": "hub", "release": "jhub"}} -> {"matchLabels": {"app": '
                '"jupyterhub", "component": "hub", "release": "jupyterhub"}}',
                "deployment.apps/proxy: spec.selector",
            ],
        ),
        (_drop_claim, ["persistentvolumeclaim/hub-db-dir: not found"]),
        (_immutable_secret, ["secret/hub: the live object is immutable: true"]),
    ],
)
def test_a_field_the_api_server_will_not_change_stops_the_adoption_before_anything_runs(
    dev_release, dev_program, monkeypatch, capsys, edit, expected
) -> None:
    _, documents = dev_release
    live = _running(documents)
    edit(live)
    code, ran, err = _apply(monkeypatch, live, capsys)
    assert (code, ran) == (1, [])
    reasons = [line.strip() for line in err.splitlines()[1:]]
    assert len(reasons) == len(expected)
    for reason, start in zip(reasons, expected, strict=True):
        assert reason.startswith(start), reason


def test_a_binding_to_another_role_is_refused() -> None:
    # The chart renders no binding with rbac.create false; the rule stays for one that does.
    rendered = {"kind": "RoleBinding", "roleRef": {"kind": "Role", "name": "hub"}}
    live = {"kind": "RoleBinding", "roleRef": {"kind": "Role", "name": "jhub-hub"}}
    assert adopt_release.immutable_conflicts(rendered, live) == [
        "roleRef {'kind': 'Role', 'name': 'jhub-hub'} -> {'kind': 'Role', 'name': 'hub'}"
    ]


def test_a_service_whose_cluster_ip_the_chart_pins_differently_is_refused() -> None:
    rendered = {"kind": "Service", "spec": {"clusterIP": "None"}}
    live = {"kind": "Service", "spec": {"clusterIP": "10.100.7.12"}}
    assert adopt_release.immutable_conflicts(rendered, live) == [
        "spec.clusterIP '10.100.7.12' -> 'None'"
    ]


def test_no_generated_secret_reaches_the_output(dev_program, capsys) -> None:
    adopt_release.main(["dev"])
    out = capsys.readouterr().out
    for secret in recording_for("dev").generated_secrets:
        assert secret not in out


def test_keep_in_the_values_is_seen(dev_release) -> None:
    inputs, _ = dev_release
    values = copy.deepcopy(inputs["values"])
    values["hub"].setdefault("db", {}).setdefault("pvc", {})["annotations"] = {
        "helm.sh/resource-policy": "keep"
    }
    documents = adopt_release.render_chart(values, "jupyter")
    assert adopt_release.kept_on_uninstall(adopt_release.hub_db_pvc(documents))
