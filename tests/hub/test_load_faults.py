"""Small versions of `make load`'s scenarios: correctness only, never timing.

One deployment for the module (tests/hub/cluster_hub.py): the real hub with the
production KubeSpawner against the fake Kubernetes API, the chart's proxy as its own
process, its own fake Keycloak. Each test checks what the issue asks of a scenario:
nothing lost, clear errors, recovery without a restart, no orphaned pods, and the hub's
view equal to the API's. bench/load runs the same scenarios at size, with figures.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.hub.cluster_hub import ClusterHub, SpawnOutcome, cluster_hub, users_for
from tests.hub.fake_keycloak import KEYCLOAK_DOWN, FakeKeycloak
from tests.support.fake_kubernetes import ApiFault

pytestmark = pytest.mark.slow

USERS = {**users_for(28, prefix="lf"), "lfnew": ["lf-new"]}
SPAWN_LIMIT = 4


@pytest.fixture(scope="module")
def kc_load():
    kc = FakeKeycloak.for_release(dict(USERS))
    yield kc
    kc.stop()


@pytest.fixture(scope="module")
def hub(kc_load, tmp_path_factory):
    # The production spawn limit (20) and route check (10 s) at a test's size: the same
    # code paths, reached by 6 users and waited on for 2 s (hub_cluster_overrides.py).
    env = {"EODH_TEST_SPAWN_LIMIT": str(SPAWN_LIMIT), "EODH_TEST_ROUTE_CHECK_SECONDS": "2"}
    with cluster_hub(kc_load, tmp_path_factory.mktemp("cluster-hub"), env) as deployed:
        deployed.fake.pod_ready_after = 0.5
        yield deployed


def _spawn(hub: ClusterHub, user: str) -> tuple[requests.Session, object]:
    session = hub.browser_login(user)
    return session, hub.spawn_until_ready(
        session, user, USERS[user][0], retry_after_cap=0.5, deadline=60
    )


def _consistent(hub: ClusterHub) -> set[str]:
    """The hub's ready servers are exactly the API's pods; returns them."""
    servers = hub.running_servers()
    assert {p.removeprefix("jupyter-") for p in hub.pods()} == servers
    return servers


def test_a_burst_over_the_spawn_limit_is_asked_to_try_again_and_nothing_is_lost(hub):
    # The limit lets SPAWN_LIMIT spawns be pending at once (20 in production; `make load`
    # bursts 60 and 200 users into that): that many users press Start, and while their
    # pods start two more press it too.
    burst = [f"lf{i:03d}" for i in range(SPAWN_LIMIT + 2)]
    with ThreadPoolExecutor(len(burst)) as pool:
        sessions = dict(zip(burst, pool.map(hub.browser_login, burst), strict=True))
    hub.fake.pod_ready_after = 1.0

    def press(user: str) -> SpawnOutcome:
        if user in burst[SPAWN_LIMIT:]:
            time.sleep(0.5)
        # A few users on a quiet fake: nobody waits 1.5 s for the pre-spawn refresh (a
        # user taken for dropped presses again, which the assertions below allow).
        return hub.spawn_until_ready(
            sessions[user],
            user,
            USERS[user][0],
            retry_after_cap=0.5,
            deadline=90,
            dropped_after=1.5,
        )

    try:
        with ThreadPoolExecutor(len(burst)) as pool:
            outcomes = list(pool.map(press, burst))
    finally:
        hub.fake.pod_ready_after = 0.5
    assert [(o.user, o.error) for o in outcomes if not o.ok] == []
    # Over the limit, the hub either shows the form again with "Try again in N seconds",
    # or, when the limit is checked after it already sent the user to the progress page,
    # leaves "Server not running" (docs/operations.md); either way pressing again works.
    told = [o.throttle_page for o in outcomes if o.throttled]
    dropped = [o.user for o in outcomes if o.dropped]
    assert told or dropped, "nobody was over the limit: the burst did not test it"
    assert all("Try again in" in page for page in told), told
    assert _consistent(hub) >= set(burst)
    assert hub.fake.refused() == []


def test_servers_survive_a_hub_restart_and_users_stay_logged_in(hub, kc_load):
    users = ["lf022"]
    sessions = {u: _spawn(hub, u)[0] for u in users}
    pods = hub.pods()
    writes = len([c for c in hub.fake.calls if c.resource == "pods" and c.verb != "list"])

    hub.restart_hub()

    for user in users:
        assert hub.reaches_notebook(sessions[user], user)
        home = sessions[user].get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
        assert home.status_code == 200, "logged out by the restart"
    assert hub.pods() == pods
    # Watches again, but no pod created or deleted: nothing re-spawned or orphaned.
    after = [c for c in hub.fake.calls if c.resource == "pods" and c.verb != "list"]
    assert {c.verb for c in after[writes:]} <= {"watch"}
    _consistent(hub)


def test_a_restarted_proxy_gets_every_route_back_from_the_hub(hub):
    users = ["lf024", "lf025"]
    sessions = {u: _spawn(hub, u)[0] for u in users}
    hub.stop_proxy()
    hub.start_proxy()
    # Within the hub's route check (2 s here; 1_configure_jupyterhub.py's production value
    # is held by test_extra_config.py), with room to spare; the chart's own 60 s would
    # leave users cut off for up to a minute.
    deadline = time.monotonic() + 25
    waiting = set(users)
    while waiting and time.monotonic() < deadline:
        waiting = {u for u in waiting if not hub.reaches_notebook(sessions[u], u)}
        time.sleep(0.5)
    assert waiting == set()
    _consistent(hub)


def test_keycloak_down_keeps_sessions_and_servers_and_says_so_at_spawn(hub, kc_load):
    running, idle = "lf026", "lf027"
    running_session, _ = _spawn(hub, running)
    idle_session = hub.browser_login(idle)
    kc_load.outage = KEYCLOAK_DOWN
    try:
        outcome = hub.spawn_until_ready(idle_session, idle, USERS[idle][0], deadline=30)
        assert hub.reaches_notebook(running_session, running)
        home = running_session.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
    finally:
        kc_load.outage = None
    assert not outcome.ok
    assert "Could not get access to workspace 'lf-ws013'" in outcome.error
    assert "the login service is unavailable (HTTP 503)" in outcome.error
    assert home.status_code == 200
    # Back without restarting anything.
    assert hub.spawn_until_ready(idle_session, idle, USERS[idle][0], deadline=30).ok
    _consistent(hub)


def test_kubernetes_api_errors_fail_clearly_then_recover_with_nothing_orphaned(hub):
    user = "lfnew"  # a workspace nobody used yet: its namespace and claim are created
    session = hub.browser_login(user)
    workspace = USERS[user][0]

    # The API server sheds load (429 with Retry-After) and fails (500) for a moment: the
    # spawner waits and retries (6_kubernetes_retries.py) instead of failing the spawn
    # with the client's raw exception.
    hub.fake.faults += [
        ApiFault("create", "namespaces", 503),
        ApiFault("create", "persistentvolumeclaims", 500),
        ApiFault("create", "pods", 429, times=2),
    ]
    retried = hub.spawn_until_ready(session, user, workspace, deadline=30)
    assert retried.ok, retried.error
    assert [(c.verb, c.resource) for c in hub.fake.faulted[-4:]] == [
        ("create", "namespaces"),
        ("create", "persistentvolumeclaims"),
        ("create", "pods"),
        ("create", "pods"),
    ]

    # A watch that expires: the reflector lists again and the next spawn still completes.
    hub.admin("DELETE", f"/users/{user}/server")
    hub.wait_for_server(user, running=False)
    assert hub.kube is not None
    hub.kube.call(hub.fake.expire_watches)
    assert hub.spawn_until_ready(session, user, workspace, deadline=30).ok
    servers = _consistent(hub)
    assert user in servers
    # Namespaces and claims only for workspaces someone started a server in, and each
    # running server's workspace has both.
    namespaces = {n for _, n in hub.fake.objects["namespaces"]}
    claims = {(ns, n) for ns, n in hub.fake.objects["persistentvolumeclaims"]}
    workspaces = {w for ws in USERS.values() for w in ws}
    assert namespaces <= {f"ws-{w}" for w in workspaces}
    assert claims == {(n, f"pvc-{n[3:]}") for n in namespaces}
    assert {f"ws-{USERS[u][0]}" for u in servers} <= namespaces
