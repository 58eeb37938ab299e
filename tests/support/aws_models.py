"""One parsed copy of the AWS service models per test process.

Every new botocore session parses the service models' JSON again (S3's, IAM's, the
endpoints), and tests make many: moto resets boto3's default session for each mocked
test, and fixtures build sessions with their own keys. The loader only reads the
models that ship with botocore and boto3, and caches what it parsed per instance, so one
loader per data path can serve every session in the process.
"""

from __future__ import annotations

import functools
from typing import Any

import botocore.loaders
import botocore.session


class _SearchPathsOnce(list):
    """boto3 appends its own data folder to the loader of each session it wraps."""

    def append(self, path: Any) -> None:
        if path not in self:
            super().append(path)


@functools.cache
def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    loader = botocore.loaders.create_loader(search_path_string)
    loader._search_paths = _SearchPathsOnce(loader.search_paths)
    return loader


def share_service_models() -> None:
    """Make every botocore session in this process use one loader (idempotent)."""
    botocore.session.create_loader = _shared_loader
