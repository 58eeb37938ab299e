"""Upstream schemas (chart values, External Secrets CRDs), vendored under `vendor/`.

The repository carries them (see `vendor/README.md` for provenance and licences), so a clone
alone renders, checks and tests every stack.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from . import yaml_loader
from .stack_config import PROJECT_ROOT

VENDOR_DIR = PROJECT_ROOT / "vendor"
Z2JH_CHART_DIR = VENDOR_DIR / "jupyterhub-4.2.0"
EXTERNAL_SECRETS_CRDS = {
    "ExternalSecret": "external-secrets-2.9.0/external-secrets.io_externalsecrets.yaml",
    "SecretStore": "external-secrets-2.9.0/external-secrets.io_secretstores.yaml",
}
ARGOCD_APPLICATION_CRD = "argo-cd-3.5.1/application-crd.yaml"
Z2JH_SCHEMA = "jupyterhub-4.2.0/values.schema.json"
Z2JH_DEFAULTS = "jupyterhub-4.2.0/values.yaml"


class SchemaMissing(FileNotFoundError):
    pass


def schema_path(relative: str) -> Path:
    path = VENDOR_DIR / relative
    if not path.is_file():
        raise SchemaMissing(f"vendored schema {relative} missing under {VENDOR_DIR}")
    return path


def forbid_unknown_fields(schema: Any) -> Any:
    """Upstream CRD schemas allow unknown fields (the API server prunes them); a typo in our
    objects would pass silently, so every object with declared properties becomes closed."""
    if isinstance(schema, dict):
        result = {k: forbid_unknown_fields(v) for k, v in schema.items()}
        if (
            result.get("type") == "object"
            and "properties" in result
            and not result.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in result
        ):
            result["additionalProperties"] = False
        return result
    if isinstance(schema, list):
        return [forbid_unknown_fields(v) for v in schema]
    return schema


@cache
def external_secrets_schema(kind: str, version: str = "v1") -> dict[str, Any]:
    crd = yaml_loader.safe_load(schema_path(EXTERNAL_SECRETS_CRDS[kind]).read_text())
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            if not entry.get("served", False):
                raise LookupError(f"{kind} {version} is not served by External Secrets 2.9")
            return forbid_unknown_fields(copy.deepcopy(entry["schema"]["openAPIV3Schema"]))
    raise LookupError(f"{EXTERNAL_SECRETS_CRDS[kind]} has no version {version}")


def argocd_application_schema() -> dict[str, Any]:
    """Argo CD's Application (argoproj.io/v1alpha1), unknown fields refused."""
    crd = yaml_loader.safe_load(schema_path(ARGOCD_APPLICATION_CRD).read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1" and v["served"]]
    return forbid_unknown_fields(copy.deepcopy(version["schema"]["openAPIV3Schema"]))


@cache
def z2jh_values_schema() -> dict[str, Any]:
    return json.loads(schema_path(Z2JH_SCHEMA).read_text())


@cache
def z2jh_default_values() -> dict[str, Any]:
    return yaml_loader.safe_load(schema_path(Z2JH_DEFAULTS).read_text())


def helm_merge(defaults: Any, overrides: Any) -> Any:
    """Helm's coalescing of user values onto chart defaults: maps merge, null deletes."""
    if isinstance(defaults, dict) and isinstance(overrides, dict):
        merged = dict(defaults)
        for key, value in overrides.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = helm_merge(defaults.get(key), value)
        return merged
    return copy.deepcopy(overrides)


def z2jh_validation_errors(values: dict[str, Any]) -> list[str]:
    """What `helm install` would reject: our values merged onto the chart's, against its schema."""
    import jsonschema

    merged = helm_merge(copy.deepcopy(z2jh_default_values()), values)
    validator = jsonschema.Draft7Validator(z2jh_values_schema())
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(merged), key=lambda e: list(map(str, e.path)))
    ]


def external_secret_errors(obj: dict[str, Any]) -> list[str]:
    import jsonschema

    version = obj["apiVersion"].split("/", 1)[1]
    validator = jsonschema.Draft7Validator(external_secrets_schema(obj["kind"], version))
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(obj)
    ]


# Kinds the chart can render that have no namespace; Helm installs every other object into
# the release namespace, whether or not its template names one.
CLUSTER_SCOPED_KINDS = frozenset(
    {"ClusterRole", "ClusterRoleBinding", "PriorityClass", "StorageClass"}
)


def render_z2jh_chart(values: dict[str, Any], name: str, namespace: str) -> list[dict[str, Any]]:
    """The vendored chart rendered by Helm's own engine (helm-python-sdk) as `helm install`
    would: every manifest document, namespaced ones in the release namespace. Helm's `lookup`
    sees no cluster here, so the values must carry every secret the chart would look up."""
    from helm_python.chart import Chart

    files = Chart.load(str(Z2JH_CHART_DIR)).render(
        values=values, name=name, namespace=namespace, is_install=True
    )
    documents = []
    for path in sorted(files):
        if not path.endswith((".yaml", ".yml")):
            continue
        for doc in yaml_loader.safe_load_all(files[path]):
            if not isinstance(doc, dict):
                continue
            if doc["kind"] not in CLUSTER_SCOPED_KINDS:
                doc["metadata"].setdefault("namespace", namespace)
            documents.append(doc)
    return documents
