"""Upstream schemas for tests: a missing schema skips locally with the reason and fails under
CI (CI=true), where a skip would hide that nothing was validated."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from eodh_jupyterhub import schemas

T = TypeVar("T")


def _required(load: Callable[..., T]) -> Callable[..., T]:
    def wrapper(*args: Any) -> T:
        try:
            return load(*args)
        except schemas.SchemaMissing as missing:
            if os.environ.get("CI"):
                pytest.fail(str(missing))
            pytest.skip(str(missing))

    return wrapper


require_schema = _required(schemas.schema_path)
external_secrets_schema = _required(schemas.external_secrets_schema)
z2jh_values_schema = _required(schemas.z2jh_values_schema)
z2jh_default_values = _required(schemas.z2jh_default_values)
z2jh_validation_errors = _required(schemas.z2jh_validation_errors)
