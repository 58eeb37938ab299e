"""Load hub/extra_config/*.py the way the z2jh 4.2.0 hub does, for any test to reuse.

The chart's jupyterhub_config.py execs each ``hub.extraConfig`` string, sorted by key,
in its own module namespace: ``c`` already exists and ``get_config`` is the chart's
values getter (``get_config("hub.baseUrl")``), not traitlets'. The loader reproduces
that namespace, so a file that calls ``get_config()`` without a key fails here as it
would in the chart.

    ns = load_hub_config(release_env())
    ns["c"].JupyterHub.spawner_class
    ns["workspace_environment"]("ws1", "token", release_env())
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

from traitlets.config import Config

REPO_ROOT = Path(__file__).resolve().parents[2]
EXTRA_CONFIG_DIR = REPO_ROOT / "hub" / "extra_config"
TEMPLATES_DIR = REPO_ROOT / "hub" / "templates"

# Everything the Helm release sets on the hub container for these files.
RELEASE_ENV_VARS = (
    "PLATFORM_DOMAIN",
    "WORKSPACES_DOMAIN",
    "HUB_HOST",
    "KEYCLOAK_ISSUER_URL",
    "OAUTH_CLIENT_ID",
    "OAUTH_CLIENT_SECRET",
    "WORKSPACES_CLIENT_ID",
    "WORKSPACES_CLIENT_SECRET",
    "SINGLEUSER_AWS_REGION",
    "SINGLEUSER_AWS_ROLE_ARN",
    "SINGLEUSER_WORKSPACE_BUCKET",
)
# Set by the release only for some stacks (userServersDomain), and here only where a test does.
OPTIONAL_RELEASE_ENV_VARS = ("USER_SERVERS_DOMAIN",)


def release_env(**overrides: str) -> dict[str, str]:
    """Obviously fake values for every variable the release sets; override any."""
    env = {
        "PLATFORM_DOMAIN": "hub.test.invalid",
        "WORKSPACES_DOMAIN": "workspaces.test.invalid",
        "HUB_HOST": "workspaces.test.invalid",
        "KEYCLOAK_ISSUER_URL": "https://hub.test.invalid/keycloak/realms/eodhp",
        "OAUTH_CLIENT_ID": "test-hub-client",
        "OAUTH_CLIENT_SECRET": "test-client-secret",
        "WORKSPACES_CLIENT_ID": "test-workspaces-client",
        "WORKSPACES_CLIENT_SECRET": "test-workspaces-secret",
        "SINGLEUSER_AWS_REGION": "eu-west-2",
        "SINGLEUSER_AWS_ROLE_ARN": "arn:aws:iam::000000000000:role/test-notebook-role",
        "SINGLEUSER_WORKSPACE_BUCKET": "test-workspace-bucket",
    }
    env.update(overrides)
    return env


def extra_config_files() -> list[Path]:
    """The extra-config files in the order the chart runs them (sorted by key = name)."""
    return sorted(EXTRA_CONFIG_DIR.glob("*.py"), key=lambda p: p.name)


def make_values_getter(values: Mapping[str, Any] | None):
    """z2jh's ``get_config(key, default=None)``: a dotted lookup in the chart values."""
    values = values or {}

    def get_config(key, default=None):
        node: Any = values
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    return get_config


def exec_extra_config(
    namespace: dict[str, Any], files: Iterable[Path] | None = None
) -> dict[str, Any]:
    """Exec ``files`` (default: hub/extra_config in name order) into ``namespace``."""
    for path in extra_config_files() if files is None else files:
        code = compile(Path(path).read_text(), str(path), "exec")
        exec(code, namespace)
    return namespace


def load_hub_config(
    env: Mapping[str, str] | None = None,
    *,
    values: Mapping[str, Any] | None = None,
    config: Config | None = None,
    extra_files: Iterable[Path] = (),
) -> dict[str, Any]:
    """Run the hub's extra config as the chart would and return the namespace.

    ``env`` replaces the release variables for the duration of the load (variables not in
    it are removed, so missing-variable errors are testable); ``config`` stands for what
    the chart's own jupyterhub_config.py put in ``c`` before the extra config ran.
    ``ns["c"]`` is the resulting traitlets Config.
    """
    env = release_env() if env is None else dict(env)
    namespace: dict[str, Any] = {
        "__name__": "jupyterhub_config",
        "c": config if config is not None else Config(),
        "get_config": make_values_getter(values),
    }
    with mock.patch.dict(os.environ):
        for name in (*RELEASE_ENV_VARS, *OPTIONAL_RELEASE_ENV_VARS):
            os.environ.pop(name, None)
        os.environ.update(env)
        exec_extra_config(namespace, [*extra_config_files(), *extra_files])
    return namespace
