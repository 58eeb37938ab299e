"""The marker function under load and faults, in moto (tests/lambda/harness.py's world).

Uploads (10,000 asked; LOAD_UPLOADS; the README says what was measured) arrive in
bursts (moto delivers their S3 events through SQS); after each
burst the events are handed to the function as Lambda's asynchronous invocation does
(three attempts, then the on-failure destination). Variants: no faults (S3 requests
against the floor), S3 throttling (503 SlowDown) brief and lasting, EventBridge's
duplicate and out-of-order delivery, and reserved-concurrency throttling (Lambda keeps a
throttled asynchronous event and retries it later; it never counts as an attempt).
Every variant checks that every directory is marked in the end and that the failure
queue holds exactly the events whose markers could not be made.

The handler's in-place retry pauses (WALK_RETRY_DELAYS) are skipped: they only space
requests out in time, and the bench counts requests, not seconds.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import s3keep_bench

harness = s3keep_bench.harness
Row = tuple[str, str]
SEED = 20261206
BURST = 500
SLOW_DOWN = harness.Fault(503, "SlowDown")


def upload_tree(rng: random.Random, files: int) -> list[str]:
    """`files` object keys at depth 1 to 6 over 20 workspaces, about one new directory
    per five files (training material, outputs, scenes)."""
    workspaces = [f"ws-{i:02d}" for i in range(20)]
    directories = list(workspaces)
    while len(directories) < files // 5:
        parent = rng.choice(directories)
        if parent.count("/") < 5:
            directories.append(f"{parent}/{rng.choice(s3keep_bench.DIR_NAMES)}")
    keys: set[str] = set()
    while len(keys) < files:
        directory = rng.choice(directories[len(workspaces) :])
        keys.add(f"{directory}/{rng.randrange(1000):03d}-{rng.choice(s3keep_bench.FILE_NAMES)}")
    ordered = sorted(keys)
    rng.shuffle(ordered)
    return ordered


def _as_eventbridge(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same objects as EventBridge "Object Created" events, one per object; the rule
    leaves marker keys out (infrastructure: components/marker_function.py)."""
    converted = []
    for event in events:
        for record in event["Records"]:
            if not record["s3"]["object"]["key"].endswith(harness.MARKER):
                converted.append(harness.eventbridge_event(record))
    return converted


def _object_keys(event: Mapping[str, Any]) -> list[str]:
    from urllib.parse import unquote_plus

    if "Records" in event:
        return [unquote_plus(r["s3"]["object"]["key"]) for r in event["Records"]]
    return [unquote_plus(event["detail"]["object"]["key"])]


def run_variant(
    label: str,
    keys: list[str],
    *,
    containers: int = 4,
    reorder: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
    fault_plan: Callable[[set[str]], dict[str, list[Any]]] | None = None,
    reserved: int | None = None,
    eventbridge: bool = False,
) -> dict[str, Any]:
    module = harness.load_handler()
    module._sleep = lambda seconds: None
    rng = random.Random(SEED)
    with harness.moto_world() as world:
        client = harness.function_client(world, module)
        requests = harness.RequestLog(client, limit=None)
        store = module.MarkerStore(client)
        functions = [
            module.MarkerFunction(
                store, harness.MARKER, function_name=harness.FUNCTION_NAME, role_id=world.role_id
            )
            for _ in range(containers)
        ]

        def handle(event: Mapping[str, Any]) -> Any:
            if eventbridge and "Records" in event:
                return [rng.choice(functions).handle(e) for e in _as_eventbridge([dict(event)])]
            return rng.choice(functions).handle(event)

        required = harness.required_markers(keys)
        plan = fault_plan(required) if fault_plan else {}
        injected = sum(len(v) for v in plan.values())
        stats = harness.Drained()
        throttled = 0
        backlog: list[dict[str, Any]] = []
        started = time.monotonic()
        with harness.faulty_puts(plan):
            for start in range(0, len(keys), BURST):
                for key in keys[start : start + BURST]:
                    world.put(key)
                if reserved is None:
                    batch = harness.drain(world, handle, max_events=20 * BURST, reorder=reorder)
                    stats.events += batch.events
                    stats.invocations += batch.invocations
                    stats.failed_events += batch.failed_events
                    continue
                # Reserved concurrency: a round runs `reserved` invocations at once; the
                # rest are throttled and Lambda's queue offers them again later.
                while True:
                    queued = [e for e in world.receive_all() if "Records" in e]
                    backlog += [{"Records": [r]} for e in queued for r in e["Records"]]
                    if not backlog:
                        break
                    now, backlog = backlog[:reserved], backlog[reserved:]
                    throttled += len(backlog)
                    for event in now:
                        stats.events += 1
                        harness.invoke_async(handle, event, stats)
        seconds = time.monotonic() - started
        present = world.markers()
        missing = required - present
        # Nothing lost: every missing marker belongs to an event in the failure queue. A
        # queued event may have been done meanwhile by a later event in the same directory
        # (the queue records failed invocations, not missing work): counted, and the
        # replay of it costs one 412 per marker.
        queued_need = {
            m
            for event in stats.failed_events
            for m in harness.required_markers(_object_keys(event))
        }
        unexplained = missing - queued_need
        done_but_queued = [
            e for e in stats.failed_events if harness.required_markers(_object_keys(e)) <= present
        ]
        if unexplained:
            raise AssertionError(f"{label}: {len(unexplained)} markers missing, no event queued")
        # Replaying the failure queue once S3 is healthy finishes the job.
        for event in stats.failed_events:
            handle(event)
        harness.drain(world, handle, max_events=20 * BURST)
        if world.markers() != required:
            raise AssertionError(f"{label}: markers still missing after the replay")
    floor = len(keys) + len(required)
    return {
        "label": label,
        "requests": len(requests),
        "floor": floor,
        "failed": len(stats.failed_events),
        "missing": len(missing),
        "done_meanwhile": len(done_but_queued),
        "faults": injected,
        "throttled": throttled,
        "seconds": seconds,
        "events": stats.events,
    }


def _slow_down(share: float, repeats: int) -> Callable[[set[str]], dict[str, list[Any]]]:
    def plan(required: set[str]) -> dict[str, list[Any]]:
        rng = random.Random(SEED + repeats)
        chosen = rng.sample(sorted(required), k=max(1, int(share * len(required))))
        return {key: [SLOW_DOWN] * repeats for key in chosen}

    return plan


def _duplicated_shuffled(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At-least-once and unordered: every object's event twice, in any order."""
    delivered = [{"Records": [r]} for e in events for r in e["Records"]] * 2
    random.Random(SEED).shuffle(delivered)
    return delivered


def run_all(uploads: int) -> list[Row]:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=harness.REGION,
        AWS_REGION=harness.REGION,
        LOG_LEVEL="CRITICAL",
    )
    keys = upload_tree(random.Random(SEED), uploads)
    n = len(keys)
    variants = [
        run_variant(f"{n} uploads, no faults", keys),
        run_variant(
            f"{n} uploads, 503 SlowDown on 5% of markers (once)",
            keys,
            fault_plan=_slow_down(0.05, 1),
        ),
        run_variant(
            f"{n} uploads, 503 SlowDown lasting (9 in a row) on 0.5% of markers",
            keys,
            fault_plan=_slow_down(0.005, 9),
        ),
        run_variant(
            f"{n} uploads, EventBridge: every event twice, shuffled",
            keys,
            reorder=_duplicated_shuffled,
            eventbridge=True,
        ),
        run_variant(f"{n} uploads, reserved concurrency 10 (throttled)", keys, reserved=10),
    ]
    rows: list[Row] = []
    for v in variants:
        rows.append(
            (
                f"marker, {v['label']}: S3 requests / floor",
                f"{v['requests']} / {v['floor']} = {v['requests'] / v['floor']:.3f} "
                f"({v['faults']} injected faults, {v['throttled']} throttled offers, "
                f"{v['seconds']:.0f} s)",
            )
        )
        rows.append(
            (
                f"marker, {v['label']}: failure queue / markers missing before replay",
                f"{v['failed']} / {v['missing']} ({v['done_meanwhile']} queued events done "
                "meanwhile by a later upload; all marked after the replay)",
            )
        )
    return rows
