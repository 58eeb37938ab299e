"""Which directories a key needs markers for: the pure core of the handler."""

from __future__ import annotations

import itertools
from types import ModuleType

import pytest


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("ws1/a/b/c.txt", ["ws1/a/b/", "ws1/a/"]),
        ("ws1/a/c.txt", ["ws1/a/"]),
        # The workspace root's own marker is s3contents' business, never the bucket root.
        ("ws1/c.txt", []),
        ("ws1/", []),
        ("ws1/.s3keep", []),
        ("ws1", []),
        (".s3keep", []),
        ("/.s3keep", []),
        ("/a/b/c.txt", []),
        # A marker made by someone else needs its ancestors, not itself.
        ("ws1/a/.s3keep", []),
        ("ws1/a/b/.s3keep", ["ws1/a/"]),
        # A console "folder" object is a directory: it is marked itself.
        ("ws1/a/b/", ["ws1/a/b/", "ws1/a/"]),
        # Jupyter cannot address an empty segment: climb only below it.
        ("ws1/a//b/c.txt", ["ws1/a/"]),
        ("ws1//b/c.txt", []),
        ("ws1/a b/+/%/ü/f", ["ws1/a b/+/%/ü/", "ws1/a b/+/%/", "ws1/a b/+/", "ws1/a b/"]),
        # Only the last segment being the marker name makes a key a marker.
        ("ws1/.s3keep/f", ["ws1/.s3keep/"]),
        ("ws1/a/.s3keepx", ["ws1/a/"]),
    ],
)
def test_directories_to_mark(handler_module: ModuleType, key: str, expected: list[str]) -> None:
    assert handler_module.directories_to_mark(key, ".s3keep") == expected


def test_forty_levels_deepest_first(handler_module: ModuleType) -> None:
    segments = [f"d{i}" for i in range(40)]
    directories = handler_module.directories_to_mark("ws/" + "/".join(segments) + "/f.txt")
    assert len(directories) == 40
    assert directories[0] == "ws/" + "/".join(segments) + "/"
    assert directories[-1] == "ws/d0/"
    assert all(len(a) > len(b) for a, b in itertools.pairwise(directories))


def test_marker_name_is_configurable(handler_module: ModuleType) -> None:
    assert handler_module.directories_to_mark("ws/a/b/.keep", ".keep") == ["ws/a/"]
    assert handler_module.directories_to_mark("ws/a/b/.s3keep", ".keep") == ["ws/a/b/", "ws/a/"]


@pytest.mark.parametrize("name", ["", "a/b", "/"])
def test_marker_name_must_be_a_file_name(handler_module: ModuleType, name: str) -> None:
    with pytest.raises(ValueError, match="MARKER_NAME"):
        handler_module.MarkerFunction(store=None, marker_name=name)
