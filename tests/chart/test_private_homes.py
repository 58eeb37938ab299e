"""Issue 18, section 1: code one member leaves cannot run as another.

mallory and alice are members of workspace alpha; their pods are the ones KubeSpawner
builds from the rendered chart (tests/chart/hub_pod.py, hub/extra_config included), laid
out in real mount namespaces over one directory standing for alpha's shared volume
(tests/chart/pod_mounts.py). From her pod, mallory plants in every place she can write
that a start-up could read: her HOME, the shared folder, and any home she can see under
it. Then real Jupyter, IPython, Python and bash start in alice's pod, and none may run or
list what mallory planted. The same chart without hub/extra_config/4_workspace_homes.py
(the workspace volume as every member's HOME) is the control: there every plant fires.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.chart.hub_pod import RenderedRelease, render_release
from tests.chart.pod_mounts import (
    BASE_PYTHON,
    HOMES_FILE,
    NEEDS_MOUNT_NAMESPACES,
    PATH,
    PYTHON_VERSION,
    member_pods,
    plant_as_mallory,
    run_in_pod,
    without_environment,
    without_extra_config,
)
from tests.support.recordings import recording_for

pytestmark = [pytest.mark.slow, NEEDS_MOUNT_NAMESPACES]

# What fires, and the start-up that fires it (each a real program, in alice's pod).
PLANTS = (
    "labextension",
    "kernelspec",
    "jupyter_config",
    "ipython_startup",
    "user_site_pth",
    "shadow_module",
    "bashrc",
    "cwd_kernel_launcher",
    "cwd_shadow_module",
    "r_profile",
    "r_environ",
    "r_data",
    "git_fsmonitor",
    "git_hook",
)
# Those the working directory fires, which PYTHONSAFEPATH alone stops.
CWD_PLANTS = {"cwd_kernel_launcher", "cwd_shadow_module"}
R_PLANTS = {"r_profile", "r_environ", "r_data"}
GIT_PLANTS = {"git_fsmonitor", "git_hook"}
# IRkernel's own kernel spec (IRkernel/IRkernel inst/kernelspec/kernel.json), as the R
# profile's image installs it in a system data dir.
IMAGE_IR_SPEC = {
    "argv": ["R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"],
    "display_name": "R",
    "language": "R",
}
# The R kernel as Jupyter starts it: the "ir" spec jupyter_client picks, its main loop
# (IRkernel, not installed here) standing in for a check of the environment R read.
START_R_KERNEL = """
import json, subprocess, sys
from jupyter_client.kernelspec import get_kernel_spec
check = "if (nzchar(Sys.getenv('EODH_PLANTED_RENVIRON'))) file.create('%s/r_environ')"
argv = [
    check % sys.argv[1] if a == "IRkernel::main()" else a.replace("{connection_file}", "c.json")
    for a in get_kernel_spec("ir").argv
]
subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
"""

# The start-ups alice's server runs, by what fires them. Each runs in alice's pod; a plant
# that runs touches its marker in "$M".
PROBE_AT_HOME = f"""
jupyter labextension list 2>&1 | grep -q evil-ext && touch "$M/labextension"
jupyter kernelspec list --json 2>/dev/null | grep -q '"evil"' && touch "$M/kernelspec"
python -m IPython -c pass >/dev/null 2>&1
{BASE_PYTHON} -c 'import requests' >/dev/null 2>&1
bash -i -c true </dev/null >/dev/null 2>&1
"""
# Where jupyter_server starts kernels and terminals: the file browser's root.
IN_ROOT_DIR = 'cd "${JUPYTERHUB_ROOT_DIR:-$HOME}"\n'
# A kernel starting there, then a notebook importing a module; a terminal opens there too
# (bash reads only HOME's start-up files, never the cwd's).
PROBE_KERNEL_IN_ROOT = (
    IN_ROOT_DIR
    + """
timeout 60 python -m ipykernel_launcher --version >/dev/null 2>&1
timeout 60 python -m IPython -c 'import yaml' >/dev/null 2>&1
bash -i -c true </dev/null >/dev/null 2>&1
"""
)
PROBE_R_IN_ROOT = IN_ROOT_DIR + 'python -c "$START_R_KERNEL" "$M"\n'
# alice in a terminal there: what a git prompt or extension runs, then a commit.
PROBE_GIT_IN_ROOT = (
    IN_ROOT_DIR
    + """
git status >/dev/null 2>&1
git -c user.name=alice -c user.email=alice@example.org commit -q --allow-empty -m x >/dev/null 2>&1
"""
)
PROBE = PROBE_AT_HOME + PROBE_KERNEL_IN_ROOT + PROBE_R_IN_ROOT + PROBE_GIT_IN_ROOT


@pytest.fixture(scope="module")
def release() -> RenderedRelease:
    return render_release(recording_for("dev"))


@pytest.fixture(scope="module")
def pods(release: RenderedRelease, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return member_pods(release, tmp_path_factory.mktemp("pods"), "alpha")


@pytest.fixture(scope="module")
def shared_home_pods(
    release: RenderedRelease, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    without = without_extra_config(release, HOMES_FILE)
    return member_pods(without, tmp_path_factory.mktemp("shared-home-pods"), "alpha")


def _image_jupyter(tmp_path: Path) -> Path:
    image_jupyter = tmp_path / "image-jupyter"
    (image_jupyter / "kernels/ir").mkdir(parents=True)
    (image_jupyter / "kernels/ir/kernel.json").write_text(json.dumps(IMAGE_IR_SPEC))
    return image_jupyter


def _attack(
    pods: dict[str, Any], tmp_path: Path, probe_script: str = PROBE
) -> tuple[set[str], str]:
    """mallory plants everything; alice's pod runs `probe_script` (every start-up by
    default); returns the plants that fired and mallory's output."""
    # R as the R profile's kernel runs it (.ci/debian-packages installs r-base-core).
    assert shutil.which("R"), "R is needed: run .ci/system-packages"
    claims = {"pvc-alpha": tmp_path / "efs-alpha"}
    markers = tmp_path / "markers"
    planted = plant_as_mallory(pods, claims, markers)
    image_jupyter = _image_jupyter(tmp_path)
    script = 'M="$1"\n' + probe_script + "true\n"
    probe = f"START_R_KERNEL={shlex.quote(START_R_KERNEL)} bash -c {shlex.quote(script)} probe"
    probed = run_in_pod(
        pods["alice"], claims, f"{probe} {markers}", path=PATH, image_jupyter=image_jupyter
    )
    assert probed.returncode == 0, probed.stderr
    return {p.name for p in markers.iterdir()}, planted


def test_nothing_mallory_plants_runs_in_alices_server(pods: dict[str, Any], tmp_path: Path) -> None:
    fired, out = _attack(pods, tmp_path)
    assert fired == set()
    assert "HOMES-WRITABLE" not in out
    # mallory's plants did land in the shared folder: it is still shared.
    assert (tmp_path / "efs-alpha" / ".local/share/jupyter/labextensions/evil-ext").is_dir()


def test_with_the_volume_as_every_home_each_plant_fires(
    shared_home_pods: dict[str, Any], tmp_path: Path
) -> None:
    fired, _ = _attack(shared_home_pods, tmp_path)
    assert fired == set(PLANTS)


@pytest.mark.parametrize(
    ("protection", "probe_script", "plants"),
    [
        # PYTHONSAFEPATH: a kernel started in the root runs a planted launcher or module.
        (("PYTHONSAFEPATH",), PROBE_KERNEL_IN_ROOT, CWD_PLANTS),
        # Each R protection off at once (one R start shows all three): R reads the working
        # directory's .Rprofile and .Renviron, and the image's own kernel spec restores .RData.
        (("R_PROFILE_USER", "R_ENVIRON_USER", "JUPYTER_PATH"), PROBE_R_IN_ROOT, R_PLANTS),
        # The git settings: a planted repository's hooks and fsmonitor run its commands.
        (("GIT_CONFIG_COUNT",), PROBE_GIT_IN_ROOT, GIT_PLANTS),
    ],
    ids=["safe-path", "r", "git"],
)
def test_without_a_protection_its_plants_fire_where_a_server_starts(
    pods: dict[str, Any],
    tmp_path: Path,
    protection: tuple[str, ...],
    probe_script: str,
    plants: set[str],
) -> None:
    # Only the start-ups the protection guards: test_nothing_mallory_plants_runs_in_alices_server
    # holds every start-up with all protections on.
    without = pods
    for name in protection:
        without = without_environment(without, name)
    fired, _ = _attack(without, tmp_path, probe_script)
    assert fired == plants


def test_the_pods_r_kernel_spec_is_the_images_with_no_restore(
    pods: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / "efs-alpha").mkdir()
    listed = run_in_pod(
        pods["alice"],
        {"pvc-alpha": tmp_path / "efs-alpha"},
        "jupyter kernelspec list --json",
        path=PATH,
        image_jupyter=_image_jupyter(tmp_path),
    )
    argv = ["R", "--no-restore-data", "--no-save", *IMAGE_IR_SPEC["argv"][1:]]
    ir = json.loads(listed.stdout)["kernelspecs"]["ir"]
    assert ir["resource_dir"] == "/opt/eodh/jupyter/kernels/ir"
    assert ir["spec"]["argv"] == argv and ir["spec"]["display_name"] == "R"


def test_user_installs_persist_per_user(pods: dict[str, Any], tmp_path: Path) -> None:
    claims = {"pvc-alpha": tmp_path / "efs-alpha"}
    claims["pvc-alpha"].mkdir()
    site = f".local/lib/{PYTHON_VERSION}/site-packages"
    install = f"mkdir -p ~/{site} && echo 'VALUE = 42' > ~/{site}/alices_package.py"
    assert run_in_pod(pods["alice"], claims, install, path=PATH).returncode == 0
    use = f"{BASE_PYTHON} -c 'import alices_package; print(alices_package.VALUE)'"
    # A later server of alice's (a new pod, same volume) still has it; mallory's does not.
    assert run_in_pod(pods["alice"], claims, use, path=PATH).stdout.strip() == "42"
    assert run_in_pod(pods["mallory"], claims, use, path=PATH).returncode != 0
    # Shared files are shared both ways.
    share = "echo hello > ~/workspace/notes.txt"
    assert run_in_pod(pods["mallory"], claims, share, path=PATH).returncode == 0
    read = run_in_pod(pods["alice"], claims, "cat ~/workspace/notes.txt", path=PATH)
    assert read.stdout == "hello\n"


def test_each_home_has_its_own_unguessable_folder(pods: dict[str, Any]) -> None:
    def home_subpath(pod: dict[str, Any]) -> str:
        (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
        (home,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/home/jovyan"]
        return home["subPath"]

    alice, mallory = home_subpath(pods["alice"]), home_subpath(pods["mallory"])
    assert alice.startswith(".homes/alice-") and mallory.startswith(".homes/mallory-")
    # 24 hex characters of an HMAC under the hub's crypt key, not the name alone.
    assert len(alice.rsplit("-", 1)[1]) == 24


def test_the_shared_folder_is_the_file_browsers_root(
    pods: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the platform's user docs describe the block store. The EO DataHub image's
    # contents manager reads the root KubeSpawner passes (the other images'
    # jupyterhub-singleuser takes the same variable as ServerApp.root_dir).
    from tests.images.notebook import load_config

    (container,) = [c for c in pods["alice"]["spec"]["containers"] if c["name"] == "notebook"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["JUPYTERHUB_ROOT_DIR"] == "/home/jovyan/workspace"
    for name in list(os.environ):
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", "/home/jovyan")
    monkeypatch.setenv("JUPYTERHUB_ROOT_DIR", env["JUPYTERHUB_ROOT_DIR"])
    root = load_config().HybridContentsManager.manager_kwargs[""]["root_dir"]
    assert root == "/home/jovyan/workspace"


@pytest.mark.parametrize("planted", [".homes", "home"])
def test_a_server_does_not_start_on_a_symlinked_home(
    pods: dict[str, Any], tmp_path: Path, planted: str
) -> None:
    # Left by a member while every HOME was the whole volume: .homes, or (had they known
    # its name) alice's own folder, a symlink to a folder every member writes.
    volume = tmp_path / "efs-alpha"
    (volume / "everyones").mkdir(parents=True)
    (alice,) = [c for c in pods["alice"]["spec"]["containers"] if c["name"] == "notebook"]
    (home,) = [m["subPath"] for m in alice["volumeMounts"] if m["mountPath"] == "/home/jovyan"]
    if planted == ".homes":
        (volume / ".homes").symlink_to("everyones")
    else:
        (volume / ".homes").mkdir()
        (volume / home).symlink_to("../everyones")
    claims = {"pvc-alpha": volume}
    started = run_in_pod(pods["alice"], claims, "touch ~/mine", path=PATH)
    assert started.returncode != 0
    assert "is a symbolic link, so your home folder would not be private" in started.stderr
    assert not any((volume / "everyones").rglob("mine"))
    # Without the check, alice's HOME is the folder every member writes.
    unchecked = copy.deepcopy(pods["alice"])
    unchecked["spec"]["initContainers"] = [
        c for c in unchecked["spec"]["initContainers"] if c["name"] != "eodh-home-check"
    ]
    assert run_in_pod(unchecked, claims, "touch ~/mine", path=PATH).returncode == 0
    assert any((volume / "everyones").rglob("mine"))
