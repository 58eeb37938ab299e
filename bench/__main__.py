"""`make bench`: the program's performance figures, printed as one table.

Measured here, never asserted in tests: import time (fresh interpreter), the median time
of one mocked program run per stack (warm), the time to render all five stacks (fresh
interpreter, as `make render STACK=all` pays it), determinism (files that differ between
two full renders: must be 0) and the marker function's S3 requests per event against the
floor (bench/s3keep_bench.py has the full comparison).
"""

from __future__ import annotations

import filecmp
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS_PER_STACK = 7
IMPORT_SAMPLES = 3


def _fresh_seconds(code: str) -> float:
    """Wall time of `code` in a new interpreter, measured inside it (no start-up noise)."""
    output = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(output.strip().splitlines()[-1])


def import_seconds() -> float:
    code = (
        "import time; t = time.perf_counter(); "
        "import eodh_jupyterhub.program, eodh_jupyterhub.offline; "
        "print(time.perf_counter() - t)"
    )
    return statistics.median(_fresh_seconds(code) for _ in range(IMPORT_SAMPLES))


def median_run_seconds() -> dict[str, float]:
    from eodh_jupyterhub.offline import run_stack
    from eodh_jupyterhub.stack_config import stack_names

    for stack in stack_names():
        run_stack(stack)  # warm-up: lazy imports and first-run caches
    medians = {}
    for stack in stack_names():
        samples = []
        for _ in range(RUNS_PER_STACK):
            started = time.perf_counter()
            run_stack(stack)
            samples.append(time.perf_counter() - started)
        medians[stack] = statistics.median(samples)
    return medians


def render_all_seconds(out: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "tools.render", "all", "--out", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def differing_files(a: Path, b: Path) -> int:
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    differ = len(files_a ^ files_b)
    for relative in files_a & files_b:
        if not filecmp.cmp(a / relative, b / relative, shallow=False):
            differ += 1
    return differ


def marker_rows() -> list[tuple[str, str]]:
    sys.path.insert(0, str(ROOT / "bench"))
    import random

    import s3keep_bench

    os.environ["LOG_LEVEL"] = "WARNING"
    keys = s3keep_bench.realistic_tree(random.Random(s3keep_bench.SEED))
    rows = []
    for label, variant in [
        ("marker function, 1 container", "1"),
        ("marker function, 4 concurrent containers", "4"),
        ("naive marker handler", "naive"),
    ]:
        row = s3keep_bench.run(label, keys, variant)
        rows.append(
            (
                f"{label}: S3 requests / floor",
                f"{row['requests']} / {row['floor']} = {row['ratio']:.3f}",
            )
        )
    return rows


def main() -> int:
    warnings.filterwarnings("ignore")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, "
        f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')}",
        file=sys.stderr,
    )
    rows: list[tuple[str, str]] = []
    print("bench: import time ...", file=sys.stderr)
    rows.append(("import time (fresh interpreter, median of 3)", f"{import_seconds():.2f} s"))
    print("bench: mocked program runs ...", file=sys.stderr)
    for stack, seconds in median_run_seconds().items():
        rows.append(
            (f"one mocked run, {stack} (median of {RUNS_PER_STACK})", f"{seconds * 1000:.0f} ms")
        )
    with tempfile.TemporaryDirectory() as tmp:
        print("bench: rendering all stacks twice ...", file=sys.stderr)
        first = render_all_seconds(Path(tmp) / "a")
        second = render_all_seconds(Path(tmp) / "b")
        rows.append(("render all five stacks (fresh interpreter)", f"{min(first, second):.2f} s"))
        rows.append(
            (
                "determinism: files differing between two renders",
                str(differing_files(Path(tmp) / "a", Path(tmp) / "b")),
            )
        )
    print("bench: marker function against moto ...", file=sys.stderr)
    rows += marker_rows()

    width = max(len(name) for name, _ in rows)
    print(f"| {'measure':<{width}} | value |")
    print(f"| {'-' * width} | ----- |")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
