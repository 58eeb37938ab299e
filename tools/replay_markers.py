"""Finish the marker function's unfinished work: drain its failure queue, create every marker.

    uv run --frozen python -m tools.replay_markers \
        --queue-url "$(pulumi stack output markerFailureQueueUrl --stack <org>/<env>)"
    uv run --frozen python -m tools.replay_markers --bucket <bucket> --marker ws1/a/.s3keep ...

The queue holds two kinds of message (lambda/s3keep/handler.py `markers_to_replay`): the
function's own record of a walk cut short (the markers it left), and Lambda's on-failure
record of an event whose retries were exhausted (every directory of its objects is due). Each
marker is created only if absent (`If-None-Match: *`), never overwritten, so a replay can be
run again; a message is deleted only once all its markers exist. `--marker` replays the
markers an ERROR line of the function names (`unmarked`, or `markers` when even the queue
failed). Runs with your AWS credentials: they need sqs:ReceiveMessage and sqs:DeleteMessage
on the queue and s3:PutObject on the markers.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HANDLER = ROOT / "lambda" / "s3keep" / "handler.py"


def load_handler() -> ModuleType:
    """The function's own module (by path: `lambda` is a keyword, not importable)."""
    name = "s3keep_handler"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HANDLER)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def drain_queue(sqs: Any, queue_url: str, store: Any, platform_prefixes: frozenset[str]) -> int:
    """Replays every message; returns how many could not be finished (left in the queue).

    A message that cannot be read or replayed (a poison event the function refused as
    malformed: its on-failure record has no `s3.object`) is left, named with why, and the
    drain goes on with the rest: one bad message must not block every later replay.
    """
    handler = load_handler()
    left: set[str] = set()
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300, WaitTimeSeconds=1
        ).get("Messages", [])
        # A message left earlier comes back once its visibility timeout ends: stop there
        # rather than spin on it.
        fresh = [m for m in messages if m["MessageId"] not in left]
        if not fresh:
            return len(left)
        for message in fresh:
            try:
                pairs = handler.markers_to_replay(
                    json.loads(message["Body"]), platform_prefixes=platform_prefixes
                )
                created = handler.replay(store, pairs)
            except Exception as error:
                left.add(message["MessageId"])
                print(
                    f"left in the queue: {message['MessageId']}: {type(error).__name__}: {error}",
                    file=sys.stderr,
                )
                continue
            print(f"{message['MessageId']}: {len(pairs)} markers, {len(created)} created")
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def main(argv: list[str] | None = None, session: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--queue-url", help="the stack output markerFailureQueueUrl")
    source.add_argument("--bucket", help="with --marker: markers named by a log line")
    parser.add_argument("--marker", action="append", default=[], help="a marker key to create")
    parser.add_argument("--region", default="eu-west-2")
    args = parser.parse_args(argv)
    if args.bucket and not args.marker:
        parser.error("--bucket needs at least one --marker")
    import boto3

    from components.marker_function import PLATFORM_PREFIXES

    session = session or boto3.Session(region_name=args.region)
    handler = load_handler()
    store = handler.MarkerStore(session.client("s3", config=handler.CLIENT_CONFIG))
    if args.bucket:
        created = handler.replay(store, [(args.bucket, key) for key in args.marker])
        print(f"{len(args.marker)} markers, {len(created)} created")
        return 0
    left = drain_queue(session.client("sqs"), args.queue_url, store, frozenset(PLATFORM_PREFIXES))
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
