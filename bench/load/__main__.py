"""`make load`: the hub and the marker function under load and faults, as figures.

Runs each scenario of issue 20 on 127.0.0.1 against the real parts (bench/load/
hub_scenarios.py, bench/load/marker_scenarios.py) and prints one table. Every scenario
also checks correctness (nothing lost, hub view = API view) and reports FAILED if that
fails; the tests run small versions of the same checks, without timing
(tests/hub/test_load_faults.py; for the marker function tests/lambda/test_events.py's
duplicated, reordered and replayed events and tests/lambda/test_failures.py's throttling).

    make load                        # everything (several minutes)
    make load LOAD_ARGS="burst"      # one or more of: burst restart proxy keycloak
                                     #   kubernetes marker
    LOAD_BURST=60,200 LOAD_SERVERS=100 LOAD_UPLOADS=2000 (defaults; README: what was run)
"""

from __future__ import annotations

import os
import platform
import sys
import time
import warnings

import psutil

SCENARIOS = ("burst", "restart", "proxy", "keycloak", "kubernetes", "marker")


def _ints(name: str, default: str) -> list[int]:
    return [int(v) for v in os.environ.get(name, default).split(",") if v]


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore")
    chosen = [a for a in argv if a in SCENARIOS] or list(SCENARIOS)
    bursts = _ints("LOAD_BURST", "60,200")
    (servers,) = _ints("LOAD_SERVERS", "100")
    # moto's SQS costs ~35 ms an upload here: 10,000 uploads take ~6 min per variant.
    (uploads,) = _ints("LOAD_UPLOADS", "2000")
    rows: list[tuple[str, str]] = []
    memory = psutil.virtual_memory().total / 2**30
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, {memory:.0f} GiB, "
        f"Python {platform.python_version()}"
    )
    print(f"machine: {machine}", file=sys.stderr)
    rows.append(("machine", machine))
    hub_scenarios = [s for s in chosen if s != "marker"]
    if hub_scenarios:
        from tests.hub.cluster_hub import users_for
        from tests.hub.fake_keycloak import FakeKeycloak

        from . import hub_scenarios as hub

        everyone = users_for(max([*bursts, servers, 60]) + 10)
        kc = FakeKeycloak.for_release(everyone)
        names = sorted(everyone)
        printed = len(rows)
        try:
            for scenario in hub_scenarios:
                started = time.monotonic()
                print(f"load: {scenario} ...", file=sys.stderr)
                try:
                    if scenario == "burst":
                        for n in bursts:
                            rows += hub.burst(kc, names[:n])
                    elif scenario == "restart":
                        rows += hub.hub_restart(kc, names[:servers])
                    elif scenario == "proxy":
                        rows += hub.proxy_restart(kc, names[: min(servers, 50)])
                    elif scenario == "keycloak":
                        rows += hub.keycloak_faults(kc, names[:10], names[-3:])
                    elif scenario == "kubernetes":
                        rows += hub.kubernetes_faults(kc, names[:50])
                except Exception as error:  # keep the other scenarios' figures
                    rows.append((f"{scenario}: FAILED", f"{type(error).__name__}: {error}"[:400]))
                for name, value in rows[printed:]:
                    print(f"  {name}: {value}", file=sys.stderr)
                printed = len(rows)
                print(f"load: {scenario} took {time.monotonic() - started:.0f} s", file=sys.stderr)
        finally:
            kc.stop()
    if "marker" in chosen:
        from . import marker_scenarios

        started = time.monotonic()
        print("load: marker ...", file=sys.stderr)
        rows += marker_scenarios.run_all(uploads)
        print(f"load: marker took {time.monotonic() - started:.0f} s", file=sys.stderr)

    width = max(len(name) for name, _ in rows)
    print(f"| {'scenario: measure':<{width}} | value |")
    print(f"| {'-' * width} | ----- |")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
