"""Upstream schemas, found through one setting: EODH_SCHEMAS_DIR (default ../shared/schemas).

They are never copied into this repository. A missing schema skips locally with the reason,
and fails under CI (CI=true), where skipping would hide that nothing was validated.
"""

from __future__ import annotations

import copy
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SCHEMAS_DIR = REPO_ROOT.parent / "shared" / "schemas"


def schemas_dir() -> Path:
    return Path(os.environ.get("EODH_SCHEMAS_DIR", DEFAULT_SCHEMAS_DIR))


def require_schema(relative: str) -> Path:
    path = schemas_dir() / relative
    if not path.is_file():
        message = (
            f"schema {relative} not found under {schemas_dir()} "
            "(set EODH_SCHEMAS_DIR to the shared/schemas folder)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _forbid_unknown_fields(schema: Any) -> Any:
    """Upstream CRD schemas allow unknown fields (the API server prunes them); a typo in our
    objects would pass silently, so every object with declared properties becomes closed."""
    if isinstance(schema, dict):
        result = {k: _forbid_unknown_fields(v) for k, v in schema.items()}
        if (
            result.get("type") == "object"
            and "properties" in result
            and not result.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in result
        ):
            result["additionalProperties"] = False
        return result
    if isinstance(schema, list):
        return [_forbid_unknown_fields(v) for v in schema]
    return schema


@cache
def _crd_schema(crd_file: str, version: str) -> dict[str, Any]:
    crd = yaml.safe_load(require_schema(crd_file).read_text())
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            return _forbid_unknown_fields(copy.deepcopy(entry["schema"]["openAPIV3Schema"]))
    raise LookupError(f"{crd_file} has no version {version}")


def external_secrets_schema(kind: str, version: str = "v1") -> dict[str, Any]:
    files = {
        "ExternalSecret": "external-secrets-2.9.0/external-secrets.io_externalsecrets.yaml",
        "SecretStore": "external-secrets-2.9.0/external-secrets.io_secretstores.yaml",
        "ClusterSecretStore": (
            "external-secrets-2.9.0/external-secrets.io_clustersecretstores.yaml"
        ),
    }
    return _crd_schema(files[kind], version)


@cache
def z2jh_values_schema() -> dict[str, Any]:
    return json.loads(require_schema("z2jh-4.2.0/values.schema.json").read_text())


@cache
def z2jh_default_values() -> dict[str, Any]:
    return yaml.safe_load(require_schema("z2jh-4.2.0/values.yaml").read_text())


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
        for e in validator.iter_errors(merged)
    ]
