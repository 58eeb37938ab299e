"""Validate a stack's rendered output (build/<stack>/) against every rule we know.

    python -m tools.check prod        # or: all

Kubernetes objects: strict schemas for Kubernetes 1.31; External Secrets objects: the CRD
schemas with unknown fields rejected; Helm values: the chart's values schema after Helm's
merge with the chart defaults; the chart's rendered manifests: the same strict schemas;
IAM permission policies: parliament; every resource: the policy pack in policy/.
One line per violation: `<file>: <object>: <rule>: <message>`.
Exit status 1 when anything is violated, 2 when the rendered output is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eodh_jupyterhub import yaml_loader

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES_VERSION = "1.31"


@dataclass(frozen=True)
class Finding:
    file: Path
    obj: str
    rule: str
    message: str

    def line(self, root: Path) -> str:
        try:
            shown = self.file.relative_to(root)
        except ValueError:
            shown = self.file
        return f"{shown}: {self.obj}: {self.rule}: {self.message}"


def _kubernetes(folder: Path) -> Iterator[Finding]:
    import kubernetes_validate

    from eodh_jupyterhub.schemas import EXTERNAL_SECRETS_CRDS, external_secret_errors

    for path in sorted((folder / "kubernetes").glob("*.yaml")):
        obj = yaml_loader.safe_load(path.read_text())
        name = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
        if obj.get("kind") in EXTERNAL_SECRETS_CRDS:
            for error in external_secret_errors(obj):
                yield Finding(path, name, "external-secrets-crd-schema", error)
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(map(str, error.path)) or "<root>"
            yield Finding(path, name, "kubernetes-strict-schema", f"{where}: {error.message}")


def _helm(folder: Path) -> Iterator[Finding]:
    from eodh_jupyterhub.schemas import z2jh_validation_errors

    for path in sorted((folder / "helm").glob("*/values.yaml")):
        values = yaml_loader.safe_load(path.read_text()) or {}
        for error in z2jh_validation_errors(values):
            yield Finding(path, path.parent.name, "z2jh-values-schema", error)


def _helm_manifests(folder: Path) -> Iterator[Finding]:
    """The chart's rendered objects (tools/render.py), held to the same strict schemas."""
    import kubernetes_validate

    for path in sorted((folder / "helm").glob("*/manifests/*.yaml")):
        obj = yaml_loader.safe_load(path.read_text())
        name = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(map(str, error.path)) or "<root>"
            yield Finding(path, name, "kubernetes-strict-schema", f"{where}: {error.message}")


def _iam(folder: Path, resources: list[dict[str, Any]]) -> Iterator[Finding]:
    from parliament import analyze_policy_string

    trust_documents = {r["name"] for r in resources if r["type"] == "aws:iam/role:Role"}
    for path in sorted((folder / "iam").glob("*.json")):
        # parliament reports false alarms on trust policies (DESIGN.md); those are held to
        # the policy pack's web-identity rules instead.
        if path.stem in trust_documents:
            continue
        analyzed = analyze_policy_string(path.read_text(), include_community_auditors=True)
        for finding in analyzed.findings:
            yield Finding(path, path.stem, f"parliament/{finding.issue}", str(finding.detail))


def _policy_pack(folder: Path, stack: str, resources: list[dict[str, Any]]) -> Iterator[Finding]:
    from policy.eodh_policies import check_resources

    for violation in check_resources(resources, stack=stack):
        yield Finding(
            folder / "resources.json", violation.resource, violation.rule, violation.message
        )


def check_stack(stack: str, build: Path) -> list[Finding]:
    folder = build / stack
    resources_file = folder / "resources.json"
    if not resources_file.is_file():
        raise FileNotFoundError(f"{resources_file} is missing: run `make render STACK={stack}`")
    resources = json.loads(resources_file.read_text())["resources"]
    findings = [
        *_kubernetes(folder),
        *_helm(folder),
        *_helm_manifests(folder),
        *_iam(folder, resources),
        *_policy_pack(folder, stack, resources),
    ]
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stacks", nargs="+", help="stack names, or 'all'")
    parser.add_argument("--build", type=Path, default=ROOT / "build")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")

    from eodh_jupyterhub.schemas import SchemaMissing
    from eodh_jupyterhub.stack_config import stack_names

    stacks = stack_names() if args.stacks == ["all"] else args.stacks
    total = 0
    for stack in stacks:
        try:
            findings = check_stack(stack, args.build)
        except (FileNotFoundError, SchemaMissing) as error:
            print(f"check {stack}: {error}", file=sys.stderr)
            return 2
        for finding in findings:
            print(finding.line(args.build.parent), file=sys.stderr)
        total += len(findings)
        status = "ok" if not findings else f"{len(findings)} violation(s)"
        print(f"check {stack}: {status}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
