"""Pod names with named servers: one pod per server, never shared by two users or servers.

Each server of each user gets its own pod in its workspace's namespace; a name Kubernetes
would refuse (over 63 characters) or one two users could share would break a launch or
stop someone else's server. Names come from the production spawner's own expansion.
"""

from __future__ import annotations

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
