"""The hub's ClusterRole against what KubeSpawner really calls.

The hub's spawner (eodh_jpyauth's KubeSpawner 7.1, configured by hub/extra_config as the
chart loads it) runs its real start / poll / stop / delete_forever code against a fake
Kubernetes API on 127.0.0.1 that authorizes every request with the ClusterRole each stack
declares (tests/support/fake_kubernetes.py): anything the role does not grant is a 403, as
RBAC answers. The role must let every step succeed, and grant nothing that no step used.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.config import kube_config
from kubespawner.clients import load_config
from traitlets.config import Config

from eodh_jupyterhub.offline import Recording
from tests.support.fake_kubernetes import FakeKubernetes, rules_table
from tests.support.hub_config import load_hub_config
from tests.support.recordings import recording_for

CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"

# resource -> verbs, written out by hand from KubeSpawner 7.1.0's calls (components/rbac.py
# names each call). No namespace delete, no PVC delete, no pod get, no Secrets/Services.
EXPECTED_RULES = {
    "events": ["list", "watch"],
    "namespaces": ["create"],
    "persistentvolumeclaims": ["create", "get"],
    "pods": ["create", "delete", "list", "watch"],
}


def test_hub_cluster_role_is_exactly_the_spawner_table(recording: Recording) -> None:
    (role,) = recording.of_type(CLUSTER_ROLE)
    assert role.inputs["metadata"]["name"] == "hub"
    assert rules_table(role.inputs["rules"]) == EXPECTED_RULES


class _User:
    """What KubeSpawner reads from the hub's User object while spawning."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.id = abs(hash(name)) % 10_000
        self.url = f"/notebooks/user/{name}/"
        self.escaped_name = name


class _Hub:
    public_host = ""
    url = "http://hub.jupyter.svc.cluster.local:8081/notebooks/hub/"
    base_url = "/notebooks/hub/"
    api_url = "http://hub.jupyter.svc.cluster.local:8081/notebooks/hub/api"


@functools.cache
def _spawner_config() -> Config:
    """The hub's spawner settings: the chart's (vendor/jupyterhub-4.2.0/files/hub/
    jupyterhub_config.py, default values) then hub/extra_config, as the hub runs them."""
    config = Config()
    # Chart defaults: singleuser.storage.type dynamic -> storage_pvc_ensure; singleuser.events
    # true -> events_enabled. Short timeouts keep a refused call from hanging the test.
    config.KubeSpawner.storage_pvc_ensure = True
    config.KubeSpawner.events_enabled = True
    config.KubeSpawner.image = "public.ecr.aws/eodh/eodh-default-notebook:python-3.12-0.2.11"
    config = load_hub_config(config=config)["c"]
    config.KubeSpawner.k8s_api_request_timeout = 5
    config.KubeSpawner.k8s_api_request_retry_timeout = 10
    config.KubeSpawner.start_timeout = 10
    config.KubeSpawner.delete_grace_period = 0
    return config


async def _lifecycle(fake: FakeKubernetes, config: Config) -> list[str]:
    """First spawn of a workspace, a second member joining it, a quota-limited workspace,
    then stop and user deletion: everything the hub does with KubeSpawner."""
    from eodh_jpyauth.spawners import KubeSpawner

    steps: list[str] = []
    # Reflectors are class-level and shared by every KubeSpawner in the process: one left by
    # an earlier test watches another (gone) API server and would never see these pods.
    for reflector in list(KubeSpawner.reflectors.values()):
        await reflector.stop()
    KubeSpawner.reflectors.clear()

    def spawner(user: str, workspace: str, state: dict[str, Any] | None = None) -> Any:
        s = KubeSpawner(
            config=config,
            user=_User(user),
            hub=_Hub(),
        )
        s.api_token = "fake-server-token"
        s.oauth_client_id = f"jupyterhub-user-{user}"
        if state is not None:
            s.load_state(state)
        s.user_options = {"workspace": workspace}
        return s

    try:
        alice = spawner("alice", "alpha")
        url = await alice.start()
        steps.append(f"start alice: {url}")
        assert await alice.poll() is None, "alice's server should be running"
        state = alice.get_state()
        assert state["namespace"] == "ws-alpha" and state["pvc_name"] == "pvc-alpha"

        # A second member of the same workspace: namespace and PVC exist (409 twice).
        bob = spawner("bob", "alpha")
        await bob.start()
        steps.append("start bob in the same workspace")

        # A workspace namespace under a ResourceQuota: creating the PVC is refused with 403,
        # then KubeSpawner reads it to see whether it exists already.
        fake.objects.setdefault("namespaces", {})[(None, "ws-beta")] = {
            "metadata": {"name": "ws-beta"}
        }
        fake.objects.setdefault("persistentvolumeclaims", {})[("ws-beta", "pvc-beta")] = {
            "metadata": {"name": "pvc-beta", "namespace": "ws-beta"}
        }
        fake.quota_exceeded.add("ws-beta")
        carol = spawner("carol", "beta")
        await carol.start()
        steps.append("start carol under a quota")

        for member in (alice, bob, carol):
            await member.stop()
            assert await member.poll() is not None
        steps.append("stop all")

        # Deleting a hub user: the hub calls delete_forever on each of their stopped spawners.
        await spawner("alice", "alpha", state).delete_forever()
        steps.append("delete alice")
        return steps
    finally:
        for reflector in list(KubeSpawner.reflectors.values()):
            await reflector.stop()
        KubeSpawner.reflectors.clear()


def _run(rules: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    leftovers: list[dict[str, Any]] = []

    async def scenario() -> tuple[FakeKubernetes, list[str] | BaseException]:
        # Futures a refused scenario leaves unretrieved report to the loop's handler when
        # collected; the default handler logs a traceback, which CPython 3.11 builds with
        # ast.parse, and a collection inside another ast.parse (pytest's import rewriting)
        # then corrupts the interpreter's AST recursion counter (SystemError). Keep them.
        asyncio.get_running_loop().set_exception_handler(
            lambda _, context: leftovers.append(context)
        )
        fake = await FakeKubernetes(rules).start()
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(json.dumps(fake.kubeconfig()))
        # kubernetes_asyncio reads $KUBECONFIG once, at import, which may already be done.
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
        try:
            return fake, await asyncio.wait_for(_lifecycle(fake, _spawner_config()), 60)
        except Exception as error:  # a refused call surfaces as the spawner's own error
            return fake, error
        finally:
            await fake.stop()

    def halt(code: object = None) -> None:
        raise RuntimeError(f"the hub would halt (sys.exit({code}))")

    # A reflector that cannot list or watch halts the whole hub when user namespaces are on
    # (KubeSpawner._start_reflector); here that must fail the scenario, not pytest.
    monkeypatch.setattr(sys, "exit", halt)
    # KubeSpawner reads the kubeconfig once per process (lru_cache): make it read this one,
    # and let whoever comes next read their own.
    load_config.cache_clear()
    try:
        return asyncio.run(scenario())
    finally:
        load_config.cache_clear()
        gc.collect()


def test_kubespawner_lifecycle_needs_exactly_the_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One stack is enough here: the table test above shows every stack declares the same role.
    (role,) = recording_for("dev").of_type(CLUSTER_ROLE)
    fake, outcome = _run(role.inputs["rules"], tmp_path, monkeypatch)
    assert not fake.refused(), f"the role refused: {fake.refused()}"
    assert not isinstance(outcome, BaseException), repr(outcome)
    assert len(outcome) == 5
    # Granted but never called by any step: more than KubeSpawner needs.
    assert fake.grants() - fake.used() == set()
    # The PVCs survive every step, user deletion included.
    assert set(fake.objects["persistentvolumeclaims"]) == {
        ("ws-alpha", "pvc-alpha"),
        ("ws-beta", "pvc-beta"),
    }
    assert fake.objects["pods"] == {}


@pytest.mark.parametrize(
    ("resource", "verb"),
    [
        ("namespaces", "create"),
        ("pods", "create"),
        ("pods", "delete"),
        ("pods", "watch"),
        ("persistentvolumeclaims", "create"),
        ("persistentvolumeclaims", "get"),
        ("events", "list"),
    ],
)
def test_the_lifecycle_fails_without_each_grant(
    resource: str, verb: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scenario is sharp enough to need each grant: drop one and a call is refused."""
    rules = [
        {
            "apiGroups": [""],
            "resources": [r],
            "verbs": [v for v in verbs if (r, v) != (resource, verb)],
        }
        for r, verbs in EXPECTED_RULES.items()
    ]
    fake, _ = _run(rules, tmp_path, monkeypatch)
    assert (verb, resource) in {(c.verb, c.resource) for c in fake.refused()}
