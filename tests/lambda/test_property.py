"""For any uploads, in any order, with duplicates: every directory ends up marked."""

from __future__ import annotations

import importlib
import itertools
import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from moto import mock_aws

pytestmark = pytest.mark.slow

harness = importlib.import_module("tests.lambda.harness")

# Few distinct names, so that uploads share directories and race for the same markers.
segment = st.sampled_from(["a", "b", "c d", "e+f", "g%20", "ü", "日本", ".s3keep"])
workspace = st.sampled_from(["ws1", "ws2"])


@st.composite
def object_keys(draw: st.DrawFn) -> str:
    directories = draw(st.lists(segment.filter(lambda s: s != ".s3keep"), max_size=6))
    last = draw(st.one_of(segment, st.just("")))  # "" makes a trailing-slash folder key
    return "/".join([draw(workspace), *directories, last])


BUCKETS = itertools.count()


@pytest.fixture
def moto_session() -> Iterator[None]:
    with harness.requester_identities(), mock_aws():
        yield


def tree_depth(keys: set[str]) -> int:
    return max([len(key.split("/")) - 1 for key in keys] + [1])


@settings(
    # Each example is a fresh bucket driven through moto, about 0.3 s. A CI run starts
    # from no example database, so every run draws a new 30; failures shrink as ever.
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    keys=st.sets(object_keys(), min_size=1, max_size=25),
    seed=st.integers(0, 2**16),
)
# The hardest trees the strategy can draw, pinned so that every run has them whatever its
# 30 draws: six levels of the awkward segments, users' own markers at several depths (one
# in a directory of its own), a folder object, and sibling workspaces sharing names.
@example(
    keys={
        "ws1/a/c d/e+f/g%20/ü/日本/x",
        "ws1/a/c d/e+f/g%20/ü/日本/",
        "ws1/a/c d/.s3keep",
        "ws1/b/.s3keep",
        "ws2/a/c d/e+f/x",
        "ws2/.s3keep",
        "ws2/日本/ü/",
    },
    seed=7,
)
def test_drained_bucket_marks_every_directory_and_nothing_else(
    handler_module: Any, moto_session: Any, keys: set[str], seed: int
) -> None:
    rng = random.Random(seed)

    def shuffle_and_duplicate(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        events = events + rng.sample(events, k=rng.randint(0, len(events)))
        rng.shuffle(events)
        return events

    # A fresh bucket and queue per example; starting moto per example costs 0.7 s.
    world = harness.make_world(bucket=f"property-{next(BUCKETS)}")
    fn, requests = harness.function_under_test(world, handler_module)
    for key in sorted(keys, key=lambda _: rng.random()):
        world.put(key)
    # 25 keys, each with its markers, some twice: more than this is a runaway chain.
    stats = harness.drain(world, fn.handle, reorder=shuffle_and_duplicate, max_events=400)

    uploaded_markers = {k for k in keys if k.rsplit("/", 1)[-1] == harness.MARKER}
    required = harness.required_markers(keys)
    markers = world.markers()
    assert required <= markers, "a directory was left without a marker"
    assert markers <= required | uploaded_markers, "a marker outside the objects' paths"
    assert world.all_keys() == keys | required
    assert stats.rounds <= tree_depth(keys)
    assert stats.failed_events == []
    # Each event costs at most one request beyond the markers it creates.
    created = len(markers - uploaded_markers)
    assert len(requests) <= stats.events + created
