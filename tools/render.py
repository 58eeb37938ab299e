"""Render one stack offline: what `pulumi preview` would declare, as reviewable files.

    python -m tools.render dev        # writes build/dev/...

No Pulumi CLI, no cloud credentials: the real program runs under recording mocks
(eodh_jupyterhub.offline). Secrets are written as "[secret]". Output is deterministic.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from eodh_jupyterhub.offline import Recording

ROOT = Path(__file__).resolve().parent.parent


class _ReadableDumper(yaml.SafeDumper):
    """Multi-line strings (the hub's Python files, templates) as literal blocks."""


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ReadableDumper.add_representer(str, _str_presenter)

# libyaml's emitter, where PyYAML has it, writes the same bytes several times faster, except
# for characters it will not print as they are: NEL (U+0085) and everything beyond U+FFFF
# (an emoji), which it escapes in a double-quoted line, a literal block included (every
# code point compared once; tests/program/test_render_yaml.py holds a sample). Documents
# holding one take the pure-Python emitter.
_FastReadableDumper: type[yaml.SafeDumper] | None = None
if hasattr(yaml, "CSafeDumper"):

    class _CReadableDumper(yaml.CSafeDumper):
        pass

    _CReadableDumper.add_representer(str, _str_presenter)
    _FastReadableDumper = _CReadableDumper
_LIBYAML_ESCAPES = re.compile("[\x85\U00010000-\U0010ffff]")


def _integral_floats(value: Any) -> Any:
    """The mocks hand numbers back as floats; 10.0 reads as 10 in every manifest."""
    from eodh_jupyterhub.offline import map_leaves

    return map_leaves(
        value, lambda item: int(item) if isinstance(item, float) and item.is_integer() else item
    )


def _dump_json(data: Any) -> str:
    return json.dumps(_integral_floats(data), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _dump_yaml(data: Any) -> str:
    data = _integral_floats(data)
    dumper = _FastReadableDumper or _ReadableDumper
    if _LIBYAML_ESCAPES.search(json.dumps(data, ensure_ascii=False, default=str)):
        dumper = _ReadableDumper
    return yaml.dump(
        data,
        Dumper=dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )


def kubernetes_file_name(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    parts = [obj["kind"].lower(), metadata.get("namespace"), metadata.get("name")]
    return "-".join(p for p in parts if p) + ".yaml"


def write_iam_documents(resources: list[Any], out: Path) -> int:
    """Every IAM policy document (role trust, inline policy, bucket policy) as
    `iam/<resource name>.json`, for review and for the policy linters."""
    from components.iam_documents import declared_policy_documents

    documents = declared_policy_documents(resources)
    (out / "iam").mkdir(parents=True, exist_ok=True)
    for name, document in documents.items():
        (out / "iam" / f"{name}.json").write_text(_dump_json(document))
    return len(documents)


def render(stack: str, out_root: Path, recording: Recording | None = None) -> dict[str, int]:
    """Write build/<stack>/ from the stack file's own run, or from `recording` (a run of the
    same stack with other settings, e.g. the other workspace-bucket mode)."""
    from eodh_jupyterhub.offline import run_stack

    if recording is None:
        recording = run_stack(stack)
    out = out_root / stack
    if out.exists():
        shutil.rmtree(out)
    (out / "kubernetes").mkdir(parents=True)

    resources = sorted(recording.resources, key=lambda r: r.urn)
    (out / "resources.json").write_text(
        _dump_json(
            {
                "stack": stack,
                "resources": [
                    {
                        "urn": r.urn,
                        "type": r.type,
                        "name": r.name,
                        "parent": r.parent_name,
                        "inputs": recording.redacted(r.inputs),
                        "protect": r.protect,
                        "retainOnDelete": r.retain_on_delete,
                        "dependencies": sorted(r.depends_on),
                    }
                    for r in resources
                ],
                "outputs": {
                    k: "[secret]" if k in recording.secret_outputs else v
                    for k, v in recording.outputs.items()
                },
            }
        )
    )
    write_helm_release(recording, out)
    k8s_count = 0
    for r in recording.kubernetes_objects():
        obj = recording.redacted(r.inputs)
        (out / "kubernetes" / kubernetes_file_name(obj)).write_text(_dump_yaml(obj))
        k8s_count += 1
    write_iam_documents(recording.resources, out)
    (out / "summary.md").write_text(summary(stack, recording))
    return {"resources": len(resources), "kubernetes": k8s_count}


def summary(stack: str, recording: Recording) -> str:
    """What a reviewer reads first: components and their resources, outputs, and every
    setting this stack changes from the project defaults."""
    from eodh_jupyterhub.stack_config import project_defaults, stack_values

    lines = [f"# Stack `{stack}`", "", "## Resources per component", ""]
    lines += ["| component | type | resources | protected |", "| --- | --- | --- | --- |"]
    components = sorted((r for r in recording.resources if not r.custom), key=lambda r: r.name)
    for component in components:
        children = recording.children_of(component)
        protected = sorted(c.name for c in children if c.protect)
        lines.append(
            f"| `{component.name}` | `{component.type}` | {len(children)} | "
            f"{', '.join(f'`{p}`' for p in protected) or '-'} |"
        )
    lines += ["", "## Outputs", "", "| output | value |", "| --- | --- |"]
    for key, value in sorted(recording.outputs.items()):
        shown = "[secret]" if key in recording.secret_outputs else value
        lines.append(f"| `{key}` | `{shown}` |")
    lines += ["", "## Differences from the project defaults (Pulumi.yaml)", ""]
    lines += ["| key | default | this stack |", "| --- | --- | --- |"]
    defaults = project_defaults()
    for key, value in sorted(stack_values(stack).items()):
        if key not in defaults:
            lines.append(f"| `{key}` | (required here) | `{json.dumps(value)}` |")
        elif value != defaults[key]:
            lines.append(f"| `{key}` | `{json.dumps(defaults[key])}` | `{json.dumps(value)}` |")
    return "\n".join(lines) + "\n"


# The chart's cluster-scoped kinds (user scheduler and priorities); all else is namespaced.


def _readable_secret(secret: dict[str, Any]) -> dict[str, Any]:
    """The same Secret with its text entries as stringData, which the API server stores
    exactly as it would the base64 data: the hub's values (hub_connect_url and the
    rest) become readable in review. Only redacted values ever get here."""
    import base64

    data, text = {}, dict(secret.get("stringData") or {})
    for key, encoded in (secret.get("data") or {}).items():
        try:
            text[key] = base64.b64decode(encoded).decode()
        except UnicodeDecodeError:
            data[key] = encoded
    readable = {k: v for k, v in secret.items() if k not in ("data", "stringData")}
    if data:
        readable["data"] = data
    if text:
        readable["stringData"] = text
    return readable


def write_chart_manifests(inputs: dict[str, Any], folder: Path) -> int:
    """What Helm would install: the vendored chart rendered with the release's values.

    The values are already redacted, so every secret in the output (the hub Secret's
    values.yaml included) is the placeholder. Helm's `lookup` sees no cluster here; the
    values give every secret the chart would otherwise look up, so nothing is generated.
    """
    from eodh_jupyterhub.schemas import Z2JH_CHART_DIR, render_z2jh_chart

    # The vendored source is of the one chart the release installs (its SOURCE.md says which).
    if (inputs["chart"], inputs["version"]) != ("jupyterhub", Z2JH_CHART_DIR.name.split("-")[-1]):
        raise LookupError(f"no vendored source for chart {inputs['chart']} {inputs['version']}")
    manifests = folder / "manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    count = 0
    for obj in render_z2jh_chart(
        _integral_floats(inputs.get("values") or {}), inputs["name"], inputs["namespace"]
    ):
        if obj["kind"] == "Secret":
            obj = _readable_secret(obj)
        (manifests / kubernetes_file_name(obj)).write_text(_dump_yaml(obj))
        count += 1
    return count


def write_helm_release(recording: Recording, out: Path) -> None:
    for release in recording.of_type("kubernetes:helm.sh/v3:Release"):
        inputs = recording.redacted(release.inputs)
        folder = out / "helm" / inputs["name"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "values.yaml").write_text(_dump_yaml(inputs.get("values") or {}))
        write_chart_manifests(inputs, folder)
        settings = {k: v for k, v in inputs.items() if k != "values"}
        (folder / "release.json").write_text(
            _dump_json(
                {
                    "chart": settings.pop("chart"),
                    "version": settings.pop("version"),
                    "repository": settings.pop("repositoryOpts", {}).get("repo"),
                    "namespace": settings.pop("namespace"),
                    "name": settings.pop("name"),
                    "options": settings,
                }
            )
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stacks", nargs="+", help="stack names, or 'all'")
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    args = parser.parse_args(argv)

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from eodh_jupyterhub.settings import SettingsError
    from eodh_jupyterhub.stack_config import StackConfigError, stack_names

    stacks = stack_names() if args.stacks == ["all"] else args.stacks
    for stack in stacks:
        started = time.perf_counter()
        print(f"render {stack}: running the program under mocks ...", file=sys.stderr)
        try:
            counts = render(stack, args.out)
        except (SettingsError, StackConfigError) as error:
            print(error, file=sys.stderr)
            return 2
        elapsed = time.perf_counter() - started
        print(
            f"render {stack}: {counts['resources']} resources, {counts['kubernetes']} Kubernetes "
            f"objects -> {args.out / stack} ({elapsed:.2f}s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
