"""Extra config for the real hub against the fake Kubernetes API (tests/hub/cluster_hub.py).

Unlike hub_test_overrides.py, the spawner is the production one (eodh_jpyauth's
KubeSpawner as hub/extra_config configures it): it creates namespaces, claims and pods
through the API and waits on its reflectors. What differs from production: templates
come from the repository, the OAuth callback is this hub's 127.0.0.1 address, and every
pod's IP is 127.0.0.1 (the fake), so the notebook port is the one stub server's.

The chart's own settings that matter under load and restarts are repeated here, as
vendor/jupyterhub-4.2.0/files/hub/jupyterhub_config.py sets them: the proxy is a separate
deployment the hub does not start or watch, servers survive a hub restart, routes are
checked with the last-activity update every 60 s, no slow-spawn wait; and the values the
chart passes to KubeSpawner by default (dynamic storage: ensure the claim; events on).
"""
# ruff: noqa: F821 - `c` comes from the config namespace

import os

# HUB_HOST is this hub's 127.0.0.1 address (real_hub.py): only the scheme differs.
_production_callback = f"https://{os.environ['HUB_HOST']}/notebooks/hub/oauth_callback"
if c.EODHAuthenticator.oauth_callback_url != _production_callback:
    raise RuntimeError(
        f"extra config sets oauth_callback_url {c.EODHAuthenticator.oauth_callback_url!r}, "
        f"expected {_production_callback!r}"
    )
c.EODHAuthenticator.oauth_callback_url = "http://" + _production_callback.removeprefix("https://")
c.JupyterHub.public_url = "http://" + c.JupyterHub.public_url.removeprefix("https://")
c.JupyterHub.template_paths = [os.environ["EODH_TEST_TEMPLATES"]]

# The chart's jupyterhub_config.py.
c.ConfigurableHTTPProxy.should_start = False
c.JupyterHub.cleanup_servers = False
# The chart sets 60 before the extra config runs, which may override it.
if "last_activity_interval" not in c.JupyterHub:
    c.JupyterHub.last_activity_interval = 60
c.JupyterHub.tornado_settings = {**c.JupyterHub.tornado_settings, "slow_spawn_timeout": 0}
# The chart's defaults for singleuser (values.yaml): storage.type dynamic, events true,
# startTimeout 300, networkTools/image settings irrelevant to the API calls.
c.KubeSpawner.storage_pvc_ensure = True
# singleuser.storage dynamic with the release's homeMountPath and volumeNameTemplate:
# the chart mounts the claim at HOME, which 4_workspace_homes.py then splits.
c.KubeSpawner.volumes = [
    {"name": "volume-{workspace}", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
]
c.KubeSpawner.volume_mounts = [{"mountPath": "/home/jovyan", "name": "volume-{workspace}"}]
c.KubeSpawner.events_enabled = True
c.KubeSpawner.start_timeout = 300
c.KubeSpawner.image = "public.ecr.aws/eodh/eodh-default-notebook:python-3.12-0.2.11"
c.KubeSpawner.port = int(os.environ["EODH_TEST_NOTEBOOK_PORT"])

# Smaller than production for tests/hub/test_load_faults.py only, which checks what
# happens at the limits, not their size (bench/load runs the production values;
# tests/hub/test_extra_config.py holds those): a spawn limit a handful of users reach,
# and a route check a restarted proxy does not wait 10 s for.
if os.environ.get("EODH_TEST_SPAWN_LIMIT"):
    c.JupyterHub.concurrent_spawn_limit = int(os.environ["EODH_TEST_SPAWN_LIMIT"])
if os.environ.get("EODH_TEST_ROUTE_CHECK_SECONDS"):
    c.JupyterHub.last_activity_interval = int(os.environ["EODH_TEST_ROUTE_CHECK_SECONDS"])
