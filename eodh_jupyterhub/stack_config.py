"""Reads Pulumi.yaml defaults plus Pulumi.<stack>.yaml the way the Pulumi CLI hands them over.

Used where the CLI is not: the offline render and the tests. Values come out as Pulumi gives
them to a program: fully qualified keys, strings, objects and arrays as JSON text.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import yaml_loader

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class StackConfigError(Exception):
    pass


def _read_yaml(path: Path) -> Any:
    """The file's YAML, parsed once per version of the file (a run reads Pulumi.yaml and the
    stack files several times; parsing them was most of a mocked run). A copy each time, so
    no caller can change what the next one reads."""
    stat = path.stat()
    return copy.deepcopy(_parse_yaml(path, stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=64)
def _parse_yaml(path: Path, _mtime_ns: int, _size: int) -> Any:
    return yaml_loader.safe_load(path.read_text())


def _project_file(root: Path) -> dict[str, Any]:
    return _read_yaml(root / "Pulumi.yaml")


def stack_names(root: Path = PROJECT_ROOT) -> list[str]:
    """Every stack that has a Pulumi.<stack>.yaml next to Pulumi.yaml, sorted."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def _as_pulumi_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _qualify(key: str, project: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def project_defaults(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The `config:` block of Pulumi.yaml as native values (only keys that carry a value)."""
    project = _project_file(root)
    name = project["name"]
    defaults: dict[str, Any] = {}
    for key, decl in (project.get("config") or {}).items():
        full = _qualify(key, name)
        if isinstance(decl, dict) and "value" in decl:
            defaults[full] = decl["value"]
        elif isinstance(decl, dict) and "type" in decl:
            if "default" in decl:
                defaults[full] = decl["default"]
        else:
            defaults[full] = decl
    return defaults


def stack_values(stack: str, root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Only what Pulumi.<stack>.yaml itself sets, as native values."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise StackConfigError(f"{path.name}: no such stack file (stacks: {stack_names(root)})")
    name = _project_file(root)["name"]
    document = _read_yaml(path) or {}
    values: dict[str, Any] = {}
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            raise StackConfigError(
                f"{path.name}: {key} is an encrypted secret; this program keeps no secrets in "
                "stack files (OAuth secrets live in AWS Secrets Manager)"
            )
        values[_qualify(key, name)] = value
    return values


def effective_config(stack: str, root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Defaults overlaid with the stack file, as native values (objects stay objects)."""
    return {**project_defaults(root), **stack_values(stack, root)}


def pulumi_config(stack: str, root: Path = PROJECT_ROOT) -> dict[str, str]:
    """The effective config in the form a Pulumi program receives it (all strings)."""
    return {k: _as_pulumi_string(v) for k, v in effective_config(stack, root).items()}


def project_name(root: Path = PROJECT_ROOT) -> str:
    return _project_file(root)["name"]


def kubernetes_context(stack: str, root: Path = PROJECT_ROOT) -> str:
    """The kubeconfig context the stack deploys to (`kubernetes:context`), for the tools that
    talk to its cluster directly; a stack without one is refused, naming the file and key."""
    context = str(effective_config(stack, root).get("kubernetes:context") or "")
    if not context:
        raise StackConfigError(f"Pulumi.{stack}.yaml: kubernetes:context is not set")
    return context


def pulumi_stack_name(stack: str, org: str | None) -> str:
    """`<org>/<stack>`, the name the docs and CI use. Pulumi Cloud resolves a bare `<stack>`
    in the user's default organisation, which need not be the one holding the stacks."""
    if not org:
        raise StackConfigError(
            "no Pulumi organisation: set PULUMI_ORG (as CI's vars.PULUMI_ORG) or pass --org, "
            f"so the stack is <org>/{stack} and not {stack} in your default organisation"
        )
    if "/" in org:
        raise StackConfigError(f"--org/PULUMI_ORG is an organisation name, got {org!r}")
    return f"{org}/{stack}"
