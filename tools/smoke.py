"""Read-only checks that a deployed environment works, run after every `pulumi up`.

    python -m tools.smoke dev [--outputs outputs.json]    # exit 0 when every check passes

The deploy workflow runs it after each environment's `up`; a failure stops the promotion to
the next environment. Each check says what is wrong and what to do:

- hub-version: the hub's REST API on the primary host answers with the JupyterHub version
  the vendored chart ships (`appVersion` of vendor/jupyterhub-4.2.0/Chart.yaml).
- login-redirect: `/hub/oauth_login` sends the browser to the realm's authorization endpoint
  with the hub's client id and the hub's own callback as redirect URI.
- proxy-route: the proxy's routing table (the hub's `GET /hub/api/proxy`, scope `proxy`)
  holds the hub's route. Needs a hub API token with that scope in $SMOKE_HUB_TOKEN.
- spawner-permissions: the hub's service account may do exactly what KubeSpawner needs
  (components/rbac.py HUB_RULES) in a `ws-*` namespace, and not the rest, asked through
  SubjectAccessReviews: the API server answers a review and stores nothing.
- hub-db-volume: the hub database's claim (`hub-db-dir` in the hub namespace) is bound to a
  PersistentVolume whose reclaim policy is Retain, so the disk outlives the claim. A new
  environment gets that by a manual step (docs/operations.md, 'Add an environment'), which
  this check makes sure was not forgotten. Two GETs: the claim and its volume.
- marker-function: nothing in the marker function's failure queue, and no errors (CloudWatch
  `AWS/Lambda` `Errors`) since the deploy started (`--since`, the deploy job's start; default:
  an hour ago). `Errors` counts failed attempts, which Lambda retries: older errors whose
  work the retries finished (the queue is empty) are reported as a warning, not a failure.
- real-server (only with --server, and `smokeUser` + `smokeWorkspace` in the stack file): the
  smoke token starts the test user's named server `smoke` in the test workspace (REST API, the
  option the platform's launch URL passes: `workspace`), waits until it is ready, lists `s3/`
  through the server's contents API, and stops and removes it. This one writes (a server
  starts and stops, and the spawn exchanges the user's token), so it is a flag.

Without --server nothing is written: HTTP GETs to the hub, reviews (which Kubernetes does
not persist), two Kubernetes GETs, and AWS Get/List calls. Kubernetes access as in
tools/preflight.py (the stack's `kubernetes:context`, the deploy identity); AWS through the
default credential chain; the function's ARN and failure queue from the stack's outputs
(`pulumi stack output --json`, or --outputs FILE).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

import requests

from components.rbac import HUB_RULES
from eodh_jupyterhub import yaml_loader
from tools.adopt_release import HUB_DB_PVC
from tools.preflight import Failed, KubeClient, Result, kube_client, report
from tools.preflight import _run as run_check

if TYPE_CHECKING:
    from eodh_jupyterhub.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "vendor" / "jupyterhub-4.2.0" / "Chart.yaml"
TIMEOUT = 15
HUB_SERVICE_ACCOUNT = "hub"
# A workspace namespace name for the reviews: the ClusterRoleBinding makes the answer the same
# in every `ws-*` namespace, and a review needs no namespace to exist.
REVIEW_NAMESPACE = "ws-smoke-check"
# The other verbs on the resources the spawner touches, and every verb on Secrets (the
# spawner reads none: components/rbac.py), must be refused in a workspace namespace.
CORE_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
FORBIDDEN_EXTRA = ("secrets",)
# Errors before the deploy started block nothing (a retry may have fixed them; the failure
# queue holds what it did not): how far back they are still shown as a warning, and the
# default start when the deploy does not pass --since.
MARKER_WARN_WINDOW = datetime.timedelta(hours=24)
DEFAULT_SINCE = datetime.timedelta(hours=1)
# The named server --server starts (a user keeps one server per workspace: it replaces the
# smoke user's other server in the smoke workspace, if any).
SMOKE_SERVER = "smoke"
SUBJECT_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
RETAIN = "Retain"


def hub_url(settings: Settings) -> str:
    """The hub's public URL: the one everything user-facing derives from (`hubHost`)."""
    return settings.hub_url


def expected_hub_version(chart: Path | None = None) -> str:
    return str(yaml_loader.safe_load((chart or CHART).read_text())["appVersion"])


def _get(url: str, **kwargs: Any) -> requests.Response:
    try:
        return requests.get(url, timeout=TIMEOUT, **kwargs)
    except requests.RequestException as error:
        raise Failed(
            f"{url} unreachable ({error.__class__.__name__})",
            "check DNS and the ingress for the hub's host (kubectl -n jupyter get ingress)",
        ) from None


# -- The hub --------------------------------------------------------------------------------


def check_hub_version(base: str, expected: str) -> str:
    url = f"{base}/hub/api/"
    response = _get(url, allow_redirects=False)
    try:
        version = response.json().get("version") if response.status_code == 200 else None
    except ValueError:
        version = None
    if version is None:
        raise Failed(
            f"GET {url} answered HTTP {response.status_code} without a JupyterHub version: "
            "no hub behind this host and path",
            "kubectl -n jupyter get pods,ingress; docs/troubleshooting.md, 'Hub not answering'",
        )
    if version != expected:
        raise Failed(
            f"the hub runs JupyterHub {version}, the deployed chart ships {expected}: the "
            "hub pod was not replaced, or another hub answers on this host",
            "kubectl -n jupyter rollout status deploy/hub; check the image tag (hubImage)",
        )
    return f"JupyterHub {version} at {base}"


def check_login_redirect(base: str, issuer: str, client_id: str) -> str:
    url = f"{base}/hub/oauth_login"
    response = _get(url, allow_redirects=False)
    location = response.headers.get("Location", "")
    if response.status_code not in (302, 303) or not location:
        raise Failed(
            f"GET {url} answered HTTP {response.status_code} instead of a redirect to Keycloak",
            "kubectl -n jupyter logs deploy/hub --since=10m (the authenticator's config)",
        )
    target = urlparse(location)
    endpoint = f"{issuer}/protocol/openid-connect/auth"
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    problems = []
    if location.split("?", 1)[0] != endpoint:
        problems.append(f"goes to {location.split('?', 1)[0]}, not the realm's {endpoint}")
    if query.get("client_id") != client_id:
        problems.append(f"client_id is {query.get('client_id')!r}, not {client_id!r}")
    callback = f"{base}/hub/oauth_callback"
    if query.get("redirect_uri") != callback:
        problems.append(f"redirect_uri is {query.get('redirect_uri')!r}, not {callback!r}")
    if problems:
        raise Failed(
            "the login redirect " + "; ".join(problems),
            "compare keycloakIssuer, hubClientId and the hub's host with the realm's client "
            "(docs/keycloak.md); Keycloak refuses a redirect URI it does not list",
        )
    return f"login goes to {endpoint} as {client_id}, back to {callback}"


def check_proxy_route(base: str, token: str | None) -> str:
    if not token:
        raise Failed(
            "no hub API token: cannot read the proxy's routing table",
            "set SMOKE_HUB_TOKEN to a hub API token with the `proxy` scope (docs/operations.md, "
            "'Smoke checks')",
        )
    url = f"{base}/hub/api/proxy"
    response = _get(url, headers={"Authorization": f"token {token}"})
    if response.status_code in (401, 403):
        raise Failed(
            f"GET {url}: HTTP {response.status_code}, the token may not read the proxy's routes",
            "give SMOKE_HUB_TOKEN's owner the `proxy` scope (hub.loadRoles)",
        )
    if response.status_code != 200:
        raise Failed(f"GET {url} answered HTTP {response.status_code}", "check the hub's log")
    # JupyterHub 5 answers {routespec: {"routespec", "target", "data": {"hub": true, ...}}}.
    routes = response.json()
    hub_routes = [spec for spec, route in routes.items() if (route.get("data") or {}).get("hub")]
    if not hub_routes:
        raise Failed(
            "the proxy has no route to the hub: users' requests depend on its default target, "
            "and the hub did not (re)register after the proxy restarted",
            "kubectl -n jupyter rollout restart deploy/hub (the hub re-adds its routes at start)",
        )
    return f"the proxy routes {', '.join(hub_routes)} to the hub"


# -- Kubernetes -----------------------------------------------------------------------------


def spawner_permissions() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(verb, resource) the spawner needs, and the ones of the same resources it must not have."""
    needed = {(v, r) for rule in HUB_RULES for r in rule["resources"] for v in rule["verbs"]}
    resources = sorted({r for _, r in needed} | set(FORBIDDEN_EXTRA))
    forbidden = {(v, r) for r in resources for v in CORE_VERBS} - needed
    return needed, forbidden


def _review(kube: KubeClient, user: str, groups: list[str], verb: str, resource: str) -> bool:
    attributes = {"verb": verb, "resource": resource, "group": "", "version": "v1"}
    if resource != "namespaces":
        attributes["namespace"] = REVIEW_NAMESPACE
    body: dict[str, Any] = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": groups, "resourceAttributes": attributes},
    }
    try:
        response = kube.session.post(
            kube.server.rstrip("/") + SUBJECT_ACCESS_REVIEWS, json=body, timeout=TIMEOUT
        )
    except requests.RequestException as error:
        raise Failed(
            f"API server {kube.server} unreachable ({error.__class__.__name__})",
            "connect to the VPN / check the cluster endpoint (make preflight says more)",
        ) from None
    if response.status_code in (401, 403):
        raise Failed(
            f"the API server refused a SubjectAccessReview (HTTP {response.status_code})",
            "the deploy identity needs create on subjectaccessreviews.authorization.k8s.io",
        )
    if response.status_code != 201 and response.status_code != 200:
        raise Failed(
            f"SubjectAccessReview answered HTTP {response.status_code}: {response.text[:200]}",
            "check the API server",
        )
    return bool(response.json().get("status", {}).get("allowed"))


def check_spawner_permissions(kube: KubeClient, namespace: str) -> str:
    user = f"system:serviceaccount:{namespace}:{HUB_SERVICE_ACCOUNT}"
    groups = [
        "system:serviceaccounts",
        f"system:serviceaccounts:{namespace}",
        "system:authenticated",
    ]
    needed, forbidden = spawner_permissions()
    missing = sorted(p for p in needed if not _review(kube, user, groups, *p))
    extra = sorted(p for p in forbidden if _review(kube, user, groups, *p))
    if missing or extra:
        said = []
        if missing:
            said.append("cannot " + ", ".join(f"{v} {r}" for v, r in missing) + " (spawns fail)")
        if extra:
            said.append("may also " + ", ".join(f"{v} {r}" for v, r in extra))
        raise Failed(
            f"{user} in {REVIEW_NAMESPACE}: " + "; ".join(said),
            "kubectl get clusterrolebinding,rolebinding -A -o wide | grep "
            f"{namespace}:{HUB_SERVICE_ACCOUNT}; the ClusterRole hub must be exactly "
            "components/rbac.py HUB_RULES (pulumi up restores it; remove other bindings)",
        )
    return f"{user} has exactly the spawner's {len(needed)} permissions in {REVIEW_NAMESPACE}"


def _read(kube: KubeClient, path: str, what: str, permission: str) -> dict[str, Any] | None:
    """The object at `path`, or None when the API server answers 404."""
    try:
        response = kube.get(path)
    except requests.RequestException as error:
        raise Failed(
            f"API server {kube.server} unreachable ({error.__class__.__name__})",
            "connect to the VPN / check the cluster endpoint (make preflight says more)",
        ) from None
    if response.status_code == 404:
        return None
    if response.status_code in (401, 403):
        raise Failed(
            f"the API server refused to show {what} (HTTP {response.status_code})",
            f"the deploy identity needs {permission}",
        )
    if response.status_code != 200:
        raise Failed(
            f"GET {path} answered HTTP {response.status_code}: {response.text[:200]}",
            "check the API server",
        )
    body: dict[str, Any] = response.json()
    return body


def check_hub_db_volume(kube: KubeClient, namespace: str) -> str:
    claim_name = f"{namespace}/{HUB_DB_PVC}"
    claim = _read(
        kube,
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{HUB_DB_PVC}",
        f"the claim {claim_name}",
        f"get on persistentvolumeclaims in {namespace}",
    )
    if claim is None:
        raise Failed(
            f"no claim {claim_name}: the hub has no database disk",
            f"kubectl -n {namespace} get pvc,events; pulumi up creates it (hub.db.type sqlite-pvc)",
        )
    volume = (claim.get("spec") or {}).get("volumeName")
    phase = (claim.get("status") or {}).get("phase")
    if not volume or phase != "Bound":
        raise Failed(
            f"the claim {claim_name} is {phase or 'without a phase'}, bound to no volume",
            f"kubectl -n {namespace} describe pvc {HUB_DB_PVC} (its events say why)",
        )
    pv = _read(
        kube,
        f"/api/v1/persistentvolumes/{volume}",
        f"the volume {volume}",
        "get on persistentvolumes (cluster scope)",
    )
    if pv is None:
        raise Failed(
            f"the claim {claim_name} names the volume {volume}, which does not exist (Lost)",
            f"kubectl -n {namespace} describe pvc {HUB_DB_PVC}; docs/troubleshooting.md",
        )
    policy = (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy")
    if policy != RETAIN:
        raise Failed(
            f"the volume {volume} of {claim_name} has reclaim policy {policy}: deleting the "
            "claim deletes the disk and the hub database on it",
            f"kubectl patch pv {volume} -p "
            """'{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}'""",
        )
    return f"{claim_name} is bound to {volume}, reclaim policy {RETAIN}"


# -- The marker function --------------------------------------------------------------------


def check_marker_function(
    cloudwatch: Any,
    sqs: Any,
    function_arn: str,
    queue_url: str,
    now: datetime.datetime,
    since: datetime.datetime | None = None,
) -> str:
    function = function_arn.split(":")[6]
    since = since or now - DEFAULT_SINCE

    def total(metric: str, start: datetime.datetime, end: datetime.datetime) -> int:
        if end <= start:
            return 0
        # One-minute periods while a call stays within 1,440 points (CloudWatch keeps
        # minute data 15 days), so the deploy's window starts within a minute of --since.
        period = 60 if end - start <= datetime.timedelta(hours=24) else 3600
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName=metric,
            Dimensions=[{"Name": "FunctionName", "Value": function}],
            StartTime=start,
            EndTime=end,
            Period=period,
            Statistics=["Sum"],
        )["Datapoints"]
        return int(sum(p["Sum"] for p in points))

    errors, invocations = total("Errors", since, now), total("Invocations", since, now)
    earlier = total("Errors", since - MARKER_WARN_WINDOW, since)
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    queued = sum(int(v) for v in attributes.values())
    started = since.strftime("%Y-%m-%d %H:%M UTC")
    problems = []
    if errors:
        problems.append(f"{errors} of its {invocations} invocations since {started} failed")
    if queued:
        problems.append(f"{queued} failed event(s) wait in its failure queue")
    if problems:
        raise Failed(
            f"marker function {function}: " + "; ".join(problems),
            "docs/troubleshooting.md, 'Marker function failing': read the errors in its log "
            "group and the queued messages, fix the cause, then replay the queue "
            "(python -m tools.replay_markers)",
        )
    warning = (
        f"; warning: {earlier} failed attempt(s) in the "
        f"{int(MARKER_WARN_WINDOW.total_seconds() // 3600)} h before {started}, "
        "retried to completion (nothing queued)"
        if earlier
        else ""
    )
    return (
        f"marker function {function}: {invocations} invocations since {started}, no errors, "
        f"queue empty{warning}"
    )


# -- A real server (optional) -----------------------------------------------------------


def _server(base: str, headers: dict[str, str], user: str) -> dict[str, Any] | None:
    """The smoke server's model, or None when the user has no server of that name."""
    response = requests.get(f"{base}/hub/api/users/{user}", headers=headers, timeout=TIMEOUT)
    if response.status_code in (403, 404):
        raise Failed(
            f"GET /hub/api/users/{user}: HTTP {response.status_code}",
            f"the smoke user must exist (log in once as {user}) and SMOKE_HUB_TOKEN needs "
            f"servers!user={user} and access:servers!user={user}",
        )
    response.raise_for_status()
    server: dict[str, Any] | None = (response.json().get("servers") or {}).get(SMOKE_SERVER)
    return server


def _wait(
    base: str, headers: dict[str, str], user: str, ready: bool, timeout: float, poll: float
) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        server = _server(base, headers, user)
        done = bool(server and server.get("ready")) if ready else server is None
        if done or time.monotonic() >= deadline:
            return done
        time.sleep(poll)


def check_real_server(
    base: str,
    token: str | None,
    user: str | None,
    workspace: str | None,
    timeout: float = 600,
    poll: float = 2,
) -> str:
    if not (user and workspace):
        raise Failed(
            "--server needs a test user and workspace",
            "set smokeUser and smokeWorkspace in Pulumi.<stack>.yaml",
        )
    if not token:
        raise Failed("--server needs SMOKE_HUB_TOKEN", "docs/operations.md, 'Smoke checks'")
    headers = {"Authorization": f"token {token}"}
    if _server(base, headers, user) is not None:
        raise Failed(
            f"{user} already has a server named {SMOKE_SERVER}: another smoke check runs, "
            "or one did not clean up",
            f'DELETE /hub/api/users/{user}/servers/{SMOKE_SERVER} with {{"remove": true}}, '
            "then rerun",
        )
    # A named server, as the platform's notebook launch starts (/hub/spawn/<user>/<server>
    # ?workspace=<ws>), but through the REST API with the same option: JupyterHub takes API
    # tokens on its REST API only, and sends one on the spawn page to the login page.
    server_api = f"{base}/hub/api/users/{user}/servers/{SMOKE_SERVER}"
    try:
        response = requests.post(
            server_api, json={"workspace": workspace}, headers=headers, timeout=TIMEOUT
        )
        if response.status_code not in (201, 202):
            raise Failed(
                f"POST {server_api} with workspace {workspace} answered HTTP "
                f"{response.status_code}: {response.text[:200]}",
                f"check that {user} belongs to {workspace} and the hub's log",
            )
        if not _wait(base, headers, user, True, timeout, poll):
            raise Failed(
                f"{user}'s server in {workspace} was not ready within {int(timeout)} s",
                "docs/troubleshooting.md, 'Pods not spawning'",
            )
        contents = f"{base}/user/{user}/{SMOKE_SERVER}/api/contents/s3"
        listing = requests.get(contents, params={"content": "1"}, headers=headers, timeout=TIMEOUT)
        try:
            model = listing.json() if listing.status_code == 200 else {}
        except ValueError:
            model = {}
        if model.get("type") != "directory":
            raise Failed(
                f"GET {contents} answered HTTP {listing.status_code} without a directory: "
                "the server runs but its S3 drive does not list",
                "docs/troubleshooting.md, 'S3 drive empty'",
            )
        entries = len(model.get("content") or [])
    finally:
        # remove: the stopped server leaves no entry behind in the user's list either.
        requests.delete(server_api, json={"remove": True}, headers=headers, timeout=TIMEOUT)
    if not _wait(base, headers, user, False, timeout, poll):
        raise Failed(
            f"{user}'s server did not stop within {int(timeout)} s",
            f"kubectl -n ws-{workspace} get pods; the hub's log",
        )
    return f"{user}'s server started in {workspace}, listed s3/ ({entries} entries), stopped"


# -- Running them ---------------------------------------------------------------------------


def stack_outputs(stack: str, outputs_file: Path | None) -> dict[str, Any]:
    if outputs_file is not None:
        return dict(json.loads(outputs_file.read_text()))
    name = os.environ.get("PULUMI_STACK_NAME", stack)
    done = subprocess.run(
        ["pulumi", "stack", "output", "--json", "--stack", name],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise Failed(
            f"pulumi stack output --stack {name} failed: {done.stderr.strip()[:300]}",
            "pulumi login, and set PULUMI_STACK_NAME=<org>/<stack> (or pass --outputs FILE)",
        )
    return dict(json.loads(done.stdout))


def run_checks(
    settings: Settings,
    context: str,
    outputs: dict[str, Any],
    base: str | None = None,
    token: str | None = None,
    session: Any = None,
    now: datetime.datetime | None = None,
    server: bool = False,
    server_timeout: float = 600,
    since: datetime.datetime | None = None,
) -> list[Result]:
    import boto3

    base = base or hub_url(settings)
    session = session or boto3.Session(region_name=settings.aws_region)
    now = now or datetime.datetime.now(datetime.UTC)
    checks: list[tuple[str, Callable[[], str]]] = [
        ("hub-version", lambda: check_hub_version(base, expected_hub_version())),
        (
            "login-redirect",
            lambda: check_login_redirect(base, settings.keycloak_issuer, settings.hub_client_id),
        ),
        ("proxy-route", lambda: check_proxy_route(base, token)),
    ]
    results = [run_check(name, check) for name, check in checks]
    kube_checks: list[tuple[str, Callable[[KubeClient], str]]] = [
        ("spawner-permissions", lambda k: check_spawner_permissions(k, settings.namespace)),
        ("hub-db-volume", lambda k: check_hub_db_volume(k, settings.namespace)),
    ]
    with tempfile.TemporaryDirectory() as workdir:
        try:
            kube = kube_client(context, workdir)
        except Failed as failure:
            results += [Result(name, False, str(failure), failure.fix) for name, _ in kube_checks]
        else:
            results += [run_check(name, partial(check, kube)) for name, check in kube_checks]
    results.append(
        run_check(
            "marker-function",
            lambda: check_marker_function(
                session.client("cloudwatch"),
                session.client("sqs"),
                outputs["markerFunctionArn"],
                outputs["markerFailureQueueUrl"],
                now,
                since,
            ),
        )
    )
    if server:
        results.append(
            run_check(
                "real-server",
                lambda: check_real_server(
                    base, token, settings.smoke_user, settings.smoke_workspace, server_timeout
                ),
            )
        )
    return results


def failed(results: Iterable[Result]) -> list[Result]:
    return [r for r in results if not r.ok]


def _utc_time(text: str) -> datetime.datetime:
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone: add Z or +00:00")
    return when.astimezone(datetime.UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("stack")
    parser.add_argument("--outputs", type=Path, help="the stack's outputs as JSON")
    parser.add_argument(
        "--server",
        action="store_true",
        help="also start, use and stop the test user's server (smokeUser, smokeWorkspace)",
    )
    parser.add_argument(
        "--since",
        type=_utc_time,
        help="when the deploy started (ISO 8601, e.g. 2026-12-06T19:00:00Z): marker function "
        "errors from then on fail the check, older ones only warn (default: an hour ago)",
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from eodh_jupyterhub.settings import SettingsError, load_settings
    from eodh_jupyterhub.stack_config import StackConfigError, kubernetes_context, pulumi_config

    try:
        settings = load_settings(pulumi_config(args.stack), args.stack)
        context = str(kubernetes_context(args.stack))
        outputs = stack_outputs(args.stack, args.outputs)
    except (SettingsError, StackConfigError) as error:
        print(error, file=sys.stderr)
        return 2
    except Failed as failure:
        print(f"{failure}\n  fix: {failure.fix}", file=sys.stderr)
        return 2
    results = run_checks(
        settings,
        context,
        outputs,
        token=os.environ.get("SMOKE_HUB_TOKEN"),
        server=args.server,
        since=args.since,
    )
    print(report(results), end="")
    return 0 if not failed(results) else 1


if __name__ == "__main__":
    sys.exit(main())
