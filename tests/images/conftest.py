"""moto (S3 + STS behind an STS front) once per module for the image tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.images.doubles import REGION, FakeHub, MotoServer, StsFront
from tests.images.notebook import bucket


@dataclass
class Aws:
    moto: MotoServer
    sts: StsFront
    s3: Any
    bucket: str


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aws]:
    moto = MotoServer(tmp_path_factory.mktemp("moto"))
    try:
        s3 = moto.client("s3")
        s3.create_bucket(Bucket=bucket(), CreateBucketConfiguration={"LocationConstraint": REGION})
        sts = StsFront(moto.url)
        try:
            yield Aws(moto, sts, s3, bucket())
        finally:
            sts.stop()
    finally:
        moto.stop()


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    fake = FakeHub()
    yield fake
    fake.stop()
