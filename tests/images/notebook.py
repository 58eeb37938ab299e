"""Load the notebook image's jupyter_server_config.py as the server would, from the
environment the hub's spawner produces (imported from hub/extra_config, never retyped)."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from tests.images.doubles import REGION, environ_without_aws
from tests.support.hub_config import load_hub_config, release_env

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE_DIR = REPO_ROOT / "images" / "default"
CONFIG_FILE = IMAGE_DIR / "jupyter_server_config.py"
SERVER_API_TOKEN = "test-server-api-token"


@functools.cache
def _hub_namespace() -> dict[str, Any]:
    return load_hub_config(release_env(SINGLEUSER_AWS_REGION=REGION))


def hub_settings() -> Mapping[str, str]:
    """The SINGLEUSER_* settings the hub's pre-spawn hook passes to workspace_environment."""
    return _hub_namespace()["_eodh_spawn_env"]


def spawner_environment(workspace: str, access_token: str) -> dict[str, str]:
    """Exactly what the hub's pre-spawn hook adds to the notebook's environment."""
    return _hub_namespace()["workspace_environment"](workspace, access_token, hub_settings())


def bucket() -> str:
    return hub_settings()["SINGLEUSER_WORKSPACE_BUCKET"]


def notebook_environment(
    workspace: str,
    access_token: str,
    *,
    home: Path,
    s3_url: str,
    sts_url: str,
    hub_api_url: str | None = None,
    user: str = "alice",
    **extra: str,
) -> dict[str, str]:
    """The notebook process's environment: the spawner's variables, what JupyterHub sets
    for every server, and the two standard AWS endpoint overrides pointing at moto."""
    env = environ_without_aws()
    env.update(spawner_environment(workspace, access_token))
    env.update(
        HOME=str(home),
        JUPYTER_DATA_DIR=str(home / ".local" / "share" / "jupyter"),
        JUPYTER_RUNTIME_DIR=str(home / ".local" / "share" / "jupyter" / "runtime"),
        JUPYTERHUB_USER=user,
        JUPYTERHUB_SERVER_NAME="",
        AWS_ENDPOINT_URL_S3=s3_url,
        AWS_ENDPOINT_URL_STS=sts_url,
        # No AWS config or credentials files from the machine running the tests.
        AWS_CONFIG_FILE=str(home / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    if hub_api_url is not None:
        env.update(JUPYTERHUB_API_URL=hub_api_url, JUPYTERHUB_API_TOKEN=SERVER_API_TOKEN)
    env.update(extra)
    return env


def load_config() -> Config:
    """Run the config file the way ServerApp does (PyFileConfigLoader, `get_config`)."""
    return PyFileConfigLoader(CONFIG_FILE.name, path=str(IMAGE_DIR)).load_config()


@contextmanager
def contents_manager(env: Mapping[str, str]) -> Iterator[Any]:
    """A HybridContentsManager configured by the image's file under `env`.

    The environment stays in place for the block (the S3 drive writes AWS_* variables into
    it, as it does in the server) and is restored afterwards.
    """
    from hybridcontents import HybridContentsManager

    with mock.patch.dict(os.environ, env, clear=True):
        manager = HybridContentsManager(config=load_config())
        try:
            yield manager
        finally:
            s3 = manager.managers.get("s3")
            if s3 is not None:
                s3.workspace_credentials.stop()


def required_variables() -> tuple[str, ...]:
    return _config_module().REQUIRED_VARIABLES


@functools.cache
def _config_module() -> Any:
    """The config file imported as a module: it then only defines, and configures nothing."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("eodh_jupyter_server_config", CONFIG_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
