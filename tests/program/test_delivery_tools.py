"""make check and make diff over rendered stacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from policy import eodh_policies
from policy.eodh_policies import check_resources
from tests.support.bucket_modes import manages_bucket, recording_in_mode
from tests.support.stacks import stack_names
from tools import check, diff, render


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = tmp_path_factory.mktemp("build")
    for stack in stack_names():
        render.render(stack, build)
    return build


def test_every_rendered_stack_passes_every_check(
    rendered: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Through `make check`'s own entry point: its exit status, and each stack's findings
    # (on stderr) when one fails.
    status = check.main(["all", "--build", str(rendered)])
    out, findings = capsys.readouterr()
    assert status == 0, findings
    assert out.splitlines() == [f"check {stack}: ok" for stack in stack_names()]


def test_check_command_exit_status(rendered: Path) -> None:
    assert check.main(["prod", "--build", str(rendered / "nowhere")]) == 2


@pytest.fixture(scope="module")
def rendered_other_mode(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every stack rendered in the workspace-bucket mode its stack file does not use."""
    build = tmp_path_factory.mktemp("build-other-mode")
    for stack in stack_names():
        render.render(stack, build, recording_in_mode(stack, not manages_bucket(stack)))
    return build


def test_both_bucket_modes_pass_every_check(rendered_other_mode: Path) -> None:
    for stack in stack_names():
        assert check.check_stack(stack, rendered_other_mode) == [], stack


def test_the_pack_reads_resources_json_as_render_writes_it(
    rendered: Path, rendered_other_mode: Path
) -> None:
    """`make check` reads build/<stack>/resources.json as tools/render.py writes it (no URNs
    or dependencies today): sub-resources are then matched by the offline mocks' naming. In
    both bucket modes, and the rules the files could hide from still fire when their part
    is taken out."""
    for build in (rendered, rendered_other_mode):
        for stack in stack_names():
            resources = json.loads((build / stack / "resources.json").read_text())["resources"]
            assert [str(v) for v in check_resources(resources, stack=stack)] == [], stack
            manage_bucket = manages_bucket(stack) == (build == rendered)
            assert any(r["type"] == eodh_policies.BUCKET for r in resources) is manage_bucket
            if manage_bucket:
                without_block = [
                    r for r in resources if r["type"] != eodh_policies.PUBLIC_ACCESS_BLOCK
                ]
                fired = {v.rule for v in check_resources(without_block, stack=stack)}
                assert "s3-bucket-public-access-blocked" in fired, stack
                trigger = eodh_policies.BUCKET_NOTIFICATION
            else:
                trigger = eodh_policies.EVENT_TARGET  # a shared bucket: the EventBridge path
            without_marker = [r for r in resources if r["type"] != trigger]
            fired = {v.rule for v in check_resources(without_marker, stack=stack)}
            assert "lambda-marker-present" in fired, stack


def _scratch(rendered: Path, tmp_path: Path) -> Path:
    scratch = tmp_path / "build"
    shutil.copytree(rendered / "prod", scratch / "prod")
    return scratch


def _managed_prod(rendered: Path, rendered_other_mode: Path) -> Path:
    """A build folder whose prod manages its bucket, whichever mode Pulumi.prod.yaml uses."""
    return rendered if manages_bucket("prod") else rendered_other_mode


def test_removing_the_tls_only_statement_fails_with_the_rule_name(
    rendered: Path, rendered_other_mode: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scratch = _scratch(_managed_prod(rendered, rendered_other_mode), tmp_path)
    resources_file = scratch / "prod" / "resources.json"
    data = json.loads(resources_file.read_text())
    (policy,) = [r for r in data["resources"] if r["type"] == "aws:s3/bucketPolicy:BucketPolicy"]
    document = json.loads(policy["inputs"]["policy"])
    document["Statement"] = [
        s for s in document["Statement"] if "aws:SecureTransport" not in json.dumps(s)
    ]
    policy["inputs"]["policy"] = json.dumps(document)
    resources_file.write_text(json.dumps(data))
    assert check.main(["prod", "--build", str(scratch)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert any("s3-bucket-tls-only" in line and "resources.json" in line for line in lines)


def test_a_broken_kubernetes_object_names_file_object_and_rule(
    rendered: Path, tmp_path: Path
) -> None:
    scratch = _scratch(rendered, tmp_path)
    namespace = scratch / "prod" / "kubernetes" / "namespace-jupyter.yaml"
    namespace.write_text(namespace.read_text().replace("labels:", "lables:"))
    findings = check.check_stack("prod", scratch)
    assert [(f.file.name, f.obj, f.rule) for f in findings] == [
        ("namespace-jupyter.yaml", "Namespace/jupyter", "kubernetes-strict-schema")
    ]


def test_a_broken_external_secret_and_helm_value_are_reported(
    rendered: Path, tmp_path: Path
) -> None:
    scratch = _scratch(rendered, tmp_path)
    external_secret = (
        scratch / "prod" / "kubernetes" / "externalsecret-jupyter-jupyterhub-oauth.yaml"
    )
    external_secret.write_text(
        external_secret.read_text().replace("refreshInterval:", "refreshIntervall:")
    )
    values = scratch / "prod" / "helm" / "jupyterhub" / "values.yaml"
    values.write_text(values.read_text().replace("baseUrl:", "baseURL:"))
    rules = {f.rule for f in check.check_stack("prod", scratch)}
    assert rules == {"external-secrets-crd-schema", "z2jh-values-schema"}


def test_a_wildcard_permission_is_reported_by_parliament_and_the_pack(
    rendered: Path, tmp_path: Path
) -> None:
    scratch = _scratch(rendered, tmp_path)
    iam = scratch / "prod" / "iam" / "s3keep-permissions.json"
    document = json.loads(iam.read_text())
    document["Statement"][0]["Action"] = "s3:PutObjct"
    iam.write_text(json.dumps(document))
    rules = {f.rule for f in check.check_stack("prod", scratch)}
    assert "parliament/UNKNOWN_ACTION" in rules


def test_diff_groups_changes_by_resource(rendered: Path) -> None:
    lines = diff.diff("staging", "prod", rendered)
    assert lines[:2] == ["--- staging", "+++ prod"]
    text = "\n".join(lines)
    assert "~ s3keep-object-created (aws:cloudwatch/eventRule:EventRule)" in text
    assert (
        "    inputs.eventPattern.detail.bucket.name: "
        '["workspaces-eodhp-staging"] -> ["workspaces-eodhp"]'
    ) in text
    assert '    hub.extraEnv.HUB_HOST: "staging.eodatahub-workspaces.org.uk" -> "eodatahub-' in text
    assert diff.diff("prod", "prod", rendered) == ["--- prod", "+++ prod"]


def test_diff_shows_resources_only_in_one_stack(rendered: Path) -> None:
    text = "\n".join(diff.diff("dev3", "dev", rendered))
    # dev creates the Keycloak identity provider; dev3 shares it.
    assert (
        "+ keycloak-oidc-provider (aws:iam/openIdConnectProvider:OpenIdConnectProvider): "
        "only in dev" in text
    )


def test_render_writes_every_artifact_with_a_summary(rendered: Path) -> None:
    folder = rendered / "prod"
    for relative in (
        "resources.json",
        "summary.md",
        "helm/jupyterhub/values.yaml",
        "helm/jupyterhub/release.json",
        "kubernetes/namespace-jupyter.yaml",
        "iam/notebook-role.json",
    ):
        assert (folder / relative).is_file(), relative
    summary = (folder / "summary.md").read_text()
    # prod references the platform's bucket: the component declares nothing of it.
    assert "| `workspaces` | `eodh:storage:WorkspaceBucket` | 0 | - |" in summary
    assert "| `eodh-jupyterhub:manageWorkspaceBucket` | `true` | `false` |" in summary
    assert "| `eodh-jupyterhub:hubExtraHosts` | `[]` |" in summary
    assert "| `eodh-jupyterhub:platformDomain` | (required here) |" in summary
    dev_summary = (rendered / "dev" / "summary.md").read_text()
    assert "| `eodh-jupyterhub:debug` | `false` | `true` |" in dev_summary
