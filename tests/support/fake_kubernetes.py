"""A small Kubernetes core/v1 API on 127.0.0.1 that authorizes every request against RBAC rules.

Enough of the API server for KubeSpawner: namespaces, pods, persistent volume claims and
events, with list, watch, get, create and delete; and cluster-scoped persistent volumes, for
the smoke check's reads. It refuses what the real server refuses:
a verb or resource the rules do not grant (403 Forbidden, as RBAC does), an object in a
namespace that does not exist (404 NotFound), a name already taken (409 AlreadyExists),
a missing object (404). Every request is recorded as (verb, resource) whether or not it
was allowed, so a test can compare what a client called with what a role grants.

A request is made as the hub (`subject`, bound to `rules`) unless its bearer token is one
of `callers` (token -> the user and its rules), which lets another identity (the deploy
identity of tools/smoke.py) read with its own rules while the hub's stay as they are; the
API server authenticates each request on its own and authorizes it for that user alone.

Verbs follow the API server's request-info rules (k8s.io/apiserver
pkg/endpoints/request/requestinfo.go): GET on a collection is `list`, or `watch` when its
`watch` parameter is anything but false/0; GET on a named object is `get`; POST `create`;
PUT `update`; PATCH `patch`; DELETE on a named object `delete`, on a collection
`deletecollection`.

SubjectAccessReviews (authorization.k8s.io/v1, POST only, as the API server serves them: the
review is answered with 201 and never stored) are decided with the same rules for `subject`
and refused for anyone else; a review without a user or group, or with other than exactly
one of resourceAttributes / nonResourceAttributes, is 422 Invalid, as the server's validation
(pkg/apis/authorization/validation) answers. They are recorded in `reviews`, not `calls`.

Created pods are reported Running and ready at once (there is no kubelet); watchers get
ADDED/DELETED events as JSON lines, as the real watch stream sends them, starting after the
`resourceVersion` they ask for (a list's version), so nothing between a list and its watch
is lost: that is how the real server lets a reflector list, then watch, without a gap.

Faults, all off by default (bench/load and tests/hub/test_load_faults.py use them), each
answered the way the API server answers, with its Status body
(k8s.io/apimachinery pkg/apis/meta/v1/types.go, StatusReason*):
- ``latency``: seconds added to every request; ``pod_ready_after``: a created pod is
  Pending (no IP, not ready) and turns Running that many seconds later, with a MODIFIED
  watch event, as a kubelet reports it.
- ``faults``: ApiFault entries answer the next matching requests with 429 TooManyRequests
  (a ``Retry-After`` header and ``details.retryAfterSeconds``, as API Priority and
  Fairness rejects; k8s.io/apiserver pkg/server/filters/maxinflight.go answers "Too many
  requests, please try again later." with Retry-After 1), 500 InternalError, 409 Conflict
  or 503 ServiceUnavailable. A faulted request is recorded and changes nothing.
- ``expire_watches()``: every open watch gets an ERROR event whose object is a 410
  Expired Status ("too old resource version") and ends, as when etcd compacts the
  history; a later watch from a version at or below the compaction point gets the same.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# Core-group resources this fake serves; anything else is a 404 like an unknown resource.
NAMESPACED = {"pods", "persistentvolumeclaims", "events", "services", "secrets", "endpoints"}
CLUSTER_SCOPED = {"namespaces", "persistentvolumes"}
KINDS = {
    "namespaces": "Namespace",
    "persistentvolumes": "PersistentVolume",
    "pods": "Pod",
    "persistentvolumeclaims": "PersistentVolumeClaim",
    "events": "Event",
    "services": "Service",
    "secrets": "Secret",
    "endpoints": "Endpoints",
}


# The reason the API server gives for each status code (StatusReason* in types.go).
STATUS_REASONS = {
    409: "Conflict",
    410: "Expired",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}
_FAULT_MESSAGES = {
    409: "Operation cannot be fulfilled on {resource} {name!r}: the object has been "
    "modified; please apply your changes to the latest version and try again",
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: etcdserver: request timed out",
    503: "the server is currently unable to handle the request",
}


@dataclass
class ApiFault:
    """Answer the next ``times`` requests matching (verb, resource) with ``status``."""

    verb: str
    resource: str
    status: int
    times: int = 1
    retry_after: int = 1

    def matches(self, verb: str, resource: str) -> bool:
        return self.times > 0 and (self.verb, self.resource) == (verb, resource)


@dataclass(frozen=True)
class Call:
    verb: str
    resource: str
    namespace: str | None
    name: str | None
    allowed: bool


@dataclass
class FakeKubernetes:
    """Serve on 127.0.0.1 for the subject bound to `rules` (a ClusterRole's rules)."""

    rules: list[Mapping[str, Any]]
    calls: list[Call] = field(default_factory=list)
    objects: dict[str, dict[tuple[str | None, str], dict[str, Any]]] = field(default_factory=dict)
    quota_exceeded: set[str] = field(default_factory=set)
    """Namespaces where creating a PVC fails with 403 as an exhausted ResourceQuota does."""
    subject: str = "system:serviceaccount:jupyter:hub"
    """The user the rules are bound to (what SubjectAccessReviews are decided for)."""
    reviews: list[dict[str, Any]] = field(default_factory=list)
    callers: dict[str, tuple[str, list[Mapping[str, Any]]]] = field(default_factory=dict)
    """Bearer token -> (user, rules) for identities other than the hub."""
    latency: float = 0.0
    pod_ready_after: float = 0.0
    faults: list[ApiFault] = field(default_factory=list)
    faulted: list[Call] = field(default_factory=list)
    """Requests answered by a fault instead of the store."""

    def __post_init__(self) -> None:
        self._compacted = 0
        self._versions = itertools.count(1)
        self._watchers: dict[str, list[asyncio.Queue[dict[str, Any] | None]]] = {}
        self._history: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- authorization ------------------------------------------------------------------
    def granted(
        self, verb: str, resource: str, rules: Iterable[Mapping[str, Any]] | None = None
    ) -> bool:
        for rule in self.rules if rules is None else rules:
            if "" not in rule["apiGroups"] and "*" not in rule["apiGroups"]:
                continue
            if resource not in rule["resources"] and "*" not in rule["resources"]:
                continue
            if verb in rule["verbs"] or "*" in rule["verbs"]:
                return True
        return False

    def grants(self) -> set[tuple[str, str]]:
        """Every (verb, resource) the rules name (core group only)."""
        return {
            (verb, resource)
            for rule in self.rules
            if "" in rule["apiGroups"]
            for resource in rule["resources"]
            for verb in rule["verbs"]
        }

    def used(self) -> set[tuple[str, str]]:
        return {(c.verb, c.resource) for c in self.calls}

    def refused(self) -> list[Call]:
        return [c for c in self.calls if not c.allowed]

    # -- server -------------------------------------------------------------------------
    async def start(self) -> FakeKubernetes:
        app = web.Application()
        app.router.add_route("*", "/api/v1/{tail:.*}", self._handle)
        app.router.add_route(
            "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", self._review
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        assert sockets
        port = sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        for queues in self._watchers.values():
            for queue in queues:
                queue.put_nowait(None)
        if self._runner:
            await self._runner.cleanup()

    def kubeconfig(self, token: str = "fake-hub-service-account") -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "hub", "user": {"token": token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "hub"}}],
            "current-context": "fake",
        }

    # -- request handling ---------------------------------------------------------------
    @staticmethod
    def _parse(method: str, tail: str, query: Mapping[str, str]) -> tuple[str, str, Any, Any]:
        parts = [p for p in tail.split("/") if p]
        namespace: str | None = None
        name: str | None = None
        if parts[:1] == ["namespaces"] and len(parts) >= 3:
            namespace, resource, *rest = parts[1:]
            name = rest[0] if rest else None
        else:
            resource, *rest = parts
            name = rest[0] if rest else None
        if method in ("GET", "HEAD"):
            if name:
                verb = "get"
            elif "watch" in query and query["watch"].lower() not in ("false", "0"):
                verb = "watch"
            else:
                verb = "list"
        elif method == "POST":
            verb = "create"
        elif method == "PUT":
            verb = "update"
        elif method == "PATCH":
            verb = "patch"
        elif method == "DELETE":
            verb = "delete" if name else "deletecollection"
        else:
            verb = method.lower()
        return verb, resource, namespace, name

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        verb, resource, namespace, name = self._parse(
            request.method, request.match_info["tail"], request.query
        )
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        user, rules = self.callers.get(token, (self.subject, self.rules))
        allowed = self.granted(verb, resource, rules)
        self.calls.append(Call(verb, resource, namespace, name, allowed))
        if resource not in NAMESPACED | CLUSTER_SCOPED:
            return _status(404, "NotFound", f"the server could not find resource {resource}")
        if not allowed:
            scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
            return _status(
                403,
                "Forbidden",
                f'{resource} is forbidden: User "{user}" cannot '
                f'{verb} resource "{resource}" in API group "" {scope}',
            )
        if self.latency:
            await asyncio.sleep(self.latency)
        fault = next((f for f in self.faults if f.matches(verb, resource)), None)
        if fault is not None:
            fault.times -= 1
            self.faulted.append(Call(verb, resource, namespace, name, allowed))
            return _fault_response(fault, resource, name)
        store = self.objects.setdefault(resource, {})
        if verb in ("list", "watch"):
            items = [
                obj
                for (ns, _), obj in sorted(store.items(), key=lambda kv: str(kv[0]))
                if namespace is None or ns == namespace
            ]
            items = [o for o in items if _matches(o, request.query.get("fieldSelector", ""))]
            if verb == "list":
                return web.json_response(
                    {
                        "kind": f"{KINDS[resource]}List",
                        "apiVersion": "v1",
                        "metadata": {"resourceVersion": str(next(self._versions))},
                        "items": items,
                    }
                )
            return await self._watch(request, resource, namespace)
        if namespace is not None and (None, namespace) not in self.objects.get("namespaces", {}):
            return _status(404, "NotFound", f'namespaces "{namespace}" not found')
        if verb == "create":
            body = await request.json()
            obj_name = body["metadata"]["name"]
            # Admission (ResourceQuota) runs before storage: a claim over quota is refused
            # with 403 even when one of that name exists, which is why KubeSpawner reads it.
            if resource == "persistentvolumeclaims" and namespace in self.quota_exceeded:
                return _status(
                    403, "Forbidden", f'exceeded quota: persistentvolumeclaims in "{namespace}"'
                )
            if (namespace, obj_name) in store:
                return _status(409, "AlreadyExists", f'{resource} "{obj_name}" already exists')
            obj = self._materialise(resource, namespace, body)
            store[(namespace, obj_name)] = obj
            self._notify(resource, "ADDED", obj)
            return web.json_response(obj, status=201)
        key = (namespace, name)
        if key not in store:
            return _status(404, "NotFound", f'{resource} "{name}" not found')
        if verb == "get":
            return web.json_response(store[key])
        if verb == "delete":
            obj = store.pop(key)
            # Deleting is a change too: it gets a version of its own.
            obj["metadata"] = {**obj["metadata"], "resourceVersion": str(next(self._versions))}
            self._notify(resource, "DELETED", obj)
            return web.json_response(obj)
        return _status(405, "MethodNotAllowed", f"{verb} is not served by this fake")

    async def _review(self, request: web.Request) -> web.Response:
        body = await request.json()
        spec = body.get("spec") or {}
        kinds = ("resourceAttributes" in spec) + ("nonResourceAttributes" in spec)
        if body.get("kind") != "SubjectAccessReview" or not (
            spec.get("user") or spec.get("groups")
        ):
            return _status(422, "Invalid", "at least one of user or group must be specified")
        if kinds != 1:
            return _status(
                422, "Invalid", "exactly one of nonResourceAttributes or resourceAttributes"
            )
        self.reviews.append(spec)
        attributes = spec.get("resourceAttributes") or {}
        allowed = (
            spec.get("user") == self.subject
            and attributes.get("group", "") == ""
            and self.granted(attributes.get("verb", ""), attributes.get("resource", ""))
        )
        answer = {**body, "status": {"allowed": allowed}}
        return web.json_response(answer, status=201)

    def _materialise(self, resource: str, namespace: str | None, body: dict[str, Any]) -> dict:
        obj = dict(body)
        obj["apiVersion"] = "v1"
        obj["kind"] = KINDS[resource]
        metadata = dict(obj.get("metadata") or {})
        metadata.update(uid=str(uuid.uuid4()), resourceVersion=str(next(self._versions)))
        if namespace is not None:
            metadata["namespace"] = namespace
        obj["metadata"] = metadata
        if resource == "pods" and self.pod_ready_after:
            obj["status"] = {"phase": "Pending", "podIP": None, "conditions": []}
            asyncio.get_running_loop().call_later(
                self.pod_ready_after, self._pod_started, namespace, metadata["name"]
            )
        elif resource == "pods":
            obj["status"] = self._running_status(obj)
        if resource == "persistentvolumeclaims":
            obj["status"] = {"phase": "Bound"}
        return obj

    @staticmethod
    def _running_status(obj: dict[str, Any]) -> dict[str, Any]:
        containers = obj.get("spec", {}).get("containers", [])
        return {
            "phase": "Running",
            "podIP": "127.0.0.1",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c["image"],
                    "imageID": f"{c['image']}@sha256:{'0' * 64}",
                    "ready": True,
                    "restartCount": 0,
                    "started": True,
                    "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                }
                for c in containers
            ],
        }

    def _pod_started(self, namespace: str | None, name: str) -> None:
        """The kubelet's report: Pending -> Running, a new version and a MODIFIED event."""
        pod = self.objects.get("pods", {}).get((namespace, name))
        if pod is None or pod["status"].get("phase") != "Pending":
            return
        pod["status"] = self._running_status(pod)
        pod["metadata"] = {**pod["metadata"], "resourceVersion": str(next(self._versions))}
        self._notify("pods", "MODIFIED", pod)

    def expire_watches(self) -> int:
        """Compact the history now: open watches get 410 Expired and end. Returns how many."""
        self._compacted = next(self._versions)
        expired = 0
        for queues in self._watchers.values():
            for queue in queues:
                queue.put_nowait(_EXPIRED)
                expired += 1
        return expired

    def _notify(self, resource: str, kind: str, obj: dict[str, Any]) -> None:
        event = {"type": kind, "object": obj}
        version = int(obj["metadata"]["resourceVersion"])
        self._history.setdefault(resource, []).append((version, event))
        for queue in self._watchers.get(resource, []):
            queue.put_nowait(event)

    async def _watch(
        self, request: web.Request, resource: str, namespace: str | None
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        since = int(request.query.get("resourceVersion") or 0)
        if since and since <= self._compacted:
            queue.put_nowait(_EXPIRED)
        for version, past in self._history.get(resource, []):
            if since and version > since:
                queue.put_nowait(past)
        self._watchers.setdefault(resource, []).append(queue)
        try:
            while (event := await queue.get()) is not None:
                if event is _EXPIRED:
                    expired = _status_body(
                        410,
                        "Expired",
                        f"too old resource version: {since} ({self._compacted})",
                    )
                    await response.write(
                        json.dumps({"type": "ERROR", "object": expired}).encode() + b"\n"
                    )
                    break
                obj_namespace = event["object"]["metadata"].get("namespace")
                if namespace is None or obj_namespace == namespace:
                    await response.write(json.dumps(event).encode() + b"\n")
        finally:
            self._watchers[resource].remove(queue)
        return response


def _matches(obj: Mapping[str, Any], field_selector: str) -> bool:
    for term in filter(None, field_selector.split(",")):
        path, _, expected = term.partition("=")
        node: Any = obj
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node != expected:
            return False
    return True


_EXPIRED: dict[str, Any] = {"type": "ERROR"}  # a marker put on watch queues


def _status_body(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def _status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response(_status_body(code, reason, message), status=code)


def _fault_response(fault: ApiFault, resource: str, name: str | None) -> web.Response:
    message = _FAULT_MESSAGES[fault.status].format(resource=resource, name=name or "")
    if fault.status == 429:
        body = _status_body(429, "TooManyRequests", message, retryAfterSeconds=fault.retry_after)
        return web.json_response(body, status=429, headers={"Retry-After": str(fault.retry_after)})
    return _status(fault.status, STATUS_REASONS[fault.status], message)


@dataclass
class ThreadedApi:
    """A FakeKubernetes served from its own event loop in a thread (see serving_in_thread)."""

    fake: FakeKubernetes
    loop: asyncio.AbstractEventLoop

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the fake's loop (watch queues belong to it) and return."""

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)


@contextmanager
def serving_in_thread(fake: FakeKubernetes) -> Iterator[ThreadedApi]:
    """Serve ``fake`` from its own event loop in a thread, for a client in another process
    (the real hub). Fault settings may be changed from the caller's thread."""
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(fake.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="fake-kubernetes", daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("the fake Kubernetes API did not start")
    try:
        yield ThreadedApi(fake, loop)
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def rules_table(rules: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """resource -> sorted verbs, for comparing a role with a literal table."""
    table: dict[str, set[str]] = {}
    for rule in rules:
        assert rule["apiGroups"] == [""], rule
        for resource in rule["resources"]:
            table.setdefault(resource, set()).update(rule["verbs"])
    return {resource: sorted(verbs) for resource, verbs in sorted(table.items())}
