"""Issue 18, section 1, in a real browser: the planted JupyterLab extension never runs.

The review's chain began with mallory planting a JupyterLab extension where alice's
JupyterLab would load it. Here the pods are those KubeSpawner builds from the rendered
chart (tests/chart/pod_mounts.py lays them out in real mount namespaces); mallory plants
from hers, a real JupyterLab server starts in alice's, and headless Chromium opens it.
The extension's script marks the page when it runs. With the workspace volume as every
member's HOME (the chart without hub/extra_config/4_workspace_homes.py) it does.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.support.ui import WebDriverWait

from tests.chart.hub_pod import render_release
from tests.chart.pod_mounts import (
    HOMES_FILE,
    NEEDS_MOUNT_NAMESPACES,
    PATH,
    member_pods,
    plant_as_mallory,
    pod_command,
    without_extra_config,
)
from tests.images.doubles import free_port
from tests.support.recordings import recording_for

pytestmark = [pytest.mark.slow, NEEDS_MOUNT_NAMESPACES]

TOKEN = "test-lab-token"
# JupyterLab 4 attaches its shell (#main.jp-LabShell) once every plugin, federated
# extensions included, has been loaded and activated.
LAB_STARTED = "return !!document.querySelector('#main.jp-LabShell')"
PLANTED_RAN = "return window.__eodh_planted || null"


@contextmanager
def jupyterlab(pod: dict[str, Any], claims: dict[str, Path], log: Path) -> Iterator[str]:
    port = free_port()
    command = (
        f"jupyter lab --no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0"
        f" --IdentityProvider.token={TOKEN} --allow-root"
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            pod_command(pod, claims, command, path=PATH), stdout=out, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2):
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(log.read_text()[-3000:]) from None
                    time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


def _planted_ran(browser, pods: dict[str, Any], tmp_path: Path) -> bool:
    claims = {"pvc-alpha": tmp_path / "efs-alpha"}
    plant_as_mallory(pods, claims, tmp_path / "markers")
    with jupyterlab(pods["alice"], claims, tmp_path / "lab.log") as url:
        browser.get(f"{url}/lab?token={TOKEN}")
        WebDriverWait(browser, 60).until(
            lambda b: b.execute_script(LAB_STARTED) or b.execute_script(PLANTED_RAN)
        )
        WebDriverWait(browser, 60).until(lambda b: b.execute_script(LAB_STARTED))
        return browser.execute_script(PLANTED_RAN) == "ran"


@pytest.fixture(scope="module")
def release():
    return render_release(recording_for("dev"))


def test_alices_jupyterlab_never_runs_mallorys_extension(browser, release, tmp_path) -> None:
    pods = member_pods(release, tmp_path / "pods", "alpha")
    assert not _planted_ran(browser, pods, tmp_path)


def test_with_the_volume_as_every_home_alices_jupyterlab_runs_it(
    browser, release, tmp_path
) -> None:
    pods = member_pods(without_extra_config(release, HOMES_FILE), tmp_path / "pods", "alpha")
    assert _planted_ran(browser, pods, tmp_path)
