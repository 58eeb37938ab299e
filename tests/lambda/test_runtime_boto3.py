"""The handler's SDK-facing moto tests again, on the SDK a python3.13 Lambda may bundle.

AWS does not document which boto3 the python3.13 runtime bundles ("depends on the runtime
version and your AWS Region"), so the handler must not depend on a recent one. It adds
`If-None-Match: *` through a botocore event hook instead of the `IfNoneMatch` parameter,
which only botocore 1.35.2 and later accept. This test proves that on Python 3.13 with a
boto3 from before that parameter existed; the ordinary run covers the newest boto3.

The virtualenv is built once with uv and kept in `.cache/s3keep-runtime/`.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "s3keep-runtime"
RUNTIME_PYTHON = "3.13"
# The last boto3 before PutObject gained IfNoneMatch (boto3/botocore 1.35.2).
OLD_BOTO3 = "1.34.162"
PINS = ["moto[server]==5.2.5", "pytest==9.2.0", "hypothesis==6.170.17"]

# What an SDK version changes, and only that: how keys are encoded in requests (awkward
# keys, both event shapes), the conditional PutObject's header and its 412/409 answers,
# throttling and retries, the client the entry point builds and the failure queue's SQS
# client. The rest of tests/lambda decides from the event alone or runs on an operator's
# machine (the replay tool): it runs in the ordinary suite on the newest SDK. A name here
# that no longer exists fails the run (pytest: "not found").
RUNTIME_TESTS = [
    "tests/lambda/test_events.py::test_awkward_keys_get_exactly_their_markers",
    "tests/lambda/test_events.py::test_trailing_slash_folder_object_is_marked_itself",
    "tests/lambda/test_events.py::test_every_request_is_a_conditional_put_of_a_nested_marker",
    "tests/lambda/test_events.py::test_markers_are_empty_and_take_the_bucket_encryption",
    "tests/lambda/test_events.py::test_existing_marker_is_never_overwritten",
    "tests/lambda/test_events.py::test_lambda_entry_point",
    "tests/lambda/test_eventbridge_shape.py::"
    "test_awkward_keys_through_eventbridge_get_exactly_their_markers",
    "tests/lambda/test_eventbridge_shape.py::test_an_eventbridge_key_is_decoded_once",
    "tests/lambda/test_failures.py",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("S3KEEP_RUNTIME_VENV") == "1", reason="already inside the runtime venv"
    ),
]


def _interpreter() -> str:
    """Python 3.13 as the Lambda runtime has it; this interpreter if the machine has none."""
    found = shutil.which(f"python{RUNTIME_PYTHON}")
    candidates = [found] if found else []
    candidates += sorted(
        glob.glob(str(Path.home() / f".pyenv/versions/{RUNTIME_PYTHON}*/bin/python3"))
    )
    for candidate in candidates:
        version = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if version.returncode == 0 and version.stdout.strip() == RUNTIME_PYTHON:
            return candidate
    return sys.executable


def _runtime_venv() -> Path:
    python_version = subprocess.run(
        [_interpreter(), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    venv = CACHE / f"py{python_version}-boto3-{OLD_BOTO3}"
    python = venv / "bin" / "python"
    if (venv / ".complete").exists():
        return python
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to build the runtime virtualenv")
    shutil.rmtree(venv, ignore_errors=True)
    # Only an interpreter already on the machine: the package registry is reachable,
    # downloads of Python builds are not.
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run(
        [uv, "venv", "--quiet", "--python", _interpreter(), str(venv)], check=True, env=env
    )
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), f"boto3=={OLD_BOTO3}", *PINS],
        check=True,
        env=env,
    )
    # Written last: an interrupted build is redone, never reused half-installed.
    (venv / ".complete").touch()
    return python


def test_handler_suite_passes_on_python_3_13_with_pre_if_none_match_boto3() -> None:
    python = _runtime_venv()
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import sys, boto3, botocore.session;"
            "s3 = botocore.session.get_session().get_service_model('s3');"
            "members = s3.operation_model('PutObject').input_shape.members;"
            "print('%d.%d' % sys.version_info[:2], boto3.__version__, 'IfNoneMatch' in members)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    version, boto3_version, has_parameter = probe.stdout.split()
    assert (boto3_version, has_parameter) == (OLD_BOTO3, "False"), probe.stdout
    if version != RUNTIME_PYTHON:
        warnings.warn(f"no Python {RUNTIME_PYTHON} here: ran on {version}", stacklevel=1)
    result = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            *RUNTIME_TESTS,
            "-q",
            "-m",
            "not slow",
            "-p",
            "no:cacheprovider",
            f"--confcutdir={REPO / 'tests' / 'lambda'}",
        ],
        cwd=REPO,
        env={**os.environ, "S3KEEP_RUNTIME_VENV": "1", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.splitlines()[-1]
