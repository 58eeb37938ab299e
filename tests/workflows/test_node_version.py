"""One Node version, written once in `.node-version`, that every package in the lock accepts.

The workflows install that version with actions/setup-node (`node-version-file`), `.ci/run`
refuses any other major before it does anything, and the README names it. Whether a package's
`engines.node` range admits it is decided by npm's own code: the `semver` package that npm
ships and uses for its EBADENGINE check (npm-install-checks `checkEngine`:
`semver.satisfies(nodeVersion, engines.node, {includePrerelease: true})`), never by a range
parser of ours.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.workflows.shell_path import bin_with

ROOT = Path(__file__).resolve().parents[2]
NODE_VERSION_FILE = ROOT / ".node-version"
LOCK = ROOT / "package-lock.json"
WORKFLOW_DIR = ROOT / ".github" / "workflows"
SETUP_NODE = "actions/setup-node@49933ea5288caeca8642d1e84afbd3f7d6820020"

# For every range: does every release of the pinned major satisfy it (semver.subset, so a
# range such as ">=20.19" that only some Node 20 releases meet is refused: setup-node or a
# developer may have any 20.x), and does the Node running here satisfy it the way npm checks?
ENGINE_CHECK = r"""
const semver = require(process.argv[1]);
const { major, ranges } = JSON.parse(require("fs").readFileSync(0, "utf8"));
const opt = { includePrerelease: true };
const wholeMajor = `>=${major}.0.0 <${major + 1}.0.0-0`;
const out = {};
for (const [where, range] of Object.entries(ranges)) {
  out[where] = {
    valid: semver.validRange(range, opt) !== null,
    wholeMajor: semver.subset(wholeMajor, range, opt),
    running: semver.satisfies(process.versions.node, range, opt),
  };
}
process.stdout.write(JSON.stringify({ node: process.versions.node, out }));
"""


def pinned_major() -> int:
    text = NODE_VERSION_FILE.read_text()
    # setup-node reads the file's first line; .ci/run compares it with `node --version`'s major.
    assert re.fullmatch(r"[0-9]+\n?", text), f".node-version must be a bare major, got {text!r}"
    return int(text)


@functools.cache
def npm_root() -> str:
    return subprocess.run(
        ["npm", "root", "-g"], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def npm_semver() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        message = "node and npm are needed to check engines with npm's own semver"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    semver = Path(npm_root()) / "npm" / "node_modules" / "semver"
    assert (semver / "package.json").is_file(), f"npm ships no semver at {semver}"
    return semver


def engine_ranges(lock: dict) -> dict[str, str]:
    return {
        where or "(root)": entry["engines"]["node"]
        for where, entry in lock["packages"].items()
        if isinstance(entry.get("engines"), dict) and "node" in entry["engines"]
    }


def check_ranges(major: int, ranges: dict[str, str]) -> tuple[str, dict[str, dict[str, bool]]]:
    result = subprocess.run(
        ["node", "-e", ENGINE_CHECK, str(npm_semver())],
        input=json.dumps({"major": major, "ranges": ranges}),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    answer = json.loads(result.stdout)
    return answer["node"], answer["out"]


def refused(major: int, ranges: dict[str, str]) -> list[str]:
    running, verdicts = check_ranges(major, ranges)
    bad = []
    for where, v in verdicts.items():
        if not v["valid"] or not v["wholeMajor"]:
            bad.append(f"{where}: engines.node {ranges[where]!r} refuses some Node {major}")
        elif int(running.split(".")[0]) == major and not v["running"]:
            bad.append(f"{where}: engines.node {ranges[where]!r} refuses this Node {running}")
    return bad


def test_every_locked_package_accepts_the_pinned_node():
    lock = json.loads(LOCK.read_text())
    ranges = engine_ranges(lock)
    assert len(ranges) > 20, "the lock lists engines for its packages; found too few to trust"
    assert refused(pinned_major(), ranges) == []


def test_the_check_refuses_what_npm_refuses():
    """commander 15 (configurable-http-proxy 5.3's) wants >=22.12.0; npm refuses it on 20."""
    ranges = {
        "node_modules/commander": ">=22.12.0",
        "node_modules/late-20": ">=20.19.0",
        "node_modules/fine": ">= 10.0",
        "node_modules/prom-client": "^16 || ^18 || >=20",
    }
    assert refused(20, ranges) == [
        "node_modules/commander: engines.node '>=22.12.0' refuses some Node 20",
        "node_modules/late-20: engines.node '>=20.19.0' refuses some Node 20",
    ]


def test_the_proxy_is_the_one_the_chart_runs():
    """The real-hub tests run the same configurable-http-proxy as production's proxy pod."""
    values = yaml.safe_load((ROOT / "vendor" / "jupyterhub-4.2.0" / "values.yaml").read_text())
    chart_tag = values["proxy"]["chp"]["image"]["tag"]
    lock = json.loads(LOCK.read_text())
    assert lock["packages"]["node_modules/configurable-http-proxy"]["version"] == chart_tag
    package = json.loads((ROOT / "package.json").read_text())
    assert package["dependencies"]["configurable-http-proxy"] == chart_tag


# --- every place that installs or names Node ------------------------------------------------


def workflow_jobs():
    for path in sorted(WORKFLOW_DIR.glob("*.yml")):
        for name, job in yaml.safe_load(path.read_text())["jobs"].items():
            yield f"{path.name}:{name}", job


def runs(job: dict) -> str:
    return "\n".join(str(step.get("run", "")) for step in job.get("steps", []))


def needs_node(job: dict) -> bool:
    # make setup/test/check run `npm ci` and the Node test tools.
    return bool(
        re.search(
            r"\bmake (test|setup|check|render|bench|smoke|preflight)\b|\bnpm\b|\bnode\b", runs(job)
        )
    )


def test_workflows_install_the_pinned_node_and_no_other():
    jobs = dict(workflow_jobs())
    node_jobs = [name for name, job in jobs.items() if needs_node(job)]
    assert "pull-request.yml:test" in node_jobs
    for name, job in jobs.items():
        assert not re.search(r"apt-get install[^\n]*(\\\n[^\n]*)*\b(nodejs|npm)\b", runs(job)), (
            f"{name}: Node comes from actions/setup-node and .node-version, not apt"
        )
        setups = [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith(SETUP_NODE)]
        others = [
            s
            for s in job.get("steps", [])
            if "setup-node@" in str(s.get("uses", "")) and s not in setups
        ]
        assert others == [], f"{name}: setup-node is pinned to {SETUP_NODE}"
        if name in node_jobs:
            assert len(setups) == 1, f"{name} runs Node tools without actions/setup-node"
            steps = job["steps"]
            first_use = next(i for i, s in enumerate(steps) if needs_node({"steps": [s]}))
            assert steps.index(setups[0]) < first_use, f"{name}: Node is set up too late"
        for step in setups:
            assert step.get("with") == {"node-version-file": ".node-version"}, name


def test_readme_names_the_pinned_node_and_no_other():
    readme = (ROOT / "README.md").read_text()
    named = {int(n) for n in re.findall(r"\bNode(?:\.js)? ([0-9]+)\b", readme)}
    assert named == {pinned_major()}
    assert ".node-version" in readme


# --- .ci/run refuses another Node before doing anything --------------------------------------

SHIMMED = (
    "git",
    "make",
    "uv",
    "apt-get",
    "dpkg-query",
    "python3",
    "pip",
    "npm",
    "chromium",
    "chromedriver",
)


# The base tools a shell script may use; linked one by one so that no real node, npm or uv on
# /usr/bin is reachable.
BASE_TOOLS = ("sh", "bash", "dirname", "mktemp", "rm", "cat", "head", "tr", "cut", "sed", "grep")


def run_ci_with_node(tmp_path: Path, node_script: str | None) -> tuple[int, str, list[str]]:
    """Run .ci/run with `node` replaced; every tool it would use next only logs and exits 97."""
    bin_dir = bin_with(tmp_path, BASE_TOOLS)
    log = tmp_path / "called.log"
    for tool in SHIMMED:
        shim = bin_dir / tool
        shim.write_text(f'#!/bin/sh\necho {tool} >> "{log}"\nexit 97\n')
        shim.chmod(0o755)
    if node_script is not None:
        node = bin_dir / "node"
        node.write_text(f"#!/bin/sh\n{node_script}\n")
        node.chmod(0o755)
    result = subprocess.run(
        [str(bin_dir / "bash"), str(ROOT / ".ci" / "run")],
        env={"PATH": str(bin_dir), "HOME": str(tmp_path), "CI": "true"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    called = log.read_text().split() if log.exists() else []
    return result.returncode, result.stdout + result.stderr, called


@pytest.mark.parametrize("version", ["v18.19.0", "v22.12.0", "v2.0.0", "v200.1.0"])
def test_ci_run_refuses_another_node_major_first(tmp_path, version):
    code, output, called = run_ci_with_node(tmp_path, f"echo {version}")
    assert code not in (0, 97)
    assert called == [], "nothing may run before the Node check"
    assert ".node-version" in output
    assert version in output
    assert f"Node {pinned_major()}" in output


def test_ci_run_refuses_a_missing_node(tmp_path):
    code, output, called = run_ci_with_node(tmp_path, None)
    assert code not in (0, 97)
    assert called == []
    assert f"Node {pinned_major()}" in output


def test_ci_run_goes_on_with_the_pinned_node(tmp_path):
    code, output, called = run_ci_with_node(tmp_path, f"echo v{pinned_major()}.20.2")
    # Past the check it reaches its real work, which the shims (or a tool missing from the
    # bare PATH) stop; it never gets through.
    assert "asks for Node" not in output, output
    assert called or "not found" in output, output
    assert code != 0
