"""A clone of this repository alone is enough: upstream material is vendored, verbatim, with
its licence and provenance, and nothing reads a folder beside the repository."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from eodh_jupyterhub import schemas
from eodh_jupyterhub.stack_config import PROJECT_ROOT

VENDOR = PROJECT_ROOT / "vendor"
VENDORED_FOLDERS = sorted(p for p in VENDOR.iterdir() if p.is_dir())


def _tracked_files() -> list[str]:
    listing = subprocess.run(
        ["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    return listing.stdout.split()


def _git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_every_schema_the_code_names_is_in_the_repository() -> None:
    names = [*schemas.EXTERNAL_SECRETS_CRDS.values(), schemas.Z2JH_SCHEMA, schemas.Z2JH_DEFAULTS]
    for relative in names:
        assert schemas.schema_path(relative).is_relative_to(PROJECT_ROOT)
    assert (schemas.Z2JH_CHART_DIR / "files" / "hub" / "jupyterhub_config.py").is_file()


def test_nothing_reads_beside_the_repository() -> None:
    outside = re.compile(r"\.\./shared|shared/(schemas|charts)|EODH_SCHEMAS_DIR")
    suffixes = {".py", ".yml", ".yaml", ".toml", ".mjs", ".json"}
    offenders = [
        name
        for name in _tracked_files()
        if not name.startswith("vendor/")
        and name != "tests/program/test_stands_alone.py"
        and (Path(name).suffix in suffixes or Path(name).name in {"Makefile", "run"})
        and outside.search((PROJECT_ROOT / name).read_text(errors="replace"))
    ]
    assert offenders == []


@pytest.mark.parametrize("folder", VENDORED_FOLDERS, ids=lambda p: p.name)
def test_vendored_folder_carries_licence_and_provenance(folder) -> None:
    assert (folder / "LICENSE").read_text().strip()
    source = (folder / "SOURCE.md").read_text()
    assert re.search(r"\b[0-9a-f]{40}\b", source), "SOURCE.md names no upstream commit"


@pytest.mark.parametrize("folder", VENDORED_FOLDERS, ids=lambda p: p.name)
def test_vendored_files_are_the_upstream_blobs_their_source_names(folder) -> None:
    source = (folder / "SOURCE.md").read_text()
    pinned = dict(re.findall(r"`([\w.\-/]+)`[^\n|]*?\|[^\n]*?\b([0-9a-f]{40})\b", source))
    pinned.update(re.findall(r"`([\w.\-/]+)` ([0-9a-f]{40})", source))
    checked = {name: blob for name, blob in pinned.items() if (folder / name).is_file()}
    assert checked, f"{folder.name}/SOURCE.md pins no file by its git blob"
    for name, blob in checked.items():
        assert _git_blob((folder / name).read_bytes()) == blob, f"{folder.name}/{name} changed"
