"""The `.s3keep` marker function's infrastructure, for every stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from parliament import analyze_policy_string

from components.marker_function import MarkerFunctionArgs
from eodh_jupyterhub.offline import Recording
from eodh_jupyterhub.stack_config import PROJECT_ROOT
from tests.support.stacks import effective_config

LAMBDA_DIR = PROJECT_ROOT / "lambda" / "s3keep"


def _inputs(recording: Recording, name: str) -> dict:
    return recording.named(name).plain_inputs


def test_function_runtime_handler_and_code(recording: Recording) -> None:
    function = _inputs(recording, "s3keep-function")
    assert function["runtime"] == "python3.13"
    assert function["architectures"] == ["arm64"]
    assert function["handler"] == "handler.handler"
    assert (LAMBDA_DIR / "handler.py").read_text().count("def handler(") == 1
    assert Path(function["code"].path) == LAMBDA_DIR
    assert function["environment"] == {"variables": {"MARKER_NAME": ".s3keep", "LOG_LEVEL": "INFO"}}
    assert function["reservedConcurrentExecutions"] == 10
    assert function["timeout"] <= 60
    log_group = _inputs(recording, "s3keep-logs")
    assert log_group["retentionInDays"] == 30
    # The mocks name auto-named resources after their Pulumi name.
    assert function["loggingConfig"] == {"logFormat": "Text", "logGroup": "s3keep-logs"}


def test_failed_events_go_to_the_failure_queue(recording: Recording) -> None:
    invoke_config = _inputs(recording, "s3keep-async")
    queue_arn = "arn:aws:sqs:eu-west-2:000000000000:s3keep-failures"
    assert invoke_config["destinationConfig"] == {"onFailure": {"destination": queue_arn}}
    assert invoke_config["maximumRetryAttempts"] == 2
    queue = _inputs(recording, "s3keep-failures")
    assert queue["sqsManagedSseEnabled"] is True
    assert queue["messageRetentionSeconds"] == 14 * 24 * 3600


def test_s3_may_invoke_only_from_the_workspace_bucket(recording: Recording, stack: str) -> None:
    config = effective_config(stack)
    bucket = config["eodh-jupyterhub:workspaceBucket"]
    account = config["eodh-jupyterhub:eksOidcProviderArn"].split(":")[4]
    permission = _inputs(recording, "s3keep-s3-invoke")
    assert permission == {
        "action": "lambda:InvokeFunction",
        "function": "s3keep-function",
        "principal": "s3.amazonaws.com",
        "sourceArn": f"arn:aws:s3:::{bucket}",
        "sourceAccount": account,
    }


def test_notification_follows_the_permission(recording: Recording, stack: str) -> None:
    notification = recording.named("s3keep-notification")
    bucket = effective_config(stack)["eodh-jupyterhub:workspaceBucket"]
    assert notification.plain_inputs["bucket"] == bucket
    (target,) = notification.plain_inputs["lambdaFunctions"]
    assert target["events"] == ["s3:ObjectCreated:*"]
    assert target["lambdaFunctionArn"].endswith(":function:s3keep-function")
    assert recording.named("s3keep-s3-invoke").urn in notification.depends_on


def test_function_may_only_write_markers_log_and_report(
    up_recording: Recording, stack: str
) -> None:
    bucket = effective_config(stack)["eodh-jupyterhub:workspaceBucket"]
    policy = json.loads(_inputs(up_recording, "s3keep-permissions")["policy"])
    assert [(s["Effect"], s["Action"], s["Resource"]) for s in policy["Statement"]] == [
        ("Allow", "s3:PutObject", f"arn:aws:s3:::{bucket}/?*/?*/.s3keep"),
        (
            "Deny",
            "s3:PutObject",
            [f"arn:aws:s3:::{bucket}//*", f"arn:aws:s3:::{bucket}/*//*"],
        ),
        (
            "Allow",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            "arn:aws:logs:eu-west-2:000000000000:log-group:s3keep-logs:*",
        ),
        ("Allow", "sqs:SendMessage", "arn:aws:sqs:eu-west-2:000000000000:s3keep-failures"),
    ]
    findings = analyze_policy_string(json.dumps(policy), include_community_auditors=True).findings
    assert [f.issue for f in findings] == []
    trust = json.loads(_inputs(up_recording, "s3keep-role")["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"account": "12345"}, "12-digit"),
        ({"reserved_concurrency": 0}, "reserved concurrency"),
        ({"maximum_retry_attempts": 3}, "0 to 2"),
        ({"source_dir": PROJECT_ROOT / "hub"}, "handler.py"),
    ],
)
def test_args_reject_bad_values(change: dict, message: str) -> None:
    base = {
        "bucket": "b",
        "bucket_arn": "arn:aws:s3:::b",
        "account": "123456789012",
        "source_dir": LAMBDA_DIR,
    }
    with pytest.raises(ValueError, match=message):
        MarkerFunctionArgs(**{**base, **change})
