"""Pod names with named servers: one pod per server, never shared by two users or servers.

Each server of each user gets its own pod in its workspace's namespace; a name Kubernetes
would refuse (over 63 characters) or one two users could share would break a launch or
stop someone else's server. Names come from the production spawner's own expansion.
"""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace

import pytest

from tests.hub.conftest import FakeUser

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")

LONG = "a" * 60
USERS = [
    "alice",
    "alice-b",
    LONG,
    LONG + "b",
    LONG + "c",
    "a" * 47 + "-x",
    "Alice.Smith@example.org",
    "alice.smith-example-org",
]
SERVERS = [
    "",
    "ndvi-notebook_123456",
    "ndvi-notebook_123457",
    "b",
    "x" * 70,
    "x" * 70 + "y",
]


@pytest.fixture
def pod_name(make_spawner, run):
    def name(username: str, server: str, workspace: str = "alpha") -> str:
        spawner = make_spawner(username, auth_state=None)
        spawner.user = FakeUser(username, None)
        # Spawner.name reads the server's database row; only its name matters here.
        spawner.orm_spawner = SimpleNamespace(name=server, server=None, state=None)
        spawner.user_options = {"workspace": workspace}
        run(spawner.load_user_options())
        assert spawner.namespace == f"ws-{workspace}"
        return spawner.pod_name

    return name


def test_every_user_and_server_has_its_own_valid_pod_name(pod_name) -> None:
    names = {(u, s): pod_name(u, s) for u in USERS for s in SERVERS}
    for key, name in names.items():
        assert DNS_LABEL.fullmatch(name), (key, name)
    # Shortened long names end in a hash of the full user and server names.
    assert len(set(names.values())) == len(names)


def test_a_launch_server_name_and_the_default_server_read_plainly(pod_name) -> None:
    assert pod_name("alice", "") == "jupyter-alice"
    assert pod_name("alice", "ndvi-notebook_123456").startswith("jupyter-alice--ndvi-notebook")


class _Server:
    """The parts of a Spawner the replacement rule reads."""

    def __init__(self, name: str, workspace: str, ready=False, pending=None, claim=None):
        self.name = name
        self.user_options = {"workspace": workspace}
        self.ready = ready
        self.pending = pending
        self._eodh_workspace_claim = claim


class _User:
    def __init__(self, servers: list[_Server]):
        self.name = "alice"
        self.spawners = {s.name: s for s in servers}
        self.stopped: list[str] = []
        self.routes_deleted: list[str] = []
        self.settings = {"proxy": self}

    async def delete_user(self, user, name):
        self.routes_deleted.append(name)

    async def stop(self, name):
        # The route is gone before the server stops, as JupyterHub's own stop does it.
        assert name in self.routes_deleted
        self.stopped.append(name)


def _starting(user: _User, name: str, workspace: str) -> _Server:
    spawner = _Server(name, workspace, pending="spawn")
    spawner.user = user
    spawner.log = logging.getLogger("test")
    user.spawners[name] = spawner
    return spawner


def test_starting_a_server_stops_only_the_users_ready_server_in_that_workspace(hub_ns, run) -> None:
    user = _User(
        [
            _Server("old", "alpha", ready=True),
            _Server("other-workspace", "beta", ready=True),
            _Server("stopped", "alpha"),
        ]
    )
    new = _starting(user, "new", "alpha")
    run(hub_ns["eodh_replace_same_workspace_servers"](new, "alpha"))
    assert user.stopped == ["old"]
    assert new._eodh_workspace_claim == "alpha"


def test_a_second_start_into_a_workspace_already_starting_is_refused(hub_ns, run) -> None:
    user = _User([_Server("first", "alpha", pending="spawn", claim="alpha")])
    second = _starting(user, "second", "alpha")
    with pytest.raises(hub_ns["SpawnRefused"]) as refused:
        run(hub_ns["eodh_replace_same_workspace_servers"](second, "alpha"))
    assert refused.value.status_code == 409
    assert "already starting in workspace 'alpha'" in refused.value.message
    assert user.stopped == [] and second._eodh_workspace_claim is None
    # A start still before its own check (no claim yet) does not block: it will meet this one.
    user.spawners["first"]._eodh_workspace_claim = None
    run(hub_ns["eodh_replace_same_workspace_servers"](second, "alpha"))
    assert second._eodh_workspace_claim == "alpha"


def test_a_start_from_a_link_stops_nothing_and_is_refused(hub_ns, run) -> None:
    # Any site can send the browser to a launch link; it must not stop alice's work.
    user = _User([_Server("old", "alpha", ready=True), _Server("beta", "beta", ready=True)])
    new = _starting(user, "new", "alpha")
    replace = hub_ns["eodh_replace_same_workspace_servers"]
    for refuse in (
        lambda: hub_ns["eodh_refuse_link_over_running_server"](new, "alpha"),
        lambda: run(replace(new, "alpha", stop_running=False)),
    ):
        with pytest.raises(hub_ns["SpawnRefused"]) as refused:
            refuse()
        assert refused.value.status_code == 409
        assert "server 'old' is running in workspace 'alpha'" in refused.value.message
    assert user.stopped == [] and user.routes_deleted == []
    # Where none runs, a link starts as before.
    hub_ns["eodh_refuse_link_over_running_server"](_starting(user, "other", "gamma"), "gamma")


def test_a_stopping_or_stopped_server_claims_no_workspace(hub_ns, run) -> None:
    stopping = _Server("first", "alpha", pending="stop", claim="alpha")
    user = _User([stopping])
    second = _starting(user, "second", "alpha")
    run(hub_ns["eodh_replace_same_workspace_servers"](second, "alpha"))
    assert second._eodh_workspace_claim == "alpha" and user.stopped == []
    # Stopped, the claim is gone: the spawner object stays for the next start.
    hub_ns["c"].KubeSpawner.post_stop_hook(second)
    assert second._eodh_workspace_claim is None


def test_a_home_folder_name_is_path_safe_whatever_the_user_name(hub_ns) -> None:
    subpath = hub_ns["eodh_home_subpath"]
    assert subpath("alpha", "alice", secret=b"k").startswith(".homes/alice-")
    for name in ("../alice", "a/b", "Alice.Smith@example.org", ".."):
        folder = subpath("alpha", name, secret=b"k").removeprefix(".homes/")
        assert "/" not in folder and not folder.startswith("."), (name, folder)
    # Two names with one slug still get two homes.
    assert subpath("alpha", "a/b", secret=b"k") != subpath("alpha", "a-b", secret=b"k")
