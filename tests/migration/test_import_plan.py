"""`make import-plan`: every entry lands on the program's own resource, with the id that keeps it.

The URN check follows the engine (pulumi/pulumi `parseImportFile` + `Deployment.generateURN`),
so an entry whose type, name or parent differs from the program's would, after the import,
leave the program's resource to be created beside it; a wrong id would be replaced.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest

from eodh_jupyterhub.offline import RecordedResource, Recording
from eodh_jupyterhub.settings import Settings, load_settings
from tests.support.bucket_modes import config_in_mode, recording_in_mode
from tests.support.recordings import recording_for
from tests.support.stacks import pulumi_config
from tools import import_plan
from tools.import_plan import build_plan, engine_urns, program_urn, verify


def _settings(stack: str) -> Settings:
    return load_settings(pulumi_config(stack), stack)


def _plan(
    stack: str, manage_bucket: bool | None = None
) -> tuple[import_plan.ImportPlan, Recording, Settings]:
    """The plan for the stack file as it is, or with manageWorkspaceBucket set either way: every
    stack file now shares the platform's bucket, so the managed mode is only seen that way."""
    if manage_bucket is None:
        recording, settings = recording_for(stack), _settings(stack)
    else:
        recording = recording_in_mode(stack, manage_bucket)
        settings = load_settings(config_in_mode(stack, manage_bucket), stack)
    return build_plan(recording, settings), recording, settings


BUCKET_MODES = pytest.mark.parametrize("manage_bucket", [True, False], ids=["managed", "shared"])


def _entry(document: dict, name: str) -> dict:
    return next(e for e in document["resources"] if e["name"] == name)


@BUCKET_MODES
def test_every_entry_is_the_programs_resource_with_a_keeping_id(
    stack: str, manage_bucket: bool
) -> None:
    plan, recording, settings = _plan(stack, manage_bucket)
    assert verify(plan.document, recording, settings) == []
    urns = engine_urns(plan.document, stack, "eodh-jupyterhub")
    program = {program_urn(r.urn): r for r in recording.resources}
    for entry in plan.document["resources"]:
        resource = program[urns[entry["name"]]]
        assert resource.type == entry["type"]
        assert entry.get("component", False) is (not resource.custom)


@BUCKET_MODES
def test_every_declared_resource_has_exactly_one_fate(stack: str, manage_bucket: bool) -> None:
    plan, recording, _ = _plan(stack, manage_bucket)
    custom = sorted(r.name for r in recording.resources if r.custom)
    assert sorted(d.resource for d in plan.decisions) == custom
    imported = {e["name"] for e in plan.document["resources"] if not e.get("component")}
    assert imported == {d.resource for d in plan.of("import")}


@BUCKET_MODES
def test_dev_ids_are_the_cloud_ids_each_type_takes_on_import(manage_bucket: bool) -> None:
    # Literal expectations from Pulumi.dev.yaml and the registry's Import sections.
    plan, _, _ = _plan("dev", manage_bucket)
    ids = {e["name"]: e.get("id") for e in plan.document["resources"]}
    assert ids["jupyter-namespace"] == "jupyter"
    assert ids["hub-rbac-cluster-role"] == "hub"
    assert ids["hub-rbac-cluster-role-binding"] == "hub"
    assert ids["oauth-client-secrets-service-account"] == "jupyter/jupyterhub-secrets"
    assert ids["oauth-client-secrets-secret-store"] == "jupyter/aws-secrets-manager"
    assert ids["oauth-client-secrets-external-secret"] == "jupyter/jupyterhub-oauth"
    assert ids["jupyterhub-templates"] == "jupyter/hub-templates"
    assert ids["jupyterhub-ingress"] == "jupyter/jupyterhub"
    assert ids["keycloak-oidc-provider"] == (
        "arn:aws:iam::312280911266:oidc-provider/dev.eodatahub.org.uk/keycloak/realms/eodhp"
    )
    bucket_ids = {k: v for k, v in ids.items() if k.startswith("workspaces-")}
    # pulumi-aws 7's Import sections: the bucket and each of its configuration resources by
    # the bucket's name (no ARN, no expected-owner suffix).
    assert bucket_ids == (
        {
            "workspaces-bucket": "workspaces-eodhp-dev",
            "workspaces-encryption": "workspaces-eodhp-dev",
            "workspaces-lifecycle": "workspaces-eodhp-dev",
            "workspaces-ownership": "workspaces-eodhp-dev",
            "workspaces-public-access-block": "workspaces-eodhp-dev",
            "workspaces-tls-only-policy": "workspaces-eodhp-dev",
            "workspaces-versioning": "workspaces-eodhp-dev",
        }
        if manage_bucket
        else {}
    )
    assert _entry(plan.document, "jupyterhub-ingress")["parent"] == "jupyterhub"
    assert _entry(plan.document, "jupyterhub")["component"] is True
    assert "parent" not in _entry(plan.document, "jupyterhub")


def test_new_and_secret_resources_are_not_in_the_file() -> None:
    plan, recording, _ = _plan("dev")
    names = {e["name"] for e in plan.document["resources"]}
    for resource in recording.resources:
        if resource.type.startswith("random:") or resource.type.endswith(":Release"):
            assert resource.name not in names
        if resource.parent_name == "s3keep":
            assert resource.name not in names
    created = {d.resource for d in plan.of("create")}
    assert "jupyterhub-release" in created
    assert {r.name for r in recording.resources if r.parent_name == "s3keep"} <= created
    assert {d.resource for d in plan.of("secret")} == {
        r.name for r in recording.resources if r.type.startswith("random:")
    }
    notes = import_plan.render_notes(plan)
    assert "## Created by the first up" in notes and "`jupyterhub-release`" in notes


@pytest.mark.parametrize(
    "breakage, expected",
    [
        (lambda e: e.update(type="kubernetes:core/v1:Secret"), "is not a resource of the program"),
        (lambda e: e.update(name="ingress"), "is not a resource of the program"),
        (lambda e: e.update(parent="hub-rbac"), "is not a resource of the program"),
        (lambda e: e.pop("parent"), "is not a resource of the program"),
        (lambda e: e.update(id="jupyter/notebooks"), "the first up would replace it"),
        (lambda e: e.update(parent="nowhere"), "has no entry"),
        (lambda e: e.update(ID="jupyter/jupyterhub"), "fields pulumi import does not read"),
    ],
)
def test_a_wrong_entry_is_caught(breakage, expected: str) -> None:
    plan, recording, settings = _plan("dev")
    document = copy.deepcopy(plan.document)
    breakage(_entry(document, "jupyterhub-ingress"))
    problems = verify(document, recording, settings)
    assert any(expected in p for p in problems), problems


def test_a_missing_entry_and_a_new_resource_listed_are_caught() -> None:
    plan, recording, settings = _plan("dev")
    document = copy.deepcopy(plan.document)
    document["resources"] = [e for e in document["resources"] if e["name"] != "jupyter-namespace"]
    assert "jupyter-namespace: exists before the first up but is not listed" in verify(
        document, recording, settings
    )
    document = copy.deepcopy(plan.document)
    document["resources"].append(
        {"type": "aws:sqs/queue:Queue", "name": "s3keep-failures", "id": "q", "parent": "s3keep"}
    )
    document["resources"].append(
        {"type": "eodh:storage:MarkerFunction", "name": "s3keep", "component": True}
    )
    assert any(
        p.startswith("s3keep-failures: must not be imported")
        for p in verify(document, recording, settings)
    )


def _role_pair(name_role: str | None, name_policy: str | None) -> Recording:
    base = "urn:pulumi:dev::eodh-jupyterhub::"
    component = RecordedResource(
        urn=f"{base}pulumi:pulumi:Stack$eodh:identity:NotebookRole::notebook",
        type="eodh:identity:NotebookRole",
        name="notebook",
        parent_urn="",
        custom=False,
        inputs={},
        protect=False,
        retain_on_delete=False,
        delete_before_replace=False,
        ignore_changes=[],
        additional_secret_outputs=[],
        depends_on=[],
        aliases=[],
    )
    role = replace(
        component,
        urn=f"{base}eodh:identity:NotebookRole$aws:iam/role:Role::notebook-role",
        type="aws:iam/role:Role",
        name="notebook-role",
        parent_urn=component.urn,
        custom=True,
        inputs={"name": name_role} if name_role else {},
    )
    policy = replace(
        role,
        urn=f"{base}eodh:identity:NotebookRole$aws:iam/rolePolicy:RolePolicy::notebook-access",
        type="aws:iam/rolePolicy:RolePolicy",
        name="notebook-access",
        inputs={"role": "notebook-role-id", **({"name": name_policy} if name_policy else {})},
    )
    return Recording(stack="dev", preview=False, resources=[component, role, policy])


def test_a_named_role_is_imported_by_name_and_its_policy_by_role_colon_policy() -> None:
    recording = _role_pair("jupyter-notebooks-dev", "workspace-access")
    plan = build_plan(recording, _settings("dev"))
    ids = {e["name"]: e.get("id") for e in plan.document["resources"]}
    assert ids["notebook-role"] == "jupyter-notebooks-dev"
    assert ids["notebook-access"] == "jupyter-notebooks-dev:workspace-access"
    assert verify(plan.document, recording, _settings("dev")) == []


def test_an_auto_named_role_is_created_not_imported() -> None:
    # An imported auto-named role gets a fresh name on the next preview: a replace.
    recording = _role_pair(None, None)
    plan = build_plan(recording, _settings("dev"))
    assert {d.resource for d in plan.of("create")} == {"notebook-role", "notebook-access"}
    assert plan.document["resources"] == []


def test_make_import_plan_writes_the_file(tmp_path: Path) -> None:
    assert import_plan.main(["dev", "--out", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "dev" / "import.json").read_text())
    assert document == build_plan(recording_for("dev"), _settings("dev")).document
    assert (tmp_path / "dev" / "import-plan.md").read_text().startswith("# Adoption plan")


def test_version_pins_the_programs_provider() -> None:
    from importlib.metadata import version

    plan, _, _ = _plan("dev")
    assert _entry(plan.document, "jupyterhub-ingress")["version"] == version("pulumi-kubernetes")


def test_the_import_command_runs_the_file_without_code_generation() -> None:
    assert import_plan.import_command("eodhp/dev", "build/dev/import.json") == [
        "pulumi",
        "import",
        "--stack",
        "eodhp/dev",
        "--file",
        "build/dev/import.json",
        "--generate-code=false",
        "--yes",
    ]
    assert import_plan.import_command("dev", "f.json", preview_only=True)[-1] == "--preview-only"


@BUCKET_MODES
def test_the_bucket_is_imported_only_where_the_stack_manages_it(
    stack: str, manage_bucket: bool
) -> None:
    # A shared bucket (manageWorkspaceBucket: false) is only referenced: nothing of it may
    # enter this stack's state, or a later destroy or replace could touch the platform's data.
    plan, _, _ = _plan(stack, manage_bucket)
    s3 = {e["type"]: e["id"] for e in plan.document["resources"] if e["type"].startswith("aws:s3/")}
    if not manage_bucket:
        assert s3 == {}
        return
    bucket = pulumi_config(stack)["eodh-jupyterhub:workspaceBucket"]
    assert s3 == {
        "aws:s3/bucket:Bucket": bucket,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
            bucket
        ),
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": bucket,
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls": bucket,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": bucket,
        "aws:s3/bucketPolicy:BucketPolicy": bucket,
        "aws:s3/bucketVersioning:BucketVersioning": bucket,
    }
    assert not bucket.startswith("arn:")


@pytest.mark.parametrize(
    "audiences, refused",
    [
        (["eodh-workspaces"], False),
        (["eodh-workspaces", "workflow-harvester"], True),
    ],
    ids=["program-audience-only", "platform-audience-too"],
)
def test_importing_never_shrinks_the_providers_client_list(
    tmp_path: Path, monkeypatch, capsys, audiences: list[str], refused: bool
) -> None:
    code, ran, arn = _run_import(tmp_path, monkeypatch, audiences, [])
    err = capsys.readouterr().err
    if refused:
        assert (code, ran) == (1, [])
        assert f"{arn} also trusts ['workflow-harvester']" in err
        assert f"keycloakProviderArn: {arn} in Pulumi.dev.yaml" in err
    else:
        assert (code, err) == (0, "")
        assert ran[-1][0][:4] == ["pulumi", "import", "--stack", "eodhp/dev"]
        # Before it, every imported Kubernetes object's field managers were reset.
        assert len(ran) > 1 and all("patch" in c[0] for c in ran[:-1])


class _Done:
    returncode = 0


def _run_import(
    tmp_path: Path, monkeypatch, audiences: list[str], extra: list[str]
) -> tuple[int, list, str]:
    """`import_plan dev --run-import` against moto's IAM holding the realm's provider with
    `audiences`; every command it would run is recorded, none is run."""
    import boto3
    from moto import mock_aws

    settings = _settings("dev")
    # moto makes the provider in its account: the stack's, so the ARN is the plan's id.
    monkeypatch.setenv("MOTO_ACCOUNT_ID", settings.aws_account)
    monkeypatch.setenv("PULUMI_ORG", "eodhp")
    ran: list = []
    monkeypatch.setattr(import_plan.subprocess, "run", lambda *a, **k: ran.append(a) or _Done())
    with mock_aws():
        iam = boto3.client("iam", region_name="eu-west-2")
        arn = iam.create_open_id_connect_provider(
            Url=settings.keycloak_issuer, ClientIDList=audiences
        )["OpenIDConnectProviderArn"]
        monkeypatch.setattr(import_plan, "_iam_client", lambda s: iam)
        code = import_plan.main(["dev", "--out", str(tmp_path), "--run-import", *extra])
    return code, ran, arn


def test_the_import_runs_only_into_an_organisations_stack(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    # Pulumi Cloud would resolve a bare `dev` in the user's default organisation.
    monkeypatch.delenv("PULUMI_ORG", raising=False)
    ran: list = []
    monkeypatch.setattr(import_plan.subprocess, "run", lambda *a, **k: ran.append(a))
    assert import_plan.main(["dev", "--out", str(tmp_path), "--run-import"]) == 2
    assert ran == []
    assert "set PULUMI_ORG" in capsys.readouterr().err


def _server_managed_fields_after_write(before: list, written: object) -> list:
    """The API server's documented handling of `metadata.managedFields` in a write other than
    apply (Kubernetes docs, Server-Side Apply, "Clearing managedFields"): a list holding one
    empty entry strips them all; an empty list is ignored (clients unaware of the field must
    not strip it); anything else is taken as written."""
    if written == [{}]:
        return []
    if written == [] or written is None:
        return before
    return list(written)  # type: ignore[call-overload]


ARGOCD_OWNED_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {
        "name": "hub",
        "managedFields": [
            {
                "manager": "argocd-controller",
                "operation": "Apply",
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:rules": {}},
            }
        ],
    },
    "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}],
}


def test_each_imported_object_gets_the_documented_managed_fields_reset() -> None:
    import jsonpatch

    plan, _, _ = _plan("dev")
    commands = import_plan.managed_fields_reset_commands(plan.document, "eodhp-dev")
    kubernetes = [e for e in plan.document["resources"] if e["type"].startswith("kubernetes:")]
    kubernetes = [e for e in kubernetes if not e.get("component")]
    assert len(commands) == len(kubernetes) > 0
    refs = {c[c.index("patch") + 1] for c in commands}
    assert {"namespace/jupyter", "clusterrole.rbac.authorization.k8s.io/hub"} <= refs
    assert "ingress.networking.k8s.io/jupyterhub" in refs
    assert any(r.startswith("externalsecret.external-secrets.io/") for r in refs)
    for command in commands:
        assert command[:3] == ["kubectl", "--context", "eodhp-dev"]
        # A JSON patch is a write other than apply, which the documented reset needs.
        assert command[-4:-1] == ["--type", "json", "-p"]
        written = jsonpatch.apply_patch(ARGOCD_OWNED_ROLE, json.loads(command[-1]))
        before = ARGOCD_OWNED_ROLE["metadata"]["managedFields"]
        assert (
            _server_managed_fields_after_write(before, written["metadata"]["managedFields"]) == []
        )
        assert written["rules"] == ARGOCD_OWNED_ROLE["rules"]  # nothing else changes
    namespaced = [c for c in commands if "-n" in c]
    assert all(c[c.index("-n") + 1] == "jupyter" for c in namespaced)
    assert not any("-n" in c for c in commands if "namespace/jupyter" in c)


def test_an_empty_list_would_not_reset_them() -> None:
    # Why the reset writes [{}]: the server ignores an empty list.
    before = ARGOCD_OWNED_ROLE["metadata"]["managedFields"]
    assert _server_managed_fields_after_write(before, []) == before


def test_a_preview_only_import_resets_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    code, ran, _ = _run_import(tmp_path, monkeypatch, ["eodh-workspaces"], ["--preview-only"])
    assert code == 0
    assert [c[0][:2] for c in ran] == [["pulumi", "import"]]
    assert (
        "# would run: kubectl --context eodhp-dev patch namespace/jupyter"
        in capsys.readouterr().out
    )


def _server_managed_fields_after(before: list, operation: str, manager: str) -> list:
    """The API server's field tracking for a write to an existing object
    (k8s.io/apimachinery pkg/util/managedfields/internal/skipnonapplied.go): with no
    managedFields, a non-apply write (Update, Patch, a status refresh) tracks nothing; an apply
    first gives the live fields to `before-first-apply`, then records the applier."""
    if not before and operation != "Apply":
        return []
    if not before:
        before = [{"manager": "before-first-apply", "operation": "Update"}]
    return [*before, {"manager": manager, "operation": operation}]


def _check_live(tmp_path: Path, monkeypatch, writes: dict[str, tuple[str, str]]) -> tuple:
    """`--check-managed-fields` against objects reset as the tool does, then written as
    `writes` says (ref -> (operation, manager)); returns exit code, commands run, stderr."""
    import jsonpatch

    reset = jsonpatch.apply_patch(ARGOCD_OWNED_ROLE, import_plan.MANAGED_FIELDS_RESET)
    cleared = _server_managed_fields_after_write(
        ARGOCD_OWNED_ROLE["metadata"]["managedFields"], reset["metadata"]["managedFields"]
    )
    ran: list = []

    class Read:
        def __init__(self, ref: str) -> None:
            fields = cleared
            if ref in writes:
                fields = _server_managed_fields_after(cleared, *writes[ref])
            live = {**reset, "metadata": {**reset["metadata"], "managedFields": fields}}
            self.stdout = json.dumps(live)

    def run(command, **kwargs):
        ran.append(command)
        return Read(command[command.index("get") + 1])

    monkeypatch.setattr(import_plan.subprocess, "run", run)
    code = import_plan.main(["dev", "--out", str(tmp_path), "--check-managed-fields"])
    return code, ran


def test_the_check_passes_while_only_non_apply_writes_touched_the_reset_objects(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    # External Secrets refreshes the ExternalSecret's status every minute (an update).
    writes = {"clusterrole.rbac.authorization.k8s.io/hub": ("Update", "external-secrets")}
    code, ran = _check_live(tmp_path, monkeypatch, writes)
    assert code == 0
    assert ran and all(
        c[c.index("get") :][-3:] == ["-o", "json", "--show-managed-fields"] for c in ran
    )
    assert not any("patch" in c for c in ran)  # read-only
    assert "ready for the up" in capsys.readouterr().out


def test_the_check_refuses_an_object_applied_to_since_the_reset(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    writes = {"clusterrole.rbac.authorization.k8s.io/hub": ("Apply", "argocd-controller")}
    code, _ = _check_live(tmp_path, monkeypatch, writes)
    assert code == 1
    err = capsys.readouterr().err
    assert (
        "clusterrole.rbac.authorization.k8s.io/hub has field managers "
        "['argocd-controller', 'before-first-apply'] again" in err
    )
    assert "--reset-managed-fields" in err


def test_the_late_reset_patches_every_imported_object_and_imports_nothing(
    tmp_path: Path, monkeypatch
) -> None:
    ran: list = []
    monkeypatch.setattr(import_plan.subprocess, "run", lambda *a, **k: ran.append(a[0]))
    assert import_plan.main(["dev", "--out", str(tmp_path), "--reset-managed-fields"]) == 0
    plan, _, _ = _plan("dev")
    assert ran == import_plan.managed_fields_reset_commands(plan.document, "eodhp-dev")


@pytest.mark.parametrize(
    "extra",
    [
        ["--reset-managed-fields", "--run-import"],
        ["--check-managed-fields", "--preview-only"],
        ["--reset-managed-fields", "--check-managed-fields"],
    ],
)
def test_the_late_steps_run_alone(tmp_path: Path, monkeypatch, extra: list[str]) -> None:
    ran: list = []
    monkeypatch.setattr(import_plan.subprocess, "run", lambda *a, **k: ran.append(a))
    with pytest.raises(SystemExit) as exit_:
        import_plan.main(["dev", "--out", str(tmp_path), *extra])
    assert exit_.value.code == 2 and ran == []
