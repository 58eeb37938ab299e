"""The fast YAML loader builds exactly what PyYAML's safe loader builds, on this repo's YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from eodh_jupyterhub import yaml_loader
from eodh_jupyterhub.stack_config import PROJECT_ROOT

# Stack files, the chart's defaults and the smaller External Secrets CRD: every kind of YAML
# the tools read (the larger CRDs take seconds in the pure-Python parser, and add nothing).
FILES = [
    *sorted(PROJECT_ROOT.glob("Pulumi*.yaml")),
    PROJECT_ROOT / "vendor/jupyterhub-4.2.0/values.yaml",
    PROJECT_ROOT / "vendor/external-secrets-2.9.0/external-secrets.io_externalsecrets.yaml",
    *sorted(PROJECT_ROOT.glob(".github/workflows/*.yml")),
]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(Path(p).relative_to(PROJECT_ROOT)))
def test_loads_what_the_pure_python_safe_loader_loads(path: Path) -> None:
    text = path.read_text()
    assert yaml_loader.safe_load(text) == yaml.load(text, Loader=yaml.SafeLoader)


def test_several_documents_and_yaml_1_1_scalars() -> None:
    text = "a: yes\nb: 0o17\nc: 017\nd: 2026-12-06\ne: ~\n---\n- 1.5\n- !!str 3\n"
    expected = list(yaml.load_all(text, Loader=yaml.SafeLoader))
    assert list(yaml_loader.safe_load_all(text)) == expected
    assert expected[0]["a"] is True


def test_refuses_what_the_safe_loader_refuses() -> None:
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml_loader.safe_load("!!python/object/apply:os.system ['true']")
