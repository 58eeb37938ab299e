"""The Application saved for the way back can really be applied, and step 1's way back is the
saved sync policy.

What the API server refuses (k8s.io/apiserver pkg/storage/etcd3/store.go `Create`): a create
whose object carries `metadata.resourceVersion` ("resourceVersion should not be set on objects
to be created"). `kubectl apply` of an object that no longer exists is such a create (after
step 5). The spec is checked against Argo CD's own Application CRD (vendor/argo-cd-3.5.1),
unknown fields refused.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
import yaml

from eodh_jupyterhub.schemas import argocd_application_schema
from tools import argocd_application

# As `kubectl -n argocd get application jupyterhub -o yaml` prints it from a running Argo CD.
STORED: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Application",
    "metadata": {
        "name": "jupyterhub",
        "namespace": "argocd",
        "uid": "0d2f6c9e-3b1a-4f7e-9a51-7c2b1e4d6f80",
        "resourceVersion": "48213377",
        "generation": 5812,
        "creationTimestamp": "2025-03-04T10:12:55Z",
        "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        "labels": {"app.kubernetes.io/part-of": "eodhp"},
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": '{"kind":"Application"}',
            "notifications.argoproj.io/subscribe.on-sync-failed.slack": "eodhp-alerts",
        },
        "ownerReferences": [
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "name": "eodhp-apps",
                "uid": "5b0e3c2a-1111-4c55-8e77-9d0a2b3c4d5e",
            }
        ],
        "managedFields": [
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:status": {".": {}, "f:health": {}}},
                "manager": "argocd-application-controller",
                "operation": "Update",
                "time": "2026-11-30T08:00:01Z",
            }
        ],
    },
    "spec": {
        "project": "default",
        "source": {
            "repoURL": "https://github.com/EO-DataHub/eodhp-argocd-deployment.git",
            "path": "apps/jupyterhub/envs/dev",
            "targetRevision": "main",
        },
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "jupyter"},
        "syncPolicy": {
            "automated": {"prune": True, "selfHeal": True},
            "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"],
        },
    },
    "status": {
        "health": {"status": "Healthy"},
        "sync": {"status": "Synced", "revision": "9f1c2e3d4b5a69788796a5b4c3d2e1f0a9b8c7d6"},
        "reconciledAt": "2026-11-30T08:00:00Z",
    },
    "operation": {
        "initiatedBy": {"automated": True},
        "sync": {"revision": "9f1c2e3d4b5a69788796a5b4c3d2e1f0a9b8c7d6"},
    },
}


def api_server_refuses_create(obj: dict[str, Any]) -> str | None:
    if obj.get("metadata", {}).get("resourceVersion"):
        return "resourceVersion should not be set on objects to be created"
    return None


def test_the_saved_copy_as_stored_cannot_be_created_again() -> None:
    # The reason for the second file: what the doc used to apply.
    assert api_server_refuses_create(STORED)


def test_the_applyable_copy_is_created_and_keeps_everything_of_the_users() -> None:
    clean = argocd_application.applyable_copy(STORED)
    assert api_server_refuses_create(clean) is None
    jsonschema.Draft7Validator(argocd_application_schema()).validate(clean)
    assert clean["spec"] == STORED["spec"]
    assert "status" not in clean and "operation" not in clean
    assert clean["metadata"] == {
        "name": "jupyterhub",
        "namespace": "argocd",
        "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        "labels": {"app.kubernetes.io/part-of": "eodhp"},
        "annotations": {"notifications.argoproj.io/subscribe.on-sync-failed.slack": "eodhp-alerts"},
    }
    assert STORED["metadata"]["resourceVersion"] == "48213377"  # the input is untouched


def test_the_schema_check_refuses_a_misspelt_field() -> None:
    broken = argocd_application.applyable_copy(STORED)
    broken["spec"]["syncPolicy"]["automatic"] = broken["spec"]["syncPolicy"].pop("automated")
    with pytest.raises(jsonschema.ValidationError, match="automatic"):
        jsonschema.Draft7Validator(argocd_application_schema()).validate(broken)


@pytest.mark.parametrize(
    "policy, flags",
    [
        (
            {"automated": {"prune": True, "selfHeal": True}},
            ["automated", "--auto-prune=true", "--self-heal=true", "--allow-empty=false"],
        ),
        (
            {"automated": {}},
            ["automated", "--auto-prune=false", "--self-heal=false", "--allow-empty=false"],
        ),
        ({"automated": {"enabled": False, "prune": True}}, ["none"]),
        ({"syncOptions": ["CreateNamespace=true"]}, ["none"]),
        (None, ["none"]),
    ],
)
def test_step_1_goes_back_to_the_saved_sync_policy(policy, flags) -> None:
    app = copy.deepcopy(STORED)
    app["spec"]["syncPolicy"] = policy
    if policy is None:
        del app["spec"]["syncPolicy"]
    command = argocd_application.restore_sync_command(app)
    assert command[:4] == ["argocd", "app", "set", "jupyterhub"]
    assert command[4] == "--sync-policy" and command[5:] == flags


def test_main_writes_both_files(tmp_path, monkeypatch, capsys) -> None:
    class Done:
        stdout = json.dumps(STORED)

    seen: list[list[str]] = []
    monkeypatch.setattr(
        argocd_application.subprocess, "run", lambda command, **_: seen.append(command) or Done()
    )
    assert argocd_application.main(["dev", "jupyterhub", "--out", str(tmp_path)]) == 0
    assert seen[0][:3] == ["kubectl", "--context", "eodhp-dev"]
    assert seen[0][-4:] == ["application", "jupyterhub", "-o", "json"]
    stored = yaml.safe_load((tmp_path / "argocd-jupyterhub-dev.yaml").read_text())
    applyable = yaml.safe_load((tmp_path / "argocd-jupyterhub-dev.apply.yaml").read_text())
    assert stored == STORED
    assert applyable == argocd_application.applyable_copy(STORED)
    assert capsys.readouterr().out.splitlines()[-1] == (
        "step 1's way back: argocd app set jupyterhub --sync-policy automated "
        "--auto-prune=true --self-heal=true --allow-empty=false"
    )
