"""The hub as its pod sees it: the vendored chart rendered with a stack's release values.

    release = render_release(recording_for("dev"))
    spawn = spawn_in_workspace(release, tmp_dir, username="alice", workspace="alpha")

``render_release`` runs Helm's engine (helm-python-sdk) over vendor/jupyterhub-4.2.0 with
the values the program gives the Helm release, the generated secrets swapped for test
values of the same shape. ``spawn_in_workspace`` lays the rendered ``hub`` ConfigMap and
Secret out as the hub Deployment mounts them, sets the environment the Deployment gives
the hub container, loads the chart's own jupyterhub_config.py the way JupyterHub loads a
config file (which execs z2jh.py and our hub.extraConfig), and lets the configured
KubeSpawner build the namespace and pod it would create. The chart's files hard-code
/usr/local/etc/jupyterhub; the copies laid out here are pointed at the temporary root.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from eodh_jupyterhub.offline import Recording, map_leaves, reveal
from eodh_jupyterhub.schemas import Z2JH_CHART_DIR, render_z2jh_chart
from tests.support.kubeconfig import UNREACHABLE_KUBECONFIG

CHART_DIR = Z2JH_CHART_DIR
HUB_ETC = "/usr/local/etc/jupyterhub/"
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
# The chart's cluster-scoped kinds (user scheduler and priorities); all else is namespaced.
# The API server labels every namespace with its name (NamespaceDefaultLabelName, GA 1.22).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class RenderedRelease:
    name: str
    namespace: str
    values: dict[str, Any]
    manifests: tuple[dict[str, Any], ...]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        (found,) = [m for m in self.of_kind(kind) if m["metadata"]["name"] == name]
        return found


def release_values(recording: Recording) -> dict[str, Any]:
    """The release's values with each generated secret replaced by a test value.

    The generated values are 64 hex characters (cookie secret, proxy token, crypt key);
    so are the stand-ins, each different, and derived from nothing secret.
    """
    (release,) = recording.of_type(RELEASE_TYPE)
    stand_ins = {
        secret: hashlib.sha256(f"chart-test-value-{index}".encode()).hexdigest()
        for index, secret in enumerate(sorted(recording.generated_secrets))
    }
    return map_leaves(reveal(release.inputs["values"]), lambda v: stand_ins.get(v, v))


def render_release(recording: Recording) -> RenderedRelease:
    """The chart rendered as the stack's Helm release would install it."""
    (release,) = recording.of_type(RELEASE_TYPE)
    return render_chart(
        release_values(recording), release.inputs["name"], release.inputs["namespace"]
    )


def render_chart(values: dict[str, Any], name: str, namespace: str) -> RenderedRelease:
    manifests = render_z2jh_chart(values, name, namespace)
    return RenderedRelease(name, namespace, values, tuple(manifests))


def hub_pod_spec(release: RenderedRelease) -> dict[str, Any]:
    return release.one("Deployment", "hub")["spec"]["template"]["spec"]


def hub_container(release: RenderedRelease) -> dict[str, Any]:
    (container,) = [c for c in hub_pod_spec(release)["containers"] if c["name"] == "hub"]
    return container


def _volume_files(release: RenderedRelease, volume: Mapping[str, Any]) -> dict[str, str] | None:
    if "configMap" in volume:
        matches = [
            m
            for m in release.of_kind("ConfigMap")
            if m["metadata"]["name"] == volume["configMap"]["name"]
        ]
        return dict(matches[0].get("data") or {}) if matches else None
    if "secret" in volume:
        matches = [
            m
            for m in release.of_kind("Secret")
            if m["metadata"]["name"] == volume["secret"]["secretName"]
        ]
        if not matches:
            return None
        secret = matches[0]
        files = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
        files.update(secret.get("stringData") or {})
        return files
    return None


def lay_out_hub_files(release: RenderedRelease, root: Path) -> Path:
    """Write the chart's ConfigMap and Secret where the hub container mounts them under
    ``root``; return the laid-out config file the container runs with."""
    volumes = {v["name"]: v for v in hub_pod_spec(release)["volumes"]}
    container = hub_container(release)
    for mount in container["volumeMounts"]:
        files = _volume_files(release, volumes[mount["name"]])
        if files is None:
            continue  # not the chart's (our templates ConfigMap) or not files (the db PVC)
        target = root / mount["mountPath"].lstrip("/")
        if mount.get("subPath"):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(files[mount["subPath"]])
        else:
            target.mkdir(parents=True, exist_ok=True)
            for key, text in files.items():
                (target / key).write_text(text)
    args = container["args"]
    config_file = root / args[args.index("--config") + 1].lstrip("/")
    # Point the chart's hard-coded mount root at the laid-out copy.
    for path in (config_file, config_file.parent / "z2jh.py"):
        text = path.read_text()
        if HUB_ETC not in text:
            raise AssertionError(f"{path.name} no longer names {HUB_ETC}: review this loader")
        path.write_text(text.replace(HUB_ETC, f"{root}{HUB_ETC}"))
    return config_file


def hub_environment(release: RenderedRelease) -> dict[str, str]:
    """The hub container's environment: service links first, then the Deployment's env."""
    from tests.chart.kube import service_link_env

    env = service_link_env(release.of_kind("Service"), release.namespace)
    secrets = {m["metadata"]["name"]: m for m in release.of_kind("Secret")}
    for item in hub_container(release)["env"]:
        name = item["name"]
        if "value" in item:
            env[name] = str(item["value"])
            continue
        source = item["valueFrom"]
        if source.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[name] = release.namespace
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            if ref["name"] in secrets:
                env[name] = base64.b64decode(secrets[ref["name"]]["data"][ref["key"]]).decode()
            else:
                # Not the chart's (the External Secrets target): any harmless value.
                env[name] = f"test-value-for-{ref['key'].lower()}"
        else:
            raise AssertionError(f"unhandled env source for {name}: {source}")
    return env


@contextmanager
def hub_process_state(env: Mapping[str, str], kubeconfig: Path) -> Iterator[list[Any]]:
    """What loading the hub's config changes in a process, undone afterwards.

    The chart's config switches tornado's HTTP client to curl (pycurl is in the hub image,
    not here, and the switch is process-wide): the call is recorded, not applied.
    """
    from kubernetes_asyncio.config import kube_config
    from tornado.httpclient import AsyncHTTPClient

    configured: list[Any] = []
    saved_path = list(sys.path)
    with (
        mock.patch.dict(os.environ, {**env, "KUBECONFIG": str(kubeconfig)}),
        mock.patch.object(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig)),
        mock.patch.object(AsyncHTTPClient, "configure", side_effect=configured.append),
    ):
        sys.modules.pop("z2jh", None)
        try:
            yield configured
        finally:
            sys.modules.pop("z2jh", None)
            sys.path[:] = saved_path


class HubUser:
    """The parts of jupyterhub.user.User that building a pod reads."""

    def __init__(self, name: str, workspaces: list[str]):
        self.name = name
        self.id = 1
        self.url = f"/notebooks/user/{name}/"
        self.auth_state = {"workspaces": workspaces}

    async def get_auth_state(self) -> dict[str, Any]:
        return self.auth_state


@dataclass(frozen=True)
class Spawn:
    namespace: str
    namespace_labels: dict[str, str]
    pod: dict[str, Any]
    hub_api_url: str
    configured_http_client: tuple[Any, ...]

    @property
    def env(self) -> dict[str, str]:
        (container,) = [c for c in self.pod["spec"]["containers"] if c["name"] == "notebook"]
        return {e["name"]: e.get("value") for e in container.get("env") or []}


def loaded_hub_app(release: RenderedRelease, workdir: Path) -> Any:
    """A JupyterHub app that has loaded the chart's config file as the hub pod does."""
    from jupyterhub.app import JupyterHub

    config_file = lay_out_hub_files(release, workdir / "hub-pod")
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(UNREACHABLE_KUBECONFIG)
    with hub_process_state(hub_environment(release), kubeconfig):
        app = JupyterHub()
        app.load_config_file(str(config_file))
    return app


def spawn_in_workspace(
    release: RenderedRelease,
    workdir: Path,
    *,
    username: str,
    workspace: str,
    profile: str | None = None,
) -> Spawn:
    from jupyterhub.app import JupyterHub
    from jupyterhub.utils import maybe_future
    from kubernetes_asyncio.client import ApiClient

    root = workdir / "hub-pod"
    config_file = lay_out_hub_files(release, root)
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(UNREACHABLE_KUBECONFIG)

    with hub_process_state(hub_environment(release), kubeconfig) as configured:
        # As `jupyterhub --config <file>` does: the file runs with get_config() handing
        # out the app's config, and the Hub object comes from the loaded settings.
        app = JupyterHub()
        app.config_file = str(config_file)
        app.load_config_file(app.config_file)
        app.init_hub()

        async def build() -> Spawn:
            created: list[Any] = []
            spawner = app.spawner_class(
                _mock=True,
                user=HubUser(username, [workspace]),
                hub=app.hub,
                config=app.config,
            )
            spawner.user_options = {"workspace": workspace}
            if profile is not None:
                spawner.user_options["profile"] = profile
            await spawner.load_user_options()

            async def create_namespace(body, *args, **kwargs):
                created.append(body)

            # The one call to the API server: record the namespace KubeSpawner creates.
            with mock.patch.object(spawner.api, "create_namespace", create_namespace):
                await spawner._ensure_namespace()
            (namespace,) = created
            # As KubeSpawner 7.1's _start does (spawner.py l. 3264-3267): the manifest,
            # then the configured modify_pod_hook.
            pod = await spawner.get_pod_manifest()
            if spawner.modify_pod_hook:
                pod = await maybe_future(spawner.modify_pod_hook(spawner, pod))
            async with ApiClient() as client:
                pod_object = client.sanitize_for_serialization(pod)
            return Spawn(
                namespace=spawner.namespace,
                namespace_labels={
                    **(namespace.metadata.labels or {}),
                    NAMESPACE_NAME_LABEL: spawner.namespace,
                },
                pod=pod_object,
                hub_api_url=app.hub.api_url,
                configured_http_client=tuple(configured),
            )

        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(build())
        finally:
            # KubeSpawner's shared client parks a task that closes it with the loop.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()
