"""Hand the chart's objects ArgoCD applied to the Helm release the first `pulumi up` installs.

    python -m tools.adopt_release dev                 # prints the commands (dry run)
    python -m tools.adopt_release dev --apply         # runs them with kubectl

Helm installs over an existing object only when it carries the label
`app.kubernetes.io/managed-by=Helm` and the annotations `meta.helm.sh/release-name` and
`meta.helm.sh/release-namespace` of this release; otherwise the install stops with "exists and
cannot be imported into the current release" (helm v3 pkg/action/validate.go
`existingResourceConflict`/`checkOwnership`). The objects to mark are the vendored chart
rendered with the stack's own values (Helm's engine, helm-python-sdk), so the list is exactly
what the release will claim. Marking only adds metadata: no object is replaced or deleted.

The hub database (PVC `hub-db-dir`): the adopting install patches it with the chart's own
fields, computed against the rendered object (pkg/kube/client.go `update`/`createPatch`), so
fields only the live object has stay. The program renders it with `helm.sh/resource-policy:
keep`, which a failed atomic install's uninstall honours (pkg/action/install.go `failRelease`,
pkg/action/resource_policy.go). Nothing in Helm guards it from a deleted namespace, though, and
a dynamically provisioned volume is deleted with its claim (reclaim policy `Delete`, the
default of every StorageClass): the volume's reclaim policy is set to Retain first, always, so
the disk outlives its claim whatever deletes the claim.

Immutable fields: the adopting install's patch sets every rendered field, and the API server
refuses a change to a workload's `spec.selector` (pkg/registry/apps/deployment/strategy.go,
daemonset/strategy.go, statefulset/strategy.go `ValidateUpdate`, apps/v1), a binding's
`roleRef` (pkg/apis/rbac/validation/validation.go `ValidateRoleBindingUpdate`), a Service's
`clusterIP` (pkg/apis/core/validation `ValidateServiceUpdate`), the data of a Secret or
ConfigMap marked `immutable` and most of a bound claim's spec. The chart's selectors carry
`release: <release name>`, so objects ArgoCD rendered under another release name differ. A
refused patch fails the install, and the atomic install then uninstalls the release: the hub is
down. `--apply` therefore reads each live object first and refuses, naming every field, before
it changes anything.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RELEASE_NAME = "jupyterhub"
HUB_DB_PVC = "hub-db-dir"
MANAGED_BY = ("app.kubernetes.io/managed-by", "Helm")
RELEASE_NAME_ANNOTATION = "meta.helm.sh/release-name"
RELEASE_NAMESPACE_ANNOTATION = "meta.helm.sh/release-namespace"
KEEP = ("helm.sh/resource-policy", "keep")


@dataclass(frozen=True)
class ChartObject:
    api_version: str
    kind: str
    name: str
    namespace: str | None

    @property
    def kubectl_ref(self) -> str:
        group = self.api_version.rsplit("/", 1)[0] if "/" in self.api_version else ""
        return f"{self.kind.lower()}{'.' + group if group else ''}/{self.name}"


def render_chart(values: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    from eodh_jupyterhub.schemas import render_z2jh_chart

    return render_z2jh_chart(values, RELEASE_NAME, namespace)


def release_objects(documents: list[dict[str, Any]], namespace: str) -> list[ChartObject]:
    """What the release's manifest holds; hooks are not part of it (Helm runs them apart)."""
    from eodh_jupyterhub.schemas import CLUSTER_SCOPED_KINDS

    objects = []
    for doc in documents:
        if _is_hook(doc):
            continue
        meta = doc.get("metadata") or {}
        scope = None if doc["kind"] in CLUSTER_SCOPED_KINDS else meta.get("namespace") or namespace
        objects.append(ChartObject(doc["apiVersion"], doc["kind"], meta["name"], scope))
    return objects


def _is_hook(doc: dict[str, Any]) -> bool:
    return "helm.sh/hook" in ((doc.get("metadata") or {}).get("annotations") or {})


def adoption_commands(objects: list[ChartObject], context: str, namespace: str) -> list[list[str]]:
    """Only `kubectl label` and `kubectl annotate`: metadata is added, nothing else changes."""
    commands = []
    for obj in objects:
        scope = ["-n", obj.namespace] if obj.namespace else []
        base = ["kubectl", "--context", context, *scope]
        commands.append(
            [*base, "label", obj.kubectl_ref, f"{MANAGED_BY[0]}={MANAGED_BY[1]}", "--overwrite"]
        )
        commands.append(
            [
                *base,
                "annotate",
                obj.kubectl_ref,
                f"{RELEASE_NAME_ANNOTATION}={RELEASE_NAME}",
                f"{RELEASE_NAMESPACE_ANNOTATION}={namespace}",
                "--overwrite",
            ]
        )
    return commands


def hub_db_pvc(documents: list[dict[str, Any]]) -> dict[str, Any]:
    pvcs = [
        d
        for d in documents
        if d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] == HUB_DB_PVC
    ]
    if len(pvcs) != 1:
        raise ValueError(f"the chart renders {len(pvcs)} PVCs named {HUB_DB_PVC}")
    return pvcs[0]


def kept_on_uninstall(pvc: dict[str, Any]) -> bool:
    annotations = pvc["metadata"].get("annotations") or {}
    return str(annotations.get(KEEP[0], "")).strip().lower() == KEEP[1]


_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 10**3, "M": 10**6, "G": 10**9}


def _quantity(text: str) -> float:
    for unit in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * _UNITS[unit]
    return float(text)


def pvc_conflicts(rendered: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """Fields the adopting install would patch on the live claim that Kubernetes refuses to
    change (a bound claim's spec is immutable but for a larger storage request). A refused
    patch fails the install, and the atomic install then uninstalls the release."""
    problems = []
    want, have = rendered.get("spec") or {}, live.get("spec") or {}
    if "accessModes" in want and want["accessModes"] != have.get("accessModes"):
        problems.append(f"accessModes {have.get('accessModes')} -> {want['accessModes']}")
    if "storageClassName" in want and want["storageClassName"] != have.get("storageClassName"):
        problems.append(
            f"storageClassName {have.get('storageClassName')!r} -> {want['storageClassName']!r}"
        )
    want_size = ((want.get("resources") or {}).get("requests") or {}).get("storage")
    have_size = ((have.get("resources") or {}).get("requests") or {}).get("storage")
    if want_size and have_size and _quantity(str(want_size)) < _quantity(str(have_size)):
        problems.append(f"storage {have_size} -> {want_size} (a claim cannot shrink)")
    if "selector" in want and want["selector"] != have.get("selector"):
        problems.append("selector differs")
    return problems


_SELECTOR_KINDS = frozenset({"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet"})
_BINDING_KINDS = frozenset({"RoleBinding", "ClusterRoleBinding"})


def immutable_conflicts(rendered: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """What the adopting install would have to change on `live` that the API server refuses."""
    kind = rendered["kind"]
    if kind == "PersistentVolumeClaim":
        return pvc_conflicts(rendered, live)
    want, have = rendered.get("spec") or {}, live.get("spec") or {}
    problems = []
    if kind in _SELECTOR_KINDS and want.get("selector") != have.get("selector"):
        problems.append(
            f"spec.selector {json.dumps(have.get('selector'), sort_keys=True)} -> "
            f"{json.dumps(want.get('selector'), sort_keys=True)}"
        )
    if kind == "StatefulSet":
        for key in ("serviceName", "podManagementPolicy", "volumeClaimTemplates"):
            if key in want and want[key] != have.get(key):
                problems.append(f"spec.{key} differs")
    if kind in _BINDING_KINDS and rendered.get("roleRef") != live.get("roleRef"):
        problems.append(f"roleRef {live.get('roleRef')} -> {rendered.get('roleRef')}")
    if kind == "Service" and want.get("clusterIP") not in (None, "", have.get("clusterIP")):
        problems.append(f"spec.clusterIP {have.get('clusterIP')!r} -> {want['clusterIP']!r}")
    if kind in ("Secret", "ConfigMap") and live.get("immutable"):
        # Its data cannot be compared here (a Secret's values are never read): any change the
        # chart makes is refused, and the chart's hub Secret and ConfigMap change with values.
        problems.append("the live object is immutable: true")
    return problems


def adoption_refusals(
    documents: list[dict[str, Any]],
    namespace: str,
    read_live: Callable[[ChartObject], dict[str, Any] | None],
) -> list[str]:
    """Every reason the adopting install would fail against the running objects."""
    objects = release_objects(documents, namespace)
    rendered_by_object = dict(zip(objects, [d for d in documents if not _is_hook(d)], strict=True))
    refusals = []
    for obj, rendered in rendered_by_object.items():
        live = read_live(obj)
        if live is None:
            if obj.kind == "PersistentVolumeClaim" and obj.name == HUB_DB_PVC:
                refusals.append(
                    f"{obj.kubectl_ref}: not found; there is no hub database to adopt "
                    "(a new environment needs no adoption)"
                )
            continue
        refusals += [f"{obj.kubectl_ref}: {p}" for p in immutable_conflicts(rendered, live)]
    return refusals


def retain_volume_commands(context: str, namespace: str) -> list[str]:
    ctx = shlex.quote(context)
    volume = (
        f"kubectl --context {ctx} -n {shlex.quote(namespace)} get pvc {HUB_DB_PVC} "
        "-o jsonpath='{.spec.volumeName}'"
    )
    return [
        f'kubectl --context {ctx} patch pv "$({volume})" --type merge '
        """-p '{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}'"""
    ]


def read_live(context: str, obj: ChartObject) -> dict[str, Any] | None:
    """The running object, or None when it does not exist (Helm will create it)."""
    scope = ["-n", obj.namespace] if obj.namespace else []
    command = ["kubectl", "--context", context, *scope, "get", obj.kubectl_ref, "-ojson"]
    out = subprocess.run(
        [*command, "--ignore-not-found"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out) if out.strip() else None


def _release_from_program(stack: str) -> tuple[dict[str, Any], dict[str, Any]]:
    from eodh_jupyterhub.offline import run_stack

    recording = run_stack(stack)
    (release,) = recording.of_type("kubernetes:helm.sh/v3:Release")
    inputs = release.plain_inputs
    return inputs, inputs.get("values") or {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack")
    parser.add_argument("--apply", action="store_true", help="run the commands (default: print)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from eodh_jupyterhub.stack_config import StackConfigError, kubernetes_context

    try:
        context = kubernetes_context(args.stack)
    except StackConfigError as error:
        print(error, file=sys.stderr)
        return 2
    # The values hold the mocks' stand-ins for the generated secrets: used only to render
    # the object list, never printed or written.
    inputs, values = _release_from_program(args.stack)
    namespace = inputs["namespace"]
    documents = render_chart(values, namespace)
    objects = release_objects(documents, namespace)
    pvc = hub_db_pvc(documents)
    print(f"# {len(objects)} chart objects to hand to Helm release {namespace}/{RELEASE_NAME}")
    print(
        f"# first of all the {HUB_DB_PVC} volume's reclaim policy is set to Retain: the disk "
        "outlives its claim, whatever deletes the claim"
    )
    if not kept_on_uninstall(pvc) and inputs.get("atomic"):
        print(
            f"# {HUB_DB_PVC} is not annotated {KEEP[0]}={KEEP[1]} in the chart and the release "
            "is atomic: a failed first install would delete the claim"
        )
    steps = retain_volume_commands(context, namespace)
    steps += [shlex.join(c) for c in adoption_commands(objects, context, namespace)]
    if not args.apply:
        print("\n".join(steps))
        print("# dry run: nothing changed; rerun with --apply")
        return 0
    refusals = adoption_refusals(documents, namespace, lambda o: read_live(context, o))
    if refusals:
        print("refusing, nothing changed: the adopting install would fail on", file=sys.stderr)
        for refusal in refusals:
            print(f"  {refusal}", file=sys.stderr)
        return 1
    for step in steps:
        print(f"+ {step}")
        subprocess.run(["bash", "-euo", "pipefail", "-c", step], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
