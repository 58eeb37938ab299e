"""Issue 11, section 1: notebook servers in ws-* namespaces reach the hub, for every stack.

Nothing here re-derives what the chart does: the vendored chart is rendered with the
stack's release values, its own jupyterhub_config.py and z2jh.py run over the rendered
hub ConfigMap and Secret laid out as the hub pod mounts them (with the environment the
rendered Deployment sets), and the configured KubeSpawner builds the namespace and pod
for a user in workspace "alpha". The rendered Services and NetworkPolicies then decide,
by Kubernetes' rules (tests/chart/kube.py), whether that pod and the hub reach each other.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.chart.hub_pod import (
    RenderedRelease,
    Spawn,
    hub_environment,
    render_chart,
    render_release,
    spawn_in_workspace,
)
from tests.chart.reachability import (
    hub_url_problems,
    server_to_hub_problems,
    to_server_problems,
)
from tests.support.recordings import recording_for

USER = "alice"
WORKSPACE = "alpha"

_spawns: dict[str, tuple[RenderedRelease, Spawn]] = {}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chart")


def _spawn(release: RenderedRelease, workdir: Path, key: str) -> Spawn:
    return spawn_in_workspace(release, workdir / key, username=USER, workspace=WORKSPACE)


@pytest.fixture
def spawned(stack: str, workdir: Path) -> tuple[RenderedRelease, Spawn]:
    """Render and spawn once per stack and module: both are pure."""
    if stack not in _spawns:
        release = render_release(recording_for(stack))
        _spawns[stack] = (release, _spawn(release, workdir, stack))
    return _spawns[stack]


def test_server_runs_in_the_workspace_namespace(
    spawned: tuple[RenderedRelease, Spawn],
) -> None:
    release, spawn = spawned
    assert spawn.namespace == "ws-alpha"
    assert spawn.pod["metadata"]["name"] == "jupyter-alice"
    # The point of the exercise: the server is not where the hub is.
    assert release.namespace == "jupyter" != spawn.namespace


def test_release_is_rendered_in_the_namespace_the_program_installs_it(stack: str) -> None:
    (release,) = recording_for(stack).of_type("kubernetes:helm.sh/v3:Release")
    namespace = recording_for(stack).named("jupyter-namespace").inputs["metadata"]["name"]
    assert release.inputs["namespace"] == namespace == "jupyter"


def test_hub_urls_resolve_from_the_workspace_namespace(
    spawned: tuple[RenderedRelease, Spawn],
) -> None:
    release, spawn = spawned
    assert hub_url_problems(release, spawn) == []
    assert spawn.env["JUPYTERHUB_API_URL"] == (
        "http://hub.jupyter.svc.cluster.local:8081/notebooks/hub/api"
    )


def test_hub_network_policy_admits_the_server(spawned: tuple[RenderedRelease, Spawn]) -> None:
    release, spawn = spawned
    assert server_to_hub_problems(release, spawn) == []


def test_hub_and_proxy_may_open_the_server(spawned: tuple[RenderedRelease, Spawn]) -> None:
    release, spawn = spawned
    assert to_server_problems(release, spawn) == []


def test_chart_config_ran_as_in_the_hub_pod(spawned: tuple[RenderedRelease, Spawn]) -> None:
    release, spawn = spawned
    # The chart's own file ran (it switches tornado to curl) and z2jh found the hub Service
    # port in the environment the rendered Deployment and its Services give the container.
    assert spawn.configured_http_client == ("tornado.curl_httpclient.CurlAsyncHTTPClient",)
    env = hub_environment(release)
    assert env["HUB_SERVICE_PORT"] == "8081" and env["POD_NAMESPACE"] == "jupyter"
    assert env["CONFIGPROXY_AUTH_TOKEN"] and env["PLATFORM_DOMAIN"]


# Each value this fix relies on, taken away again: the checks above must then fail.
def _without_connect_url(values: dict[str, Any]) -> None:
    del values["hub"]["config"]["JupyterHub"]["hub_connect_url"]


def _ignoring_other_namespaces(values: dict[str, Any]) -> None:
    values["hub"]["networkPolicy"]["interNamespaceAccessLabels"] = "ignore"


def _without_hub_egress(values: dict[str, Any]) -> None:
    values["hub"]["networkPolicy"]["egress"] = []


def _without_proxy_egress(values: dict[str, Any]) -> None:
    values["proxy"]["chp"]["networkPolicy"]["egress"] = []


@pytest.mark.parametrize(
    ("breakage", "check", "expected"),
    [
        (_without_connect_url, hub_url_problems, "hub does not resolve from ws-alpha"),
        (_ignoring_other_namespaces, server_to_hub_problems, "may not reach hub port 8081"),
        (_without_hub_egress, to_server_problems, "hub may not reach the server"),
        (_without_proxy_egress, to_server_problems, "proxy may not reach the server"),
    ],
)
def test_each_fix_is_needed(breakage, check, expected: str, workdir: Path) -> None:
    release, _ = _spawns.get("dev") or (render_release(recording_for("dev")), None)
    values = copy.deepcopy(release.values)
    breakage(values)
    broken = render_chart(values, release.name, release.namespace)
    spawn = _spawn(broken, workdir, f"broken-{breakage.__name__}")
    problems = check(broken, spawn)
    assert any(expected in p for p in problems), problems
