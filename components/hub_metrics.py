"""The hub's Prometheus metrics for the cluster's own Prometheus, and for nothing else.

JupyterHub 5.3 serves them at <base>/hub/metrics on the hub port, and only to a token with
the `read:metrics` scope while `JupyterHub.authenticate_prometheus` is true, its default
(jupyterhub app.py; handlers/metrics.py `MetricsHandler`; utils.py `metrics_authentication`).
That stays on: every notebook server may open the hub's port (the chart's hub NetworkPolicy
admits pods labelled `hub.jupyter.org/network-access-hub`, which KubeSpawner gives each
server), so the network alone does not keep the metrics to the monitoring.

What this adds, when a stack names its scraper (`metricsScraper`):
- a hub service `metrics` with one role granting `read:metrics` and nothing else, given a
  token generated here (z2jh `hub.services` / `hub.loadRoles`, files/hub/jupyterhub_config.py
  l. 403-420);
- the hub NetworkPolicy admits the scraper's pods (namespace and pod labels) on the hub port
  (`hub.networkPolicy.ingress`, templates/hub/netpol.yaml l. 56-59);
- the scraper sends the token (Prometheus `authorization.credentials_file`; JupyterHub takes
  `Authorization: Bearer <token>`, handlers/base.py `auth_header_pat`).
The public ingress refuses the path whatever is set here (components/jupyterhub.py).

The platform runs Prometheus in the namespace `prometheus`, scraping by annotation
(EO-DataHub/eodhp-guide services/prometheus.md; operations/bootstrap-dependencies.md lists it
in every cluster's bootstrap).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_random as random

METRICS_SERVICE = "metrics"
METRICS_SCOPE = "read:metrics"
# The Kubernetes API server labels every namespace with its name (1.22 and later).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class MetricsScraper:
    """Who may scrape the hub: pods with all of `pod_labels` in `namespace`."""

    namespace: str
    pod_labels: Mapping[str, str]

    def __post_init__(self) -> None:
        # Without pod labels every pod of the namespace (exporters, push gateways) would pass.
        if not self.namespace or not self.pod_labels:
            raise ValueError("a metrics scraper needs a namespace and at least one pod label")


def scraper_ingress_rule(scraper: MetricsScraper, hub_port: int) -> dict[str, Any]:
    """A hub NetworkPolicy ingress rule: the scraper's pods, the hub port, nothing else.

    namespaceSelector and podSelector in one `from` item: both must match (Kubernetes
    NetworkPolicy docs, "Behavior of to and from selectors").
    """
    return {
        "from": [
            {
                "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: scraper.namespace}},
                "podSelector": {"matchLabels": dict(sorted(scraper.pod_labels.items()))},
            }
        ],
        "ports": [{"port": hub_port, "protocol": "TCP"}],
    }


def metrics_role() -> dict[str, Any]:
    """The `metrics` service's role: reading the metrics, and no other scope."""
    return {"name": METRICS_SERVICE, "scopes": [METRICS_SCOPE], "services": [METRICS_SERVICE]}


class HubMetricsToken(pulumi.ComponentResource):
    """The `metrics` service's token, generated once and kept in state.

    Not copied into the scraper's namespace by this program: a Secret there would need the
    CI preview role to read Secrets, which it never may (docs/operations.md, "The preview
    role"). The operator copies it once (docs/operations.md, "The hub's metrics").
    """

    token: pulumi.Output[str]

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eodh:secrets:HubMetricsToken", name, None, opts)
        # RandomPassword: its id is the constant "none", never the value
        # (components/hub_secrets.py explains why not RandomId or RandomBytes).
        generated = random.RandomPassword(
            f"{name}-token",
            length=64,
            special=False,
            opts=pulumi.ResourceOptions(
                parent=self, additional_secret_outputs=["result", "bcryptHash"]
            ),
        )
        # Output.secret keeps it secret under mocks too, which drop the option.
        self.token = generated.result.apply(pulumi.Output.secret)
        self.register_outputs({"token": self.token})
