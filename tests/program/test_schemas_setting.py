"""The schemas are found through EODH_SCHEMAS_DIR; a missing one fails under CI."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from eodh_jupyterhub import schemas
from eodh_jupyterhub.stack_config import PROJECT_ROOT


def test_default_points_beside_the_repository() -> None:
    assert PROJECT_ROOT.parent / "shared" / "schemas" == schemas.DEFAULT_SCHEMAS_DIR


def test_setting_moves_the_lookup(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EODH_SCHEMAS_DIR", str(tmp_path))
    with pytest.raises(schemas.SchemaMissing, match="EODH_SCHEMAS_DIR"):
        schemas.schema_path(schemas.Z2JH_SCHEMA)


@pytest.mark.parametrize(("ci", "outcome"), [("true", "failed"), ("", "skipped")])
def test_missing_schema_fails_in_ci_and_skips_locally(tmp_path, ci: str, outcome: str) -> None:
    test_file = tmp_path / "test_probe.py"
    test_file.write_text(
        textwrap.dedent(
            """
            from tests.support.schemas import z2jh_values_schema

            def test_probe():
                z2jh_values_schema()
            """
        )
    )
    env = {
        "EODH_SCHEMAS_DIR": str(tmp_path / "nowhere"),
        "CI": ci,
        "PATH": "/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert f"1 {outcome}" in result.stdout, result.stdout + result.stderr
