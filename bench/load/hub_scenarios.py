"""Hub scenarios for `make load`: the real hub as the chart runs it, under load and faults.

Each scenario starts a fresh deployment (tests/hub/cluster_hub.py: the real hub with the
production KubeSpawner, the chart's proxy as its own process, the fake Keycloak and the
fake Kubernetes API enforcing the hub's ClusterRole), drives it as users' browsers do,
checks that nothing was lost, and returns figures as (measure, value) rows.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import psutil
import requests

from tests.hub.cluster_hub import ClusterHub, LoginFailed, SpawnOutcome, cluster_hub, page_error
from tests.hub.fake_keycloak import (
    EXCHANGE_GRANT,
    KEYCLOAK_DOWN,
    KEYCLOAK_REFUSING,
    FakeKeycloak,
)
from tests.support.fake_kubernetes import ApiFault

Row = tuple[str, str]
# A real cluster's API answers in tens of milliseconds; a pod whose image is cached on the
# node is Running a few seconds after it is created.
API_LATENCY = 0.02
POD_READY_AFTER = 3.0


def workspace_of(kc: FakeKeycloak, user: str) -> str:
    return kc.users[user][0]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class HubSampler:
    """The hub process's CPU seconds and peak resident memory while a scenario runs."""

    pid: int
    peak_rss: int = 0
    cpu_seconds: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> HubSampler:
        self._process = psutil.Process(self.pid)
        self._cpu0 = sum(self._process.cpu_times()[:2])
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            self.peak_rss = max(self.peak_rss, self._process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_rss = max(self.peak_rss, self._process.memory_info().rss)
        self.cpu_seconds = sum(self._process.cpu_times()[:2]) - self._cpu0


@contextmanager
def deployment(kc: FakeKeycloak) -> Iterator[ClusterHub]:
    with TemporaryDirectory(prefix="eodh-load-") as tmp, cluster_hub(kc, Path(tmp)) as hub:
        hub.fake.latency = API_LATENCY
        hub.fake.pod_ready_after = POD_READY_AFTER
        kc.requests.clear()
        yield hub


def login_and_spawn(
    hub: ClusterHub, kc: FakeKeycloak, user: str, **spawn: Any
) -> tuple[requests.Session | None, SpawnOutcome]:
    try:
        session = hub.browser_login(user)
    except (LoginFailed, requests.RequestException) as error:
        return None, SpawnOutcome(user, False, 0.0, error=str(error))
    return session, hub.spawn_until_ready(session, user, workspace_of(kc, user), **spawn)


def start_servers(
    hub: ClusterHub, kc: FakeKeycloak, users: list[str]
) -> dict[str, requests.Session]:
    """Set-up, not measured: everyone logged in with a running server."""
    with ThreadPoolExecutor(len(users)) as pool:
        results = list(pool.map(lambda u: login_and_spawn(hub, kc, u, retry_after_cap=1.0), users))
    failed = [o for _, o in results if not o.ok]
    if failed:
        raise AssertionError(f"set-up spawns failed: {failed[:3]}")
    return {o.user: s for s, o in results if s is not None}


def check_consistent(
    hub: ClusterHub,
    expected: set[str],
    *,
    at_least: bool = False,
    named: set[tuple[str, str]] | None = None,
) -> None:
    """The hub's view matches the API's: one pod per ready server, no pod without one; and
    the servers are `expected` users' default servers plus the `named` (user, server)
    ones (or include them: a spawn reported failed may have come up later from the same
    press)."""
    servers = hub.ready_servers()
    pods = hub.pod_servers()
    expected_servers = {(u, "") for u in expected} | (named or set())
    if len(pods) != len(hub.pods()):
        raise AssertionError("two pods for one server")
    if servers != pods or (
        not expected_servers <= servers if at_least else servers != expected_servers
    ):
        raise AssertionError(
            f"hub and API disagree: servers-only {sorted(servers - pods)[:5]}, "
            f"pods-only {sorted(pods - servers)[:5]}, "
            f"missing {sorted(expected_servers - servers)[:5]}, "
            f"unexpected {sorted(servers - expected_servers)[:5]}"
        )


# -- 1. burst -------------------------------------------------------------------------------
# One user in LAUNCH_EVERY follows a Resource Catalogue launch link (a named server, as
# tests/hub/test_launch_url.py and docs/platform-contract.md describe) instead of the form.
LAUNCH_EVERY = 4


def launched_server(index: int) -> str:
    """A server name in the launch service's shape (eodhp-guide parameterised-notebook-
    and-workflow-launch.md: ndvi-notebook_123456)."""
    return f"ndvi-notebook_{100000 + index}"


def burst(kc: FakeKeycloak, users: list[str], spread: float = 10.0) -> list[Row]:
    """Everyone logs in and presses Start, or follows a launch link for a named server
    (one in LAUNCH_EVERY), within `spread` seconds; throttled users wait as the 'try
    again' page asks (Retry-After) and press again. Afterwards users whose server runs
    follow a launch link into that same workspace: refused (409) by design, nothing
    stopped."""
    with deployment(kc) as hub:
        assert hub.process is not None
        logins: list[float] = []
        sessions: dict[str, requests.Session] = {}
        launchers = {u: launched_server(i) for i, u in enumerate(users) if i % LAUNCH_EVERY == 3}

        def user_run(index_user: tuple[int, str]) -> SpawnOutcome:
            index, user = index_user
            time.sleep(index * spread / len(users))
            started = time.monotonic()
            try:
                session = hub.browser_login(user)
            except (LoginFailed, requests.RequestException) as error:
                return SpawnOutcome(user, False, 0.0, error=str(error))
            logins.append(time.monotonic() - started)
            sessions[user] = session
            return hub.spawn_until_ready(
                session, user, workspace_of(kc, user), server=launchers.get(user, "")
            )

        started = time.monotonic()
        with HubSampler(hub.process.pid) as sampler, ThreadPoolExecutor(len(users)) as pool:
            outcomes = list(pool.map(user_run, enumerate(users)))
        wall = time.monotonic() - started
        ok = [o for o in outcomes if o.ok]
        failures = [o for o in outcomes if not o.ok]
        if failures:
            print("burst failures:", failures[:5], file=sys.stderr)
        check_consistent(
            hub,
            {o.user for o in ok if o.user not in launchers},
            named={(o.user, launchers[o.user]) for o in ok if o.user in launchers},
            at_least=True,
        )
        seconds = [o.seconds for o in ok]
        named_seconds = [o.seconds for o in ok if o.user in launchers]
        exchanges = len(kc.grants(EXCHANGE_GRANT))
        refused = second_launches(hub, kc, sessions, [o.user for o in ok][:10])
        n = len(users)
        rows = [
            (f"burst {n}: spawns succeeded / attempted", f"{len(ok)} / {n}"),
            (
                f"burst {n}: of which named servers via a launch link: ok / attempted, "
                "click to notebook p50 / max",
                f"{len(named_seconds)} / {len(launchers)}, "
                + (
                    f"{statistics.median(named_seconds):.1f} / {max(named_seconds):.1f} s"
                    if named_seconds
                    else "-"
                ),
            ),
            (
                f"burst {n}: then a launch link into the workspace whose server runs",
                f"{refused} / {min(10, len(ok))} refused with 409, no server stopped",
            ),
            (
                f"burst {n}: click to notebook p50 / p95 / max",
                f"{statistics.median(seconds):.1f} / {percentile(seconds, 0.95):.1f} / "
                f"{max(seconds):.1f} s",
            ),
            (
                f"burst {n}: users shown 'try again' (429) at least once",
                f"{sum(o.throttled > 0 for o in outcomes)}",
            ),
            (
                f"burst {n}: users left on 'Server not running' with no message",
                f"{sum(o.dropped > 0 for o in outcomes)} (throttled after the redirect; "
                "they press Start again)",
            ),
            (
                f"burst {n}: login p50 / p95",
                f"{statistics.median(logins):.2f} / {percentile(logins, 0.95):.2f} s",
            ),
            (
                f"burst {n}: hub CPU over the run / peak RSS",
                f"{sampler.cpu_seconds:.1f} CPU s in {wall:.0f} s "
                f"({100 * sampler.cpu_seconds / wall:.0f}% of a core) / "
                f"{sampler.peak_rss / 2**20:.0f} MiB",
            ),
            (f"burst {n}: token exchanges per spawn", f"{exchanges / max(1, len(ok)):.2f}"),
        ]
        pages = [o.throttle_page for o in outcomes if o.throttle_page]
        if pages:
            rows.append((f"burst {n}: the 'try again' page says", pages[0]))
        errors = sorted({o.error for o in outcomes if not o.ok})
        if errors:
            rows.append((f"burst {n}: errors", "; ".join(errors)[:300]))
        return rows


def second_launches(
    hub: ClusterHub, kc: FakeKeycloak, sessions: dict[str, requests.Session], users: list[str]
) -> int:
    """Each user follows a launch link for a new named server into the workspace where
    their server runs; the hub refuses it (409) and stops nothing. Returns the refusals."""
    ready = hub.ready_servers()
    pods = hub.pod_servers()
    refused = 0
    for index, user in enumerate(users):
        response = hub.open_launch(
            sessions[user], user, f"second-{launched_server(index)}", workspace_of(kc, user)
        )
        refused += response.status_code == 409
    if hub.ready_servers() != ready or hub.pod_servers() != pods:
        raise AssertionError("a launch link stopped or started a server")
    return refused


# -- 2. hub restart -------------------------------------------------------------------------
def hub_restart(kc: FakeKeycloak, users: list[str]) -> list[Row]:
    with deployment(kc) as hub:
        sessions = start_servers(hub, kc, users)
        creates_before = _pod_writes(hub)
        pods_before = hub.pods()
        # While the hub is down the proxy keeps serving the servers.
        hub.stop_hub()
        during = sum(hub.reaches_notebook(sessions[u], u) for u in users[:20])
        downtime = hub.restart_hub()
        started = time.monotonic()
        unreachable = set(users)
        while unreachable and time.monotonic() - started < 120:
            unreachable = {u for u in unreachable if not hub.reaches_notebook(sessions[u], u)}
        all_back = time.monotonic() - started
        logged_in = sum(
            sessions[u].get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30).status_code
            == 200
            for u in users
        )
        check_consistent(hub, set(users))
        n = len(users)
        return [
            (f"hub restart, {n} servers: hub back after", f"{downtime:.1f} s"),
            (
                f"hub restart, {n} servers: notebooks reachable while the hub was down",
                f"{during} / {min(20, n)} sampled",
            ),
            (
                f"hub restart, {n} servers: reachable through the proxy after",
                f"{n - len(unreachable)} / {n} (checked in {all_back:.1f} s)",
            ),
            (
                f"hub restart, {n} servers: pods created / deleted by the restart",
                f"{_pod_writes(hub)[0] - creates_before[0]} / "
                f"{_pod_writes(hub)[1] - creates_before[1]} (pods unchanged: "
                f"{hub.pods() == pods_before})",
            ),
            (f"hub restart, {n} servers: users still logged in", f"{logged_in} / {n}"),
        ]


def _pod_writes(hub: ClusterHub) -> tuple[int, int]:
    calls = [c for c in hub.fake.calls if c.resource == "pods" and c.allowed]
    return sum(c.verb == "create" for c in calls), sum(c.verb == "delete" for c in calls)


# -- 3. proxy restart -----------------------------------------------------------------------
def proxy_restart(kc: FakeKeycloak, users: list[str]) -> list[Row]:
    with deployment(kc) as hub:
        sessions = start_servers(hub, kc, users)
        hub.stop_proxy()
        restarted = time.monotonic()
        hub.start_proxy()
        back: dict[str, float] = {}
        seen: set[str] = set()
        while len(back) < len(users) and time.monotonic() - restarted < 150:
            for user in users:
                if user in back:
                    continue
                if hub.reaches_notebook(sessions[user], user):
                    back[user] = time.monotonic() - restarted
                elif len(seen) < 3:
                    gap = sessions[user].get(f"{hub.url}/user/{user}/lab", timeout=30)
                    seen.add(f"HTTP {gap.status_code}: {page_error(gap.text)}"[:120])
            time.sleep(0.5)
        check_consistent(hub, set(users))
        cut_off = list(back.values())
        n = len(users)
        return [
            (
                f"proxy restart, {n} servers: routes restored",
                f"{len(back)} / {n}; users cut off p50 {statistics.median(cut_off):.1f} s, "
                f"max {max(cut_off):.1f} s (chart: routes checked every 60 s)",
            ),
            (f"proxy restart, {n} servers: what users see meanwhile", " | ".join(sorted(seen))),
        ]


# -- 4. Keycloak down, slow, refusing ------------------------------------------------------
def keycloak_faults(kc: FakeKeycloak, users: list[str], newcomers: list[str]) -> list[Row]:
    rows: list[Row] = []
    with deployment(kc) as hub:
        sessions = start_servers(hub, kc, users)
        idle = users[-1]
        hub.admin("DELETE", f"/users/{idle}/server")
        hub.wait_for_server(idle, running=False)
        running = set(users[:-1])
        for label, apply in [
            ("down (ingress 503)", lambda: setattr(kc, "outage", KEYCLOAK_DOWN)),
            ("refusing exchanges (403)", lambda: setattr(kc, "outage", KEYCLOAK_REFUSING)),
            ("slow (12 s per answer)", lambda: setattr(kc, "latency", 12.0)),
        ]:
            newcomer = newcomers.pop()
            apply()
            try:
                started = time.monotonic()
                try:
                    hub.browser_login(newcomer)
                    login = "login succeeded"
                except (LoginFailed, requests.RequestException) as error:
                    login = str(error)[:140]
                login_seconds = time.monotonic() - started
                outcome = hub.spawn_until_ready(
                    sessions[idle], idle, workspace_of(kc, idle), deadline=60
                )
                untouched = sum(hub.reaches_notebook(sessions[u], u) for u in running)
            finally:
                kc.outage = None
                kc.latency = 0.0
            recovered = time.monotonic()
            _, retry = login_and_spawn(hub, kc, newcomer)
            recovery = time.monotonic() - recovered
            hub.admin("DELETE", f"/users/{newcomer}/server")
            hub.wait_for_server(newcomer, running=False)
            if outcome.ok:
                hub.admin("DELETE", f"/users/{idle}/server")
                hub.wait_for_server(idle, running=False)
            rows += [
                (f"Keycloak {label}: new login", f"{login} ({login_seconds:.1f} s)"),
                (
                    f"Keycloak {label}: spawn",
                    "succeeded" if outcome.ok else f"{outcome.error} ({outcome.seconds:.1f} s)",
                ),
                (
                    f"Keycloak {label}: running servers untouched",
                    f"{untouched} / {len(running)}",
                ),
                (
                    f"Keycloak {label}: after it recovers, login + spawn (no hub restart)",
                    f"{'ok' if retry.ok else retry.error} in {recovery:.1f} s",
                ),
            ]
        # A spawn that outlived the outage (slow Keycloak) may have finished after all.
        hub.admin("DELETE", f"/users/{idle}/server")
        hub.wait_for_server(idle, running=False)
        check_consistent(hub, running)
    return rows


# -- 5. Kubernetes API errors ---------------------------------------------------------------
KubeFault = Callable[[ClusterHub], None]


def _faults(*faults: ApiFault) -> KubeFault:
    return lambda hub: hub.fake.faults.extend(faults)


def kubernetes_faults(kc: FakeKeycloak, users: list[str]) -> list[Row]:
    rows: list[Row] = []
    size = len(users) // 5
    cases: list[tuple[str, KubeFault]] = [
        ("429 on pod create (x3, Retry-After 1)", _faults(ApiFault("create", "pods", 429, 3))),
        ("500 on pod create (x3)", _faults(ApiFault("create", "pods", 500, 3))),
        (
            "500 on claim create (x3)",
            _faults(ApiFault("create", "persistentvolumeclaims", 500, 3)),
        ),
        ("API 0.5 s per call", lambda hub: setattr(hub.fake, "latency", 0.5)),
        ("watches expire every 2 s", lambda hub: None),
    ]
    with deployment(kc) as hub:
        running: set[str] = set()
        for case, (label, inject) in enumerate(cases):
            group = users[case * size : (case + 1) * size]
            inject(hub)
            stop = threading.Event()
            if label.startswith("watches"):
                threading.Thread(target=_expire_every, args=(hub, 2.0, stop), daemon=True).start()
            try:
                with ThreadPoolExecutor(len(group)) as pool:
                    results = list(
                        pool.map(
                            lambda u: login_and_spawn(hub, kc, u, retry_after_cap=1.0, deadline=90),
                            group,
                        )
                    )
            finally:
                stop.set()
                hub.fake.faults.clear()
                hub.fake.latency = API_LATENCY
            outcomes = [o for _, o in results]
            ok = {o.user for o in outcomes if o.ok}
            running |= ok
            # Failed users press Start again once the API is healthy.
            retried = 0
            for session, outcome in results:
                if not outcome.ok and session is not None:
                    again = hub.spawn_until_ready(
                        session, outcome.user, workspace_of(kc, outcome.user), deadline=60
                    )
                    if again.ok:
                        retried += 1
                        running.add(outcome.user)
            check_consistent(hub, running)
            errors = sorted({o.error for o in outcomes if not o.ok})
            rows.append(
                (
                    f"Kubernetes {label}: spawns ok / failed clearly / ok on retry",
                    f"{len(ok)} / {len(group) - len(ok)} / {retried}"
                    + (f" ({errors[0][:160]})" if errors else ""),
                )
            )
        namespaces = {n for _, n in hub.fake.objects.get("namespaces", {})}
        claims = {n for _, n in hub.fake.objects.get("persistentvolumeclaims", {})}
        workspaces = {workspace_of(kc, u) for u in running}
        rows.append(
            (
                "Kubernetes faults: hub view matches the API afterwards",
                f"{len(running)} servers = {len(hub.pods())} pods; namespaces "
                f"{len(namespaces)} for {len(workspaces)} workspaces, claims {len(claims)}",
            )
        )
    return rows


def _expire_every(hub: ClusterHub, seconds: float, stop: threading.Event) -> None:
    assert hub.kube is not None
    while not stop.wait(seconds):
        hub.kube.call(hub.fake.expire_watches)
