"""Issue 19, section 3: the platform's Prometheus, and only it, may open the hub's port.

The vendored chart is rendered with the stack's release values; the rendered
NetworkPolicies decide by Kubernetes' rules (tests/chart/kube.py) who reaches the hub pod.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

from components.hub_metrics import METRICS_SERVICE, metrics_role
from tests.chart.hub_pod import (
    NAMESPACE_NAME_LABEL,
    RenderedRelease,
    loaded_hub_app,
    render_chart,
    render_release,
)
from tests.chart.kube import Pod, connection_allowed
from tests.chart.reachability import deployment_pod
from tests.support.recordings import recording_for

HUB_PORT = 8081
# The prometheus-community chart's server pod (charts/prometheus templates/_helpers.tpl),
# written out here rather than taken from the stack file.
SERVER_LABELS = {
    "app.kubernetes.io/name": "prometheus",
    "app.kubernetes.io/component": "server",
    "app.kubernetes.io/instance": "prometheus",
}


def _pod(namespace: str, labels: dict[str, str]) -> Pod:
    return Pod(namespace, labels, {NAMESPACE_NAME_LABEL: namespace})


@functools.cache
def _prod() -> RenderedRelease:
    return render_release(recording_for("prod"))


@functools.cache
def _prod_without_scraper() -> RenderedRelease:
    release = _prod()
    values = copy.deepcopy(release.values)
    del values["hub"]["networkPolicy"]["ingress"]
    del values["hub"]["services"], values["hub"]["loadRoles"]
    return render_chart(values, release.name, release.namespace)


def _admits(release: RenderedRelease, source: Pod, port: int = HUB_PORT) -> bool:
    hub = deployment_pod(release, "hub")
    return connection_allowed(release.of_kind("NetworkPolicy"), source, hub, port)


def test_the_platform_prometheus_may_open_the_hub_port() -> None:
    release = _prod()
    assert _admits(release, _pod("prometheus", SERVER_LABELS))
    # The probe is sound: the same pod is refused without the scraper's rule.
    assert not _admits(_prod_without_scraper(), _pod("prometheus", SERVER_LABELS))


def test_nothing_else_is_let_in() -> None:
    release = _prod()
    alertmanager = {**SERVER_LABELS, "app.kubernetes.io/component": "alertmanager"}
    assert not _admits(release, _pod("prometheus", alertmanager))
    assert not _admits(release, _pod("prometheus", {}))
    # The server's labels count only in the scraper's namespace.
    assert not _admits(release, _pod("ws-alpha", SERVER_LABELS))
    assert not _admits(release, _pod("jupyter", SERVER_LABELS))
    # Only the hub port.
    assert not _admits(release, _pod("prometheus", SERVER_LABELS), port=8000)


def test_the_scraper_rule_is_the_only_network_change() -> None:
    release = _prod()
    without = _prod_without_scraper()
    policies = {p["metadata"]["name"]: p for p in release.of_kind("NetworkPolicy")}
    before = {p["metadata"]["name"]: p for p in without.of_kind("NetworkPolicy")}
    assert set(policies) == set(before)
    for name, policy in policies.items():
        if name != "hub":
            assert policy == before[name], name
    hub, hub_before = policies["hub"]["spec"], before["hub"]["spec"]
    assert hub["egress"] == hub_before["egress"]
    (added,) = [rule for rule in hub["ingress"] if rule not in hub_before["ingress"]]
    assert hub["ingress"] == [*hub_before["ingress"], added]


def test_the_chart_gives_the_hub_the_metrics_service_and_role(tmp_path: Path) -> None:
    """The chart's own jupyterhub_config.py, run over the rendered hub Secret and ConfigMap,
    configures the service and role that tests/hub/test_hub_metrics.py proves on a real hub."""
    release = _prod()
    token = release.values["hub"]["services"][METRICS_SERVICE]["apiToken"]
    app = loaded_hub_app(release, tmp_path)
    services = {s["name"]: s for s in app.config.JupyterHub.services}
    assert services[METRICS_SERVICE] == {"name": METRICS_SERVICE, "api_token": token}
    roles = [
        r for r in app.config.JupyterHub.load_roles if METRICS_SERVICE in r.get("services", [])
    ]
    assert roles == [metrics_role()]
    # authenticate_prometheus is left at JupyterHub's default, true.
    assert "authenticate_prometheus" not in app.config.JupyterHub
