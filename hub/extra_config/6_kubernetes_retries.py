# ruff: noqa: F821 - `c` (and earlier files' names) come from the chart's config namespace
"""The spawner retries what the Kubernetes API server asks to be retried.

KubeSpawner 7.1 retries only a timed-out create and a 409 (spawner.py,
_make_create_pod_request / _make_create_pvc_request); any other error from the API
server fails the spawn at once and shows the user the raw client exception: "Spawn
failed: (429) Reason: error HTTP response headers: <CIMultiDictProxy(...)> HTTP response
body: {...}" (make load, and tests/hub/test_load_faults.py). 429 TooManyRequests (API
Priority and Fairness sheds load that way, with Retry-After) and 500/502/503/504 are
transient by the API server's own description (k8s.io/apimachinery
pkg/apis/meta/v1/types.go: StatusReasonTooManyRequests "the client must wait ... and may
always retry"; ServiceUnavailable "retrying the request after some time might succeed").

Here those answers are waited out (Retry-After, at most EODH_K8S_RETRY_AFTER_MAX_SECONDS)
and retried inside KubeSpawner's own backoff, bounded by k8s_api_request_retry_timeout;
if the API still refuses, the user reads "Could not create pod <namespace>/<name>". A 500
on create may hide a pod that was created: the retry then meets 409, which KubeSpawner
already handles by replacing it. Wraps whatever spawner class earlier files configured.
"""

import asyncio

from kubernetes_asyncio.client.rest import ApiException
from traitlets import import_item

EODH_K8S_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
EODH_K8S_RETRY_AFTER_MAX_SECONDS = 10
EODH_K8S_NAMESPACE_ATTEMPTS = 5

_eodh_spawner_base = c.JupyterHub.spawner_class
if isinstance(_eodh_spawner_base, str):
    _eodh_spawner_base = import_item(_eodh_spawner_base)


def eodh_retry_after(error) -> float:
    """Seconds to wait before retrying a transient API error (Retry-After, else 1)."""
    try:
        seconds = float((error.headers or {}).get("Retry-After", 1))
    except (TypeError, ValueError):
        seconds = 1.0
    return min(max(seconds, 0.0), EODH_K8S_RETRY_AFTER_MAX_SECONDS)


class EODHRetryingKubeSpawner(_eodh_spawner_base):
    async def _eodh_transient(self, error, what) -> bool:
        if not isinstance(error, ApiException) or error.status not in EODH_K8S_RETRY_STATUSES:
            return False
        wait = eodh_retry_after(error)
        self.log.warning(
            "Kubernetes answered %s creating %s for %s; retrying in %g s",
            error.status,
            what,
            self._log_name,
            wait,
        )
        await asyncio.sleep(wait)
        return True

    async def _make_create_pod_request(self, pod, request_timeout):
        try:
            return await super()._make_create_pod_request(pod, request_timeout)
        except ApiException as e:
            if await self._eodh_transient(e, "the pod"):
                return False  # exponential_backoff calls again
            raise

    async def _make_create_pvc_request(self, pvc, request_timeout):
        try:
            return await super()._make_create_pvc_request(pvc, request_timeout)
        except ApiException as e:
            if await self._eodh_transient(e, "the volume claim"):
                return False
            raise

    async def _ensure_namespace(self):
        for attempt in range(1, EODH_K8S_NAMESPACE_ATTEMPTS + 1):
            try:
                return await super()._ensure_namespace()
            except ApiException as e:
                if attempt == EODH_K8S_NAMESPACE_ATTEMPTS or not await self._eodh_transient(
                    e, "the namespace"
                ):
                    raise
        return None


c.JupyterHub.spawner_class = EODHRetryingKubeSpawner
