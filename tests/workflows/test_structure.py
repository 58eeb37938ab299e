"""What the pull-request and deploy workflows must do, read from the files themselves.

Pull requests: `make test`, `make check STACK=all`, and a `pulumi preview` with the policy pack
for each of the five stacks, commented on the PR. Main: one reusable workflow per stack
(deploy-environment.yml) promoting dev, test, staging, prod in that order, each behind its
GitHub environment: the environment's DEPLOY_PAUSED stops it before anything runs, then
`pulumi up`, then `make smoke`, and any failure stops the promotion; dev3 only by hand. AWS only
through OIDC role assumption. (Required reviewers of the prod environment are a repository
setting, not a file: docs/operations.md says how to set them.)
"""

from __future__ import annotations

import itertools
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.stacks import stack_names

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_DIR = ROOT / ".github" / "workflows"
PULUMI_ACTION = "pulumi/actions@"
AWS_ACTION = "aws-actions/configure-aws-credentials@"
PROMOTION = ["dev", "test", "staging", "prod"]


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOW_DIR / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith(action)]


def run_lines(job: dict[str, Any]) -> list[str]:
    return [
        line.strip() for s in job.get("steps", []) for line in str(s.get("run", "")).splitlines()
    ]


def all_workflows() -> list[tuple[str, dict[str, Any]]]:
    return [(p.name, load(p.name)) for p in sorted(WORKFLOW_DIR.glob("*.yml"))]


# --- pull requests --------------------------------------------------------------------------


def test_pull_requests_run_the_tests_and_the_offline_policy_check():
    workflow = load("pull-request.yml")
    assert set(workflow["on"]) == {"pull_request"}
    lines = [line for job in workflow["jobs"].values() for line in run_lines(job)]
    assert "make test" in lines
    assert "make check STACK=all" in lines


def test_pull_requests_preview_every_stack_with_the_policy_pack():
    job = load("pull-request.yml")["jobs"]["preview"]
    assert sorted(job["strategy"]["matrix"]["stack"]) == sorted(stack_names())
    assert len(stack_names()) == 5
    (step,) = steps_using(job, PULUMI_ACTION)
    inputs = step["with"]
    assert inputs["command"] == "preview"
    assert inputs["stack-name"].endswith("/${{ matrix.stack }}")
    assert inputs["policyPacks"] == "policy"
    assert (ROOT / inputs["policyPacks"] / "PulumiPolicy.yaml").is_file()
    assert inputs["comment-on-pr"] is True
    assert step["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    assert job["permissions"]["pull-requests"] == "write"


def test_previews_never_wait_for_a_deploy_environment():
    """Previews use preview-<stack> environments (no reviewers), never the deploy ones."""
    job = load("pull-request.yml")["jobs"]["preview"]
    assert job["environment"] == "preview-${{ matrix.stack }}"


# --- deploys ---------------------------------------------------------------------------------


REUSABLE = "./.github/workflows/deploy-environment.yml"


def deploy_jobs() -> dict[str, dict[str, Any]]:
    return load("deploy.yml")["jobs"]


def environment_job() -> dict[str, Any]:
    """The one job of the reusable workflow every deploy calls."""
    (job,) = load("deploy-environment.yml")["jobs"].values()
    return job


def test_main_promotes_dev_test_staging_prod_in_order():
    workflow = load("deploy.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    jobs = deploy_jobs()
    for before, stage in itertools.pairwise(PROMOTION):
        assert jobs[stage]["needs"] in (before, [before]), f"{stage} must wait for {before}"
    assert "needs" not in jobs["dev"]
    for stage in PROMOTION:
        # A stage runs only when the one before it succeeded: no always()/failure() that
        # would promote past a failed up or smoke check.
        assert jobs[stage]["if"] == "github.event_name == 'push'"


@pytest.mark.parametrize("stage", [*PROMOTION, "dev3"])
def test_each_deploy_is_the_one_reusable_workflow_for_its_stack(stage: str):
    job = deploy_jobs()[stage]
    assert job["uses"] == REUSABLE
    assert job["with"] == {"stack": stage}
    assert job["secrets"] == {"PULUMI_ACCESS_TOKEN": "${{ secrets.PULUMI_ACCESS_TOKEN }}"}
    assert "steps" not in job
    assert job["permissions"] == {"contents": "read", "id-token": "write"}


def test_the_reusable_workflow_runs_pulumi_up_behind_the_stack_s_environment():
    workflow = load("deploy-environment.yml")
    assert set(workflow["on"]) == {"workflow_call"}
    assert workflow["on"]["workflow_call"]["inputs"]["stack"]["required"] is True
    job = environment_job()
    assert job["environment"] == "${{ inputs.stack }}"
    assert job["concurrency"] == {
        "group": "deploy-${{ inputs.stack }}",
        "cancel-in-progress": False,
    }
    (step,) = steps_using(job, PULUMI_ACTION)
    assert step["with"]["command"] == "up"
    assert step["with"]["stack-name"] == "${{ vars.PULUMI_ORG }}/${{ inputs.stack }}"
    assert step["with"]["policyPacks"] == "policy"


def test_smoke_checks_run_after_up_and_their_failure_fails_the_deploy():
    steps = environment_job()["steps"]
    (up,) = [i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith(PULUMI_ACTION)]
    smoke = [i for i, s in enumerate(steps) if "make smoke" in str(s.get("run", ""))]
    assert smoke == [len(steps) - 1] and smoke[0] > up
    assert not any(s.get("continue-on-error") for s in steps)
    assert not any("if" in s for s in steps), "no step may run or be skipped conditionally"
    env = steps[smoke[0]]["env"]
    assert env["STACK"] == "${{ inputs.stack }}"
    assert env["PULUMI_STACK_NAME"] == "${{ vars.PULUMI_ORG }}/${{ inputs.stack }}"
    assert env["SMOKE_HUB_TOKEN"] == "${{ secrets.SMOKE_HUB_TOKEN }}"
    assert 'make smoke STACK="$STACK"' in steps[smoke[0]]["run"]


def test_smoke_counts_marker_errors_from_the_start_of_the_deploy(tmp_path):
    """Errors before the deploy were retried (the queue gate holds what was not): a step
    before the up notes the start, and smoke gets it as --since in a form it accepts."""
    from tools import smoke as smoke_tool

    steps = environment_job()["steps"]
    (up,) = [i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith(PULUMI_ACTION)]
    (noted,) = [i for i, s in enumerate(steps) if "DEPLOY_STARTED=" in str(s.get("run", ""))]
    assert noted < up
    (smoke,) = [s for s in steps if "make smoke" in str(s.get("run", ""))]
    assert smoke["run"] == 'make smoke STACK="$STACK" SMOKE_ARGS="--since $DEPLOY_STARTED"'
    github_env = tmp_path / "github_env"
    subprocess.run(
        ["bash", "-e", "-c", steps[noted]["run"]],
        env={"GITHUB_ENV": str(github_env), "PATH": "/usr/bin:/bin"},
        check=True,
        timeout=10,
    )
    name, _, value = github_env.read_text().strip().partition("=")
    assert name == "DEPLOY_STARTED"
    assert smoke_tool._utc_time(value).tzinfo is not None


def _pause_step() -> tuple[int, dict[str, Any]]:
    steps = environment_job()["steps"]
    found = [(i, s) for i, s in enumerate(steps) if "DEPLOY_PAUSED" in str(s.get("env", {}))]
    assert len(found) == 1
    return found[0]


def test_the_pause_is_checked_before_anything_else():
    index, step = _pause_step()
    assert index == 0
    assert step["env"]["PAUSED"] == "${{ vars.DEPLOY_PAUSED }}"


@pytest.mark.parametrize(
    ("paused", "stops"), [("true", True), ("", False), ("false", False), ("TRUE ", False)]
)
def test_a_paused_environment_fails_before_any_up(tmp_path, paused: str, stops: bool):
    """The step's own script, run by bash as the runner does (`bash -e {0}`)."""
    _, step = _pause_step()
    script = tmp_path / "step.sh"
    script.write_text(step["run"])
    summary = tmp_path / "summary.md"
    result = subprocess.run(
        ["bash", "-e", str(script)],
        env={"PAUSED": paused, "STACK": "staging", "GITHUB_STEP_SUMMARY": str(summary)},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if not stops:
        assert (result.returncode, result.stdout, summary.exists()) == (0, "", False)
        return
    assert result.returncode == 1
    assert result.stdout.startswith("::error title=deploy paused::staging is paused")
    assert "no later environment is promoted" in summary.read_text()


def test_prod_deploys_behind_the_prod_environment():
    """The prod environment carries the required reviewers (a repository setting)."""
    jobs = deploy_jobs()
    assert [name for name, job in jobs.items() if job["with"]["stack"] == "prod"] == ["prod"]


def test_dev3_deploys_only_on_manual_dispatch():
    workflow = load("deploy.yml")
    assert "workflow_dispatch" in workflow["on"]
    jobs = deploy_jobs()
    assert jobs["dev3"]["if"] == "github.event_name == 'workflow_dispatch'"
    assert "needs" not in jobs["dev3"]
    assert [name for name, job in jobs.items() if job["with"]["stack"] == "dev3"] == ["dev3"]


# --- drift ----------------------------------------------------------------------------------


def test_drift_previews_every_stack_with_refresh_and_changes_nothing():
    workflow = load("drift.yml")
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch"}
    (job,) = workflow["jobs"].values()
    assert sorted(job["strategy"]["matrix"]["stack"]) == sorted(stack_names())
    assert job["strategy"]["fail-fast"] is False, "one stack's drift must not hide another's"
    # Its own environments: the deploy ones would make it wait for prod's reviewers.
    assert job["environment"] == "drift-${{ matrix.stack }}"
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    (aws,) = steps_using(job, AWS_ACTION)
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_DRIFT_ROLE_ARN }}"
    (step,) = steps_using(job, PULUMI_ACTION)
    inputs = step["with"]
    assert inputs["command"] == "preview"
    assert inputs["stack-name"] == "${{ vars.PULUMI_ORG }}/${{ matrix.stack }}"
    assert inputs["refresh"] is True and inputs["expect-no-changes"] is True
    assert inputs["comment-on-summary"] is True
    assert "policyPacks" not in inputs
    commands = [line for line in run_lines(job) if "pulumi" in line]
    assert commands == [], "nothing but the action's preview may touch the stack"


def test_the_drift_runbook_covers_a_stack_paused_mid_migration():
    """Drift runs in drift-<env>, where DEPLOY_PAUSED (set on <env>) is not visible: between
    the import and the first up it fails for a paused stack, and the runbook must say so."""
    assert "DEPLOY_PAUSED" not in (WORKFLOW_DIR / "drift.yml").read_text()
    operations = (ROOT / "docs" / "operations.md").read_text()
    drift = operations.split("\n## Drift\n", 1)[1].split("\n## ", 1)[0]
    assert "`DEPLOY_PAUSED`" in drift and "mid-migration" in drift
    assert "no replace and no delete" in drift


# --- every workflow --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "workflow"), all_workflows(), ids=lambda v: str(v)[:20])
def test_aws_only_through_oidc(name: str, workflow: dict[str, Any]):
    text = (WORKFLOW_DIR / name).read_text()
    assert "aws-access-key-id" not in text
    assert "aws-secret-access-key" not in text
    assert "AWS_ACCESS_KEY_ID" not in text
    assert workflow["permissions"] == {}, "permissions are granted per job"
    for job_name, job in workflow["jobs"].items():
        permissions = job.get("permissions", {})
        # A job calling a reusable workflow grants what the called job uses.
        called = job.get("uses", "").startswith("./")
        uses_aws = bool(steps_using(environment_job() if called else job, AWS_ACTION))
        assert (permissions.get("id-token") == "write") == uses_aws, job_name
        for step in steps_using(job, AWS_ACTION):
            assert step["with"]["role-to-assume"].startswith("${{ vars."), job_name


@pytest.mark.parametrize(("name", "workflow"), all_workflows(), ids=lambda v: str(v)[:20])
def test_no_untrusted_input_in_scripts(name: str, workflow: dict[str, Any]):
    assert "pull_request_target" not in workflow["on"]
    for job_name, job in workflow["jobs"].items():
        for line in run_lines(job):
            assert "${{" not in line, f"{job_name}: pass values through env, not {line!r}"


@pytest.mark.parametrize(("name", "workflow"), all_workflows(), ids=lambda v: str(v)[:20])
def test_actions_are_pinned_by_hash_or_listed_in_zizmor_config(name: str, workflow):
    ref_pinned = set(
        yaml.safe_load((ROOT / ".github" / "zizmor.yml").read_text())["rules"]["unpinned-uses"][
            "config"
        ]["policies"]
    )
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            uses = step.get("uses")
            if not uses:
                continue
            action, _, ref = uses.partition("@")
            assert re.fullmatch(r"[0-9a-f]{40}", ref) or action in ref_pinned, uses
