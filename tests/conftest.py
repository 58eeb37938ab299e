"""Shared fixtures: every stack file on disk is run under mocks, normally and as a preview."""

from __future__ import annotations

import warnings

import pytest

from eodh_jupyterhub.offline import Recording
from tests.support.recordings import recording_for
from tests.support.stacks import stack_names

# pulumi_aws warns about its own deprecated modules at import; nothing here uses them.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulumi_aws(\..*)?")

STACKS = stack_names()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "stack" in metafunc.fixturenames:
        metafunc.parametrize("stack", STACKS)
    if "mode" in metafunc.fixturenames:
        metafunc.parametrize("mode", ["up", "preview"])


@pytest.fixture
def recording(stack: str, mode: str) -> Recording:
    return recording_for(stack, preview=(mode == "preview"))


@pytest.fixture
def up_recording(stack: str) -> Recording:
    return recording_for(stack, preview=False)
