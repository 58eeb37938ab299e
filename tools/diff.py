"""Show how two environments differ, resource by resource, from their rendered output.

    python -m tools.diff staging prod

Reads build/<A>/ and build/<B>/ (run `make render` first; `make diff` does). Resources are
matched by type and name; within each, inputs are compared field by field (dotted paths),
and the Helm values likewise. Long strings (the hub's Python files) are compared by digest.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from eodh_jupyterhub import yaml_loader

ROOT = Path(__file__).resolve().parent.parent
MISSING = object()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, str) and value.startswith("{"):
        # Policy documents travel as JSON text; compare them statement by statement.
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(value)
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key in sorted(value):
            flat.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        flat = {}
        for index, item in enumerate(value):
            flat.update(flatten(item, f"{prefix}[{index}]"))
        return flat
    return {prefix: value}


def _show(value: Any) -> str:
    if value is MISSING:
        return "(absent)"
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    if len(text) > 240:
        return f"<{len(text)} chars, sha256 {hashlib.sha256(text.encode()).hexdigest()[:12]}>"
    return text


def field_changes(a: Any, b: Any) -> list[str]:
    flat_a, flat_b = flatten(a), flatten(b)
    lines = []
    for path in sorted(set(flat_a) | set(flat_b)):
        left, right = flat_a.get(path, MISSING), flat_b.get(path, MISSING)
        if left != right:
            lines.append(f"    {path}: {_show(left)} -> {_show(right)}")
    return lines


def _resources(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    data = json.loads((folder / "resources.json").read_text())
    return {(r["type"], r["name"]): r for r in data["resources"]}


def _comparable(resource: dict[str, Any]) -> dict[str, Any]:
    inputs = dict(resource.get("inputs") or {})
    if resource["type"] == "kubernetes:helm.sh/v3:Release":
        inputs.pop("values", None)  # shown once, from helm/<release>/values.yaml
    return {
        "inputs": inputs,
        "protect": resource.get("protect"),
        "retainOnDelete": resource.get("retainOnDelete"),
    }


def diff(a: str, b: str, build: Path) -> list[str]:
    left, right = _resources(build / a), _resources(build / b)
    out: list[str] = [f"--- {a}", f"+++ {b}"]
    for key in sorted(set(left) | set(right)):
        type_token, name = key
        if key not in right:
            out.append(f"- {name} ({type_token}): only in {a}")
            continue
        if key not in left:
            out.append(f"+ {name} ({type_token}): only in {b}")
            continue
        changes = field_changes(_comparable(left[key]), _comparable(right[key]))
        if changes:
            out.append(f"~ {name} ({type_token})")
            out.extend(changes)
    for values_a in sorted((build / a / "helm").glob("*/values.yaml")):
        values_b = build / b / "helm" / values_a.parent.name / "values.yaml"
        changes = field_changes(
            yaml_loader.safe_load(values_a.read_text()),
            yaml_loader.safe_load(values_b.read_text()) if values_b.exists() else {},
        )
        if changes:
            out.append(f"~ helm release {values_a.parent.name}: values")
            out.extend(changes)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--build", type=Path, default=ROOT / "build")
    args = parser.parse_args(argv)
    for stack in (args.a, args.b):
        if not (args.build / stack / "resources.json").is_file():
            message = f"diff: build/{stack} is missing: run `make render STACK={stack}`"
            print(message, file=sys.stderr)
            return 2
    lines = diff(args.a, args.b, args.build)
    print("\n".join(lines))
    changed = sum(1 for line in lines if line[:1] in "~+-" and not line.startswith(("---", "+++")))
    print(f"diff {args.a} {args.b}: {changed} resource(s) differ", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
