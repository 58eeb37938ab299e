"""One mocked run per stack and mode per test session: runs are pure, so sharing is safe."""

from __future__ import annotations

from eodh_jupyterhub.offline import Recording, run_stack

_recordings: dict[tuple[str, bool], Recording] = {}


def recording_for(stack: str, preview: bool = False) -> Recording:
    key = (stack, preview)
    if key not in _recordings:
        _recordings[key] = run_stack(stack, preview=preview)
    return _recordings[key]


_user_servers: dict[tuple[str, str | None], Recording] = {}


def recording_with_user_servers(stack: str, tls_secret: str | None = None) -> Recording:
    """`stack` with userServersDomain `users.<stack>.example.org.uk` (and, given, its own
    certificate's Secret): the setting no stack file turns on, shared like the others."""
    from eodh_jupyterhub.offline import run_with_config
    from tests.support.stacks import pulumi_config

    key = (stack, tls_secret)
    if key not in _user_servers:
        config = pulumi_config(stack)
        config["eodh-jupyterhub:userServersDomain"] = f"users.{stack}.example.org.uk"
        if tls_secret:
            config["eodh-jupyterhub:userServersTlsSecretName"] = tls_secret
        _user_servers[key] = run_with_config(stack, config)
    return _user_servers[key]
