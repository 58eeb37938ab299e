"""Fixtures for the hub tests: a fake Keycloak, a dummy kubeconfig, in-process spawners."""

from __future__ import annotations

import asyncio
import copy
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.config import kube_config
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from traitlets import import_item

from tests.hub.fake_keycloak import FakeKeycloak
from tests.support.hub_config import load_hub_config, release_env
from tests.support.kubeconfig import UNREACHABLE_KUBECONFIG

# Strings that break out of HTML text and attributes if anything prints them unescaped;
# each sets window.__eodh_xss when it runs, which the browser tests look for.
HOSTILE_SCRIPT = "<script>window.__eodh_xss='script'</script>"
HOSTILE_ATTRIBUTE = '"><img src=x onerror="window.__eodh_xss=\'img\'">'

USERS = {
    "alice": ["alpha", "beta"],
    "bob": [],
    "carol": ["gamma"],
    "dave": ["delta", "epsilon"],
    # Real hub only: one user per destructive scenario, so tests share one hub.
    "erin": ["zeta"],
    "frank": ["eta"],
    "henry": ["iota"],
    # Forged-request tests (test_forged_requests.py): one for requests, one for Chromium.
    "victor": ["kappa", "lambda"],
    "wendy": ["mu"],
    "smokey": ["kappa"],  # make smoke --server (tests/hub/test_smoke.py)
    "mallory": ["theta", HOSTILE_SCRIPT, HOSTILE_ATTRIBUTE],
    # The Resource Catalogue's notebook launches (test_launch_url.py).
    "lena": ["lambda", "mu"],
    "otto": ["omicron"],
    "nina": ["nu"],
    # A misconfigured mapper: one string instead of an array.
    "stringy": "alpha",
}

# The shape of the chart's singleuser.profileList (KubeSpawner profile_list), as the
# release sets it; the extra config must read it, never define it.
PROFILES = [
    {
        "display_name": "EO DataHub",
        "slug": "eodh",
        "default": True,
        "description": "Python with EO libraries and the workspace S3 drive",
        "kubespawner_override": {
            "image": "public.ecr.aws/eodh/eodh-default-notebook:python-3.12-0.2.11"
        },
    },
    {
        "display_name": "Python 3.12",
        "slug": "python-3-12",
        "kubespawner_override": {"image": "quay.io/jupyter/base-notebook:python-3.12"},
    },
    {
        "display_name": "R 4.4",
        "slug": "r-4-4",
        "kubespawner_override": {"image": "quay.io/jupyter/r-notebook:r-4.4.2"},
    },
]


@pytest.fixture(scope="session")
def keycloak() -> Iterator[FakeKeycloak]:
    kc = FakeKeycloak.for_release(copy.deepcopy(USERS))
    yield kc
    kc.stop()


_KNOBS = (
    "exchange_override",
    "login_as",
    "user_token_lifetime",
    "hub_default_scopes",
    "workspaces_client_scopes",
    "user_token_audience",
    "hub_client_scopes",
    "workspace_token_lifetime",
    "redirect_uri",
    "timeout_sleep",
    # Faults: a test that leaves one set would fail every later test on this worker.
    "latency",
    "outage",
)


@pytest.fixture
def kc(keycloak: FakeKeycloak) -> Iterator[FakeKeycloak]:
    """The session's fake Keycloak, with per-test knobs and users reset afterwards."""
    keycloak.requests.clear()
    saved = {name: getattr(keycloak, name) for name in _KNOBS}
    yield keycloak
    for name, value in saved.items():
        setattr(keycloak, name, value)
    keycloak.users.clear()
    keycloak.users.update(copy.deepcopy(USERS))


@pytest.fixture(scope="session")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """KubeSpawner builds a client in __init__ and needs a kubeconfig; nothing is called."""
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(UNREACHABLE_KUBECONFIG)
    # kubernetes_asyncio reads $KUBECONFIG once, at import, which may already be done.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBECONFIG", str(path))
        mp.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
        yield path


@pytest.fixture
def hub_env(keycloak: FakeKeycloak) -> dict[str, str]:
    return release_env(KEYCLOAK_ISSUER_URL=keycloak.issuer)


@pytest.fixture
def hub_ns(hub_env: dict[str, str]) -> dict[str, Any]:
    """The extra config loaded against the fake Keycloak, plus the chart's profile list."""
    ns = load_hub_config(hub_env)
    ns["c"].KubeSpawner.profile_list = PROFILES
    return ns


class FakeUser:
    """The parts of jupyterhub.user.User the spawner and the hook touch."""

    def __init__(self, name: str, auth_state: dict[str, Any] | None):
        self.name = name
        self.id = 1
        self.url = f"/notebooks/user/{name}/"
        self.auth_state = auth_state
        self.saved: list[dict[str, Any]] = []
        # The user's other servers (jupyterhub.user.User.spawners): none here.
        self.spawners: dict[str, Any] = {}

    async def get_auth_state(self):
        return self.auth_state

    async def save_auth_state(self, auth_state):
        self.saved.append(auth_state)
        self.auth_state = auth_state


@pytest.fixture
def run() -> Iterator[Any]:
    """Run a coroutine on one loop per test: KubeSpawner binds its client to the loop."""
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete
    # KubeSpawner's shared client parks a task that closes it with the loop.
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()


@pytest.fixture
def make_spawner(hub_ns, kubeconfig, kc, run):
    """Build the configured spawner class for a user logged in at the fake Keycloak."""
    c = hub_ns["c"]
    spawner_class = c.JupyterHub.spawner_class
    if isinstance(spawner_class, str):
        spawner_class = import_item(spawner_class)
    authenticator = c.JupyterHub.authenticator_class(config=c)

    def make(username: str, auth_state: dict[str, Any] | str | None = "login", **traits):
        if auth_state == "login":
            # The real authenticator builds it, so workspaces come from the token's claim.
            auth_state = authenticator.build_auth_state_dict(
                kc.issue_user_tokens(username), {"preferred_username": username}
            )
        user = FakeUser(username, auth_state)

        async def build():
            return spawner_class(
                _mock=True, user=user, config=c, authenticator=authenticator, **traits
            )

        return run(build())

    return make


@pytest.fixture(scope="session")
def real_hub(keycloak, kubeconfig, tmp_path_factory):
    """One real hub per session (start-up costs seconds), torn down with its proxy."""
    from tests.hub.real_hub import RealHub

    hub = RealHub(
        workdir=tmp_path_factory.mktemp("hub"),
        issuer=keycloak.issuer,
        profiles=PROFILES,
        kubeconfig=kubeconfig,
    )
    # The hub client's one registered redirect URI (this hub has no ingress; see
    # hub_test_overrides.py): the fake refuses any other, as Keycloak does.
    keycloak.redirect_uri = f"{hub.url}/hub/oauth_callback"
    hub.start()
    yield hub
    hub.stop()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("Debian's chromium and chromium-driver are required for the browser tests")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--window-size=1200,1000",
    ):
        options.add_argument(flag)
    # An explicit driver path keeps Selenium from looking for one on the network.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
