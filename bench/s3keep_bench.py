"""How many S3 requests the .s3keep function makes, against the floor and a naive handler.

Uploads a realistic workspace tree to moto (S3 events delivered through SQS), drains the
queue through each handler until no new event arrives, and prints one table row per
handler. The floor is one request per uploaded object plus one per directory that had no
marker: the least any handler can do without knowing the bucket in advance.

Run: uv run python bench/s3keep_bench.py
"""

from __future__ import annotations

import importlib.util
import os
import random
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[1]
SEED = 20240820
WORKSPACES = ["ws-alpha", "ws-beta", "ws-gamma", "ws-delta", "ws-epsilon"]
TARGET_DIRECTORIES = 300
TARGET_FILES = 1000
UPLOAD_BATCH = 50
MAX_FILE_DEPTH = 6  # path segments below the workspace, file name included
DIR_NAMES = [
    "data", "outputs", "inputs", "notebooks", "scenes", "2024-06", "2024-07", "sentinel-2",
    "landsat 8", "tiles", "ndvi", "cog", "stac", "run+1", "ünïcode", "cache", "plots", "eval",
]  # fmt: skip
FILE_NAMES = [
    "B04.tif", "B08.tif", "ndvi.tif", "item.json", "catalog.json", "README.md",
    "analysis.ipynb", "result 1.csv", "log+debug.txt", "preview.png", "50%.json",
]  # fmt: skip


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


harness = _load("s3keep_harness", REPO / "tests" / "lambda" / "harness.py")


def realistic_tree(rng: random.Random) -> list[str]:
    """About 1,000 files at depth 1 to 6 in a few hundred directories, over five
    workspaces, plus a few directories made empty in Jupyter (s3contents' own marker)."""
    directories: list[tuple[str, int]] = [(ws, 0) for ws in WORKSPACES]
    made: set[str] = set()
    while len(made) < TARGET_DIRECTORIES:
        parent, depth = rng.choice(directories)
        if depth >= MAX_FILE_DEPTH - 1:
            continue
        child = f"{parent}/{rng.choice(DIR_NAMES)}"
        if child not in made:
            made.add(child)
            directories.append((child, depth + 1))
    keys: set[str] = set()
    while len(keys) < TARGET_FILES:
        directory, _ = rng.choice(directories)
        keys.add(f"{directory}/{rng.randrange(100):02d}-{rng.choice(FILE_NAMES)}")
    # New folders made in Jupyter: s3contents writes just their marker, parents not included.
    shallow = [d for d, depth in directories[len(WORKSPACES) :] if depth <= MAX_FILE_DEPTH - 2]
    for parent in rng.sample(shallow, k=10):
        keys.add(f"{parent}/Untitled Folder/.s3keep")
    ordered = sorted(keys)
    rng.shuffle(ordered)
    return ordered


class NaiveFunction:
    """The obvious handler: check every ancestor, write the ones that are missing."""

    def __init__(self, client: Any, module: ModuleType) -> None:
        self.client = client
        self.module = module

    def handle(self, event: Mapping[str, Any]) -> None:
        for record in event.get("Records", []):
            if not record["eventName"].startswith("ObjectCreated:"):
                continue
            bucket = record["s3"]["bucket"]["name"]
            key = unquote_plus(record["s3"]["object"]["key"])
            for directory in self.module.directories_to_mark(key, harness.MARKER):
                marker = directory + harness.MARKER
                try:
                    self.client.head_object(Bucket=bucket, Key=marker)
                except ClientError as error:
                    if error.response["ResponseMetadata"]["HTTPStatusCode"] != 404:
                        raise
                    self.client.put_object(Bucket=bucket, Key=marker, Body=b"")


def spread(functions: list[Any], rng: random.Random) -> Callable[[Mapping[str, Any]], Any]:
    """Lambda hands each event to any warm container: model that with a random pick."""
    return lambda event: rng.choice(functions).handle(event)


def run(label: str, keys: list[str], variant: str) -> dict[str, Any]:
    module = harness.load_handler()
    with harness.moto_world() as world:
        handle: Callable[[Mapping[str, Any]], Any]
        client = harness.function_client(world, module)
        requests = harness.RequestLog(client, limit=None)
        if variant == "naive":
            handle = NaiveFunction(client, module).handle
        else:
            # Containers share nothing but the function's identity, as on Lambda.
            containers = int(variant)
            store = module.MarkerStore(client)
            functions = [
                module.MarkerFunction(
                    store,
                    harness.MARKER,
                    function_name=harness.FUNCTION_NAME,
                    role_id=world.role_id,
                )
                for _ in range(containers)
            ]
            handle = spread(functions, random.Random(SEED))
        # Lambda works while an upload is still running; draining per batch also keeps
        # moto's queue short (its SQS bookkeeping is quadratic in the queue length).
        stats = harness.Drained()
        for start in range(0, len(keys), UPLOAD_BATCH):
            for key in keys[start : start + UPLOAD_BATCH]:
                world.put(key, b"" if key.endswith(harness.MARKER) else b"x")
            batch = harness.drain(world, handle)
            stats.rounds = max(stats.rounds, batch.rounds)
            stats.events += batch.events
            stats.failed_events += batch.failed_events
        uploaded_markers = {k for k in keys if k.endswith("/" + harness.MARKER)}
        required = harness.required_markers(keys)
        assert world.markers() == required | uploaded_markers, f"{label}: wrong markers"
        assert not stats.failed_events, f"{label}: events failed"
        new_directories = len(required - uploaded_markers)
    floor = len(keys) + new_directories
    return {
        "label": label,
        "requests": len(requests),
        "floor": floor,
        "ratio": len(requests) / floor,
        "events": stats.events,
        "rounds": stats.rounds,
        "objects": len(keys),
        "new_directories": new_directories,
    }


def main() -> int:
    # moto intercepts everything; these only keep botocore from looking for real ones.
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=harness.REGION,
        AWS_REGION=harness.REGION,
    )
    os.environ["LOG_LEVEL"] = "WARNING"  # the handler's per-event INFO lines would drown the table
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(name, None)
    keys = realistic_tree(random.Random(SEED))
    rows = [
        run("s3keep, 1 container", keys, "1"),
        run("s3keep, 4 concurrent containers", keys, "4"),
        run("naive: HEAD every ancestor, PUT if missing", keys, "naive"),
    ]
    first = rows[0]
    depths = [len(k.split("/")) - 1 for k in keys]
    print(
        f"tree: {first['objects']} uploaded objects (depth {min(depths)} to {max(depths)}, "
        f"{sum(k.endswith('/.s3keep') for k in keys)} of them s3contents markers), "
        f"{first['new_directories']} directories without a marker, {len(WORKSPACES)} workspaces"
    )
    print(f"floor = objects + new directories = {first['floor']}\n")
    header = (
        f"{'handler':<50} {'requests':>8} {'floor':>6} {'ratio':>6} {'events':>7} {'rounds':>6}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['label']:<50} {row['requests']:>8} {row['floor']:>6} "
            f"{row['ratio']:>6.2f} {row['events']:>7} {row['rounds']:>6}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
