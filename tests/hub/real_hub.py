"""A real JupyterHub 5.3 process on 127.0.0.1 running the hub's extra config.

The generated jupyterhub_config.py does what the chart's does, in the same order: base
settings first (base URL /notebooks/, the profile list, roles), then every extra-config
file exec'd into its namespace in name order, then tests/hub/hub_test_overrides.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import ParseResult, urlparse

import requests

from tests.support.hub_config import REPO_ROOT, TEMPLATES_DIR, release_env

OVERRIDES = Path(__file__).with_name("hub_test_overrides.py")
ADMIN_TOKEN = "test-admin-api-token-not-a-secret"
# The smoke checks' token (tools/smoke.py): the proxy's routing table, and the smoke user's
# server only (start, use, stop).
SMOKE_TOKEN = "test-smoke-api-token-not-a-secret"
SMOKE_USER = "smokey"
# The metrics service's token: the role is production's (components/hub_metrics.py).
METRICS_TOKEN = "test-metrics-api-token-not-a-secret"
BASE = "/notebooks"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _StubNotebook(BaseHTTPRequestHandler):
    """Stands in for the single-user server the pod would run: any path answers 200."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = b"<html><head><title>stub notebook</title></head><body>stub notebook</body></html>"
        content_type = "text/html"
        # The S3 drive as the server's contents API lists it (jupyter_server's directory model).
        if self.path.split("?")[0].endswith("/api/contents/s3"):
            entry = {"name": "jupyter", "path": "s3/jupyter", "type": "directory"}
            model = {"name": "s3", "path": "s3", "type": "directory", "content": [entry]}
            body, content_type = json.dumps(model).encode(), "application/json"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


CONFIG_TEMPLATE = """\
import sys
sys.path.insert(0, {repo!r})
from tests.support.hub_config import exec_extra_config, make_values_getter
from components.hub_metrics import METRICS_SERVICE, metrics_role

# As in z2jh: the extra config sees the chart's values getter, not traitlets'.
get_config = make_values_getter({{"hub": {{"baseUrl": "/notebooks"}}}})

c.JupyterHub.base_url = "/notebooks/"
# As the chart does with debug.enabled: the log tests want everything the hub can say.
c.JupyterHub.log_level = "DEBUG"
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {proxy_port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
# As the chart starts its proxy (templates/proxy/deployment.yaml): unrouted requests go to the
# hub, so the hub answers even when its own route is missing from the proxy.
c.ConfigurableHTTPProxy.command = [
    "configurable-http-proxy", "--default-target=http://127.0.0.1:{hub_port}"
]
c.ConfigurableHTTPProxy.pid_file = {pid_file!r}
c.JupyterHub.db_url = "sqlite:///{db}"
c.JupyterHub.cookie_secret_file = {cookie_file!r}
c.JupyterHub.pid_file = {hub_pid_file!r}
c.KubeSpawner.profile_list = {profiles!r}
c.JupyterHub.services = [
    {{"name": "test-admin", "api_token": {admin_token!r}}},
    {{"name": "smoke", "api_token": {smoke_token!r}}},
    {{"name": METRICS_SERVICE, "api_token": {metrics_token!r}}},
]
c.JupyterHub.load_roles = [
    {{"name": "test-admin", "scopes": ["admin:users", "admin:servers", "tokens"],
      "services": ["test-admin"]}},
    {{"name": "smoke", "services": ["smoke"], "scopes": [
        "proxy", "servers!user={smoke_user}", "access:servers!user={smoke_user}"]}},
    metrics_role(),
]

for _path in {files!r}:
    exec_extra_config(globals(), [_path])
"""


@dataclass
class RealHub:
    workdir: Path
    issuer: str
    profiles: list[dict[str, Any]]
    kubeconfig: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    # The last config file, after hub/extra_config: what differs from production here.
    overrides: Path = OVERRIDES
    proxy_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    hub_port: int = field(default_factory=free_port)
    # Kept so a test can change the proxy's routes behind the hub's back, as a restart does.
    proxy_auth_token: str = field(default_factory=lambda: secrets.token_hex(16))
    process: subprocess.Popen | None = None
    _stub: ThreadingHTTPServer | None = None

    @property
    def host(self) -> str:
        """The hub's one host (HUB_HOST): where users reach it, as the ingress would serve it."""
        return f"127.0.0.1:{self.proxy_port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}{BASE}"

    @property
    def api_url(self) -> str:
        """What a notebook sees as JUPYTERHUB_API_URL (the hub directly, not the proxy)."""
        return f"http://127.0.0.1:{self.hub_port}{BASE}/hub/api"

    @property
    def record_dir(self) -> Path:
        return self.workdir / "records"

    @property
    def log_file(self) -> Path:
        return self.workdir / "hub.log"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # The hub's host is where this hub answers: the callback and cookies follow it.
        env.update(release_env(KEYCLOAK_ISSUER_URL=self.issuer, HUB_HOST=self.host))
        env.update(
            JUPYTERHUB_CRYPT_KEY=secrets.token_hex(32),
            CONFIGPROXY_AUTH_TOKEN=self.proxy_auth_token,
            KUBECONFIG=str(self.kubeconfig),
            PATH=f"{REPO_ROOT / 'node_modules' / '.bin'}{os.pathsep}{env.get('PATH', '')}",
            EODH_TEST_RECORD_DIR=str(self.record_dir),
            EODH_TEST_TEMPLATES=str(TEMPLATES_DIR),
            EODH_TEST_NOTEBOOK_URL=self.notebook_url,
            EODH_TEST_HUB_URL=self.url,
        )
        env.update(self.env_overrides)
        for name, value in list(self.env_overrides.items()):
            if value == "":
                env.pop(name)
        return env

    def write_config(self) -> Path:
        from tests.support.hub_config import extra_config_files

        self.record_dir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "jupyterhub_config.py"
        config.write_text(
            CONFIG_TEMPLATE.format(
                repo=str(REPO_ROOT),
                proxy_port=self.proxy_port,
                hub_port=self.hub_port,
                api_port=self.api_port,
                pid_file=str(self.workdir / "proxy.pid"),
                hub_pid_file=str(self.workdir / "hub.pid"),
                db=self.workdir / "jupyterhub.sqlite",
                cookie_file=str(self.workdir / "cookie_secret"),
                profiles=self.profiles,
                admin_token=ADMIN_TOKEN,
                smoke_token=SMOKE_TOKEN,
                smoke_user=SMOKE_USER,
                metrics_token=METRICS_TOKEN,
                files=[str(p) for p in [*extra_config_files(), self.overrides]],
            )
        )
        return config

    def start_stub_notebook(self) -> None:
        self._stub = ThreadingHTTPServer(("127.0.0.1", 0), _StubNotebook)
        self._stub.daemon_threads = True
        threading.Thread(target=self._stub.serve_forever, daemon=True).start()
        self.notebook_url = f"http://127.0.0.1:{self._stub.server_address[1]}"

    def launch(self) -> subprocess.Popen:
        if self._stub is None:
            self.start_stub_notebook()
        config = self.write_config()
        log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=self.workdir,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self.process

    def start(self, timeout: float = 90) -> RealHub:
        process = self.launch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"hub exited early:\n{self.log_file.read_text()[-4000:]}")
            try:
                if requests.get(f"{self.url}/hub/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"hub did not come up:\n{self.log_file.read_text()[-4000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            # The hub stops the proxy it started on SIGTERM; the group catches stragglers.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
        if self._stub:
            self._stub.shutdown()
            self._stub.server_close()
            self._stub = None

    # -- helpers for tests --------------------------------------------------------------
    def admin(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(
            method,
            f"{self.api_url}{path}",
            headers={"Authorization": f"token {ADMIN_TOKEN}"},
            timeout=30,
            **kwargs,
        )

    def login(self, kc, username: str) -> requests.Session:
        """Log in through the real OAuth flow against the fake Keycloak."""
        kc.login_as = username
        session = requests.Session()
        response = session.get(f"{self.url}/hub/oauth_login", timeout=30)
        response.raise_for_status()
        return session

    def login_round_trip(
        self, kc, username: str
    ) -> tuple[requests.Session, requests.Response, ParseResult]:
        """A browser's login to the hub's home page: the session, the last answer (its
        history holds every hop) and the realm's authorization request it went through."""
        kc.login_as = username
        session = requests.Session()
        response = session.get(f"{self.url}/hub/oauth_login?next=/notebooks/hub/home", timeout=30)
        response.raise_for_status()
        hops = [
            urlparse(r.headers["Location"]) for r in response.history if "Location" in r.headers
        ]
        authorize = next(h for h in hops if h.path.endswith("/protocol/openid-connect/auth"))
        return session, response, authorize

    def k8s_calls(self) -> list[dict[str, Any]]:
        """Every Kubernetes API call the hub's spawners made, in order."""
        path = self.record_dir / "k8s-api.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def record(self, username: str) -> dict[str, Any] | None:
        path = self.record_dir / f"{username}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def wait_for_record(self, username: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.record(username)
            if record:
                return record
            time.sleep(0.2)
        raise AssertionError(
            f"no spawn recorded for {username}:\n{self.log_file.read_text()[-4000:]}"
        )

    def wait_for_server(self, username: str, running: bool, timeout: float = 30) -> None:
        """Until the user's default server is ready (running) or gone (not running)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.admin("GET", f"/users/{username}").json()
            server = (model.get("servers") or {}).get("")
            if (server or {}).get("ready") if running else server is None:
                return
            time.sleep(0.2)
        raise AssertionError(f"{username}'s server never {'started' if running else 'stopped'}")

    def start_default_server(self, username: str, workspace: str) -> dict[str, Any]:
        """Start the user's default server through the REST API, wait until it is ready and
        return the spawn's record (its environment holds the server's API token)."""
        started = self.admin("POST", f"/users/{username}/server", json={"workspace": workspace})
        assert started.status_code in (201, 202), started.text
        record = self.wait_for_record(username)
        self.wait_for_server(username, running=True)
        return record

    def forget_record(self, username: str) -> None:
        (self.record_dir / f"{username}.json").unlink(missing_ok=True)

    def workspace_token(self, token: str | None, **params) -> requests.Response:
        headers = {"Authorization": f"token {token}"} if token else {}
        return requests.get(
            f"{self.api_url}/eodh/workspace-token", params=params, headers=headers, timeout=30
        )
