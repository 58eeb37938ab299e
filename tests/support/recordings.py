"""One mocked run per stack and mode per test session: runs are pure, so sharing is safe."""

from __future__ import annotations

from eodh_jupyterhub.offline import Recording, run_stack

_recordings: dict[tuple[str, bool], Recording] = {}


def recording_for(stack: str, preview: bool = False) -> Recording:
    key = (stack, preview)
    if key not in _recordings:
        _recordings[key] = run_stack(stack, preview=preview)
    return _recordings[key]
