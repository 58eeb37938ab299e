"""Adoption plan for an environment ArgoCD runs today: what `pulumi import` must take over.

    python -m tools.import_plan dev     # writes build/dev/import.json and build/dev/import-plan.md
    python -m tools.import_plan dev --run-import --org <org>  # then `pulumi import`, <org>/dev
    python -m tools.import_plan dev --reset-managed-fields  # again, right before the first up
    python -m tools.import_plan dev --check-managed-fields  # read-only: still reset? (exit 1)

The program runs under the offline mocks (as `make render` does); every resource it declares is
put in exactly one class:

- import: it exists before the first `up` (ArgoCD applied it, or it was made by hand), and
  `build/<env>/import.json` names it with the cloud id its type takes on import. The file is
  the format `pulumi import --file` reads (pulumi/pulumi pkg/cmd/pulumi/operations/import.go:
  `importFile`/`importSpec`, `parseImportFile`): `resources[]` with `type`, `name`, `id`,
  `parent` (the `name` of another entry), `version`, and `component: true` entries for the
  component parents, which the import creates empty so every URN equals the program's.
- secret: the generated hub secrets; their ids are the live values, so they never appear in
  a file. `tools/import_secrets.py` reads them from the cluster and pipes them to the import.
- created by the first up: new with this program (the marker function, the Helm release),
  or adoptable only with a replace (auto-named IAM roles, see `_auto_named`).

Field ownership. pulumi-kubernetes previews and updates with server-side apply, without force,
and takes fields over only from a few known managers (client-side apply, `before-first-apply`),
not from `argocd-controller`: after a plain import every field the program changes that Argo CD
set would conflict, and fields Argo CD set that the program dropped would stay. So
`--run-import` first strips each imported object's `metadata.managedFields` with the reset the
API server documents (a non-apply write of `[{}]`; an empty list is ignored; Kubernetes docs,
"Server-Side Apply", "Clearing managedFields"). The first apply then attributes every live
field to `before-first-apply`, which pulumi-kubernetes takes over (its test
TestCSAToSSANoManagedFields): one manager remains, the program's.

No cloud call is made to write the plan; ids that depend on the environment come from the
stack settings. `--run-import` reads one thing first: the live client list of an OIDC provider
the plan imports. The first up sets that list to exactly the program's audiences, so a provider
that also trusts other audiences (the platform's services assume roles through the realm's
provider) is refused: reference it with `keycloakProviderArn` instead (as dev3 does).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eodh_jupyterhub.offline import RecordedResource, Recording
    from eodh_jupyterhub.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"

# The SDK package that brings each provider; the import must use the plugin version the
# program's default providers use, or the first preview may diff on schema changes.
PROVIDER_PACKAGES = {
    "aws": "pulumi-aws",
    "kubernetes": "pulumi-kubernetes",
    "random": "pulumi-random",
}

# Kubernetes objects the ArgoCD application applied beside the chart (the issue lists them):
# kind -> names, or None for every object of that kind the program declares.
ARGOCD_OBJECTS: dict[str, frozenset[str] | None] = {
    "Namespace": None,
    "ClusterRole": None,
    "ClusterRoleBinding": None,
    "ServiceAccount": None,
    "SecretStore": None,
    "ExternalSecret": None,
    "ConfigMap": frozenset({"hub-templates"}),
    "Ingress": None,
}

# Of the workspace bucket's configuration, these are the bucket's own (one of each per bucket;
# a put replaces the whole). The notification belongs to the marker function, which is new.
BUCKET_TYPES = frozenset(
    {
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:s3/bucketLogging:BucketLogging",
    }
)
OIDC_PROVIDER_TYPE = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
ROLE_TYPE = "aws:iam/role:Role"
ROLE_POLICY_TYPE = "aws:iam/rolePolicy:RolePolicy"
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
# Components whose every resource is new with this program (ArgoCD ran no marker function).
NEW_COMPONENTS = frozenset({"eodh:storage:MarkerFunction"})


@dataclass(frozen=True)
class Decision:
    resource: str
    type: str
    action: str  # "import" | "secret" | "create"
    id: str | None = None
    why: str = ""


@dataclass
class ImportPlan:
    stack: str
    decisions: list[Decision] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict)

    def of(self, action: str) -> list[Decision]:
        return [d for d in self.decisions if d.action == action]


def _provider_version(type_token: str) -> str | None:
    package = PROVIDER_PACKAGES.get(type_token.split(":", 1)[0])
    return metadata.version(package) if package else None


def _k8s_kind_and_name(resource: RecordedResource) -> tuple[str, str | None, str]:
    inputs = resource.plain_inputs
    meta = inputs.get("metadata") or {}
    kind = inputs.get("kind") or resource.type.rsplit(":", 1)[-1]
    return kind, meta.get("namespace"), meta.get("name") or ""


def _kubernetes_id(resource: RecordedResource) -> str:
    # pulumi-kubernetes import ids: `<namespace>/<name>` for namespaced objects, `<name>` for
    # cluster-scoped ones (registry docs, "Import" section of each kind).
    _, namespace, name = _k8s_kind_and_name(resource)
    return f"{namespace}/{name}" if namespace else name


def _auto_named(resource: RecordedResource) -> bool:
    """True when the program leaves the cloud name to Pulumi's auto-naming.

    Importing such a resource and leaving `name` unset makes the bridge generate a new name on
    the next preview and replace it (pulumi/pulumi#12378, pulumi/pulumi#9210, both open).
    """
    return not resource.plain_inputs.get("name")


def _decide(resource: RecordedResource, recording: Recording, settings: Settings) -> Decision:
    t, name = resource.type, resource.name

    def create(why: str) -> Decision:
        return Decision(name, t, "create", why=why)

    if t.startswith("random:"):
        return Decision(
            name,
            t,
            "secret",
            why="the running hub's value: `tools/import_secrets.py` reads it from the live "
            "`hub` Secret and pipes it to `pulumi import` (never written to disk)",
        )
    if t == RELEASE_TYPE:
        return create(
            "no Helm release exists (ArgoCD applied the chart as plain manifests); the install "
            "adopts the chart's objects once `tools/adopt_release.py` has labelled them"
        )
    if t.startswith("kubernetes:"):
        kind, _, object_name = _k8s_kind_and_name(resource)
        if kind in ARGOCD_OBJECTS and (
            ARGOCD_OBJECTS[kind] is None or object_name in (ARGOCD_OBJECTS[kind] or ())
        ):
            return Decision(name, t, "import", _kubernetes_id(resource), "applied by ArgoCD")
        return create(f"{kind} {object_name!r} is new with this program")
    if t == OIDC_PROVIDER_TYPE:
        url = str(resource.plain_inputs["url"]).removeprefix("https://")
        arn = f"arn:aws:iam::{settings.aws_account}:oidc-provider/{url}"
        return Decision(name, t, "import", arn, "IAM holds one provider per issuer URL")
    if t in BUCKET_TYPES:
        bucket = settings.workspace_bucket
        return Decision(name, t, "import", bucket, "the workspace bucket exists")
    if _under(resource, recording, NEW_COMPONENTS):
        return create("the marker function is new with this program")
    if t == ROLE_TYPE:
        if _auto_named(resource):
            return create(
                "auto-named in the program: an imported role would be replaced on the first "
                "up (pulumi/pulumi#12378); a new role is made and the old one is retired "
                "after the cutover (docs/migration.md)"
            )
        role_name = str(resource.plain_inputs["name"])
        return Decision(name, t, "import", role_name, "the existing role")
    if t == ROLE_POLICY_TYPE:
        role = _role_of(resource, recording)
        if _auto_named(resource) or _auto_named(role):
            return create("its role or itself is auto-named: made with the new role")
        ident = f"{role.plain_inputs['name']}:{resource.plain_inputs['name']}"
        return Decision(name, t, "import", ident, "the existing inline policy")
    return create("new with this program")


def _under(resource: RecordedResource, recording: Recording, types: frozenset[str]) -> bool:
    by_urn = {r.urn: r for r in recording.resources}
    parent = by_urn.get(resource.parent_urn)
    while parent is not None:
        if parent.type in types:
            return True
        parent = by_urn.get(parent.parent_urn)
    return False


def _role_of(policy: RecordedResource, recording: Recording) -> RecordedResource:
    """The role a RolePolicy's `role` input points at: by the id the mocks gave it (a real
    role's id is its name)."""
    role_ref = str(policy.plain_inputs["role"])
    for candidate in recording.of_type(ROLE_TYPE):
        ids = {getattr(candidate, "id", ""), f"{candidate.name}-id"}
        if role_ref in ids or role_ref == candidate.plain_inputs.get("name"):
            return candidate
    raise KeyError(f"{policy.name}: no role {role_ref!r} in the program")


def build_plan(recording: Recording, settings: Settings) -> ImportPlan:
    plan = ImportPlan(recording.stack)
    by_urn = {r.urn: r for r in recording.resources}
    for resource in sorted(recording.resources, key=lambda r: r.name):
        if resource.custom:
            plan.decisions.append(_decide(resource, recording, settings))

    imported = {d.resource for d in plan.of("import")}
    needed_components: list[RecordedResource] = []
    for resource in recording.resources:
        if resource.name not in imported:
            continue
        parent = by_urn.get(resource.parent_urn)
        while parent is not None and parent.type != ROOT_STACK_TYPE:
            if parent not in needed_components:
                needed_components.append(parent)
            parent = by_urn.get(parent.parent_urn)

    entries: list[dict[str, Any]] = []
    for component in sorted(needed_components, key=lambda r: (r.urn.count("$"), r.name)):
        entry: dict[str, Any] = {"type": component.type, "name": component.name, "component": True}
        if component.parent_name and component.parent_urn in by_urn:
            entry["parent"] = component.parent_name
        entries.append(entry)
    decisions = {d.resource: d for d in plan.of("import")}
    for resource in sorted(recording.resources, key=lambda r: r.name):
        decision = decisions.get(resource.name)
        if decision is None:
            continue
        entry = {"type": resource.type, "name": resource.name, "id": decision.id}
        if resource.parent_urn in by_urn:
            entry["parent"] = by_urn[resource.parent_urn].name
        version = _provider_version(resource.type)
        if version:
            entry["version"] = version
        entries.append(entry)
    plan.document = {"resources": entries}
    return plan


def engine_urns(document: dict[str, Any], stack: str, project: str) -> dict[str, str]:
    """Entry name -> the URN `pulumi import` gives it, computed as the engine does.

    pulumi/pulumi `parseImportFile`: a parent is a `nameTable` key or another entry's `name`;
    the URN is `resource.NewURN(stack, project, parent.QualifiedType(), type, name)`, where the
    qualified type is the parent's own, `$`-joined (the root stack's type is never included,
    pkg/resource/deploy/deployment.go `generateURN`).
    """
    table: dict[str, str] = dict(document.get("nameTable") or {})
    urns: dict[str, str] = {}
    entries = document["resources"]
    names = [e.get("name") or e.get("logicalName") for e in entries]
    if len(set(names)) != len(names):
        raise ValueError("import entries must have unique names")
    pending = list(entries)
    while pending:
        progressed = False
        for entry in list(pending):
            name = entry.get("name") or entry.get("logicalName")
            logical = entry.get("logicalName") or name
            parent = entry.get("parent")
            parent_type = ""
            if parent:
                parent_urn = table.get(parent) or urns.get(parent)
                if parent_urn is None:
                    if parent not in names:
                        raise ValueError(f"the parent {parent!r} of {name!r} has no entry")
                    continue
                qualified = parent_urn.split("::")[2]
                parent_type = "" if qualified == ROOT_STACK_TYPE else qualified
            qualified_type = f"{parent_type}${entry['type']}" if parent_type else entry["type"]
            urns[name] = f"urn:pulumi:{stack}::{project}::{qualified_type}::{logical}"
            pending.remove(entry)
            progressed = True
        if not progressed:
            raise ValueError("import entries have a parent cycle")
    return urns


# The fields `importSpec` decodes (pulumi/pulumi pkg/cmd/pulumi/operations/import.go).
IMPORT_SPEC_FIELDS = frozenset(
    {
        "type",
        "name",
        "id",
        "parent",
        "provider",
        "version",
        "pluginDownloadUrl",
        "properties",
        "component",
        "remote",
        "logicalName",
    }
)


def verify(document: dict[str, Any], recording: Recording, settings: Settings) -> list[str]:
    """Every problem that would make an entry miss the program's resource or be replaced."""
    from eodh_jupyterhub.stack_config import project_name

    problems: list[str] = []
    unknown_keys = set(document) - {"resources", "nameTable"}
    if unknown_keys:
        problems.append(f"top-level keys pulumi import does not read: {sorted(unknown_keys)}")
    try:
        urns = engine_urns(document, recording.stack, project_name())
    except ValueError as error:
        return [*problems, str(error)]
    program = {program_urn(r.urn): r for r in recording.resources}
    seen: set[str] = set()
    for entry in document["resources"]:
        name = entry.get("name") or entry.get("logicalName")
        unknown = set(entry) - IMPORT_SPEC_FIELDS
        if unknown:
            problems.append(f"{name}: fields pulumi import does not read: {sorted(unknown)}")
        resource = program.get(urns[name])
        if resource is None:
            problems.append(
                f"{name}: {urns[name]} is not a resource of the program (type, name or parent "
                "differ), so the first up would create the program's own beside it"
            )
            continue
        seen.add(resource.urn)
        if entry.get("component"):
            if resource.custom or "id" in entry:
                problems.append(f"{name}: only component parents may be `component` entries")
            continue
        if not resource.custom:
            problems.append(f"{name}: a component needs `component: true` and no id")
            continue
        decision = _decide(resource, recording, settings)
        if decision.action != "import":
            problems.append(f"{name}: must not be imported: {decision.why}")
        elif entry.get("id") != decision.id:
            problems.append(
                f"{name}: id {entry.get('id')!r} is not the object the program declares "
                f"({decision.id!r}); the first up would replace it"
            )
    for resource in recording.resources:
        if resource.custom and resource.urn not in seen:
            decision = _decide(resource, recording, settings)
            if decision.action == "import":
                problems.append(f"{resource.name}: exists before the first up but is not listed")
    return problems


def program_urn(urn: str) -> str:
    """A recorded URN as the engine writes it: the Python mock monitor puts the root stack's
    type in front of top-level resources' types; the engine does not."""
    return urn.replace(f"::{ROOT_STACK_TYPE}$", "::", 1)


def render_notes(plan: ImportPlan) -> str:
    lines = [
        f"# Adoption plan for stack `{plan.stack}`",
        "",
        f"Import with `python -m tools.import_plan {plan.stack} --run-import` (it runs "
        "Pulumi's import with this file; imports are protected until the first up sets each "
        "resource's protection as the program says).",
        "",
        "Every id below is computed offline from the stack settings and the program: none is "
        "looked up. Confirm each names the live object (a `--preview-only` run fails on one "
        "that does not exist); an object the live deployment names differently cannot be "
        "imported without a replace: delete its entry and let the first up create it.",
        "",
        "## Imported (exists before the first up)",
        "",
        "| resource | type | import id | why |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| `{d.resource}` | `{d.type}` | `{d.id}` | {d.why} |" for d in plan.of("import")]
    lines += ["", "## Imported from the live cluster by tools/import_secrets.py", ""]
    lines += [f"- `{d.resource}` (`{d.type}`): {d.why}" for d in plan.of("secret")]
    lines += ["", "## Created by the first up (must NOT be imported)", ""]
    lines += [f"- `{d.resource}` (`{d.type}`): {d.why}" for d in plan.of("create")]
    return "\n".join(lines) + "\n"


def write_plan(stack: str, out_root: Path) -> ImportPlan:
    from eodh_jupyterhub.offline import run_stack
    from eodh_jupyterhub.settings import load_settings
    from eodh_jupyterhub.stack_config import pulumi_config

    settings = load_settings(pulumi_config(stack), stack)
    recording = run_stack(stack)
    plan = build_plan(recording, settings)
    problems = verify(plan.document, recording, settings)
    if problems:
        listed = "\n  ".join(problems)
        raise RuntimeError(f"the import plan does not match the program:\n  {listed}")
    out = out_root / stack
    out.mkdir(parents=True, exist_ok=True)
    (out / "import.json").write_text(json.dumps(plan.document, indent=2) + "\n")
    (out / "import-plan.md").write_text(render_notes(plan))
    return plan


def import_command(
    stack_name: str, import_file: Path | str, preview_only: bool = False
) -> list[str]:
    """Flags as pulumi/pulumi's `NewImportCmd` defines them. Imports stay protected (the CLI's
    default) until the first up applies the program's own protect flags, so an unexpected
    replace of an imported resource stops that up instead of deleting it."""
    command = ["pulumi", "import", "--stack", stack_name, "--file", str(import_file)]
    command.append("--generate-code=false")  # the program already declares them
    command.append("--preview-only" if preview_only else "--yes")
    return command


# The documented reset: replacing managedFields with one empty entry strips them all.
MANAGED_FIELDS_RESET = [{"op": "replace", "path": "/metadata/managedFields", "value": [{}]}]


def _imported_kubernetes_objects(document: dict[str, Any]) -> list[tuple[list[str], str]]:
    """(`-n <namespace>` or nothing, `kind.group/name`) of each imported Kubernetes object."""
    found = []
    for entry in document["resources"]:
        type_token = entry.get("type", "")
        if entry.get("component") or not type_token.startswith("kubernetes:"):
            continue
        _, api_version, kind = type_token.split(":")
        group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
        group = "" if group == "core" else group
        namespace, _, name = entry["id"].rpartition("/")
        ref = f"{kind.lower()}{'.' + group if group else ''}/{name}"
        found.append((["-n", namespace] if namespace else [], ref))
    return found


def managed_fields_reset_commands(document: dict[str, Any], context: str) -> list[list[str]]:
    """One `kubectl patch` per imported Kubernetes object, clearing its field managers."""
    patch = json.dumps(MANAGED_FIELDS_RESET)
    return [
        ["kubectl", "--context", context, *scope, "patch", ref, "--type", "json", "-p", patch]
        for scope, ref in _imported_kubernetes_objects(document)
    ]


def managed_fields_read_commands(document: dict[str, Any], context: str) -> list[list[str]]:
    """One read-only `kubectl get` per imported object; kubectl hides managedFields unless
    asked (`--show-managed-fields`, kubectl 1.21+)."""
    return [
        ["kubectl", "--context", context, *scope, "get", ref, "-o", "json", "--show-managed-fields"]
        for scope, ref in _imported_kubernetes_objects(document)
    ]


def managed_fields_problems(objects: dict[str, dict[str, Any]]) -> list[str]:
    """Imported objects no longer in the reset state: field managers recorded since.

    After the reset an object has no managedFields, and the API server tracks no manager on a
    non-apply write to such an object (k8s.io/apimachinery pkg/util/managedfields/internal/
    skipnonapplied.go, `Update`: "skip tracking managed fields, since we already know managed
    fields is empty"): status refreshes and patches keep it clean. A server-side apply does not
    (`Apply` records `before-first-apply` and the applier), and then pulumi-kubernetes' first
    up no longer takes the fields over cleanly: every field the applier owns conflicts.
    """
    problems = []
    for ref, live in objects.items():
        managers = sorted(
            {
                str(e.get("manager", "?"))
                for e in live.get("metadata", {}).get("managedFields") or []
            }
        )
        if managers:
            problems.append(f"{ref} has field managers {managers} again (an apply since the reset)")
    return problems


def shrinking_imports(document: dict[str, Any], settings: Settings, iam: Any) -> list[str]:
    """Imported OIDC providers whose live audiences the first up would remove."""
    from tools.preflight import provider_audiences_dropped

    problems = []
    for entry in document["resources"]:
        if entry.get("type") != OIDC_PROVIDER_TYPE:
            continue
        live = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=entry["id"])
        dropped = provider_audiences_dropped(live.get("ClientIDList") or [], settings)
        if dropped:
            problems.append(
                f"{entry['id']} also trusts {dropped}, which the first up would remove: set "
                f"keycloakProviderArn: {entry['id']} in Pulumi.{settings.stack}.yaml "
                "(referenced, never written) and rerun"
            )
    return problems


def _iam_client(settings: Settings) -> Any:
    import boto3

    return boto3.client("iam", region_name=settings.aws_region)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack")
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    parser.add_argument(
        "--run-import", action="store_true", help="run `pulumi import` with the file written"
    )
    parser.add_argument(
        "--preview-only", action="store_true", help="with --run-import: show, import nothing"
    )
    parser.add_argument(
        "--org", default=os.environ.get("PULUMI_ORG"), help="Pulumi organisation (PULUMI_ORG)"
    )
    # Just before the first up (docs/migration.md step 7): the reset again, then a read-only
    # check that nothing has applied to the imported objects since.
    late = parser.add_mutually_exclusive_group()
    late.add_argument(
        "--reset-managed-fields",
        action="store_true",
        help="clear the imported objects' field managers again (no import)",
    )
    late.add_argument(
        "--check-managed-fields",
        action="store_true",
        help="read-only: refuse (exit 1) if an imported object has field managers again",
    )
    args = parser.parse_args(argv)
    cluster_only = args.reset_managed_fields or args.check_managed_fields
    if cluster_only and (args.run_import or args.preview_only):
        parser.error("--reset-managed-fields/--check-managed-fields run without --run-import")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from eodh_jupyterhub.settings import SettingsError
    from eodh_jupyterhub.stack_config import (
        StackConfigError,
        kubernetes_context,
        pulumi_stack_name,
    )

    try:
        stack_name = pulumi_stack_name(args.stack, args.org) if args.run_import else ""
        context = kubernetes_context(args.stack) if args.run_import or cluster_only else ""
        plan = write_plan(args.stack, args.out)
    except (SettingsError, StackConfigError) as error:
        print(error, file=sys.stderr)
        return 2
    if args.reset_managed_fields:
        for reset in managed_fields_reset_commands(plan.document, context):
            print("+ " + shlex.join(reset), flush=True)
            subprocess.run(reset, check=True)
        return 0
    if args.check_managed_fields:
        live = {}
        for read in managed_fields_read_commands(plan.document, context):
            done = subprocess.run(read, check=True, capture_output=True, text=True)
            live[read[read.index("get") + 1]] = json.loads(done.stdout)
        problems = managed_fields_problems(live)
        if problems:
            print(
                "refusing: the first up would conflict on these imported objects; rerun "
                f"`python -m tools.import_plan {args.stack} --reset-managed-fields`, find what "
                "applies to them (kubectl get <object> --show-managed-fields -o yaml) and stop "
                "it, then check again:",
                *problems,
                sep="\n  ",
                file=sys.stderr,
            )
            return 1
        print(f"{len(live)} imported objects still without field managers: ready for the up")
        return 0
    print(render_notes(plan), end="")
    import_file = args.out / args.stack / "import.json"
    print(f"-> {import_file} ({len(plan.of('import'))} imports)")
    if args.run_import:
        from eodh_jupyterhub.settings import load_settings
        from eodh_jupyterhub.stack_config import pulumi_config

        settings = load_settings(pulumi_config(args.stack), args.stack)
        refusals = shrinking_imports(plan.document, settings, _iam_client(settings))
        if refusals:
            print("refusing to import, nothing imported:", *refusals, sep="\n  ", file=sys.stderr)
            return 1
        resets = managed_fields_reset_commands(plan.document, context)
        for reset in resets:
            print(("# would run: " if args.preview_only else "+ ") + shlex.join(reset), flush=True)
            if not args.preview_only:
                subprocess.run(reset, check=True)
        command = import_command(stack_name, import_file, args.preview_only)
        print("+ " + shlex.join(command), flush=True)
        return subprocess.run(command, cwd=ROOT).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
