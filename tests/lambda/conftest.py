from __future__ import annotations

import importlib
import itertools
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

import botocore.endpoint
import pytest

harness = importlib.import_module("tests.lambda.harness")


@pytest.fixture(scope="session")
def handler_module() -> ModuleType:
    return harness.load_handler()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Never let a test reach a real account, whatever the developer's shell holds.
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", harness.REGION)
    monkeypatch.setenv("AWS_REGION", harness.REGION)


@pytest.fixture(autouse=True)
def no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore sleeps between its own retries; the attempts still happen and are counted.
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=lambda _s: None))


@pytest.fixture(autouse=True)
def no_walk_retry_sleep(monkeypatch: pytest.MonkeyPatch, handler_module: ModuleType) -> None:
    # The handler's own pause before finishing a cut-short walk; the attempts still count.
    monkeypatch.setattr(handler_module, "_sleep", lambda _s: None)


@pytest.fixture(scope="module")
def moto_account() -> Iterator[None]:
    """One moto account per test module: starting moto costs most of a second. Each test
    gets a world of its own in it (bucket, queue, role and user all named after a fresh
    bucket name), so no test sees another's objects, events or principals."""
    from moto import mock_aws

    with harness.requester_identities(), mock_aws():
        yield


_WORLDS = itertools.count()


@pytest.fixture
def world(moto_account: None) -> Any:
    return harness.make_world(bucket=f"{harness.BUCKET}-{next(_WORLDS)}")


@pytest.fixture
def function(world: Any, handler_module: ModuleType) -> tuple[Any, Any]:
    return harness.function_under_test(world, handler_module)
