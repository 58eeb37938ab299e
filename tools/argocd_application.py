"""Save the hub's Argo CD Application for the way back (docs/migration.md, before step 1).

    python -m tools.argocd_application dev jupyterhub   # two files; prints step 1's way back

`kubectl get -o yaml` prints what the API server stores, server-set fields included. That copy
cannot be applied once the Application is gone (after step 5): a create carrying
`metadata.resourceVersion` is refused ("resourceVersion should not be set on objects to be
created", k8s.io/apiserver pkg/storage/etcd3/store.go `Create`), and before that its
resourceVersion is stale, so an apply's patch conflicts. So two files: the copy as stored
(`argocd-<app>-<env>.yaml`, for the record) and one that can be applied
(`argocd-<app>-<env>.apply.yaml`): no `resourceVersion`, `uid`, `creationTimestamp`,
`generation`, `managedFields`, `selfLink`, `ownerReferences` (they name the owner's old uid),
`kubectl.kubernetes.io/last-applied-configuration`, `status` or `operation` (a saved
in-flight sync would start again). Its spec is untouched.

Before step 5 the Application still exists: going back is re-enabling its sync policy as saved,
with the argocd CLI (`argocd app set --sync-policy automated` and the saved automated flags;
argo-cd cmd/util/app.go `SetAppSpecOptions`), which this prints.
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

SERVER_METADATA = (
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "ownerReferences",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ARGOCD_NAMESPACE = "argocd"


def applyable_copy(app: dict[str, Any]) -> dict[str, Any]:
    """The Application as `kubectl apply` can create (or re-apply) it."""
    clean = copy.deepcopy(app)
    for key in ("status", "operation"):
        clean.pop(key, None)
    metadata = clean["metadata"]
    for key in SERVER_METADATA:
        metadata.pop(key, None)
    annotations = metadata.get("annotations") or {}
    annotations.pop(LAST_APPLIED, None)
    if "annotations" in metadata and not annotations:
        del metadata["annotations"]
    return clean


def restore_sync_command(app: dict[str, Any]) -> list[str]:
    """The argocd CLI command that puts the saved sync policy back (step 1's way back)."""
    name = app["metadata"]["name"]
    automated = ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated")
    if automated is None or automated.get("enabled") is False:
        return ["argocd", "app", "set", name, "--sync-policy", "none"]
    command = ["argocd", "app", "set", name, "--sync-policy", "automated"]
    for key, flag in (
        ("prune", "auto-prune"),
        ("selfHeal", "self-heal"),
        ("allowEmpty", "allow-empty"),
    ):
        command.append(f"--{flag}={'true' if automated.get(key) else 'false'}")
    return command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack")
    parser.add_argument("app", help="the hub's Application (kubectl -n argocd get applications)")
    parser.add_argument("--out", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    from eodh_jupyterhub.stack_config import StackConfigError, kubernetes_context

    try:
        context = kubernetes_context(args.stack)
    except StackConfigError as error:
        print(error, file=sys.stderr)
        return 2
    get = ["kubectl", "--context", context, "-n", ARGOCD_NAMESPACE, "get", "application"]
    stored = json.loads(
        subprocess.run(
            [*get, args.app, "-o", "json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    base = args.out / f"argocd-{args.app}-{args.stack}"
    Path(f"{base}.yaml").write_text(yaml.safe_dump(stored, sort_keys=False))
    Path(f"{base}.apply.yaml").write_text(yaml.safe_dump(applyable_copy(stored), sort_keys=False))
    print(f"saved {base}.yaml (as stored) and {base}.apply.yaml (for kubectl apply)")
    print(f"step 1's way back: {shlex.join(restore_sync_command(stored))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
