"""userServersDomain through the vendored chart: the proxy routes by host, and the hub's
own config (the chart's jupyterhub_config.py, then hub.extraConfig) loads with the chart's
subdomain_host and USER_SERVERS_DOMAIN agreeing, the hub staying on its host."""

from __future__ import annotations

from pathlib import Path

from tests.chart.hub_pod import (
    loaded_hub_app,
    render_release,
)
from tests.support.recordings import recording_with_user_servers

DOMAIN = "users.staging.example.org.uk"


def test_the_chart_routes_by_host_and_the_hub_loads_with_the_users_domain(
    tmp_path: Path,
) -> None:
    release = render_release(recording_with_user_servers("staging"))
    (proxy,) = [d for d in release.of_kind("Deployment") if d["metadata"]["name"] == "proxy"]
    (chp,) = proxy["spec"]["template"]["spec"]["containers"]
    # Without it the hub's host-prefixed routes never match (templates/proxy/deployment.yaml).
    assert "--host-routing" in chp["command"]

    app = loaded_hub_app(release, tmp_path)
    assert app.subdomain_host == f"https://{DOMAIN}"
    assert app.public_url == "https://staging.eodatahub-workspaces.org.uk/notebooks/"
    assert app.subdomain_hook("alice", app.domain, "user") == f"alice.{DOMAIN}"
