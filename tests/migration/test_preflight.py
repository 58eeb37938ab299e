"""`make preflight`: each check passes against healthy stand-ins and fails, with its message and
fix, against a broken one.

Stand-ins, all on 127.0.0.1: moto_server (S3, IAM), the hub tests' fake Keycloak with the
realm's discovery document, and a fake Kubernetes API server answering exactly the reads the
checks make (it wants the bearer token, as the API server does, and answers Secrets only as
metadata when asked so). Lambda's GetAccountSettings is not implemented by moto 5.2.5, so the
fake API server also answers `GET /2016-08-19/account-settings` (botocore's lambda model).
moto 5.2.5 keeps a bucket's EventBridgeConfiguration but leaves it out of
GetBucketNotificationConfiguration (moto/s3/responses.py `get_bucket_notification`), where
AWS returns `<EventBridgeConfiguration/>`; `AwsFront` passes S3 through to moto and puts it
back, so the check reads what AWS would send.

Preflight is read-only: while it runs (`_run`), every stand-in refuses a mutating call the way
the real service refuses a caller without the permission (S3 and IAM: 403 AccessDenied;
Kubernetes and Lambda: 403 Forbidden) and records it in one `WriteGuard`, and `_run` fails if
anything was recorded. The tests' own set-up writes go through the same stand-ins unguarded.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
import requests

from eodh_jupyterhub.settings import load_settings
from tests.hub import fake_keycloak
from tests.images.doubles import REGION, TEST_KEYS, MotoServer
from tests.support.json_http import JsonRequestHandler
from tests.support.local_tls import LocalCA
from tests.support.stacks import pulumi_config
from tools import preflight

TOKEN = "fake-kube-token-for-tests"
ACCOUNT = "123456789012"
SNIPPET = {"nginx.ingress.kubernetes.io/configuration-snippet": 'proxy_set_header Remote-User "";'}


class WriteGuard:
    """Refuses and records every mutating call the stand-ins receive while armed."""

    def __init__(self) -> None:
        self.armed = False
        self.writes: list[str] = []

    def refuses(self, service: str, what: str) -> bool:
        if not self.armed:
            return False
        self.writes.append(f"{service}: {what}")
        return True


# Read actions of IAM's query API (Get*, List*, ...); any other Action changes something.
IAM_READ_ACTION = re.compile(r"(Get|List|Simulate|Generate)[A-Za-z]*")


def aws_access_denied(service: str) -> bytes:
    """The body S3 and IAM send with 403 for an action the caller may not take."""
    if service == "s3":
        return (
            b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
            b"<Message>Access Denied</Message></Error>"
        )
    return (
        b'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error>'
        b"<Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized</Message>"
        b"</Error></ErrorResponse>"
    )


class FakeKube:
    """Answers the Kubernetes reads preflight makes, from `self.state`."""

    def __init__(self, guard: WriteGuard) -> None:
        self.guard = guard
        self.state: dict[str, Any] = {}
        self.reset()
        self.requests: list[tuple[str, str]] = []
        handler = type("H", (_KubeHandler,), {"fake": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self) -> None:
        self.state = {
            "eso": ["secretstores", "externalsecrets", "clustersecretstores"],
            "secrets": {("jupyter", "eodhp-tls")},
            "configmaps": {
                ("ingress-nginx", "ingress-nginx-controller"): {
                    "allow-snippet-annotations": "true",
                    "annotations-risk-level": "Critical",
                }
            },
            "unreserved": 1000,
            "ingresses": set(),
        }


class _KubeHandler(JsonRequestHandler):
    fake: FakeKube

    def _mutate(self) -> None:
        """A write (Kubernetes create/patch/delete, Lambda Put*/Delete*): never preflight's."""
        self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        if self.fake.guard.refuses("kubernetes/lambda", f"{self.command} {self.path}"):
            return self._json(
                403, {"kind": "Status", "code": 403, "reason": "Forbidden", "status": "Failure"}
            )
        return self._json(405, {"kind": "Status", "code": 405, "reason": "MethodNotAllowed"})

    do_POST = do_PUT = do_PATCH = do_DELETE = _mutate

    def do_GET(self) -> None:
        path = urlparse(self.path).path
        state = self.fake.state
        self.fake.requests.append((path, self.headers.get("Accept", "")))
        if path == "/2016-08-19/account-settings":
            limit = {
                "ConcurrentExecutions": 1000,
                "UnreservedConcurrentExecutions": state["unreserved"],
            }
            return self._json(200, {"AccountLimit": limit, "AccountUsage": {}})
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._json(401, {"kind": "Status", "code": 401, "reason": "Unauthorized"})
        if path == "/version":
            return self._json(200, {"major": "1", "minor": "31", "gitVersion": "v1.31.4-eks"})
        if path == "/apis/external-secrets.io/v1":
            if not state["eso"]:
                return self._json(404, {"kind": "Status", "code": 404})
            resources = [{"name": n, "namespaced": True} for n in state["eso"]]
            return self._json(200, {"kind": "APIResourceList", "resources": resources})
        parts = path.strip("/").split("/")
        if parts[:3] == ["apis", "networking.k8s.io", "v1"] and len(parts) == 7:
            namespace, name = parts[4], parts[6]
            if parts[5] == "ingresses" and (namespace, name) in state["ingresses"]:
                meta = {"name": name, "namespace": namespace}
                return self._json(200, {"kind": "PartialObjectMetadata", "metadata": meta})
        if len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"]:
            namespace, kind, name = parts[3], parts[4], parts[5]
            if kind == "secrets" and (namespace, name) in state["secrets"]:
                meta = {"name": name, "namespace": namespace}
                if "as=PartialObjectMetadata" in self.headers.get("Accept", ""):
                    return self._json(200, {"kind": "PartialObjectMetadata", "metadata": meta})
                return self._json(
                    200, {"kind": "Secret", "metadata": meta, "data": {"tls.key": "x"}}
                )
            if kind == "configmaps" and (namespace, name) in state["configmaps"]:
                data = state["configmaps"][(namespace, name)]
                return self._json(200, {"kind": "ConfigMap", "data": data})
        return self._json(404, {"kind": "Status", "code": 404, "reason": "NotFound"})


class _DiscoveryHandler(fake_keycloak._Handler):
    """The realm's discovery document, as Keycloak serves it (issuer + realm client scopes)."""

    def do_GET(self):
        if (
            urlparse(self.path).path
            == f"{fake_keycloak.REALM_PATH}/.well-known/openid-configuration"
        ):
            kc = self.kc
            scopes = {"openid", *kc.hub_client_scopes, *kc.workspaces_client_scopes}
            return self._json(
                200,
                {
                    "issuer": getattr(kc, "advertised_issuer", None) or kc.issuer,
                    "scopes_supported": sorted(scopes - set(getattr(kc, "hidden_scopes", ()))),
                },
            )
        return super().do_GET()


class DiscoveryKeycloak(fake_keycloak.FakeKeycloak):
    def start(self) -> DiscoveryKeycloak:
        handler = type("Handler", (_DiscoveryHandler,), {"kc": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self


class AwsFront:
    """moto for one service (`s3` or `iam`), refusing writes while the guard is armed; for S3,
    GetBucketNotificationConfiguration answers as AWS does."""

    def __init__(self, moto_url: str, service: str, guard: WriteGuard) -> None:
        self.moto_url = moto_url
        self.service = service
        self.guard = guard
        self.eventbridge: set[str] = set()
        handler = type("H", (_AwsFrontHandler,), {"front": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


class _AwsFrontHandler(BaseHTTPRequestHandler):
    front: AwsFront

    def log_message(self, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        import urllib.error
        import urllib.request

        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        if self._is_write(body) and self.front.guard.refuses(
            self.front.service, f"{self.command} {self.path} {body[:80]!r}"
        ):
            denied = aws_access_denied(self.front.service)
            self.send_response(403)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(denied)))
            self.end_headers()
            self.wfile.write(denied)
            return
        url = urlparse(self.path)
        bucket = url.path.strip("/").split("/")[0]
        is_notification = url.query.split("&")[0] == "notification"
        if is_notification and self.command == "PUT":
            if b"EventBridgeConfiguration" in body:
                self.front.eventbridge.add(bucket)
            else:
                self.front.eventbridge.discard(bucket)
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in ("host", "content-length", "expect", "transfer-encoding")
        }
        # urllib would call a body form data, which moto's werkzeug then consumes as such.
        headers.setdefault("Content-Type", "application/xml")
        request = urllib.request.Request(
            self.front.moto_url + self.path, data=body or None, headers=headers, method=self.command
        )
        try:
            with urllib.request.urlopen(request) as response:
                status, reply_headers, data = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, reply_headers, data = error.code, error.headers, error.read()
        if (
            is_notification
            and self.command == "GET"
            and status == 200
            and bucket in self.front.eventbridge
        ):
            text = data.decode()
            if "</NotificationConfiguration>" in text:
                text = text.replace(
                    "</NotificationConfiguration>",
                    "<EventBridgeConfiguration/></NotificationConfiguration>",
                )
            else:
                text = re.sub(
                    r"<NotificationConfiguration([^>]*)/>",
                    r"<NotificationConfiguration\1><EventBridgeConfiguration/></NotificationConfiguration>",
                    text,
                )
            data = text.encode()
        self.send_response(status)
        for key, value in reply_headers.items():
            if key.lower() not in (
                "content-length",
                "transfer-encoding",
                "connection",
                "server",
                "date",
            ):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _is_write(self, body: bytes) -> bool:
        if self.front.service == "iam":  # query API: POST / with Action=... in the form body
            action = parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
            return not IAM_READ_ACTION.fullmatch(action)
        return self.command not in ("GET", "HEAD")

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _forward


class Clients:
    """boto3 clients at the stand-ins: moto for S3 and IAM, the fake for Lambda settings."""

    def __init__(self, s3_url: str, iam_url: str, lambda_url: str) -> None:
        self.urls = {"s3": s3_url, "iam": iam_url, "lambda": lambda_url}
        # Building a client costs ~0.1 s; the stand-ins' URLs never change within a module.
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service, endpoint_url=self.urls[service], region_name=REGION, **TEST_KEYS
            )
        return self._clients[service]


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    moto = MotoServer(tmp_path_factory.mktemp("moto"))
    guard = WriteGuard()
    s3_front = AwsFront(moto.url, "s3", guard)
    iam_front = AwsFront(moto.url, "iam", guard)
    kube = FakeKube(guard)
    keycloak = DiscoveryKeycloak(
        "eodh-jupyterhub", "hub-secret", "eodh-workspaces", "ws-secret"
    ).start()
    try:
        clients = Clients(s3_front.url, iam_front.url, kube.url)
        yield {
            "moto": moto,
            "s3": s3_front,
            "kube": kube,
            "keycloak": keycloak,
            "clients": clients,
            "guard": guard,
        }
    finally:
        keycloak.stop()
        s3_front.server.shutdown()
        iam_front.server.shutdown()
        kube.server.shutdown()
        moto.stop()


@pytest.fixture
def env(
    stand_ins: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """A healthy environment: every check passes. Tests break one thing each."""
    moto, kube, keycloak = stand_ins["moto"], stand_ins["kube"], stand_ins["keycloak"]
    requests.post(f"{moto.url}/moto-api/reset", timeout=10)
    kube.reset()
    kube.requests.clear()
    stand_ins["guard"].armed = False
    stand_ins["guard"].writes.clear()
    keycloak.advertised_issuer = None
    keycloak.hidden_scopes = ()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": kube.url}}],
                "users": [{"name": "u", "user": {"token": TOKEN}}],
                "contexts": [{"name": "eodhp-test", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "eodhp-test",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    settings = replace(
        load_settings(pulumi_config("prod"), "prod"),
        keycloak_issuer=keycloak.issuer,
        eks_oidc_provider_arn=f"arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.eks.{REGION}.amazonaws.com/id/T",
        manage_workspace_bucket=False,
        marker_reserved_concurrency=10,
    )
    # The realm's hub client, as the platform registers it (eodhp-guide OIDC Scope Design).
    keycloak.hub_client_id = settings.hub_client_id
    keycloak.redirect_uri = f"{settings.hub_url}/hub/oauth_callback"
    stand_ins["s3"].eventbridge.clear()
    clients = stand_ins["clients"]
    s3 = clients.client("s3")
    s3.create_bucket(
        Bucket=settings.workspace_bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    s3.put_bucket_notification_configuration(
        Bucket=settings.workspace_bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    return {
        "settings": settings,
        "clients": clients,
        "kube": kube,
        "keycloak": keycloak,
        "kubeconfig": kubeconfig,
        "guard": stand_ins["guard"],
    }


def _run(
    env: dict[str, Any],
    annotations: dict[str, str] = SNIPPET,
    adopting: bool = False,
    network: preflight.Network | None = None,
    **changes: Any,
):
    settings = replace(env["settings"], **changes)
    guard: WriteGuard = env["guard"]
    guard.armed = True
    try:
        results = preflight.run_checks(
            settings,
            "eodhp-test",
            annotations,
            adopting=adopting,
            session=env["clients"],
            network=network,
        )
    finally:
        guard.armed = False
    # Every run, healthy or failing, is read-only: nothing was even attempted.
    assert guard.writes == [], guard.writes
    return {r.check: r for r in results}


def _failed(results: dict, check: str, *fragments: str) -> None:
    result = results[check]
    assert not result.ok, result
    for fragment in fragments:
        assert fragment in result.message + " | fix: " + result.fix, result
    assert result.fix
    others = [r for name, r in results.items() if name != check and not r.ok]
    assert others == [], others


def test_a_healthy_environment_passes_every_check(env) -> None:
    results = _run(env)
    assert [r for r in results.values() if not r.ok] == []
    assert set(results) == {
        "cluster-context",
        "external-secrets-v1",
        "tls-secret",
        "ingress-controller-header-guard",
        "user-servers-origin",
        "keycloak-discovery",
        "keycloak-hub-client",
        "workspace-bucket",
        "keycloak-oidc-provider",
        "lambda-reserved-concurrency",
    }
    # The TLS secret is read as metadata only: no secret value reaches preflight.
    secret_reads = [accept for path, accept in env["kube"].requests if "/secrets/" in path]
    assert secret_reads and all("as=PartialObjectMetadata" in a for a in secret_reads)


def test_unknown_context(env) -> None:
    results = preflight.run_checks(env["settings"], "eodhp-nope", SNIPPET, session=env["clients"])
    result = results[0]
    assert result.check == "cluster-context" and not result.ok
    assert "no context 'eodhp-nope'" in result.message and "eodhp-test" in result.message
    assert "update-kubeconfig" in result.fix


def test_unreachable_cluster(env) -> None:
    config = json.loads(env["kubeconfig"].read_text())
    config["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:9"
    env["kubeconfig"].write_text(json.dumps(config))
    results = {
        r.check: r
        for r in preflight.run_checks(
            env["settings"], "eodhp-test", SNIPPET, session=env["clients"]
        )
    }
    assert not results["cluster-context"].ok and "unreachable" in results["cluster-context"].message
    assert results["external-secrets-v1"].message.startswith("skipped")


def test_refused_credentials(env) -> None:
    config = json.loads(env["kubeconfig"].read_text())
    config["users"][0]["user"]["token"] = "stale"
    env["kubeconfig"].write_text(json.dumps(config))
    results = preflight.run_checks(env["settings"], "eodhp-test", SNIPPET, session=env["clients"])
    assert not results[0].ok and "HTTP 401" in results[0].message


def test_external_secrets_v1_not_served(env) -> None:
    env["kube"].state["eso"] = []
    _failed(_run(env), "external-secrets-v1", "external-secrets.io/v1 is not served", "upgrade")


def test_external_secrets_without_external_secret_kind(env) -> None:
    env["kube"].state["eso"] = ["secretstores"]
    _failed(_run(env), "external-secrets-v1", "does not serve externalsecrets")


def test_missing_tls_secret(env) -> None:
    env["kube"].state["secrets"] = set()
    _failed(_run(env), "tls-secret", "jupyter/eodhp-tls", "does not exist")


def test_no_tls_secret_configured_is_fine(env) -> None:
    env["kube"].state["secrets"] = set()
    assert _run(env, tls_secret_name=None)["tls-secret"].ok


@pytest.mark.parametrize(
    "data, wrong",
    [
        ({"annotations-risk-level": "Critical"}, "allow-snippet-annotations"),
        ({"allow-snippet-annotations": "true"}, "annotations-risk-level"),
        ({"allow-snippet-annotations": "true", "annotations-risk-level": "High"}, "'High'"),
    ],
)
def test_header_guard_needs_snippets_allowed_at_critical_risk(env, data, wrong) -> None:
    env["kube"].state["configmaps"][("ingress-nginx", "ingress-nginx-controller")] = data
    _failed(
        _run(env), "ingress-controller-header-guard", "header guard", wrong, "controller.config"
    )


@pytest.mark.parametrize(
    "setting",
    [
        {"enable-underscores-in-headers": "true"},
        {"enable-underscores-in-headers": "1"},
        {"ignore-invalid-headers": "false"},
        # mapstructure decodes an empty string as false: the default `on` is lost.
        {"ignore-invalid-headers": ""},
        {"ignore-invalid-headers": "no"},
    ],
)
def test_header_guard_fails_where_nginx_passes_underscored_names(env, setting) -> None:
    data = env["kube"].state["configmaps"][("ingress-nginx", "ingress-nginx-controller")]
    data.update(setting)
    ((key, value),) = setting.items()
    _failed(
        _run(env),
        "ingress-controller-header-guard",
        f"{{'{key}': '{value}'}}",
        "Remote_User",
        '"enable-underscores-in-headers": "false"',
    )


def test_header_guard_passes_with_the_controllers_defaults_spelt_out(env) -> None:
    data = env["kube"].state["configmaps"][("ingress-nginx", "ingress-nginx-controller")]
    data.update({"enable-underscores-in-headers": "False", "ignore-invalid-headers": "TRUE"})
    assert _run(env)["ingress-controller-header-guard"].ok


def test_header_guard_without_controller_configmap(env) -> None:
    env["kube"].state["configmaps"] = {}
    _failed(_run(env), "ingress-controller-header-guard", "not found", "--ingress-configmap")


def test_no_snippet_annotation_needs_nothing(env) -> None:
    env["kube"].state["configmaps"] = {}
    assert _run(env, annotations={})["ingress-controller-header-guard"].ok


def test_snippet_requirements_follow_the_annotations() -> None:
    assert preflight.required_controller_settings(SNIPPET) == {
        "allow-snippet-annotations": "true",
        "annotations-risk-level": "Critical",
    }
    assert (
        preflight.required_controller_settings(
            {"nginx.ingress.kubernetes.io/proxy-body-size": "2g"}
        )
        == {}
    )


def test_keycloak_realm_missing(env) -> None:
    issuer = env["keycloak"].base_url + "/realms/other"
    results = _run(env, keycloak_issuer=issuer)
    # No realm, so no client either: both say so.
    assert "HTTP 404" in results.pop("keycloak-hub-client").message
    _failed(results, "keycloak-discovery", "HTTP 404", "realm")


def test_keycloak_issuer_mismatch(env) -> None:
    env["keycloak"].advertised_issuer = "https://elsewhere.example/realms/eodhp"
    _failed(_run(env), "keycloak-discovery", "issuer is 'https://elsewhere.example/realms/eodhp'")


def test_keycloak_without_the_workspaces_scope(env) -> None:
    env["keycloak"].hidden_scopes = ("workspaces",)
    _failed(_run(env), "keycloak-discovery", "['workspaces']", "client scope")


def test_the_hub_client_defaults_to_the_realms_jupyter_client(env) -> None:
    # The healthy realm knows `jupyter` only: the old default no longer logs anyone in.
    assert env["settings"].hub_client_id == "jupyter"
    _failed(
        _run(env, hub_client_id="eodh-jupyterhub"),
        "keycloak-hub-client",
        "no client 'eodh-jupyterhub'",
        "jupyter",
    )


def test_hub_client_without_the_hubs_callback(env) -> None:
    # The callback follows hubHost: a hub moved to another host needs the client updated.
    _failed(
        _run(env, hub_host="elsewhere.eodatahub-workspaces.org.uk"),
        "keycloak-hub-client",
        "https://elsewhere.eodatahub-workspaces.org.uk/notebooks/hub/oauth_callback",
        "valid redirect URIs",
    )


def test_a_failing_preflight_writes_nothing_either(env) -> None:
    # The likeliest "fix" a check could be tempted to make itself: turning EventBridge on.
    s3 = env["clients"].client("s3")
    s3.put_bucket_notification_configuration(
        Bucket=env["settings"].workspace_bucket, NotificationConfiguration={}
    )
    results = _run(env, tls_secret_name="no-such-secret")
    assert {name for name, r in results.items() if not r.ok} == {"workspace-bucket", "tls-secret"}
    assert env["guard"].writes == []


def test_a_preflight_that_writes_is_refused_and_caught(env, monkeypatch) -> None:
    """The guard itself: a check that re-puts the bucket's notification configuration (as a
    careless EventBridge "fix" would) is refused by S3 and fails the run."""
    read_only_check = preflight.check_bucket

    def writing_check(s3: Any, settings: Any, adopting: bool) -> str:
        s3.put_bucket_notification_configuration(
            Bucket=settings.workspace_bucket,
            NotificationConfiguration={"EventBridgeConfiguration": {}},
        )
        return read_only_check(s3, settings, adopting)

    monkeypatch.setattr(preflight, "check_bucket", writing_check)
    with pytest.raises(AssertionError, match=r"s3: PUT /.*notification"):
        _run(env)


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(
            lambda c, b: c.client("iam").create_open_id_connect_provider(
                Url="https://kc.invalid/realms/eodhp", ClientIDList=["x"]
            ),
            id="iam-create-provider",
        ),
        pytest.param(
            lambda c, b: c.client("s3").put_object(Bucket=b, Key="ws/.s3keep", Body=b""),
            id="s3-put-object",
        ),
        pytest.param(
            lambda c, b: c.client("lambda").put_function_concurrency(
                FunctionName="f", ReservedConcurrentExecutions=1
            ),
            id="lambda-put-concurrency",
        ),
    ],
)
def test_every_stand_in_refuses_writes_while_preflight_runs(env, write) -> None:
    from botocore.exceptions import ClientError

    env["guard"].armed = True
    try:
        with pytest.raises(ClientError) as refused:
            write(env["clients"], env["settings"].workspace_bucket)
    finally:
        env["guard"].armed = False
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert len(env["guard"].writes) == 1
    # Reads stay allowed while armed.
    env["guard"].armed = True
    env["clients"].client("s3").head_bucket(Bucket=env["settings"].workspace_bucket)
    env["clients"].client("iam").list_open_id_connect_providers()
    env["guard"].armed = False
    assert len(env["guard"].writes) == 1


def test_kubernetes_stand_in_refuses_writes_while_preflight_runs(env) -> None:
    url = env["kube"].url + "/api/v1/namespaces/jupyter/configmaps"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    env["guard"].armed = True
    try:
        refused = requests.post(url, json={"metadata": {"name": "x"}}, headers=headers, timeout=5)
        read = requests.get(env["kube"].url + "/version", headers=headers, timeout=5)
    finally:
        env["guard"].armed = False
    assert refused.status_code == 403 and refused.json()["reason"] == "Forbidden"
    assert read.status_code == 200
    assert env["guard"].writes == ["kubernetes/lambda: POST /api/v1/namespaces/jupyter/configmaps"]


def test_hub_scopes_come_from_its_authenticator_config() -> None:
    assert preflight.requested_scopes() == ["openid", "workspaces"]


def test_shared_bucket_missing(env) -> None:
    _failed(_run(env, workspace_bucket="no-such-bucket-here"), "workspace-bucket", "does not exist")


def test_prod_needs_the_bucket_every_production_document_names(env) -> None:
    # Only the -prod name the stack used to carry exists: preflight names the real one.
    assert env["settings"].workspace_bucket == "workspaces-eodhp"
    s3 = env["clients"].client("s3")
    s3.create_bucket(
        Bucket="workspaces-eodhp-prod", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    s3.delete_bucket(Bucket="workspaces-eodhp")
    _failed(_run(env), "workspace-bucket", "bucket workspaces-eodhp does not exist")


def test_shared_bucket_without_eventbridge(env) -> None:
    s3 = env["clients"].client("s3")
    s3.put_bucket_notification_configuration(
        Bucket=env["settings"].workspace_bucket, NotificationConfiguration={}
    )
    _failed(_run(env), "workspace-bucket", "EventBridge notifications are off", "a put replaces")


def test_managed_bucket_new_or_adopted(env) -> None:
    _failed(_run(env, manage_workspace_bucket=True), "workspace-bucket", "already exists", "import")
    assert _run(env, manage_workspace_bucket=True, adopting=True)["workspace-bucket"].ok
    assert _run(env, manage_workspace_bucket=True, workspace_bucket="brand-new-bucket-x")[
        "workspace-bucket"
    ].ok
    results = _run(
        env, manage_workspace_bucket=True, adopting=True, workspace_bucket="brand-new-bucket-x"
    )
    assert (
        not results["workspace-bucket"].ok
        and "import-plan imports it" in results["workspace-bucket"].message
    )


def _provider(env, audiences: tuple[str, ...] = ("eodh-workspaces",)) -> str:
    iam = env["clients"].client("iam")
    url = env["settings"].keycloak_issuer
    return iam.create_open_id_connect_provider(Url=url, ClientIDList=list(audiences))[
        "OpenIDConnectProviderArn"
    ]


def test_referenced_provider_must_exist(env) -> None:
    path = env["settings"].keycloak_issuer.split("://", 1)[-1]
    missing = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{path}"
    _failed(_run(env, keycloak_provider_arn=missing), "keycloak-oidc-provider", "does not exist")
    arn = _provider(env)
    assert _run(env, keycloak_provider_arn=arn)["keycloak-oidc-provider"].ok


def test_provider_to_be_created_must_be_absent_unless_adopted(env) -> None:
    # ACCOUNT is moto's default account, so the provider moto makes is the stack's own ARN.
    assert _run(env)["keycloak-oidc-provider"].ok
    _provider(env)
    _failed(_run(env), "keycloak-oidc-provider", "already exists", "EntityAlreadyExists")
    assert _run(env, adopting=True)["keycloak-oidc-provider"].ok


def test_a_provider_other_services_trust_is_never_imported_to_be_shrunk(env) -> None:
    # The realm's provider as the platform made it: its own services' audiences beside ours.
    arn = _provider(env, ("eodh-workspaces", "workflow-harvester", "sts.amazonaws.com"))
    _failed(
        _run(env, adopting=True),
        "keycloak-oidc-provider",
        "also trusts ['sts.amazonaws.com', 'workflow-harvester']",
        f"keycloakProviderArn: {arn} in Pulumi.prod.yaml",
    )
    # Referenced, the stack never writes it: every audience stays.
    assert _run(env, keycloak_provider_arn=arn)["keycloak-oidc-provider"].ok


def test_a_referenced_provider_must_trust_the_notebook_roles_audience(env) -> None:
    arn = _provider(env, ("workflow-harvester",))
    _failed(
        _run(env, keycloak_provider_arn=arn),
        "keycloak-oidc-provider",
        "not the notebook role's audience 'eodh-workspaces'",
        "add-client-id-to-open-id-connect-provider",
    )


def test_reserved_concurrency_unaffordable(env) -> None:
    env["kube"].state["unreserved"] = 105
    _failed(_run(env), "lambda-reserved-concurrency", "leaves 95 unreserved", "at most 5")
    env["kube"].state["unreserved"] = 110
    assert _run(env)["lambda-reserved-concurrency"].ok


def test_make_preflight_uses_the_stacks_context_and_fails_the_run(monkeypatch, capsys) -> None:
    seen: dict[str, Any] = {}

    def fake_checks(
        settings, context, annotations, adopting=False, ingress_configmap="", session=None
    ):
        seen.update(
            context=context, annotations=annotations, adopting=adopting, stack=settings.stack
        )
        return [
            preflight.Result("cluster-context", True, "fine"),
            preflight.Result(
                "tls-secret", False, "TLS secret jupyter/x does not exist", "create it"
            ),
        ]

    monkeypatch.setattr(preflight, "run_checks", fake_checks)
    assert preflight.main(["dev", "--adopting"]) == 1
    assert seen["context"] == "eodhp-dev" and seen["adopting"] is True and seen["stack"] == "dev"
    # The program's own Ingress annotations decide what the controller must allow.
    assert seen["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "2g"
    out = capsys.readouterr().out
    assert "FAIL  tls-secret: TLS secret jupyter/x does not exist\n      fix: create it" in out
    assert out.endswith("1 passed, 1 failed\n")


def test_a_stack_without_a_kubernetes_context_is_refused_by_name(tmp_path) -> None:
    from eodh_jupyterhub.stack_config import (
        PROJECT_ROOT,
        StackConfigError,
        kubernetes_context,
    )

    shutil.copy(PROJECT_ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    stack_file = (PROJECT_ROOT / "Pulumi.dev.yaml").read_text()
    (tmp_path / "Pulumi.dev.yaml").write_text(stack_file)
    assert kubernetes_context("dev", root=tmp_path) == "eodhp-dev"
    without = "\n".join(
        line for line in stack_file.splitlines() if not line.strip().startswith("kubernetes:")
    )
    (tmp_path / "Pulumi.dev.yaml").write_text(without)
    with pytest.raises(StackConfigError, match=r"Pulumi\.dev\.yaml: kubernetes:context"):
        kubernetes_context("dev", root=tmp_path)


# -- userServersDomain: wildcard DNS and certificate ------------------------------------------

USERS_DOMAIN = "users--nb.eodatahub-workspaces.org.uk"
HUB_HOST = "eodatahub-workspaces.org.uk"  # prod's


@pytest.fixture(scope="module")
def tls() -> Iterator[dict[str, Any]]:
    """A CA the checks trust, and handshake-only servers presenting certificates for: the
    users' wildcard, another domain's wildcard, and the users' wildcard from another CA."""
    ca, stranger = LocalCA(), LocalCA("not the platform's CA")
    with (
        ca.server(f"*.{USERS_DOMAIN}") as wildcard,
        ca.server("*.other.example.org") as other,
        stranger.server(f"*.{USERS_DOMAIN}") as untrusted,
    ):
        yield {"ca": ca, "wildcard": wildcard, "other": other, "untrusted": untrusted}
    ca.close()
    stranger.close()


class FakeDns:
    """Resolves names under `wildcards` (a wildcard record) and `names` (single records, the
    hub's host among them) to 127.0.0.1, or to `elsewhere`'s address for those names;
    anything else fails as getaddrinfo does for a name that does not exist."""

    def __init__(
        self,
        wildcards: tuple[str, ...] = (),
        names: tuple[str, ...] = (HUB_HOST,),
        elsewhere: dict[str, str] | None = None,
    ) -> None:
        self.wildcards, self.names, self.elsewhere = wildcards, names, elsewhere or {}
        self.asked: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        labels = host.split(".")
        if ".".join(labels[1:]) in self.wildcards or host in self.names:
            return [self.elsewhere.get(host, "127.0.0.1")]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def _network(tls: dict[str, Any], server: str = "wildcard", dns: FakeDns | None = None):
    return preflight.Network(
        resolve=dns or FakeDns(wildcards=(USERS_DOMAIN,)),
        tls=tls["ca"].client_context(),
        https_port=tls[server].port,
    )


def test_user_servers_domain_with_wildcard_dns_and_certificate_passes(env, tls) -> None:
    dns = FakeDns(wildcards=(USERS_DOMAIN,))
    for _ in range(2):
        results = _run(env, network=_network(tls, dns=dns), user_servers_domain=USERS_DOMAIN)
        assert [r for r in results.values() if not r.ok] == []
    check = results["user-servers-origin"]
    assert f"*.{USERS_DOMAIN} resolves" in check.message and "valid certificate" in check.message
    # A fresh label each time: a record made for one name would not stand for every user.
    users = [h for h in dns.asked if h != HUB_HOST]
    assert len(set(users)) == 2
    assert all(h.endswith(f".{USERS_DOMAIN}") and h.count(".") == 4 for h in users)


def test_user_servers_domain_without_wildcard_dns_fails(env, tls) -> None:
    # One explicit record (a test user's host) is not the wildcard every user needs.
    dns = FakeDns(names=(HUB_HOST, f"alice.{USERS_DOMAIN}"))
    results = _run(env, network=_network(tls, dns=dns), user_servers_domain=USERS_DOMAIN)
    _failed(
        results,
        "user-servers-origin",
        "does not resolve",
        f"needs a wildcard DNS record *.{USERS_DOMAIN}",
        f"create *.{USERS_DOMAIN} pointing where eodatahub-workspaces.org.uk does",
    )


@pytest.mark.parametrize(
    ("server", "reason"),
    [("other", "Hostname mismatch"), ("untrusted", "unable to get local issuer certificate")],
    ids=["another-name", "another-ca"],
)
def test_user_servers_domain_with_the_wrong_certificate_fails(env, tls, server, reason) -> None:
    # After the first up: the wildcard host's Ingress (and its `tls`) exists.
    env["kube"].state["ingresses"].add(("jupyter", "jupyterhub-user-servers"))
    results = _run(env, network=_network(tls, server), user_servers_domain=USERS_DOMAIN)
    _failed(
        results,
        "user-servers-origin",
        "does not validate",
        reason,
        f"serve a certificate for *.{USERS_DOMAIN} (now: eodhp-tls)",
    )


def test_user_servers_certificate_is_checked_after_the_first_up(env, tls) -> None:
    """ingress-nginx serves the Secret's certificate only for hosts in an Ingress's `tls`
    (rootfs/etc/nginx/lua/certificate.lua), so before the first up the controller answers the
    users' hosts with its default certificate: not a failure of the environment."""
    results = _run(env, network=_network(tls, "other"), user_servers_domain=USERS_DOMAIN)
    check = results["user-servers-origin"]
    assert check.ok, check
    assert "checkable only after the first `pulumi up`" in check.message
    assert "jupyter/jupyterhub-user-servers" in check.message
    assert "run `make preflight STACK=prod` again" in check.message
    # TLS ending at the load balancer: the Ingress changes nothing, a bad certificate fails.
    results = _run(
        env, network=_network(tls, "other"), user_servers_domain=USERS_DOMAIN, tls_secret_name=None
    )
    _failed(results, "user-servers-origin", "does not validate", "Hostname mismatch")


def test_user_servers_domain_resolving_elsewhere_than_the_hub_fails(env, tls) -> None:
    # A parent's wildcard, or a stale one, answers the random name but is another endpoint.
    dns = FakeDns(wildcards=(USERS_DOMAIN,), elsewhere={HUB_HOST: "127.0.0.2"})
    results = _run(env, network=_network(tls, dns=dns), user_servers_domain=USERS_DOMAIN)
    _failed(
        results,
        "user-servers-origin",
        f"hubHost {HUB_HOST} to ['127.0.0.2']",
        "another endpoint",
        f"point *.{USERS_DOMAIN} where {HUB_HOST} does",
    )
    dns = FakeDns(wildcards=(USERS_DOMAIN,), names=())
    results = _run(env, network=_network(tls, dns=dns), user_servers_domain=USERS_DOMAIN)
    _failed(results, "user-servers-origin", f"hubHost {HUB_HOST} does not resolve")


def test_user_servers_certificate_secret_must_exist(env, tls) -> None:
    results = _run(
        env,
        network=_network(tls),
        user_servers_domain=USERS_DOMAIN,
        user_servers_tls_secret_name="eodhp-users-tls",
    )
    _failed(results, "tls-secret", "jupyter/eodhp-users-tls", "(userServersTlsSecretName)")
    env["kube"].state["secrets"].add(("jupyter", "eodhp-users-tls"))
    results = _run(
        env,
        network=_network(tls),
        user_servers_domain=USERS_DOMAIN,
        user_servers_tls_secret_name="eodhp-users-tls",
    )
    assert results["tls-secret"].ok
    assert "jupyter/eodhp-tls, jupyter/eodhp-users-tls" in results["tls-secret"].message
