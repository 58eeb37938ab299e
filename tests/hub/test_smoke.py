"""`make smoke`: every check passes against a healthy environment and fails, with its cause
and what to do, when one piece is broken.

The hub is the session's real JupyterHub 5.3 behind its real configurable-http-proxy, with the
hub's extra config and the fake Keycloak (tests/hub/real_hub.py); the smoke service there has
only the `proxy` scope. Kubernetes is tests/support/fake_kubernetes.py, which decides
SubjectAccessReviews with the ClusterRole's rules as RBAC does. AWS is moto (CloudWatch and
SQS, in process); moto accepts metric data in the `AWS/Lambda` namespace, which AWS keeps for
Lambda itself, so a test can publish what Lambda would.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from components.rbac import HUB_RULES
from eodh_jupyterhub.settings import load_settings
from tests.hub.real_hub import ADMIN_TOKEN, SMOKE_TOKEN, SMOKE_USER, RealHub
from tests.images.doubles import REGION, TEST_KEYS
from tests.support.fake_kubernetes import FakeKubernetes
from tests.support.hub_config import release_env
from tests.support.stacks import pulumi_config
from tools import smoke

pytestmark = pytest.mark.slow

FUNCTION = "markers-function-1a2b3c"
NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)
MINUTES_AGO = datetime.timedelta(minutes=10)  # within the default window (the last hour)
# Smoke reads Kubernetes as the deploy identity (the stack's kubeconfig context), not as the
# hub: the fake authorizes its token with these rules and the hub's requests with HUB_RULES.
DEPLOY_TOKEN = "fake-deploy-identity"
DEPLOY_USER = "eodh-jupyterhub-deploy"
DEPLOY_READS = [
    {
        "apiGroups": [""],
        "resources": ["persistentvolumeclaims", "persistentvolumes"],
        "verbs": ["get"],
    }
]
HUB_DB_VOLUME = "pvc-0d9e8f7a-1b2c-4d3e-8f9a-0b1c2d3e4f5a"


@pytest.fixture(scope="module")
def kube() -> Iterator[FakeKubernetes]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake = FakeKubernetes(rules=[dict(rule) for rule in HUB_RULES])
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(10)
    yield fake
    asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


@pytest.fixture
def env(real_hub: RealHub, keycloak, kube: FakeKubernetes, tmp_path: Path, monkeypatch):
    """A healthy environment; each test breaks one piece."""
    kube.rules = [dict(rule) for rule in HUB_RULES]
    kube.callers = {DEPLOY_TOKEN: (DEPLOY_USER, [dict(rule) for rule in DEPLOY_READS])}
    kube.calls.clear()
    kube.reviews.clear()
    # The hub database's claim, bound to a volume kept after its claim, as a healthy
    # environment has it (what `kubectl get -o json` shows of both, trimmed).
    kube.objects = {
        "namespaces": {(None, "jupyter"): {"metadata": {"name": "jupyter"}}},
        "persistentvolumeclaims": {
            ("jupyter", "hub-db-dir"): {
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "hub-db-dir", "namespace": "jupyter"},
                "spec": {"volumeName": HUB_DB_VOLUME, "storageClassName": "gp2"},
                "status": {"phase": "Bound"},
            }
        },
        "persistentvolumes": {
            (None, HUB_DB_VOLUME): {
                "kind": "PersistentVolume",
                "metadata": {"name": HUB_DB_VOLUME},
                "spec": {
                    "persistentVolumeReclaimPolicy": "Retain",
                    "claimRef": {"namespace": "jupyter", "name": "hub-db-dir"},
                },
                "status": {"phase": "Bound"},
            }
        },
    }
    config = tmp_path / "kubeconfig"
    config.write_text(json.dumps(kube.kubeconfig(DEPLOY_TOKEN)))
    monkeypatch.setenv("KUBECONFIG", str(config))
    settings = replace(
        load_settings(pulumi_config("dev"), "dev"),
        keycloak_issuer=keycloak.issuer,
        hub_client_id=release_env()["OAUTH_CLIENT_ID"],
    )
    with mock_aws():
        session = boto3.Session(region_name=REGION, **TEST_KEYS)
        queue = session.client("sqs").create_queue(QueueName="markers-failures")["QueueUrl"]
        outputs = {
            "markerFunctionArn": f"arn:aws:lambda:{REGION}:123456789012:function:{FUNCTION}",
            "markerFailureQueueUrl": queue,
        }
        yield {
            "settings": settings,
            "outputs": outputs,
            "session": session,
            "hub": real_hub,
            "kube": kube,
        }


def lambda_metric(
    env: dict[str, Any], name: str, value: float, ago: datetime.timedelta = MINUTES_AGO
) -> None:
    env["session"].client("cloudwatch").put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": "FunctionName", "Value": FUNCTION}],
                "Value": value,
                "Timestamp": NOW - ago,
            }
        ],
    )


def run(
    env: dict[str, Any],
    token: str | None = SMOKE_TOKEN,
    since: datetime.datetime | None = None,
    **changes: Any,
):
    base = changes.pop("base", env["hub"].url)
    results = smoke.run_checks(
        replace(env["settings"], **changes),
        "fake",
        env["outputs"],
        base=base,
        token=token,
        session=env["session"],
        now=NOW,
        since=since,
    )
    return {r.check: r for r in results}


def failed(results: dict, check: str, *fragments: str) -> None:
    result = results[check]
    assert not result.ok, result
    for fragment in fragments:
        assert fragment in f"{result.message} | fix: {result.fix}", result
    assert result.fix
    others = [r for name, r in results.items() if name != check and not r.ok]
    assert others == [], others


def test_a_healthy_environment_passes_and_nothing_is_written(env) -> None:
    lambda_metric(env, "Invocations", 40)
    results = run(env)
    assert [r for r in results.values() if not r.ok] == []
    assert list(results) == [
        "hub-version",
        "login-redirect",
        "proxy-route",
        "spawner-permissions",
        "hub-db-volume",
        "marker-function",
    ]
    assert "JupyterHub 5.3.0" in results["hub-version"].message
    assert "40 invocations" in results["marker-function"].message
    assert results["hub-db-volume"].message == (
        f"jupyter/hub-db-dir is bound to {HUB_DB_VOLUME}, reclaim policy Retain"
    )
    # Besides reviews, Kubernetes saw two reads: nothing was created, changed or deleted.
    assert [(c.verb, c.resource, c.name, c.allowed) for c in env["kube"].calls] == [
        ("get", "persistentvolumeclaims", "hub-db-dir", True),
        ("get", "persistentvolumes", HUB_DB_VOLUME, True),
    ]
    reviewed = {r["resourceAttributes"].get("namespace") for r in env["kube"].reviews} - {None}
    assert reviewed == {"ws-smoke-check"}
    assert {r["user"] for r in env["kube"].reviews} == {"system:serviceaccount:jupyter:hub"}


def test_no_hub_behind_the_url(env) -> None:
    base = env["hub"].url.replace("/notebooks", "/elsewhere")
    results = run(env, base=base)
    assert not results["hub-version"].ok
    assert "without a JupyterHub version" in results["hub-version"].message


def test_the_hub_runs_another_version(env, tmp_path, monkeypatch) -> None:
    chart = tmp_path / "Chart.yaml"
    chart.write_text('appVersion: "5.4.0"\n')
    monkeypatch.setattr(smoke, "CHART", chart)
    failed(run(env), "hub-version", "runs JupyterHub 5.3.0", "ships 5.4.0", "rollout status")


def test_login_with_another_client(env) -> None:
    failed(
        run(env, hub_client_id="jupyter"),
        "login-redirect",
        "client_id is 'test-hub-client', not 'jupyter'",
        "hubClientId",
    )


def test_login_to_another_realm(env, keycloak) -> None:
    issuer = keycloak.issuer.replace("/realms/eodhp", "/realms/other")
    failed(run(env, keycloak_issuer=issuer), "login-redirect", "not the realm's " + issuer)


def test_login_returns_to_another_host(env) -> None:
    base = env["hub"].url.replace("127.0.0.1", "localhost")
    results = run(env, base=base)
    failed(results, "login-redirect", "redirect_uri is 'http://127.0.0.1:", "localhost")


def test_proxy_route_needs_a_token_with_the_proxy_scope(env) -> None:
    failed(run(env, token=None), "proxy-route", "no hub API token", "SMOKE_HUB_TOKEN")
    failed(run(env, token=ADMIN_TOKEN), "proxy-route", "HTTP 403", "`proxy` scope")


def test_the_proxy_lost_the_hub_route(env) -> None:
    hub = env["hub"]
    chp = f"http://127.0.0.1:{hub.api_port}/api/routes"
    auth = {"Authorization": f"token {hub.proxy_auth_token}"}
    routes = requests.get(chp, headers=auth, timeout=10).json()
    # CHP's own API keeps the route's data flat (JupyterHub nests it under "data").
    (spec,) = [s for s, r in routes.items() if r.get("hub")]
    try:
        requests.delete(f"{chp}{spec}", headers=auth, timeout=10).raise_for_status()
        failed(run(env), "proxy-route", "no route to the hub", "rollout restart deploy/hub")
    finally:
        # The hub's own route sync puts it back (JupyterHub's POST /api/proxy).
        sync = requests.post(
            f"{hub.api_url}/proxy", headers={"Authorization": f"token {SMOKE_TOKEN}"}, timeout=30
        )
        sync.raise_for_status()
    assert run(env)["proxy-route"].ok


def test_the_hub_cannot_delete_pods(env) -> None:
    env["kube"].rules = [
        {**rule, "verbs": [v for v in rule["verbs"] if v != "delete"]} for rule in HUB_RULES
    ]
    failed(run(env), "spawner-permissions", "cannot delete pods (spawns fail)", "HUB_RULES")


def test_the_hub_may_read_secrets(env) -> None:
    env["kube"].rules.append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})
    failed(run(env), "spawner-permissions", "may also get secrets", "remove other bindings")


def test_the_hub_database_volume_goes_with_its_claim(env) -> None:
    """A new environment whose operator skipped the Retain step: the dynamically provisioned
    volume keeps the StorageClass's default, Delete."""
    volume = env["kube"].objects["persistentvolumes"][(None, HUB_DB_VOLUME)]
    volume["spec"]["persistentVolumeReclaimPolicy"] = "Delete"
    results = run(env)
    failed(
        results, "hub-db-volume", f"{HUB_DB_VOLUME} of jupyter/hub-db-dir has reclaim policy Delete"
    )
    assert results["hub-db-volume"].fix == (
        f"kubectl patch pv {HUB_DB_VOLUME} -p "
        """'{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}'"""
    )


def test_the_hub_database_claim_is_missing_or_unbound(env) -> None:
    claims = env["kube"].objects["persistentvolumeclaims"]
    claims[("jupyter", "hub-db-dir")]["status"]["phase"] = "Pending"
    failed(run(env), "hub-db-volume", "jupyter/hub-db-dir is Pending", "describe pvc hub-db-dir")
    # A claim that names a volume the API server does not have (404 Status) is Lost.
    claims[("jupyter", "hub-db-dir")]["status"]["phase"] = "Bound"
    del env["kube"].objects["persistentvolumes"][(None, HUB_DB_VOLUME)]
    failed(run(env), "hub-db-volume", f"names the volume {HUB_DB_VOLUME}, which does not exist")
    claims.clear()
    failed(run(env), "hub-db-volume", "no claim jupyter/hub-db-dir", "sqlite-pvc")


def test_the_deploy_identity_may_not_read_volumes(env) -> None:
    """The fake refuses it as RBAC does (403 Forbidden), and the hub's own rules, which grant
    no volume, are not what decides a request made with the deploy identity's token."""
    env["kube"].callers[DEPLOY_TOKEN] = (
        DEPLOY_USER,
        [{"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["get"]}],
    )
    failed(
        run(env),
        "hub-db-volume",
        "refused to show the volume",
        "get on persistentvolumes (cluster scope)",
    )
    assert env["kube"].refused()[-1].resource == "persistentvolumes"


def test_the_marker_function_failed(env) -> None:
    lambda_metric(env, "Invocations", 10)
    lambda_metric(env, "Errors", 3)
    failed(
        run(env),
        "marker-function",
        "3 of its 10 invocations since 2026-12-06 11:00 UTC",
        "Marker function failing",
    )


def test_errors_before_the_deploy_started_only_warn(env) -> None:
    """Errors counts failed attempts: Lambda retried these, and the empty queue says the
    retries finished the work."""
    lambda_metric(env, "Invocations", 10, ago=datetime.timedelta(hours=2))
    lambda_metric(env, "Errors", 3, ago=datetime.timedelta(hours=2))
    result = run(env)["marker-function"]
    assert result.ok, result
    assert "warning: 3 failed attempt(s) in the 24 h before 2026-12-06 11:00 UTC" in result.message


def test_errors_since_the_deploy_started_fail(env) -> None:
    lambda_metric(env, "Errors", 3, ago=datetime.timedelta(hours=2))
    since = NOW - datetime.timedelta(hours=3)
    failed(run(env, since=since), "marker-function", "invocations since 2026-12-06 09:00")


def test_old_errors_do_not_count(env) -> None:
    lambda_metric(env, "Errors", 5, ago=datetime.timedelta(days=3))
    result = run(env)["marker-function"]
    assert result.ok and "warning" not in result.message, result


def test_events_in_the_failure_queue(env) -> None:
    sqs = env["session"].client("sqs")
    sqs.send_message(QueueUrl=env["outputs"]["markerFailureQueueUrl"], MessageBody="{}")
    failed(run(env), "marker-function", "1 failed event(s)", "tools.replay_markers")


def test_no_server_check_unless_asked(env) -> None:
    assert "real-server" not in run(env)


def server_check(env, kc, **kwargs):
    settings = replace(env["settings"], smoke_user=SMOKE_USER, smoke_workspace="kappa")
    results = smoke.run_checks(
        replace(settings, **kwargs),
        "fake",
        env["outputs"],
        base=env["hub"].url,
        token=SMOKE_TOKEN,
        session=env["session"],
        now=NOW,
        server=True,
        server_timeout=20,
    )
    return {r.check: r for r in results}["real-server"]


def smoke_servers(env) -> dict:
    return env["hub"].admin("GET", f"/users/{SMOKE_USER}").json()["servers"]


@pytest.fixture
def smoke_user(env, kc):
    env["hub"].login(kc, SMOKE_USER)  # the test user has logged in once: the hub has its tokens
    yield
    hub = env["hub"]
    hub.admin("DELETE", f"/users/{SMOKE_USER}/servers/smoke", json={"remove": True})
    deadline = time.monotonic() + 30
    while smoke_servers(env) and time.monotonic() < deadline:
        time.sleep(0.2)


def test_the_test_user_s_server_starts_lists_s3_and_stops(env, kc, smoke_user) -> None:
    result = server_check(env, kc)
    assert result.ok, result
    assert result.message == "smokey's server started in kappa, listed s3/ (1 entries), stopped"
    # Started in the workspace asked for, by the spawner's real code.
    record = env["hub"].record(SMOKE_USER)
    assert record["user_options"]["workspace"] == "kappa" and record["namespace"] == "ws-kappa"
    assert smoke_servers(env) == {}


def test_a_workspace_the_user_is_not_in_fails_and_starts_nothing(env, kc, smoke_user) -> None:
    result = server_check(env, kc, smoke_workspace="alpha")
    assert not result.ok
    assert "with workspace alpha answered HTTP 403" in result.message, result
    assert "belongs to alpha" in result.fix
    assert smoke_servers(env) == {}


def test_a_running_smoke_server_is_left_alone(env, kc, smoke_user) -> None:
    hub = env["hub"]
    hub.admin("POST", f"/users/{SMOKE_USER}/servers/smoke", json={"workspace": "kappa"})
    deadline = time.monotonic() + 30
    while not (smoke_servers(env).get("smoke") or {}).get("ready"):
        assert time.monotonic() < deadline, "the server never started"
        time.sleep(0.2)
    result = server_check(env, kc)
    assert not result.ok and "already has a server named smoke" in result.message
    assert smoke_servers(env)["smoke"]["ready"]


def test_the_server_check_needs_its_settings(env, kc) -> None:
    result = server_check(env, kc, smoke_user=None, smoke_workspace=None)
    assert not result.ok and "smokeUser and smokeWorkspace" in result.fix


def test_make_smoke_reads_the_stack_and_fails_the_run(monkeypatch, tmp_path, capsys) -> None:
    seen: dict[str, Any] = {}

    def fake_checks(settings, context, outputs, token=None, server=False, since=None):
        seen.update(
            stack=settings.stack,
            context=context,
            outputs=outputs,
            token=token,
            server=server,
            since=since,
        )
        return [
            smoke.Result("hub-version", True, "fine"),
            smoke.Result("proxy-route", False, "no route to the hub", "restart the hub"),
        ]

    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"markerFunctionArn": "arn"}))
    monkeypatch.setattr(smoke, "run_checks", fake_checks)
    monkeypatch.setenv("SMOKE_HUB_TOKEN", "t0ken")
    argv = ["staging", "--outputs", str(outputs), "--server", "--since", "2026-12-06T11:30:00Z"]
    assert smoke.main(argv) == 1
    assert seen == {
        "since": datetime.datetime(2026, 12, 6, 11, 30, tzinfo=datetime.UTC),
        "stack": "staging",
        "context": "eodhp-staging",
        "outputs": {"markerFunctionArn": "arn"},
        "token": "t0ken",
        "server": True,
    }
    out = capsys.readouterr().out
    assert "FAIL  proxy-route: no route to the hub\n      fix: restart the hub" in out


@pytest.mark.parametrize("since", ["2026-12-06T11:30:00", "yesterday"])
def test_since_must_be_a_time_with_its_zone(since: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        smoke.main(["staging", "--since", since])
    assert exit_.value.code == 2
    assert "--since" in capsys.readouterr().err


def test_the_hub_is_checked_on_its_own_host() -> None:
    settings = load_settings(pulumi_config("prod"), "prod")
    assert smoke.hub_url(settings) == f"https://{settings.hub_host}/notebooks"
    assert settings.hub_host != settings.platform_domain


def test_the_smoke_user_and_workspace_come_together() -> None:
    from eodh_jupyterhub.settings import SettingsError

    config = {**pulumi_config("test"), "eodh-jupyterhub:smokeUser": "eodh-smoke"}
    with pytest.raises(SettingsError, match=r"Pulumi\.test\.yaml(.|\n)*expected both set"):
        load_settings(config, "test")
    config["eodh-jupyterhub:smokeWorkspace"] = "smoke-tests"
    settings = load_settings(config, "test")
    assert (settings.smoke_user, settings.smoke_workspace) == ("eodh-smoke", "smoke-tests")
