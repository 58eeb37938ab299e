# ruff: noqa: F821 - `c` (and earlier files' names) come from the chart's config namespace
"""Each member's HOME is their own; the workspace's shared folder is a folder inside it.

A workspace's block store is one volume shared by its members
(EO-DataHub/eodhp-workspace-manager internal/k8s/workspace.go: one EFS access point
``/workspaces/<ws>`` with POSIX user 1000:1000 and PVC ``pvc-<ws>`` per workspace), and
every member's server runs as that same uid. When that volume was every member's HOME, a
member could plant whatever another member's server runs by itself: JupyterLab
extensions and settings, Jupyter config and data dirs (kernel specs), IPython profiles and
startup files, the Python user site, shell start-up files. So, in every notebook pod:

  /home/jovyan            HOME: the subPath ``.homes/<user>-<key>`` of the workspace volume,
                          private to the user; ``pip install --user`` persists here.
  /home/jovyan/workspace  the whole workspace volume: what members share, and the file
                          browser's root.
  /home/jovyan/workspace/.homes
                          an empty read-only volume over the homes, so no member reaches
                          another's through the shared folder.

``<key>`` is an HMAC of workspace and user name under the hub's crypt key: a member cannot
name another's home in advance, so nothing can be planted there from a server still
running the old layout (every member could write ``.homes`` then) or made before it. The
volume's pre-existing contents (old shared dotfiles included) are now under ``workspace/``,
shared as before, and no longer read at start-up.

Nothing runs from the shared folder unless a user runs it: Jupyter and IPython read no
config from the working directory (jupyter_core >= 4.11.2, IPython >= 8.0.1).
"""

import hashlib
import hmac
import os

from kubespawner.slugs import safe_slug

EODH_HOME = "/home/jovyan"
EODH_SHARED_FOLDER = "workspace"
EODH_HOMES_DIR = ".homes"
EODH_HOMES_MASK_VOLUME = "eodh-homes-mask"
EODH_NOTEBOOK_CONTAINER = "notebook"


def _eodh_home_key():
    """The hub's first crypt key, or None (then no server can start: see below).

    The chart sets c.CryptKeeper.keys before extra config runs (files/hub/
    jupyterhub_config.py l. 478); a hub run outside the chart has JUPYTERHUB_CRYPT_KEY.
    """
    # Item access: c.CryptKeeper is a dict, so c.CryptKeeper.keys is its method.
    configured = c.CryptKeeper.get("keys", [])
    from_env = os.environ.get("JUPYTERHUB_CRYPT_KEY", "").split(";")
    keys = [k for k in [*configured, *from_env] if k]
    if not keys:
        return None
    return keys[0] if isinstance(keys[0], bytes) else keys[0].encode()


_eodh_home_secret = _eodh_home_key()


def eodh_home_subpath(workspace: str, username: str, secret=None) -> str:
    """The user's home inside the workspace volume; unguessable without the hub's key."""
    secret = secret or _eodh_home_secret
    if not secret:
        raise RuntimeError("EODH hub configuration: no crypt key to derive home folders from")
    mac = hmac.new(secret, f"eodh-home\0{workspace}\0{username}".encode(), hashlib.sha256)
    # A user name is Keycloak's and may hold "/" or "..": KubeSpawner's safe_slug keeps a
    # plain one as it is and makes any other one path-safe; the MAC (over the name as it
    # is) keeps two names with one slug apart.
    return f"{EODH_HOMES_DIR}/{safe_slug(username)}-{mac.hexdigest()[:24]}"


# A member could have left `.homes` as a symlink while every member's HOME was the whole
# volume (or under a layout to come): the kubelet follows a symlink that stays inside the
# volume when it makes a subPath (kubernetes pkg/volume/util/subpath/subpath_linux.go,
# doBindSubPath), and the home would sit where every member writes. The kubelet makes a
# container's subPath mounts only when it starts that container (pkg/kubelet/
# kubelet_pods.go makeMounts, from GenerateRunContainerOptions), after every init
# container has succeeded, so an init container that finds a symlink on the way stops
# this start before the home is mounted. Read-only, unprivileged, the notebook's image.
EODH_WORKSPACE_CHECK_PATH = "/opt/eodh/workspace"
EODH_HOME_CHECK_SCRIPT = """
path="$0"
for part in "$@"; do
  path="$path/$part"
  if [ -L "$path" ]; then
    echo "Refusing to start: ~/workspace/${path#"$0"/} in this workspace's storage is a" \
      "symbolic link, so your home folder would not be private. Ask the platform's" \
      "operators to move it aside (docs/operations.md, Rolling out private homes)." >&2
    exit 1
  fi
done
"""


def eodh_home_check(notebook, volume_name, home_subpath):
    from kubernetes_asyncio.client import V1Container, V1VolumeMount

    return V1Container(
        name="eodh-home-check",
        image=notebook.image,
        image_pull_policy=notebook.image_pull_policy,
        command=[
            "sh",
            "-c",
            EODH_HOME_CHECK_SCRIPT,
            EODH_WORKSPACE_CHECK_PATH,
            *home_subpath.split("/"),
        ],
        security_context=notebook.security_context,
        resources=notebook.resources,
        # The message becomes the container's termination message, which the pod's
        # status (and so the spawn's failure) shows.
        termination_message_policy="FallbackToLogsOnError",
        volume_mounts=[
            V1VolumeMount(name=volume_name, mount_path=EODH_WORKSPACE_CHECK_PATH, read_only=True)
        ],
    )


def eodh_private_home(spawner, pod):
    """Split the workspace volume's one mount at HOME into private home + shared folder."""
    from kubernetes_asyncio.client import V1EmptyDirVolumeSource, V1Volume, V1VolumeMount

    workspace = spawner.user_options.get("workspace") if spawner.user_options else None
    if not workspace:
        raise RuntimeError("no workspace: refusing to build a pod without a private home")
    (notebook,) = [c for c in pod.spec.containers if c.name == EODH_NOTEBOOK_CONTAINER]
    homes = [m for m in notebook.volume_mounts or [] if m.mount_path == EODH_HOME]
    if not homes:
        # No volume at HOME (singleuser.storage.type none, or another homeMountPath): HOME
        # is the container's own, and nothing another member writes is read from it.
        return pod
    if len(homes) != 1 or homes[0].sub_path:
        raise RuntimeError(f"expected one whole-volume mount at {EODH_HOME}, got {homes}")
    (home,) = homes
    home.sub_path = eodh_home_subpath(workspace, spawner.user.name)
    pod.spec.init_containers = [
        *(pod.spec.init_containers or []),
        eodh_home_check(notebook, home.name, home.sub_path),
    ]
    shared = f"{EODH_HOME}/{EODH_SHARED_FOLDER}"
    notebook.volume_mounts += [
        V1VolumeMount(name=home.name, mount_path=shared),
        V1VolumeMount(
            name=EODH_HOMES_MASK_VOLUME, mount_path=f"{shared}/{EODH_HOMES_DIR}", read_only=True
        ),
    ]
    pod.spec.volumes = [
        *(pod.spec.volumes or []),
        V1Volume(
            name=EODH_HOMES_MASK_VOLUME,
            empty_dir=V1EmptyDirVolumeSource(medium="Memory", size_limit="1Mi"),
        ),
    ]
    return pod


# R restores a .RData from the working directory (the shared folder) and runs the .First
# it holds; no environment variable stops that, only R's --no-restore-data (R's ?Startup).
# The pod's own copy of each R kernel spec of the image, with that flag added, is put
# first on JUPYTER_PATH, which jupyter_client searches before the user's and the image's
# data dirs, and the first spec found under a name wins (jupyter_core paths.jupyter_path,
# jupyter_client kernelspec.KernelSpecManager.find_kernel_specs). A ConfigMap or the
# chart's singleuser.extraFiles (a Secret in the hub's namespace) cannot reach pods in
# ws-* namespaces, so an init container of the notebook's own image writes the specs
# into an emptyDir. Images without an R kernel get an empty folder.
EODH_KERNELS_VOLUME = "eodh-kernel-specs"
EODH_JUPYTER_PATH = "/opt/eodh/jupyter"
EODH_KERNEL_SPECS_SCRIPT = """
import json, os, shutil, sys
from jupyter_client.kernelspec import KernelSpecManager
out = os.path.join(sys.argv[1], "kernels")
for name, directory in KernelSpecManager().find_kernel_specs().items():
    with open(os.path.join(directory, "kernel.json")) as f:
        spec = json.load(f)
    argv = spec.get("argv") or []
    if spec.get("language", "").lower() != "r" or not argv or os.path.basename(argv[0]) != "R":
        continue
    shutil.copytree(directory, os.path.join(out, name), dirs_exist_ok=True)
    # IRkernel: R --slave -e 'IRkernel::main()' --args {connection_file}
    spec["argv"] = [argv[0], "--no-restore-data", "--no-save", *argv[1:]]
    with open(os.path.join(out, name, "kernel.json"), "w") as f:
        json.dump(spec, f)
    print(f"R kernel spec {name}: {spec['argv']}")
"""


def eodh_r_kernel_specs(pod):
    from kubernetes_asyncio.client import (
        V1Container,
        V1EmptyDirVolumeSource,
        V1Volume,
        V1VolumeMount,
    )

    (notebook,) = [c for c in pod.spec.containers if c.name == EODH_NOTEBOOK_CONTAINER]
    pod.spec.init_containers = [
        *(pod.spec.init_containers or []),
        V1Container(
            name=EODH_KERNELS_VOLUME,
            image=notebook.image,
            image_pull_policy=notebook.image_pull_policy,
            command=["python3", "-c", EODH_KERNEL_SPECS_SCRIPT, EODH_JUPYTER_PATH],
            security_context=notebook.security_context,
            resources=notebook.resources,
            volume_mounts=[V1VolumeMount(name=EODH_KERNELS_VOLUME, mount_path=EODH_JUPYTER_PATH)],
        ),
    ]
    notebook.volume_mounts = [
        *(notebook.volume_mounts or []),
        V1VolumeMount(name=EODH_KERNELS_VOLUME, mount_path=EODH_JUPYTER_PATH, read_only=True),
    ]
    pod.spec.volumes = [
        *(pod.spec.volumes or []),
        V1Volume(
            name=EODH_KERNELS_VOLUME,
            empty_dir=V1EmptyDirVolumeSource(medium="Memory", size_limit="4Mi"),
        ),
    ]
    return pod


_eodh_earlier_pod_hook = (
    c.KubeSpawner.modify_pod_hook if "modify_pod_hook" in c.KubeSpawner else None
)


def eodh_modify_pod_with_private_home(spawner, pod):
    if _eodh_earlier_pod_hook is not None:
        pod = _eodh_earlier_pod_hook(spawner, pod)
    return eodh_r_kernel_specs(eodh_private_home(spawner, pod))


c.KubeSpawner.modify_pod_hook = eodh_modify_pod_with_private_home

# The shared folder stays the file browser's root, as the platform's user docs describe
# the block store (EO-DataHub/eodh-userdocs). JupyterHub 5 passes notebook_dir as
# JUPYTERHUB_ROOT_DIR (jupyterhub/spawner.py get_env), which jupyterhub-singleuser makes
# ServerApp.root_dir and the EO DataHub image's HybridContentsManager reads
# (images/default/jupyter_server_config.py). Kernels and terminals start there too; HOME
# stays private.
c.KubeSpawner.notebook_dir = f"{EODH_HOME}/{EODH_SHARED_FOLDER}"

# So kernels start in a folder every member writes: a notebook's own folder, or the shared
# folder itself (jupyter_server's MappingKernelManager.cwd_for_path falls back to root_dir
# when the path is not on disk, as S3 notebooks never are). Nothing in it may run unasked:
EODH_STARTUP_ENVIRONMENT = {
    # The Python kernel is `python -m ipykernel_launcher`, and Python puts the working
    # directory first on sys.path for -m: a planted ipykernel_launcher.py would be the
    # kernel. PYTHONSAFEPATH (Python >= 3.11) leaves it off; IPython >= 9.7 then does not
    # add it back either (IPython/core/shellapp.py InteractiveShellApp.init_path), so a
    # planted numpy.py there cannot shadow the real one. Notebooks import their folder's
    # modules only after adding it to sys.path (README, security section).
    "PYTHONSAFEPATH": "1",
    "JUPYTER_PATH": EODH_JUPYTER_PATH,
    # R reads .Rprofile and .Renviron from the working directory before HOME (R's
    # ?Startup), in the R profile's image (quay.io/jupyter/r-notebook) and any R terminal;
    # naming the user's own files leaves the working directory's unread. (.RData is still
    # restored from it: only the kernel's argv, --no-restore-data, stops that; see
    # eodh_r_kernel_specs.)
    "R_PROFILE_USER": f"{EODH_HOME}/.Rprofile",
    "R_ENVIRON_USER": f"{EODH_HOME}/.Renviron",
    # git runs a repository's own core.fsmonitor command on `git status` and its hooks on
    # commit, and every member is uid 1000, so safe.directory does not stop a repository
    # planted in the shared folder. Config from the environment outranks the repository's
    # (git-config(1), GIT_CONFIG_COUNT, git >= 2.31). A repository's filter drivers
    # (filter.<name>.clean/smudge) are not covered: they can have any name; nothing runs
    # git by itself any more (the EO DataHub image has no jupyterlab-git), so they run
    # only when a user runs git in a repository they did not make.
    "GIT_CONFIG_COUNT": "2",
    "GIT_CONFIG_KEY_0": "core.fsmonitor",
    "GIT_CONFIG_VALUE_0": "false",
    "GIT_CONFIG_KEY_1": "core.hooksPath",
    "GIT_CONFIG_VALUE_1": "/dev/null",
}
c.KubeSpawner.environment = {
    **(c.KubeSpawner.get("environment") or {}),
    **EODH_STARTUP_ENVIRONMENT,
}
