"""Real HTTP servers on 127.0.0.1 standing in for AWS and the hub in the image tests.

- MotoServer: moto_server in its own process (s3fs/aiobotocore bypass moto's in-process
  mock, see DESIGN.md §5).
- StsFront: an HTTP front for moto's STS. moto accepts any web-identity token; AWS refuses
  bad ones. The front records every AssumeRoleWithWebIdentity token, answers
  InvalidIdentityToken, as STS does, for the tokens a test marks as refused, and can
  shorten the session moto grants; everything else goes to moto unchanged.
- FakeHub: the hub's GET /hub/api/eodh/workspace-token endpoint, answering from a script.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REGION = "eu-west-2"
# moto does not check credentials; these only satisfy botocore's signer.
TEST_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fake_jwt(exp: float, **claims: Any) -> str:
    """An unsigned JWT-shaped token: the notebook reads `exp` without verifying."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'exp': int(exp), **claims})}.test-sig"


class MotoServer:
    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_dir / "moto.log", "wb")  # noqa: SIM115 - closed in stop()
        moto = Path(sys.executable).with_name("moto_server")
        self.process = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(self.port)],
            # moto runs on the test environment's own libraries, whatever PYTHONPATH
            # lends the code under test (e.g. the image's older botocore).
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"moto_server did not start; see {log_dir}/moto.log"
                    ) from None
                time.sleep(0.1)

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name=REGION, **TEST_KEYS)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


_STS_ERROR = """<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>
  <Message>Incorrect token audience</Message></Error>
  <RequestId>00000000-0000-0000-0000-000000000000</RequestId>
</ErrorResponse>"""


class _QuietHandler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def serve_in_background(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """A server on a free 127.0.0.1 port, serving from a daemon thread until shut down."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class StsFront:
    def __init__(self, moto_url: str) -> None:
        self.moto_url = moto_url
        self.tokens: list[str] = []
        self.refused: set[str] = set()
        # Like a role whose maximum session is this short; moto honours DurationSeconds.
        self.session_seconds: int | None = None
        front = self

        class Handler(_QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                form = urllib.parse.parse_qs(body.decode())
                if form.get("Action") == ["AssumeRoleWithWebIdentity"]:
                    token = form.get("WebIdentityToken", [""])[0]
                    front.tokens.append(token)
                    if token in front.refused:
                        self._answer(400, _STS_ERROR.encode(), "text/xml")
                        return
                    if front.session_seconds is not None:
                        form["DurationSeconds"] = [str(front.session_seconds)]
                        body = urllib.parse.urlencode(form, doseq=True).encode()
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length")
                }
                request = urllib.request.Request(
                    front.moto_url + self.path, data=body, headers=headers, method="POST"
                )
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        self._answer(
                            response.status, response.read(), response.headers["Content-Type"]
                        )
                except urllib.error.HTTPError as exc:
                    self._answer(exc.code, exc.read(), exc.headers["Content-Type"])

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self._send(status, body, content_type or "text/xml")

        self.server = serve_in_background(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class HubAnswer:
    status: int
    body: dict[str, Any]


@dataclass
class HubRequest:
    path: str
    query: dict[str, list[str]]
    authorization: str | None


@dataclass
class FakeHub:
    """Answers the workspace-token endpoint; `answer` decides each reply."""

    api_token: str = "test-server-api-token"
    answer: Callable[[HubRequest], HubAnswer] | None = None
    requests: list[HubRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        hub = self

        class Handler(_QuietHandler):
            def do_GET(self) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                request = HubRequest(
                    parsed.path,
                    urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
                    self.headers.get("Authorization"),
                )
                hub.requests.append(request)
                if parsed.path != "/hub/api/eodh/workspace-token":
                    reply = HubAnswer(404, {"message": "Not Found"})
                elif request.authorization != f"token {hub.api_token}":
                    reply = HubAnswer(403, {"message": "bad token"})
                elif hub.answer is None:
                    reply = HubAnswer(502, {"message": "no answer scripted"})
                else:
                    reply = hub.answer(request)
                body = json.dumps(reply.body).encode()
                self._send(reply.status, body, "application/json")

        self.server = serve_in_background(Handler)
        self.api_url = f"http://127.0.0.1:{self.server.server_address[1]}/hub/api"

    def issue(self, token: str, workspace: str, expires_at: float) -> None:
        self.answer = lambda _request: HubAnswer(
            200, {"access_token": token, "expires_at": int(expires_at), "workspace": workspace}
        )

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def environ_without_aws() -> dict[str, str]:
    """The test process's environment minus anything that could lend AWS credentials."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "S3CONTENTS_", "JUPYTERHUB_", "JPY")) and k != "WORKSPACE"
    }
