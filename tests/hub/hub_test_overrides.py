"""Test-only extra config, exec'd after hub/extra_config/* in the real hub under test.

Only two things differ from production: templates are read from the repository, and the
spawner stops at the single point where it would talk to Kubernetes. Everything before
that (user options, profile overrides, the pre-spawn hook and its token exchange, the
pod and PVC manifests with their names and environment) is the production code path.
"""
# ruff: noqa: F821 - `c` comes from the config namespace

import json
import os
from pathlib import Path

from eodh_jpyauth.spawners import KubeSpawner as _EODHKubeSpawner


class RecordingKubeSpawner(_EODHKubeSpawner):
    """Records the namespace, PVC and pod it would create, then points at a stub server."""

    _recording_running = False

    async def start(self):
        await self.load_user_options()
        pod = await self.get_pod_manifest()
        pvc = self.get_pvc_manifest()
        container = pod.spec.containers[0]
        record = {
            "user": self.user.name,
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
        (record_dir / f"{self.user.name}.json").write_text(json.dumps(record, default=str))
        self._recording_running = True
        return os.environ["EODH_TEST_NOTEBOOK_URL"]

    async def poll(self):
        return None if self._recording_running else 0

    async def stop(self, now=False):
        self._recording_running = False

    async def progress(self):
        yield {"progress": 50, "message": "Recording spawner: no pod is created in tests"}


c.JupyterHub.spawner_class = RecordingKubeSpawner
c.JupyterHub.template_paths = [os.environ["EODH_TEST_TEMPLATES"]]
c.KubeSpawner.http_timeout = 15
c.KubeSpawner.start_timeout = 30
