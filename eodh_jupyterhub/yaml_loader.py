"""PyYAML's safe loading through libyaml when this PyYAML was built with it.

`make check` and the tests parse every rendered object and the External Secrets CRDs
(several MB): the pure-Python parser was most of `make check`'s time. CSafeLoader builds
the same objects (PyYAML's own resolver and SafeConstructor over libyaml's parser); PyPI's
PyYAML wheels include libyaml, and without it the pure-Python loader is used unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    return yaml.load(text, Loader=SafeLoader)


def safe_load_all(text: str) -> Iterator[Any]:
    return yaml.load_all(text, Loader=SafeLoader)
