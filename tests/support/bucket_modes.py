"""Every stack in both workspace-bucket modes (`manageWorkspaceBucket` true and false).

A stack file says which mode the environment uses; the other mode is rendered too, from the
same file with only that key flipped (and, for the shared mode, access logging left out: it
is part of the bucket's configuration), so both modes are checked for every stack.
"""

from __future__ import annotations

from eodh_jupyterhub.offline import Recording, run_with_config
from eodh_jupyterhub.stack_config import effective_config, pulumi_config

MANAGE = "eodh-jupyterhub:manageWorkspaceBucket"
ACCESS_LOGS = "eodh-jupyterhub:accessLogsBucket"

_recordings: dict[tuple[str, bool, bool], Recording] = {}


def manages_bucket(stack: str) -> bool:
    """What the stack file (over Pulumi.yaml's default) says."""
    return str(effective_config(stack).get(MANAGE, True)).lower() == "true"


def config_in_mode(stack: str, manage: bool) -> dict[str, str]:
    config = {**pulumi_config(stack), MANAGE: "true" if manage else "false"}
    if not manage:
        config.pop(ACCESS_LOGS, None)
    return config


def recording_in_mode(stack: str, manage: bool, preview: bool = False) -> Recording:
    key = (stack, manage, preview)
    if key not in _recordings:
        _recordings[key] = run_with_config(stack, config_in_mode(stack, manage), preview=preview)
    return _recordings[key]
