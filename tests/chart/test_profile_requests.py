"""Every profile's pod requests CPU and memory: billing charges max(usage, requests).

EO-DataHub/billing-collector bills pods in ws-* namespaces by the larger of their use and
their requests; a pod without requests would be billed by use alone and could be packed
onto a node without room for it. Each profile of each stack is spawned through the real
chart render and KubeSpawner (tests/chart/hub_pod.py), so a profile override or a values
change that drops the requests shows here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.hub_pod import render_release, spawn_in_workspace
from tests.support.recordings import recording_for

pytestmark = pytest.mark.slow

STACKS = ("dev", "prod")


def _profiles(stack: str) -> dict[str, str]:
    """Each profile's slug and image, from the release's values."""
    (release,) = recording_for(stack).of_type("kubernetes:helm.sh/v3:Release")
    profiles = release.plain_inputs["values"]["singleuser"]["profileList"]
    return {p["slug"]: p["kubespawner_override"]["image"] for p in profiles}


@pytest.mark.parametrize("stack_name", STACKS)
def test_every_profile_requests_cpu_and_memory(stack_name: str, tmp_path: Path) -> None:
    release = render_release(recording_for(stack_name))
    profiles = _profiles(stack_name)
    assert len(profiles) >= 3
    for slug, image in profiles.items():
        spawn = spawn_in_workspace(
            release, tmp_path / slug, username="alice", workspace="alpha", profile=slug
        )
        (container,) = [c for c in spawn.pod["spec"]["containers"] if c["name"] == "notebook"]
        assert container["image"] == image, "the profile was not the one spawned"
        requests = container["resources"].get("requests") or {}
        assert requests.get("cpu") and requests.get("memory"), (stack_name, slug, requests)
        limits = container["resources"].get("limits") or {}
        assert limits.get("cpu") and limits.get("memory"), (stack_name, slug, limits)
