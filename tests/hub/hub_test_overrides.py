"""Test-only extra config, exec'd after hub/extra_config/* in the real hub under test.

Only three things differ from production: templates are read from the repository; the
OAuth callback is plain http (no ingress or TLS here; the hub's host is this hub's
127.0.0.1 address and the production value is checked first); and the spawner talks to a
recording stand-in for the Kubernetes API instead of a cluster. Everything else (user
options, profile overrides, the pre-spawn hook and its token exchange, the pod and PVC
manifests, KubeSpawner's own stop and delete_forever) is the production code path.
``start`` records the manifests without creating them, since nothing would run the pod.
"""
# ruff: noqa: F821 - `c` comes from the config namespace

import json
import os
from pathlib import Path

from kubernetes_asyncio.client.rest import ApiException

# The production spawner class, as the extra config left it.
_EODHKubeSpawner = c.JupyterHub.spawner_class


class _RecordingCoreV1Api:
    """KubeSpawner's CoreV1Api client, answering like an empty cluster and recording calls.

    Every call KubeSpawner makes goes through ``self.api`` (kubespawner 7.1 spawner.py:
    create/read/delete_namespaced_*); each is appended to k8s-api.jsonl for the tests.
    """

    def __init__(self, spawner):
        self._spawner = spawner

    def __getattr__(self, method):
        async def call(*args, **kwargs):
            entry = {
                "user": self._spawner.user.name,
                "server": self._spawner.name,
                "method": method,
                "name": kwargs.get("name"),
                "namespace": kwargs.get("namespace"),
            }
            path = Path(os.environ["EODH_TEST_RECORD_DIR"]) / "k8s-api.jsonl"
            with path.open("a") as f:
                f.write(json.dumps(entry) + "\n")
            if method.startswith("read_"):
                raise ApiException(status=404, reason="Not Found")
            return {}

        return call


class _NoPods:
    def __init__(self):
        self.pods = {}


class RecordingKubeSpawner(_EODHKubeSpawner):
    """Records the namespace, PVC and pod it would create, then points at a stub server."""

    _recording_running = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.api = _RecordingCoreV1Api(self)

    # The pod reflector lists and watches the cluster; here the cluster is empty.
    async def _start_watching_pods(self, replace=False):
        return None

    @property
    def pod_reflector(self):
        return _NoPods()

    async def start(self):
        await self.load_user_options()
        pod = await self.get_pod_manifest()
        pvc = self.get_pvc_manifest()
        container = pod.spec.containers[0]
        record = {
            "user": self.user.name,
            "server": self.name,
            "user_options": self.user_options,
            # KubeSpawner creates the namespace, PVC and pod in self.namespace.
            "namespace": self.namespace,
            "pod_name": pod.metadata.name,
            "pvc_name": pvc.metadata.name,
            "pod_volumes": [v.to_dict() for v in (pod.spec.volumes or [])],
            "image": container.image,
            "env": {e.name: e.value for e in container.env or []},
        }
        record_dir = Path(os.environ["EODH_TEST_RECORD_DIR"])
        # The user's latest spawn, and (named servers) each server's own.
        for stem in {self.user.name, f"{self.user.name}~{self.name}" if self.name else ""} - {""}:
            (record_dir / f"{stem}.json").write_text(json.dumps(record, default=str))
        self._recording_running = True
        return os.environ["EODH_TEST_NOTEBOOK_URL"]

    async def poll(self):
        return None if self._recording_running else 0

    async def stop(self, now=False):
        # KubeSpawner's own stop: deletes the pod through self.api, then waits for it.
        await super().stop(now=now)
        self._recording_running = False

    async def progress(self):
        yield {"progress": 50, "message": "Recording spawner: no pod is created in tests"}


c.JupyterHub.spawner_class = RecordingKubeSpawner
c.JupyterHub.template_paths = [os.environ["EODH_TEST_TEMPLATES"]]

# The hub's host is this hub's 127.0.0.1 address (HUB_HOST, set by real_hub.py), so the
# production callback differs from this one by its scheme alone: there is no TLS here.
_production_callback = f"https://{os.environ['HUB_HOST']}/notebooks/hub/oauth_callback"
if c.EODHAuthenticator.oauth_callback_url != _production_callback:
    raise RuntimeError(
        f"extra config sets oauth_callback_url {c.EODHAuthenticator.oauth_callback_url!r}, "
        f"expected {_production_callback!r}"
    )
c.EODHAuthenticator.oauth_callback_url = "http://" + _production_callback.removeprefix("https://")
c.JupyterHub.public_url = "http://" + c.JupyterHub.public_url.removeprefix("https://")
c.KubeSpawner.http_timeout = 15
c.KubeSpawner.start_timeout = 30
