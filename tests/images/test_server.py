"""A real `jupyter server` process running the image's config file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.images.conftest import Aws
from tests.images.doubles import fake_jwt, free_port
from tests.images.notebook import CONFIG_FILE, notebook_environment, required_variables

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

REQUIRED_VARIABLES = required_variables()

TOKEN = "test-server-token"
EXTENSIONS = ("jupyterlab", "jupyter_lsp", "jupyter_server_terminals", "notebook_shim")


@contextmanager
def jupyter_server(env: dict[str, str], home: Path, log: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                f"--config={CONFIG_FILE}",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                f"--IdentityProvider.token={TOKEN}",
                "--ServerApp.port_retries=0",
                f"--ServerApp.root_dir={home}",
                # Only the contents service is under test; the extensions add 5 s a start.
                *(f"--ServerApp.jpserver_extensions={name}=False" for name in EXTENSIONS),
                # This machine runs tests as root; the image runs as jovyan.
                *(["--allow-root"] if os.geteuid() == 0 else []),
            ],
            env=env,
            cwd=home,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    call(url, "/api/status")
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(
                            f"jupyter server did not start:\n{log.read_text()}"
                        ) from None
                    time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def call(url: str, path: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        text = error.read().decode()
        try:
            return error.code, json.loads(text)
        except ValueError:
            return error.code, text


def home_dir(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "readme.txt").write_text("home drive")
    return home


@pytest.mark.parametrize(
    "dropped",
    [REQUIRED_VARIABLES, ("S3CONTENTS_AWS_ROLE_ARN", "WORKSPACE")],
    ids=["all", "role-and-workspace"],
)
def test_missing_variables_start_the_home_drive_and_are_named_once(
    aws: Aws, tmp_path: Path, dropped: tuple[str, ...]
) -> None:
    home = home_dir(tmp_path)
    env = notebook_environment(
        "ws-missing",
        fake_jwt(time.time() + 3600),
        home=home,
        s3_url=aws.moto.url,
        sts_url=aws.sts.url,
    )
    for name in dropped:
        del env[name]
    log = tmp_path / "server.log"
    with jupyter_server(env, home, log) as url:
        status, root = call(url, "/api/contents")
        assert status == 200
        assert sorted(item["name"] for item in root["content"]) == ["readme.txt"]
        assert call(url, "/api/contents/s3")[0] == 404
    lines = [line for line in log.read_text().splitlines() if "S3 drive disabled" in line]
    assert len(lines) == 1, log.read_text()
    assert all(name in lines[0] for name in dropped), lines[0]
    assert not any(name in lines[0] for name in set(REQUIRED_VARIABLES) - set(dropped))


def test_server_serves_the_s3_drive_over_rest(aws: Aws, tmp_path: Path) -> None:
    home = home_dir(tmp_path)
    workspace = "ws-rest"
    env = notebook_environment(
        workspace,
        fake_jwt(time.time() + 3600),
        home=home,
        s3_url=aws.moto.url,
        sts_url=aws.sts.url,
    )
    with jupyter_server(env, home, tmp_path / "server.log") as url:
        status, root = call(url, "/api/contents")
        assert status == 200
        assert sorted(item["name"] for item in root["content"]) == ["readme.txt", "s3"]
        status, _ = call(
            url,
            "/api/contents/s3/hello.txt",
            "PUT",
            {"type": "file", "format": "text", "content": "hello"},
        )
        assert status == 201
        status, model = call(url, "/api/contents/s3/hello.txt")
        assert (status, model["content"]) == (200, "hello")
    head = aws.s3.head_object(Bucket=aws.bucket, Key=f"{workspace}/hello.txt")
    assert head["ServerSideEncryption"] == "AES256"


def test_refused_token_gives_a_clear_error_on_s3_and_home_keeps_working(
    aws: Aws, tmp_path: Path
) -> None:
    home = home_dir(tmp_path)
    token = fake_jwt(time.time() + 3600, note="refused-at-start")
    aws.sts.refused.add(token)
    env = notebook_environment(
        "ws-refused", token, home=home, s3_url=aws.moto.url, sts_url=aws.sts.url
    )
    with jupyter_server(env, home, tmp_path / "server.log") as url:
        status, error = call(url, "/api/contents/s3")
        assert status == 503
        assert "InvalidIdentityToken" in error["message"]
        assert "home directory is unaffected" in error["message"]
        status, _ = call(
            url,
            "/api/contents/notes.txt",
            "PUT",
            {"type": "file", "format": "text", "content": "kept"},
        )
        assert status == 201
        status, root = call(url, "/api/contents")
        assert status == 200
        assert sorted(item["name"] for item in root["content"]) == [
            "notes.txt",
            "readme.txt",
            "s3",
        ]
