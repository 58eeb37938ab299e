"""Issue 19, section 3: the hub serves its Prometheus metrics only to the metrics token.

The real hub (tests/hub/real_hub.py) with the hub's extra config and the `metrics` service
given production's role (components/hub_metrics.py). Requests go through the proxy, as the
public ingress's would (it refuses these paths itself: tests/program/
test_ingress_header_guard.py) and as anything in the cluster may.
"""

from __future__ import annotations

import pytest
import requests

from tests.hub.real_hub import METRICS_TOKEN, SMOKE_TOKEN, RealHub

# JupyterHub 5.3 serves the metrics on both (handlers/metrics.py).
PATHS = ("/hub/metrics", "/hub/api/metrics")


def _get(hub: RealHub, path: str, **kwargs) -> requests.Response:
    return requests.get(f"{hub.url}{path}", timeout=10, allow_redirects=False, **kwargs)


@pytest.mark.parametrize("path", PATHS)
def test_metrics_are_refused_without_the_metrics_token(real_hub: RealHub, path: str) -> None:
    assert _get(real_hub, path).status_code == 403
    # A valid token without read:metrics is refused too.
    smoke = _get(real_hub, path, headers={"Authorization": f"token {SMOKE_TOKEN}"})
    assert smoke.status_code == 403


@pytest.mark.parametrize("path", PATHS)
def test_metrics_are_served_to_the_metrics_token(real_hub: RealHub, path: str) -> None:
    # Prometheus sends `authorization.credentials` as a Bearer token.
    response = _get(real_hub, path, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.text[:200]
    assert "jupyterhub_total_users" in response.text


def test_a_logged_in_user_cannot_read_the_metrics(real_hub: RealHub, kc) -> None:
    session = real_hub.login(kc, "mallory")
    assert session.get(f"{real_hub.url}/hub/metrics", timeout=10).status_code == 403


def test_the_metrics_token_can_do_nothing_else(real_hub: RealHub) -> None:
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert _get(real_hub, "/hub/api/users", headers=headers).status_code == 403
    assert _get(real_hub, "/hub/api/proxy", headers=headers).status_code == 403
