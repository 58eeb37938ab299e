"""`make test` on a fresh machine: the Debian packages the tests drive are installed first (as
root with apt-get), or the run stops at once with the one command that installs them.

.ci/system-packages runs here for real with `dpkg-query`, `id` and `apt-get` replaced by shims
that answer as Debian's do (dpkg-query prints `install ok installed` for an installed package
and exits 1 for an unknown one) and log their arguments.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import yaml

from tests.workflows.shell_path import bin_with

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "system-packages"
LIST = ROOT / ".ci" / "debian-packages"
BASE_TOOLS = ("bash", "env", "dirname", "sed", "grep", "cat")


def packages() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in LIST.read_text().splitlines())
    return [line for line in lines if line]


def run(tmp_path: Path, installed: set[str], uid: int | None) -> tuple[int, str, list[str]]:
    bin_dir = bin_with(tmp_path, BASE_TOOLS)
    log = tmp_path / "calls.log"
    status = "\n".join(f"{p}) printf 'install ok installed'; exit 0;;" for p in installed)
    shims = {
        # dpkg-query -W -f=... <package>: the package is the last argument.
        "dpkg-query": f'for a; do p="$a"; done\ncase "$p" in\n{status}\nesac\nexit 1',
        "apt-get": f'echo "apt-get $*" >> "{log}"',
    }
    if uid is not None:
        shims["id"] = f"echo {uid}"
    for name, body in shims.items():
        shim = bin_dir / name
        shim.write_text(f"#!/bin/sh\n{body}\n")
        shim.chmod(0o755)
    started = time.monotonic()
    result = subprocess.run(
        [str(bin_dir / "bash"), str(SCRIPT)],
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert time.monotonic() - started < 5, "the check must answer in the first seconds"
    calls = log.read_text().splitlines() if log.exists() else []
    return result.returncode, result.stdout + result.stderr, calls


def test_the_list_holds_every_package_the_tests_name():
    named = (ROOT / "tests" / "hub" / "conftest.py").read_text() + (
        ROOT / "tests" / "program" / "test_ingress_header_guard.py"
    ).read_text()
    for package in (
        "chromium",
        "chromium-driver",
        "nginx",
        "libnginx-mod-http-headers-more-filter",
    ):
        assert package in named
        assert package in packages()


def test_nothing_to_do_when_everything_is_installed(tmp_path):
    code, output, calls = run(tmp_path, set(packages()), uid=1000)
    assert (code, output, calls) == (0, "", [])


def test_a_user_is_told_the_one_command_and_the_run_stops(tmp_path):
    installed = {"nginx", "libnginx-mod-http-headers-more-filter", "r-base-core"}
    code, output, calls = run(tmp_path, installed, 1000)
    assert code == 2
    assert calls == []
    # A fresh machine has no package lists: install alone fails ("Unable to locate package").
    assert (
        "  sudo apt-get update && sudo apt-get install -y --no-install-recommends "
        "chromium chromium-driver\n"
    ) in output
    assert "On Debian" in output and "Ubuntu, chromium is a snap" in output


def test_root_installs_exactly_what_is_missing(tmp_path):
    code, output, calls = run(tmp_path, {"chromium", "chromium-driver", "r-base-core"}, uid=0)
    assert code == 0, output
    assert calls[0] == "apt-get update -qq"
    assert calls[1].endswith("--no-install-recommends nginx libnginx-mod-http-headers-more-filter")


def test_not_debian_stops_with_the_reason(tmp_path):
    bin_dir = bin_with(tmp_path, BASE_TOOLS)
    result = subprocess.run(
        [str(bin_dir / "bash"), str(SCRIPT)],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "not a\nDebian system" in result.stderr and "chromium" in result.stderr
    assert "Ubuntu" not in result.stderr  # its chromium is a snap, not the package named


def test_make_test_ci_and_the_pull_request_workflow_use_the_one_list():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: system-packages\b", makefile, re.M)
    assert "\t@.ci/system-packages\n" in makefile
    assert "\n.ci/system-packages\n" in (ROOT / ".ci" / "run").read_text()
    job = yaml.safe_load((ROOT / ".github" / "workflows" / "pull-request.yml").read_text())
    runs = [str(step.get("run", "")) for step in job["jobs"]["test"]["steps"]]
    assert ".ci/system-packages" in runs
    assert runs.index(".ci/system-packages") < runs.index("make test")
    # No second copy of the list anywhere a package could be added to one and not the other.
    for path in [ROOT / "Makefile", ROOT / ".ci" / "run", *ROOT.glob(".github/workflows/*.yml")]:
        assert "chromium-driver" not in path.read_text(), path
