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

import shlex
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def mount_script(pod: Mapping[str, Any], claims: Mapping[str, Path]) -> str:
    spec = pod["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == "notebook"]
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    lines = ["set -eu", "mount -t tmpfs tmpfs /home"]
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
        elif "emptyDir" in volume:
            lines.append(f"mount -t tmpfs -o size=1m tmpfs {target}")
        else:
            raise AssertionError(f"volume kind not modelled: {volume}")
        if mount.get("readOnly"):
            lines.append(f"mount -o remount,bind,ro {target}")
    return "\n".join(lines)


def run_in_pod(
    pod: Mapping[str, Any],
    claims: Mapping[str, Path],
    command: str,
    *,
    path: str,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """``command`` (bash) as the container's user: HOME as the image sets it, nothing else
    of this machine's environment."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise AssertionError("util-linux unshare is needed to lay out a pod's mounts")
    script = (
        mount_script(pod, claims)
        + "\ncd /home/jovyan\n"
        + f"exec env -i HOME=/home/jovyan PATH={shlex.quote(path)} bash -c {shlex.quote(command)}"
    )
    return subprocess.run(
        [unshare, "--mount", "--propagation", "private", "bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
