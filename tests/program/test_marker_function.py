"""The `.s3keep` marker function's infrastructure, for every stack."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pytest
from parliament import analyze_policy_string

from components.marker_function import MarkerFunctionArgs, code_archive
from eodh_jupyterhub.offline import Recording, run_with_config
from eodh_jupyterhub.stack_config import PROJECT_ROOT
from tests.support.bucket_modes import recording_in_mode
from tests.support.stacks import effective_config, pulumi_config

LAMBDA_DIR = PROJECT_ROOT / "lambda" / "s3keep"


def _inputs(recording: Recording, name: str) -> dict:
    return recording.named(name).plain_inputs


def test_function_runtime_handler_and_code(recording: Recording) -> None:
    function = _inputs(recording, "s3keep-function")
    assert function["runtime"] == "python3.13"
    assert function["architectures"] == ["arm64"]
    assert function["handler"] == "handler.handler"
    assert (LAMBDA_DIR / "handler.py").read_text().count("def handler(") == 1
    # The code is the named file, never the directory (caches, editor files, the README).
    code = function["code"]
    assert isinstance(code, pulumi.AssetArchive)
    assert sorted(code.assets) == ["handler.py"]
    assert Path(code.assets["handler.py"].path) == LAMBDA_DIR / "handler.py"
    assert function["tags"] == {"eodh:code-sha256": code_archive(LAMBDA_DIR)[1]}
    variables = function["environment"]["variables"]
    assert {k: variables[k] for k in ("MARKER_NAME", "LOG_LEVEL")} == {
        "MARKER_NAME": ".s3keep",
        "LOG_LEVEL": "INFO",
    }
    if not recording.preview:
        # The role's unique id (AROA + 17), so the function knows its own writes exactly.
        assert variables["EXECUTION_ROLE_ID"].startswith("AROA")
        assert len(variables["EXECUTION_ROLE_ID"]) == 21
    assert function["timeout"] <= 60
    log_group = _inputs(recording, "s3keep-logs")
    assert log_group["retentionInDays"] == 30
    # The mocks name auto-named resources after their Pulumi name.
    assert function["loggingConfig"] == {"logFormat": "Text", "logGroup": "s3keep-logs"}


STRAY_FILES = {
    "__pycache__/handler.cpython-313.pyc": b"\xf3\r\r\n compiled",
    "__pycache__/handler.cpython-311.pyc": b"\xa7\r\r\n compiled",
    "handler.pyc": b"compiled",
    "handler.py~": b"editor backup",
    ".handler.py.swp": b"vim swap",
    ".DS_Store": b"finder",
    "README.md": b"a different readme",
}


def test_stray_files_do_not_change_the_archive(tmp_path: Path) -> None:
    import shutil

    clean = tmp_path / "clean"
    shutil.copytree(LAMBDA_DIR, clean, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    archive, digest = code_archive(clean)
    littered = tmp_path / "littered"
    shutil.copytree(clean, littered)
    for name, data in STRAY_FILES.items():
        (littered / name).parent.mkdir(parents=True, exist_ok=True)
        (littered / name).write_bytes(data)
    littered_archive, littered_digest = code_archive(littered)
    assert littered_digest == digest
    assert sorted(littered_archive.assets) == sorted(archive.assets) == ["handler.py"]
    # The digest is of the content: one changed byte of the handler changes it.
    (littered / "handler.py").write_bytes((clean / "handler.py").read_bytes() + b"\n")
    assert code_archive(littered)[1] != digest


def test_the_digest_does_not_depend_on_where_the_sources_are(tmp_path: Path) -> None:
    import shutil

    shutil.copy(LAMBDA_DIR / "handler.py", tmp_path / "handler.py")
    assert code_archive(tmp_path)[1] == code_archive(LAMBDA_DIR)[1]


def test_reserved_concurrency_comes_from_the_setting() -> None:
    key = "eodh-jupyterhub:markerReservedConcurrency"
    config = {**pulumi_config("dev"), key: "25"}
    function = run_with_config("dev", config).named("s3keep-function").plain_inputs
    assert function["reservedConcurrentExecutions"] == 25


def test_no_reservation_leaves_the_property_out() -> None:
    from components.marker_function import MarkerFunction

    def program(_recording: Recording) -> None:
        MarkerFunction(
            "m",
            MarkerFunctionArgs(
                bucket="b",
                bucket_arn="arn:aws:s3:::b",
                account="123456789012",
                source_dir=LAMBDA_DIR,
                reserved_concurrency=None,
            ),
        )

    recording = run_with_config("dev", pulumi_config("dev"), program=program)
    assert "reservedConcurrentExecutions" not in recording.named("m-function").plain_inputs


def test_failed_events_go_to_the_failure_queue(recording: Recording) -> None:
    invoke_config = _inputs(recording, "s3keep-async")
    queue_arn = "arn:aws:sqs:eu-west-2:000000000000:s3keep-failures"
    assert invoke_config["destinationConfig"] == {"onFailure": {"destination": queue_arn}}
    assert invoke_config["maximumRetryAttempts"] == 2
    queue = _inputs(recording, "s3keep-failures")
    assert queue["sqsManagedSseEnabled"] is True
    assert queue["messageRetentionSeconds"] == 14 * 24 * 3600


def test_s3_may_invoke_only_from_the_workspace_bucket(stack: str) -> None:
    recording = recording_in_mode(stack, manage=True)
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


def test_notification_follows_the_permission(stack: str) -> None:
    recording = recording_in_mode(stack, manage=True)
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
        ("Deny", "s3:PutObject", [f"arn:aws:s3:::{bucket}/workflow-harvester/*"]),
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
        ({"trigger": "sns"}, "trigger"),
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
