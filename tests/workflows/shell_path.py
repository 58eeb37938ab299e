"""A PATH of only the named tools, for running the CI scripts under shims."""

from __future__ import annotations

import shutil
from pathlib import Path


def bin_with(tmp_path: Path, tools: tuple[str, ...]) -> Path:
    """tmp_path/bin holding a link to this machine's copy of each tool (shims go beside them)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        found = shutil.which(tool)
        assert found, f"{tool} is not on this machine"
        (bin_dir / tool).symlink_to(found)
    return bin_dir
