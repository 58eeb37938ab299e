"""Shared fixtures: every stack file on disk is run under mocks, normally and as a preview."""

from __future__ import annotations

import gc
import warnings

import pytest

from eodh_jupyterhub.offline import Recording
from tests.support.aws_models import share_service_models
from tests.support.recordings import recording_for
from tests.support.stacks import stack_names

# pulumi_aws warns about its own deprecated modules at import; nothing here uses them.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulumi_aws(\..*)?")

STACKS = stack_names()
share_service_models()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Test files that start real processes run first.

    Workers take one file at a time (`--dist loadfile --no-loadscope-reorder`, Makefile):
    a file of one 15-second test taken last keeps the other worker idle while it runs,
    which is most of what two workers lose against an even split. The order within a file,
    and between files of one kind, is unchanged.
    """
    first_index: dict[object, int] = {}
    slow_files = set()
    for index, item in enumerate(items):
        first_index.setdefault(item.path, index)
        if item.get_closest_marker("slow") is not None:
            slow_files.add(item.path)
    items.sort(key=lambda item: (item.path not in slow_files, first_index[item.path]))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Less of the run in Python's cyclic garbage collector.

    A worker holds half a million objects (the AWS provider's modules, recordings, moto's
    backends), and each full collection walks them all: measured over tests/program and
    tests/aws in one process, 56 full collections took 10 s of a 47 s run. What collection
    built lives as long as the run, so it is moved out of the collector's sight
    (gc.freeze), and young objects are collected every 10,000 allocations instead of 700,
    which makes full collections rarer (17, 2.6 s, same peak memory). Nothing a test
    checks depends on when cyclic garbage is freed.
    """
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "stack" in metafunc.fixturenames:
        metafunc.parametrize("stack", STACKS)
    if "mode" in metafunc.fixturenames:
        metafunc.parametrize("mode", ["up", "preview"])


@pytest.fixture
def recording(stack: str, mode: str) -> Recording:
    return recording_for(stack, preview=(mode == "preview"))


@pytest.fixture
def up_recording(stack: str) -> Recording:
    return recording_for(stack, preview=False)
