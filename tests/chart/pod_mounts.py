"""Run a command inside a pod's filesystem, laid out from its spec as the kubelet would.

A pod's notebook container is given a private mount namespace (``unshare -m``) where
``/home`` is a fresh tmpfs and each volume mount of the spec is made, shallowest first
(as runc orders them): a claim's mount is a bind of the claim's directory (or its
``subPath``, created when missing, as the kubelet does), an emptyDir is an empty tmpfs,
``readOnly`` remounts read-only. Nothing outside the namespace changes except the claim
directories themselves, which stand for the workspace's shared EFS volume. Every member
runs as the same uid (the access point's 1000), so only the mounts keep them apart; here
everything runs as one user for the same reason.
"""

from __future__ import annotations

import copy
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.chart.hub_pod import RenderedRelease, render_chart, spawn_in_workspace

# Making mount namespaces and mounting in them needs root (CAP_SYS_ADMIN), as a kubelet has.
NEEDS_MOUNT_NAMESPACES = pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root")


def mount_script(
    pod: Mapping[str, Any],
    claims: Mapping[str, Path],
    container: Mapping[str, Any] | None = None,
    empty_dirs: Path | None = None,
    image_jupyter: Path | None = None,
) -> str:
    """The mounts of ``container`` (the notebook's by default). An emptyDir is a folder of
    ``empty_dirs`` (one per pod, so its containers share it) or else a fresh tmpfs;
    ``image_jupyter`` stands for the image's own Jupyter data dir (kernel specs)."""
    spec = pod["spec"]
    if container is None:
        (container,) = [c for c in spec["containers"] if c["name"] == "notebook"]
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    # The image's own HOME, empty, under whatever is mounted there; the image's own /opt
    # (the hub mounts its folders there), which holds nothing a probe here runs.
    lines = ["set -eu", "mount -t tmpfs tmpfs /home", "mkdir /home/jovyan"]
    lines.append("mount -t tmpfs tmpfs /opt")
    if image_jupyter is not None:
        # A system data dir of jupyter_core (SYSTEM_JUPYTER_PATH), as an image's is.
        lines += [
            "mount -t tmpfs tmpfs /usr/local/share",
            "mkdir /usr/local/share/jupyter",
            f"mount --bind {shlex.quote(str(image_jupyter))} /usr/local/share/jupyter",
        ]
    mounts = sorted(container.get("volumeMounts") or [], key=lambda m: m["mountPath"].count("/"))
    for mount in mounts:
        target = shlex.quote(mount["mountPath"])
        volume = volumes[mount["name"]]
        lines.append(f"mkdir -p {target}")
        if "persistentVolumeClaim" in volume:
            source = claims[volume["persistentVolumeClaim"]["claimName"]]
            if mount.get("subPath"):
                source = source / mount["subPath"]
                lines.append(f"mkdir -p {shlex.quote(str(source))}")
            lines.append(f"mount --bind {shlex.quote(str(source))} {target}")
        elif "emptyDir" in volume and empty_dirs is not None:
            source = empty_dirs / mount["name"]
            lines.append(f"mkdir -p {shlex.quote(str(source))}")
            lines.append(f"mount --bind {shlex.quote(str(source))} {target}")
        elif "emptyDir" in volume:
            lines.append(f"mount -t tmpfs -o size=1m tmpfs {target}")
        else:
            raise AssertionError(f"volume kind not modelled: {volume}")
        if mount.get("readOnly"):
            lines.append(f"mount -o remount,bind,ro {target}")
    return "\n".join(lines)


def pod_command(
    pod: Mapping[str, Any],
    claims: Mapping[str, Path],
    command: str,
    *,
    path: str,
    container: Mapping[str, Any] | None = None,
    empty_dirs: Path | None = None,
    image_jupyter: Path | None = None,
) -> list[str]:
    """``command`` (bash) as the container's user: HOME as the image sets it, the pod's
    own environment, nothing else of this machine's."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise AssertionError("util-linux unshare is needed to lay out a pod's mounts")
    if container is None:
        (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
    pod_env = " ".join(
        shlex.quote(f"{e['name']}={e['value']}") for e in container.get("env") or [] if "value" in e
    )
    script = (
        mount_script(pod, claims, container, empty_dirs, image_jupyter)
        + "\ncd /home/jovyan\n"
        + f"exec env -i {pod_env} HOME=/home/jovyan PATH={shlex.quote(path)} "
        + f"bash -c {shlex.quote(command)}"
    )
    return [unshare, "--mount", "--propagation", "private", "bash", "-c", script]


def run_in_pod(
    pod: Mapping[str, Any],
    claims: Mapping[str, Path],
    command: str,
    *,
    path: str,
    timeout: float = 60,
    image_jupyter: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """The hub's own init containers (eodh-*) first, as the kubelet runs them, then
    ``command`` in the notebook container. The chart's cloud-metadata blocker is left
    out: it changes the node's network, not the pod's files."""

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    with tempfile.TemporaryDirectory(prefix="empty-dirs-") as empty_dirs:
        for init in pod["spec"].get("initContainers") or []:
            if not init["name"].startswith("eodh-"):
                continue
            argv = shlex.join([*init.get("command", []), *init.get("args", [])])
            ran = run(
                pod_command(
                    pod,
                    claims,
                    argv,
                    path=path,
                    container=init,
                    empty_dirs=Path(empty_dirs),
                    image_jupyter=image_jupyter,
                )
            )
            if ran.returncode != 0:
                return ran
        return run(
            pod_command(
                pod,
                claims,
                command,
                path=path,
                empty_dirs=Path(empty_dirs),
                image_jupyter=image_jupyter,
            )
        )


def member_pods(release: RenderedRelease, workdir: Path, workspace: str) -> dict[str, Any]:
    """The notebook pods of mallory and alice in ``workspace``, as KubeSpawner builds them."""
    return {
        user: spawn_in_workspace(release, workdir / user, username=user, workspace=workspace).pod
        for user in ("mallory", "alice")
    }


def without_environment(pods: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The same pods without one environment variable in the notebook container."""
    pods = copy.deepcopy(dict(pods))
    for pod in pods.values():
        (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
        container["env"] = [e for e in container["env"] if e["name"] != name]
    return pods


def without_extra_config(release: RenderedRelease, name: str) -> RenderedRelease:
    """The same release with one hub/extra_config file left out: a protection removed."""
    values = copy.deepcopy(release.values)
    del values["hub"]["extraConfig"][name]
    return render_chart(values, release.name, release.namespace)


HOMES_FILE = "4_workspace_homes"
BASE_PYTHON = Path(sys.base_prefix) / "bin" / "python3"
PYTHON_VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"
VENV_BIN = Path(sys.executable).parent
PATH = f"{VENV_BIN}:{BASE_PYTHON.parent}:/usr/bin:/bin"

# mallory, from her pod, plants in every place she can write that a start-up could read:
# her HOME, the shared folder, and any home she can see under it.
PLANT = r"""
M="$1"
plant() {
  B="$1"
  mkdir -p "$B/.local/share/jupyter/labextensions/evil-ext" || return 0
  printf '{"name": "evil-ext", "version": "6.6.6", "jupyterlab": %s}' \
    '{"_build": {"load": "static/remoteEntry.evil.js"}}' \
    > "$B/.local/share/jupyter/labextensions/evil-ext/package.json"
  mkdir -p "$B/.local/share/jupyter/labextensions/evil-ext/static"
  echo "window.__eodh_planted = 'ran';" \
    > "$B/.local/share/jupyter/labextensions/evil-ext/static/remoteEntry.evil.js"
  mkdir -p "$B/.local/share/jupyter/kernels/evil"
  printf '{"argv": ["python", "-c", "pass"], "display_name": "Evil", "language": "python"}' \
    > "$B/.local/share/jupyter/kernels/evil/kernel.json"
  mkdir -p "$B/.jupyter" && echo "open('$M/jupyter_config', 'w')" > "$B/.jupyter/jupyter_config.py"
  mkdir -p "$B/.ipython/profile_default/startup"
  echo "open('$M/ipython_startup', 'w')" > "$B/.ipython/profile_default/startup/00-evil.py"
  S="$B/.local/lib/PYVER/site-packages" && mkdir -p "$S"
  echo "import os; open('$M/user_site_pth', 'w')" > "$S/evil.pth"
  echo "open('$M/shadow_module', 'w')" > "$S/requests.py"
  echo "touch '$M/bashrc'" >> "$B/.bashrc"
}
plant "$HOME"
plant "$HOME/workspace"
# The folder kernels start in when a notebook's own is not on disk (the server's root).
START="${JUPYTERHUB_ROOT_DIR:-$HOME}"
echo "open('$M/cwd_kernel_launcher', 'w')" > "$START/ipykernel_launcher.py"
echo "open('$M/cwd_shadow_module', 'w')" > "$START/yaml.py"
echo "file.create('$M/r_profile')" > "$START/.Rprofile"
echo "EODH_PLANTED_RENVIRON=yes" > "$START/.Renviron"
R --vanilla -s -e ".First <- function() file.create('$M/r_data')" \
  -e "save(list = '.First', file = '$START/.RData')"
git init -q "$START" && git -C "$START" config core.fsmonitor "touch '$M/git_fsmonitor'; false"
printf '#!/bin/sh\ntouch "%s/git_hook"\n' "$M" > "$START/.git/hooks/pre-commit"
chmod +x "$START/.git/hooks/pre-commit"
for home in "$HOME"/workspace/.homes/*/; do [ -d "$home" ] && plant "$home"; done
touch "$HOME/workspace/.homes/planted" 2>/dev/null && echo "HOMES-WRITABLE" || true
""".replace("PYVER", PYTHON_VERSION)


def plant_as_mallory(pods: Mapping[str, Any], claims: Mapping[str, Path], markers: Path) -> str:
    """alice has used her server before (her home exists); then mallory plants. Returns
    mallory's output; planted code, when it runs, leaves a file in ``markers``."""
    for directory in (*claims.values(), markers):
        directory.mkdir(parents=True, exist_ok=True)
    assert run_in_pod(pods["alice"], claims, "true", path=PATH).returncode == 0
    command = f"bash -c {shlex.quote(PLANT)} plant {markers}"
    planted = run_in_pod(pods["mallory"], claims, command, path=PATH)
    assert planted.returncode == 0, planted.stderr
    return planted.stdout
