"""The fakes fail the way the real services do, and the hub's clients read them right.

Keycloak: the pre-spawn exchange against each outage (ingress-nginx's 503 page with no
Keycloak behind it, a refusing realm, a slow realm) fails the spawn with a message the
user can act on, and the next spawn after the outage succeeds with nothing restarted.
Kubernetes: each injected answer carries the API server's Status body, and the
kubernetes_asyncio client the spawner uses turns a watch expiry into its 410.
"""

from __future__ import annotations

import asyncio
import json
import re

import aiohttp
import pytest
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.watch import Watch
from tornado import web

from tests.hub.fake_keycloak import (
    EXCHANGE_GRANT,
    KEYCLOAK_DOWN,
    KEYCLOAK_REFUSING,
    SESSION_NOT_ACTIVE,
)
from tests.support.fake_kubernetes import ApiFault, FakeKubernetes

RULES = [{"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["*"]}]


def _spawner(make_spawner, user="alice", workspace="alpha"):
    spawner = make_spawner(user)
    spawner.user_options = {"workspace": workspace, "profile": "eodh"}
    return spawner


@pytest.mark.parametrize(
    ("outage", "expected"),
    [
        (KEYCLOAK_DOWN, r"the login service is unavailable \(HTTP 503\); this is not a problem"),
        (
            KEYCLOAK_REFUSING,
            r"refused the token exchange \(HTTP 403, access_denied: "
            r"Client not allowed to exchange\)",
        ),
    ],
    ids=["down", "refusing"],
)
def test_a_keycloak_outage_fails_the_spawn_clearly_and_the_next_one_works(
    run, make_spawner, kc, outage, expected
):
    kc.outage = outage
    with pytest.raises(web.HTTPError) as failure:
        run(_spawner(make_spawner).run_pre_spawn_hook())
    assert failure.value.status_code == 502
    assert str(failure.value).startswith("Could not get access to workspace 'alpha': ")
    assert str(failure.value).endswith("Please try again.")
    assert re.search(expected, str(failure.value))

    kc.outage = None
    spawner = _spawner(make_spawner)
    run(spawner.run_pre_spawn_hook())
    assert kc.decode(spawner.environment["S3CONTENTS_WORKSPACE_ACCESS_TOKEN"])["workspace"] == (
        "alpha"
    )


def test_a_slow_keycloak_is_cut_off_at_the_exchange_timeout(run, make_spawner, kc, hub_ns):
    kc.latency = 0.6
    hub_ns["EODH_EXCHANGE_TIMEOUT_SECONDS"] = 0.2
    with pytest.raises(web.HTTPError, match=r"did not answer the token exchange within 0\.2 s"):
        run(_spawner(make_spawner).run_pre_spawn_hook())
    assert kc.grants(EXCHANGE_GRANT), "the exchange reached Keycloak"


def test_an_ended_keycloak_session_asks_the_user_to_log_in_again(run, make_spawner, kc):
    # A login token about to expire makes the hook refresh first; the refresh is refused.
    kc.user_token_lifetime = 30
    spawner = _spawner(make_spawner)
    kc.outage = SESSION_NOT_ACTIVE
    with pytest.raises(web.HTTPError, match="could not be renewed; log out and log in again"):
        run(spawner.run_pre_spawn_hook())
    assert not kc.grants(EXCHANGE_GRANT), "no exchange with a token about to expire"


def test_a_keycloak_outage_answers_with_its_documented_bodies(kc):
    import requests

    kc.outage = KEYCLOAK_DOWN
    down = requests.post(f"{kc.issuer}/protocol/openid-connect/token", timeout=5)
    assert down.status_code == 503
    assert down.headers["Content-Type"] == "text/html"
    assert "<title>503 Service Temporarily Unavailable</title>" in down.text

    kc.outage = KEYCLOAK_REFUSING
    # Only the exchange grant is refused: a refresh still reaches the realm's own checks.
    refresh = requests.post(
        f"{kc.issuer}/protocol/openid-connect/token",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        timeout=5,
    )
    assert refresh.json() == {"error": "unauthorized_client"}
    refused = requests.post(
        f"{kc.issuer}/protocol/openid-connect/token",
        data={"grant_type": EXCHANGE_GRANT},
        timeout=5,
    )
    assert (refused.status_code, refused.json()) == (
        403,
        {"error": "access_denied", "error_description": "Client not allowed to exchange"},
    )


def _kube(scenario):
    async def main():
        fake = await FakeKubernetes(RULES).start()
        try:
            async with aiohttp.ClientSession(fake.url) as http:
                return await scenario(fake, http)
        finally:
            await fake.stop()

    return asyncio.run(main())


NAMESPACE = {"metadata": {"name": "ws-alpha"}}
POD = {
    "metadata": {"name": "jupyter-alice"},
    "spec": {"containers": [{"name": "notebook", "image": "example/notebook:1"}]},
}


def test_injected_api_errors_carry_the_api_servers_status_bodies():
    async def scenario(fake, http):
        await http.post("/api/v1/namespaces", json=NAMESPACE)
        fake.faults += [
            ApiFault("create", "pods", 429, retry_after=3),
            ApiFault("create", "pods", 500),
            ApiFault("create", "pods", 409),
        ]
        answers = []
        for _ in range(4):
            async with http.post("/api/v1/namespaces/ws-alpha/pods", json=POD) as response:
                answers.append((response.status, response.headers, await response.json()))
        return fake, answers

    fake, answers = _kube(scenario)
    (throttled, headers, body), (failed, _, error), (conflict, _, clash), (created, _, pod) = (
        answers
    )
    assert (throttled, headers["Retry-After"]) == (429, "3")
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert (body["reason"], body["code"]) == ("TooManyRequests", 429)
    assert body["details"] == {"retryAfterSeconds": 3}
    assert (failed, error["reason"], error["code"]) == (500, "InternalError", 500)
    assert (conflict, clash["reason"]) == (409, "Conflict")
    assert "the object has been modified" in clash["message"]
    # Each fault answered once and stored nothing; then the pod is created.
    assert created == 201 and pod["metadata"]["name"] == "jupyter-alice"
    assert [c.verb for c in fake.faulted] == ["create"] * 3
    assert list(fake.objects["pods"]) == [("ws-alpha", "jupyter-alice")]


def test_a_slow_kubelet_reports_the_pod_running_later_on_the_watch():
    async def scenario(fake, http):
        fake.pod_ready_after = 0.2
        await http.post("/api/v1/namespaces", json=NAMESPACE)
        async with http.get("/api/v1/pods") as listing:
            version = (await listing.json())["metadata"]["resourceVersion"]
        async with http.post("/api/v1/namespaces/ws-alpha/pods", json=POD) as created:
            pending = (await created.json())["status"]
        async with http.get(f"/api/v1/pods?watch=1&resourceVersion={version}") as watch:
            added = json.loads(await asyncio.wait_for(watch.content.readline(), 5))
            modified = json.loads(await asyncio.wait_for(watch.content.readline(), 5))
        return pending, added, modified

    pending, added, modified = _kube(scenario)
    assert pending == {"phase": "Pending", "podIP": None, "conditions": []}
    assert added["type"] == "ADDED"
    assert modified["type"] == "MODIFIED"
    assert modified["object"]["status"]["phase"] == "Running"
    assert modified["object"]["status"]["containerStatuses"][0]["ready"] is True


def test_an_expired_watch_is_a_410_to_the_kubernetes_client():
    async def scenario(fake, http):
        async with http.get("/api/v1/pods") as listing:
            version = (await listing.json())["metadata"]["resourceVersion"]
        async with http.get(f"/api/v1/pods?watch=1&resourceVersion={version}") as watch:
            await asyncio.sleep(0.05)  # let the watch register before compacting
            assert fake.expire_watches() == 1
            line = await asyncio.wait_for(watch.content.readline(), 5)
            ended = await asyncio.wait_for(watch.content.read(), 5)
        # A new watch from the compacted version is refused at once.
        async with http.get(f"/api/v1/pods?watch=1&resourceVersion={version}") as again:
            stale = json.loads(await asyncio.wait_for(again.content.readline(), 5))
        # kubernetes_asyncio's Watch (KubeSpawner's reflector) raises it as an ApiException.
        try:
            Watch().unmarshal_event(line.decode(), None)
        except ApiException as raised:
            status = raised.status
        return line, ended, stale, status

    line, ended, stale, status = _kube(scenario)
    event = json.loads(line)
    assert event["type"] == "ERROR"
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")
    assert event["object"]["message"].startswith("too old resource version: ")
    assert ended == b"", "the stream ends after the error"
    assert stale == event
    assert status == 410
