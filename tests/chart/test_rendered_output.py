"""`make render` writes the chart's manifests and `make check` holds them to strict schemas.

The reachability itself is proven in test_servers_reach_hub.py; this is about what a
reviewer sees in build/<stack>/helm/jupyterhub/manifests/.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support.recordings import recording_for
from tools.check import _helm_manifests
from tools.render import write_helm_release


def test_rendered_manifests_show_the_hub_url_and_policies(tmp_path: Path) -> None:
    recording = recording_for("prod")
    write_helm_release(recording, tmp_path)
    folder = tmp_path / "helm" / "jupyterhub" / "manifests"

    def load(name: str) -> dict:
        return yaml.safe_load((folder / name).read_text())

    secret = load("secret-jupyter-hub.yaml")
    values = yaml.safe_load(secret["stringData"]["values.yaml"])
    assert values["hub"]["config"]["JupyterHub"]["hub_connect_url"] == (
        "http://hub.jupyter.svc.cluster.local:8081"
    )
    # Redacted in the rendered Secret as in values.yaml: nothing generated is written.
    assert values["hub"]["cookieSecret"] == "[secret]"
    assert secret["stringData"]["hub.config.CryptKeeper.keys"] == "[secret]"
    for path in folder.iterdir():
        text = path.read_text()
        assert not [s for s in recording.generated_secrets if s in text], path.name

    hub_policy = load("networkpolicy-jupyter-hub.yaml")
    # The labelled pods' rule (the chart's own), then the metrics scraper's.
    hub_ingress, scraper = [r for r in hub_policy["spec"]["ingress"] if r.get("from")]
    assert scraper["ports"] == [{"port": 8081, "protocol": "TCP"}]
    assert {
        "podSelector": {"matchLabels": {"hub.jupyter.org/network-access-hub": "true"}},
        "namespaceSelector": {"matchLabels": {}},
    } in hub_ingress["from"]
    for name in ("networkpolicy-jupyter-hub.yaml", "networkpolicy-jupyter-proxy.yaml"):
        egress = load(name)["spec"]["egress"]
        assert {
            "to": [
                {
                    "namespaceSelector": {},
                    "podSelector": {
                        "matchLabels": {
                            "app": "jupyterhub",
                            "component": "singleuser-server",
                            "release": "jupyterhub",
                        }
                    },
                }
            ],
            "ports": [{"port": 8888, "protocol": "TCP"}],
        } in egress, name


def test_check_holds_rendered_manifests_to_strict_schemas(tmp_path: Path) -> None:
    write_helm_release(recording_for("dev"), tmp_path)
    assert list(_helm_manifests(tmp_path)) == []
    path = tmp_path / "helm" / "jupyterhub" / "manifests" / "networkpolicy-jupyter-hub.yaml"
    policy = yaml.safe_load(path.read_text())
    policy["spec"]["ingres"] = policy["spec"].pop("ingress")
    path.write_text(yaml.safe_dump(policy))
    (finding,) = _helm_manifests(tmp_path)
    assert finding.rule == "kubernetes-strict-schema" and "ingres" in finding.message


def test_the_hub_database_claim_outlives_any_release(stack: str, tmp_path: Path) -> None:
    # An atomic release that fails is uninstalled; Helm keeps only objects annotated
    # helm.sh/resource-policy=keep (helm pkg/action/resource_policy.go). The hub database
    # (users, servers, encrypted auth state) must survive that.
    write_helm_release(recording_for(stack), tmp_path)
    manifests = tmp_path / "helm" / "jupyterhub" / "manifests"
    (claim,) = [
        doc
        for doc in (yaml.safe_load(p.read_text()) for p in manifests.iterdir())
        if doc["kind"] == "PersistentVolumeClaim"
    ]
    assert claim["metadata"]["name"] == "hub-db-dir"
    assert claim["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
