"""The real hub as the chart deploys it, against the fake Kubernetes API, for load and faults.

Three processes and two stand-ins, all on 127.0.0.1:
- configurable-http-proxy run as the chart's proxy deployment runs it (its own process,
  the chart's flags: default and error target the hub), so it can restart on its own;
- the real hub (RealHub) with hub/extra_config and hub_cluster_overrides.py: the
  production KubeSpawner, the chart's proxy and restart settings;
- the fake Kubernetes API (tests/support/fake_kubernetes.py) in a thread, authorizing
  every call with the hub's ClusterRole as the dev stack declares it;
- the fake Keycloak, and one stub notebook server every pod's 127.0.0.1 address leads to.

Users log in through the real OAuth flow (login_hint names who) and press the spawn
form's button, as a browser does. Used by bench/load and tests/hub/test_load_faults.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from tests.hub.fake_keycloak import FakeKeycloak
from tests.hub.real_hub import ADMIN_TOKEN, RealHub
from tests.support.fake_kubernetes import FakeKubernetes, ThreadedApi, serving_in_thread
from tests.support.hub_config import REPO_ROOT

CLUSTER_OVERRIDES = Path(__file__).with_name("hub_cluster_overrides.py")
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
STUB_TITLE = "<title>stub notebook</title>"
# A spawn neither pending nor failed this long after the button was pressed was dropped.
DROPPED_AFTER = 10.0
# The chart's singleuser.profileList in the release's shape (one profile is enough here).
PROFILES = [
    {
        "display_name": "EO DataHub",
        "slug": "eodh",
        "default": True,
        "kubespawner_override": {
            "image": "public.ecr.aws/eodh/eodh-default-notebook:python-3.12-0.2.11"
        },
    }
]


def hub_cluster_role_rules() -> list[Mapping[str, Any]]:
    """The hub's ClusterRole rules as the dev stack declares them (a mocked program run)."""
    from tests.support.recordings import recording_for

    (role,) = recording_for("dev").of_type(CLUSTER_ROLE)
    return list(role.inputs["rules"])


@dataclass
class SpawnOutcome:
    user: str
    ok: bool
    seconds: float  # from the first press of the button to the notebook through the proxy
    throttled: int = 0  # 429 "try again" pages seen before it went through
    error: str = ""
    throttle_page: str = ""  # what the first 'try again' page said
    dropped: int = 0  # times left on "Server not running" with no message, and pressed again


@dataclass
class ClusterHub(RealHub):
    kube: ThreadedApi | None = None
    proxy: subprocess.Popen | None = None
    # Fixed for the life of the deployment, as the chart's secrets are: a restarted hub
    # must decrypt auth state and talk to the same proxy.
    secrets_env: dict[str, str] = field(
        default_factory=lambda: {
            "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
            "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(16),
        }
    )

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.update(self.secrets_env)
        assert self._stub is not None
        env["EODH_TEST_NOTEBOOK_PORT"] = str(self._stub.server_address[1])
        return env

    # -- processes -----------------------------------------------------------------------
    def start_proxy(self) -> None:
        hub = f"http://127.0.0.1:{self.hub_port}"
        log = (self.workdir / "proxy.log").open("ab")
        self.proxy = subprocess.Popen(
            [
                str(REPO_ROOT / "node_modules" / ".bin" / "configurable-http-proxy"),
                "--ip=127.0.0.1",
                "--api-ip=127.0.0.1",
                f"--api-port={self.api_port}",
                f"--default-target={hub}",
                f"--error-target={hub}/hub/error",
                f"--port={self.proxy_port}",
            ],
            env={**os.environ, **self.secrets_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                requests.get(f"http://127.0.0.1:{self.api_port}/api/routes", timeout=1)
                return
            time.sleep(0.1)
        raise RuntimeError("configurable-http-proxy did not come up")

    def stop_proxy(self) -> None:
        if self.proxy and self.proxy.poll() is None:
            self.proxy.send_signal(signal.SIGTERM)
            try:
                self.proxy.wait(10)
            except subprocess.TimeoutExpired:
                self.proxy.kill()
                self.proxy.wait()

    def start(self, timeout: float = 90) -> ClusterHub:
        self.start_stub_notebook()
        self.start_proxy()
        super().start(timeout)
        return self

    def stop_hub(self) -> None:
        """The hub alone (a pod restart): SIGTERM; its servers and the proxy stay."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart_hub(self, timeout: float = 90) -> float:
        """Stop and start the hub; seconds until it answers its health check again."""
        started = time.monotonic()
        self.stop_hub()
        stub = self._stub
        super().start(timeout)
        assert self._stub is stub
        return time.monotonic() - started

    def stop(self) -> None:
        super().stop()
        self.stop_proxy()

    # -- what users do -------------------------------------------------------------------
    def browser_login(self, username: str) -> requests.Session:
        """The OAuth code flow as a browser follows it; Keycloak's form is login_hint."""
        session = requests.Session()
        to_keycloak = session.get(f"{self.url}/hub/oauth_login", allow_redirects=False, timeout=60)
        if to_keycloak.status_code != 302:
            raise LoginFailed(to_keycloak.status_code, to_keycloak.text)
        location = to_keycloak.headers["Location"] + "&" + urlencode({"login_hint": username})
        back = session.get(location, allow_redirects=False, timeout=60)
        if back.status_code != 302:
            raise LoginFailed(back.status_code, back.text)
        landed = session.get(back.headers["Location"], timeout=60)
        if landed.status_code != 200 or "/hub/oauth_callback" in landed.url:
            raise LoginFailed(landed.status_code, landed.text)
        return session

    def press_spawn(self, session: requests.Session, workspace: str) -> requests.Response:
        """Open the spawn page and press its button (workspace chosen, default profile)."""
        page = session.get(f"{self.url}/hub/spawn", timeout=60)
        match = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        xsrf = match[1] if match else session.cookies.get("_xsrf", "")
        return session.post(
            f"{self.url}/hub/spawn",
            data={"_xsrf": xsrf, "workspace": workspace, "profile": "eodh"},
            allow_redirects=False,
            timeout=120,
        )

    def open_launch(
        self, session: requests.Session, username: str, server: str, workspace: str
    ) -> requests.Response:
        """Follow the Resource Catalogue's launch link for a named server
        (tests/hub/test_launch_url.py: the URL as the launch service writes it)."""
        notebook = f"{self.url}/user/{username}/{server}/lab/tree/s3/jupyter/{server}.ipynb"
        return session.get(
            f"{self.url}/hub/spawn/{username}/{server}?workspace={workspace}&next={notebook}",
            allow_redirects=False,
            timeout=120,
        )

    def reaches_notebook(self, session: requests.Session, username: str, server: str = "") -> bool:
        """The user's own notebook answers through the proxy (not the hub's pages)."""
        prefix = f"{username}/{server}" if server else username
        with contextlib.suppress(requests.RequestException):
            response = session.get(
                f"{self.url}/user/{prefix}/lab", allow_redirects=False, timeout=10
            )
            return response.status_code == 200 and STUB_TITLE in response.text
        return False

    def spawn_until_ready(
        self,
        session: requests.Session,
        username: str,
        workspace: str,
        *,
        retry_after_cap: float | None = None,
        deadline: float = 300,
        dropped_after: float = DROPPED_AFTER,
        server: str = "",
    ) -> SpawnOutcome:
        """Press the button (for a named server: follow its launch link), wait on the 'try
        again' page as asked, until the notebook answers through the proxy or the spawn
        fails (dropped_after: DROPPED_AFTER)."""

        def press() -> requests.Response:
            if server:
                return self.open_launch(session, username, server, workspace)
            return self.press_spawn(session, workspace)

        started = time.monotonic()
        throttled = 0
        dropped = 0
        throttle_page = ""
        while True:
            response = press()
            # JupyterHub throttles with 429 and Retry-After (the REST API), or shows the
            # spawn form again with the message (the form's POST).
            retry = re.search(r"Try again in (\d+) (seconds|minutes)", response.text)
            if response.status_code == 429 or (response.status_code == 200 and retry):
                throttled += 1
                throttle_page = throttle_page or page_error(response.text)
                wait = float(response.headers.get("Retry-After", "30"))
                if retry:
                    wait = float(retry[1]) * (60 if retry[2] == "minutes" else 1)
                if retry_after_cap is not None:
                    wait = min(wait, retry_after_cap)
                time.sleep(wait)
                if time.monotonic() - started > deadline:
                    return SpawnOutcome(username, False, deadline, throttled, "throttled")
                continue
            if response.status_code != 302:
                return SpawnOutcome(
                    username,
                    False,
                    time.monotonic() - started,
                    throttled,
                    f"HTTP {response.status_code}: {page_error(response.text)}",
                )
            break
        idle_since: float | None = None
        while time.monotonic() - started < deadline:
            if self.reaches_notebook(session, username, server):
                return SpawnOutcome(
                    username,
                    True,
                    time.monotonic() - started,
                    throttled,
                    "",
                    throttle_page,
                    dropped,
                )
            model = self.admin("GET", f"/users/{username}").json()
            if (model.get("servers") or {}).get(server) is not None:
                idle_since = None
            else:
                # Not pending yet (the pre-spawn refresh runs first) or failed: the
                # pending page tells which, as it tells the user.
                pending = session.get(
                    f"{self.url}/hub/spawn-pending/{username}{'/' + server if server else ''}",
                    timeout=30,
                )
                if pending.status_code >= 400:
                    return SpawnOutcome(
                        username,
                        False,
                        time.monotonic() - started,
                        throttled,
                        f"HTTP {pending.status_code}: {self.spawn_failure(username, server)}",
                    )
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > dropped_after:
                    # The hub throttled the spawn after it had sent the user to this page
                    # (the limit is checked after the pre-spawn refresh): the page says
                    # "Server not running" and nothing else. The user presses Start again.
                    dropped += 1
                    idle_since = None
                    press()
            time.sleep(0.25)
        model = (self.admin("GET", f"/users/{username}").json().get("servers") or {}).get(server)
        state = "no server" if model is None else f"pending {model.get('pending')!r}"
        return SpawnOutcome(username, False, deadline, throttled, f"not ready in time ({state})")

    def spawn_failure(self, username: str, server: str = "") -> str:
        """What the spawn-pending page's progress bar tells the user when a spawn failed
        (the last event of the progress stream, as the page's JavaScript shows it)."""
        with requests.get(
            f"{self.api_url}/users/{username}/server{'s/' + server if server else ''}/progress",
            headers={"Authorization": f"token {ADMIN_TOKEN}"},
            stream=True,
            timeout=30,
        ) as stream:
            for raw in stream.iter_lines():
                line = raw.decode()
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    if event.get("failed"):
                        return str(event.get("message", ""))
        return ""

    # -- what the API holds ----------------------------------------------------------------
    @property
    def fake(self) -> FakeKubernetes:
        assert self.kube is not None
        return self.kube.fake

    def pods(self) -> set[str]:
        return {name for _, name in self.fake.objects.get("pods", {})}

    def pod_servers(self) -> set[tuple[str, str]]:
        """(user, server name) of every pod, from the annotations KubeSpawner 7.1 sets
        (spawner.py _build_common_annotations; no servername on a default server's pod)."""
        return {
            (a["hub.jupyter.org/username"], a.get("hub.jupyter.org/servername", ""))
            for pod in list(self.fake.objects.get("pods", {}).values())
            for a in [pod["metadata"].get("annotations") or {}]
        }

    def ready_servers(self) -> set[tuple[str, str]]:
        """(user, server name) of every server, default or named, the hub reports ready."""
        users = self.admin("GET", "/users", params={"state": "active"}).json()
        return {
            (u["name"], name)
            for u in users
            for name, model in (u.get("servers") or {}).items()
            if model.get("ready")
        }

    def running_servers(self) -> set[str]:
        """Users whose default server the hub reports ready."""
        users = self.admin("GET", "/users", params={"state": "active"}).json()
        return {u["name"] for u in users if ((u.get("servers") or {}).get("") or {}).get("ready")}


class LoginFailed(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"login failed: HTTP {status}: {page_error(body) or body[:200]}")
        self.status = status


def page_error(html: str) -> str:
    """The message a hub or nginx page shows the user, without markup."""
    for pattern in (
        r'class="eodh-spawn-error-text">(.*?)</span>',
        r"has failed\.\s*</p>\s*<p>(.*?)</p>",
        r'<div class="error">\s*<h1>(.*?)</h1>\s*<p>(.*?)</p>',
        r"<title>(.*?)</title>",
    ):
        match = re.search(pattern, html, re.S)
        if match:
            return " ".join(re.sub(r"<[^>]+>|\s+", " ", g).strip() for g in match.groups())
    return ""


def users_for(count: int, prefix: str = "load") -> dict[str, list[str]]:
    """Users for a load run, two to a workspace (a workspace's namespace and claim are
    shared, as in a training session)."""
    return {f"{prefix}{i:03d}": [f"{prefix}-ws{i // 2:03d}"] for i in range(count)}


@contextlib.contextmanager
def cluster_hub(
    keycloak: FakeKeycloak, workdir: Path, env: Mapping[str, str] | None = None
) -> Iterator[ClusterHub]:
    """A ClusterHub with its fake API, stopped with everything it started; env adds to
    the hub's environment (hub_cluster_overrides.py reads the test-only settings)."""
    with serving_in_thread(FakeKubernetes(hub_cluster_role_rules())) as kube:
        kubeconfig = workdir / "kubeconfig"
        kubeconfig.write_text(json.dumps(kube.fake.kubeconfig()))
        hub = ClusterHub(
            workdir=workdir,
            issuer=keycloak.issuer,
            profiles=PROFILES,
            kubeconfig=kubeconfig,
            overrides=CLUSTER_OVERRIDES,
            kube=kube,
            env_overrides=dict(env or {}),
        )
        keycloak.redirect_uri = f"{hub.url}/hub/oauth_callback"
        try:
            yield hub.start()
        finally:
            hub.stop()
