"""The whole data path: an object written out of band with plain boto3 appears in the
notebook's S3 drive once the `.s3keep` marker function has handled its S3 events.

moto cannot invoke a Lambda without Docker, so S3 notifies an SQS queue (which moto does
deliver) and the test hands each real event to lambda/s3keep/handler.py, as Lambda would.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import pytest

from tests.images.conftest import Aws
from tests.images.doubles import REGION, TEST_KEYS, fake_jwt
from tests.images.notebook import REPO_ROOT, contents_manager, notebook_environment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

HANDLER = REPO_ROOT / "lambda" / "s3keep" / "handler.py"


@pytest.fixture(scope="module")
def queue_url(aws: Aws) -> str:
    sqs = aws.moto.client("sqs")
    url = sqs.create_queue(QueueName="s3keep-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws.s3.put_bucket_notification_configuration(
        Bucket=aws.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return url


@pytest.fixture
def marker_function(aws: Aws) -> Iterator[ModuleType]:
    """A fresh import of the handler, its boto3 pointed at moto (as Lambda's role would be)."""
    if not HANDLER.exists():
        pytest.fail(f"{HANDLER} is missing: the whole path cannot be proven without it")
    lambda_env = {
        "AWS_ENDPOINT_URL_S3": aws.moto.url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": TEST_KEYS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": TEST_KEYS["aws_secret_access_key"],
    }
    name = "s3keep_handler_under_test"
    spec = importlib.util.spec_from_file_location(name, HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with mock.patch.dict(os.environ, lambda_env):
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
            yield module
        finally:
            sys.modules.pop(name, None)


def drain(aws: Aws, queue_url: str) -> list[dict[str, Any]]:
    """Every S3 event record waiting in the queue (moto delivers synchronously)."""
    sqs = aws.moto.client("sqs")
    records: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return records
        for message in messages:
            body = json.loads(message["Body"])
            records.extend(body.get("Records", []))  # s3:TestEvent has none
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def names(model: dict[str, Any]) -> list[str]:
    return sorted(item["name"] for item in model["content"])


def test_out_of_band_object_appears_after_the_marker_function_runs(
    aws: Aws, tmp_path: Path, queue_url: str, marker_function: ModuleType
) -> None:
    workspace = "ws-whole-path"
    home = tmp_path / "home"
    home.mkdir()
    env = notebook_environment(
        workspace,
        fake_jwt(time.time() + 3600),
        home=home,
        s3_url=aws.moto.url,
        sts_url=aws.sts.url,
    )
    with contents_manager(env) as cm:
        assert names(cm.get("s3")) == []
        drain(aws, queue_url)  # the drive's own `<workspace>/.s3keep`

        # A workflow or the AWS CLI writes deep into the workspace: no markers come with it.
        key = f"{workspace}/a/b/c/result.csv"
        aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=b"x,y\n1,2\n")
        assert names(cm.get("s3")) == [], "visible before any marker exists"

        # Lambda's loop: each batch of events, including the function's own markers', in turn.
        rounds = 0
        created: list[str] = []
        while records := drain(aws, queue_url):
            rounds += 1
            assert rounds <= 5, "marker events do not settle"
            result = marker_function.handler({"Records": records}, None)
            created += result["created"]
        assert sorted(created) == [
            f"{workspace}/a/.s3keep",
            f"{workspace}/a/b/.s3keep",
            f"{workspace}/a/b/c/.s3keep",
        ]

        for path, expected in [
            ("s3", ["a"]),
            ("s3/a", ["b"]),
            ("s3/a/b", ["c"]),
            ("s3/a/b/c", ["result.csv"]),
        ]:
            model = cm.get(path)
            assert model["type"] == "directory", path
            assert names(model) == expected, path
        kinds = {item["name"]: item["type"] for item in cm.get("s3/a/b")["content"]}
        assert kinds == {"c": "directory"}
        assert cm.get("s3/a/b/c/result.csv", format="text")["content"] == "x,y\n1,2\n"
