"""Jupyter server configuration for the EO DataHub default notebook image.

Installed as /etc/jupyter/jupyter_server_config.py. The contents manager is a
HybridContentsManager: the root ("") is the workspace's shared folder (JUPYTERHUB_ROOT_DIR,
else the user's home directory) and "s3" is the workspace's prefix in the workspace bucket.

Credentials for the S3 drive never come from static keys. The hub's spawner hands the
server a workspace-scoped access token (S3CONTENTS_WORKSPACE_ACCESS_TOKEN); this file writes
it to a web-identity token file, and botocore assumes S3CONTENTS_AWS_ROLE_ARN with it,
re-assuming (and re-reading the file) before the credentials expire. The token itself only
lives a few minutes, so a background thread asks the hub for a fresh one
(GET {JUPYTERHUB_API_URL}/eodh/workspace-token) before it expires and rewrites the file.
Kernels and terminals inherit AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, so boto3 in a
notebook gets the same refreshing workspace credentials.

Loaded by Jupyter, this file configures `c`; imported as a module (tests), it only defines.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import random
import re
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

REQUIRED_VARIABLES = (
    "S3CONTENTS_WORKSPACE_ACCESS_TOKEN",
    "S3CONTENTS_AWS_ROLE_ARN",
    "S3CONTENTS_AWS_REGION",
    "S3CONTENTS_WORKSPACE_BUCKET",
    "WORKSPACE",
)
S3_DRIVE = "s3"
DEFAULT_HOME = "/home/jovyan"
# Static keys would win over the web identity in a kernel's default credential chain.
STATIC_KEY_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")

# botocore's own refresh windows; shortened only for sessions too short for them.
BOTOCORE_ADVISORY_REFRESH = 15 * 60
BOTOCORE_MANDATORY_REFRESH = 10 * 60

# STS and S3 error codes that mean "the workspace token or the role refused us".
CREDENTIAL_ERROR_CODES = frozenset(
    {
        "AccessDenied",
        "ExpiredToken",
        "ExpiredTokenException",
        "IDPCommunicationError",
        "IDPRejectedClaim",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "InvalidIdentityToken",
        "SignatureDoesNotMatch",
    }
)


def _logger() -> logging.Logger:
    # The server's own logger, so the line carries its format and level; plain logging
    # when the file is imported outside a Jupyter application.
    try:
        from traitlets.config import Application

        if Application.initialized():
            return Application.instance().log
    except ImportError:  # pragma: no cover - traitlets ships with every Jupyter server
        pass
    return logging.getLogger("eodh.workspace_drive")


def missing_variables(env: Mapping[str, str]) -> list[str]:
    return [name for name in REQUIRED_VARIABLES if not env.get(name)]


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT, unverified: only used to schedule the next refresh."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) else None


def write_token_file(path: str, token: str) -> None:
    """Replace the token file atomically: botocore may read it at any moment."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".token-", dir=directory)  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(token)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def session_name(workspace: str, user: str) -> str:
    # CloudTrail shows this; STS allows [\w+=,.@-]{2,64}.
    raw = f"eodh-{workspace}-{user}" if user else f"eodh-{workspace}"
    return re.sub(r"[^\w+=,.@-]", "-", raw)[:64]


class TokenRefreshError(Exception):
    pass


class WorkspaceTokenRefresher(threading.Thread):
    """Keeps the web-identity token file fresh by asking the hub for a new token.

    Refreshes at `fraction` of the current token's remaining lifetime; on failure retries
    with jittered exponential backoff, never waiting past the moment the token expires.
    """

    def __init__(
        self,
        *,
        token_file: str,
        token: str,
        api_url: str,
        api_token: str,
        server_name: str,
        workspace: str,
        log: logging.Logger,
        fraction: float = 0.75,
        min_delay: float = 1.0,
        fallback_lifetime: float = 300.0,
        initial_backoff: float = 2.0,
        max_backoff: float = 300.0,
        min_interval: float = 5.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name="eodh-workspace-token-refresher", daemon=True)
        self.token_file = token_file
        self.url = f"{api_url.rstrip('/')}/eodh/workspace-token?" + urllib.parse.urlencode(
            {"server": server_name}
        )
        self._api_token = api_token
        self.workspace = workspace
        self.log = log
        self.fraction = fraction
        self.min_delay = min_delay
        self.fallback_lifetime = fallback_lifetime
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.min_interval = min_interval
        self.timeout = timeout
        self.clock = clock
        self.refreshes = 0
        self.failures = 0
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._last_attempt = float("-inf")
        self._expires_at = self._expiry(token, None)

    def _expiry(self, token: str, expires_at: float | None) -> float:
        # A token without a readable expiry is treated as short-lived, never as eternal.
        return jwt_expiry(token) or expires_at or self.clock() + self.fallback_lifetime

    def next_delay(self) -> float:
        return max(self.min_delay, (self._expires_at - self.clock()) * self.fraction)

    def fetch(self) -> tuple[str, float]:
        request = urllib.request.Request(
            self.url, headers={"Authorization": f"token {self._api_token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            try:
                detail = json.load(exc).get("message", "")
            except (ValueError, AttributeError):
                detail = ""
            reason = {403: "the hub refused: not allowed for this workspace"}.get(
                exc.code, f"the hub answered {exc.code}"
            )
            raise TokenRefreshError(f"{reason} {detail}".strip()) from exc
        except (OSError, ValueError) as exc:
            raise TokenRefreshError(f"could not reach the hub: {exc}") from exc
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise TokenRefreshError("the hub's answer has no access_token")
        if body.get("workspace") not in (None, self.workspace):
            # Never swap the drive onto another workspace's credentials.
            raise TokenRefreshError(
                f"the hub issued a token for workspace {body.get('workspace')!r}, "
                f"not {self.workspace!r}"
            )
        expires_at = body.get("expires_at")
        return token, self._expiry(token, float(expires_at) if expires_at else None)

    def refresh(self) -> None:
        token, expires_at = self.fetch()
        write_token_file(self.token_file, token)
        self._expires_at = expires_at
        self.refreshes += 1
        self.log.debug("Workspace token refreshed; it expires at %s", time.ctime(expires_at))

    def refresh_soon(self) -> None:
        """Wake the thread now, e.g. after STS refused the token on disk."""
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    def run(self) -> None:
        backoff = self.initial_backoff
        delay = self.next_delay()
        while not self._stopped.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            # Every failing S3 request calls refresh_soon(): do not hammer the hub.
            gap = self.min_interval - (time.monotonic() - self._last_attempt)
            if self._stopped.wait(max(0.0, gap)):
                return
            self._last_attempt = time.monotonic()
            try:
                self.refresh()
            except Exception as exc:
                self.failures += 1
                remaining = self._expires_at - self.clock()
                self.log.warning(
                    "Could not refresh the workspace token (%s); retrying in %.0f s, "
                    "current token %s",
                    exc,
                    min(backoff, self.max_backoff),
                    f"expires in {remaining:.0f} s" if remaining > 0 else "has expired",
                )
                delay = min(backoff, self.max_backoff) * random.uniform(0.8, 1.0)
                if remaining > self.min_delay:
                    delay = min(delay, remaining * self.fraction)
                backoff = min(backoff * 2, self.max_backoff)
            else:
                backoff = self.initial_backoff
                delay = self.next_delay()


class WorkspaceCredentials:
    """The S3 drive's credentials: AssumeRoleWithWebIdentity from a token file only."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.role_arn = env["S3CONTENTS_AWS_ROLE_ARN"]
        self.region = env["S3CONTENTS_AWS_REGION"]
        self.workspace = env["WORKSPACE"]
        self.initial_token = env["S3CONTENTS_WORKSPACE_ACCESS_TOKEN"]
        self.session_name = session_name(self.workspace, env.get("JUPYTERHUB_USER", ""))
        self.hub_api_url = env.get("JUPYTERHUB_API_URL", "")
        self.hub_api_token = env.get("JUPYTERHUB_API_TOKEN", "")
        self.server_name = env.get("JUPYTERHUB_SERVER_NAME", "")
        self.token_file: str | None = None
        self.refresher: WorkspaceTokenRefresher | None = None
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> WorkspaceCredentials:
        # traitlets deep-copies config values; there is one token file and one refresher
        # per server, so every copy must be this object.
        return self

    def start(self, log: logging.Logger) -> None:
        """Write the token file, point botocore at it, start the refresher. Idempotent."""
        with self._lock:
            if self.token_file is not None:
                return
            directory = tempfile.mkdtemp(prefix="eodh-workspace-token-")  # mode 0700
            token_file = os.path.join(directory, "token")
            write_token_file(token_file, self.initial_token)
            removed = [name for name in STATIC_KEY_VARIABLES if os.environ.pop(name, None)]
            if removed:
                log.warning(
                    "Ignoring %s: the workspace role's web identity is the only credential",
                    ", ".join(removed),
                )
            os.environ.update(
                AWS_ROLE_ARN=self.role_arn,
                AWS_WEB_IDENTITY_TOKEN_FILE=token_file,
                AWS_ROLE_SESSION_NAME=self.session_name,
                AWS_DEFAULT_REGION=self.region,
            )
            self.token_file = token_file
            if self.hub_api_url and self.hub_api_token:
                self.refresher = WorkspaceTokenRefresher(
                    token_file=token_file,
                    token=self.initial_token,
                    api_url=self.hub_api_url,
                    api_token=self.hub_api_token,
                    server_name=self.server_name,
                    workspace=self.workspace,
                    log=log,
                )
                self.refresher.start()
            else:
                log.warning(
                    "JUPYTERHUB_API_URL or JUPYTERHUB_API_TOKEN is not set: the workspace "
                    "token will not be refreshed and the S3 drive stops when it expires"
                )

    def stop(self) -> None:
        if self.refresher is not None:
            self.refresher.stop()

    def aio_session(self) -> Any:
        """An aiobotocore session whose only credential source is the web identity."""
        from aiobotocore.credentials import (
            AioAssumeRoleWithWebIdentityCredentialFetcher,
            AioCredentialResolver,
            AioDeferredRefreshableCredentials,
        )
        from aiobotocore.session import AioSession
        from botocore.credentials import CredentialProvider
        from botocore.utils import FileWebIdentityTokenLoader
        from dateutil.parser import parse as parse_timestamp

        assert self.token_file is not None, "start() first"

        class WorkspaceRoleCredentials(AioDeferredRefreshableCredentials):
            def _set_from_data(self, data: dict[str, Any]) -> None:
                super()._set_from_data(data)
                # botocore re-assumes 15 minutes before expiry, which for a session as
                # short as STS allows (15 minutes) means before every request: scale the
                # windows down to the lifetime STS actually granted.
                expiry = parse_timestamp(data["expiry_time"])
                lifetime = (expiry - self._time_fetcher()).total_seconds()
                self._advisory_refresh_timeout = refresh_window(
                    lifetime, BOTOCORE_ADVISORY_REFRESH, 4
                )
                self._mandatory_refresh_timeout = refresh_window(
                    lifetime, BOTOCORE_MANDATORY_REFRESH, 6
                )

        fetcher = AioAssumeRoleWithWebIdentityCredentialFetcher(
            client_creator=None,  # set below, once the session exists
            # Re-read on every assume: the refresher rewrites the file.
            web_identity_token_loader=FileWebIdentityTokenLoader(self.token_file),
            role_arn=self.role_arn,
            extra_args={"RoleSessionName": self.session_name},
        )
        credentials = WorkspaceRoleCredentials(
            refresh_using=fetcher.fetch_credentials,
            method="assume-role-with-web-identity",
        )

        class WebIdentityOnly(CredentialProvider):
            METHOD = "assume-role-with-web-identity"

            async def load(self) -> Any:
                return credentials

        session = AioSession()
        session.set_config_variable("region", self.region)
        fetcher._client_creator = session.create_client
        # Replacing the resolver, not prepending to it: env keys, profiles and instance
        # roles can never be picked for the drive.
        session.register_component(
            "credential_provider", AioCredentialResolver(providers=[WebIdentityOnly()])
        )
        return session


def refresh_window(lifetime: float, default: int, divisor: int) -> float:
    """Seconds before expiry to re-assume: botocore's default, or less for short sessions."""
    return max(1.0, min(default, lifetime / divisor))


def credential_error(exc: BaseException) -> str | None:
    """A one-line reason when `exc` (or its cause) is an AWS credential refusal."""
    from botocore.exceptions import ClientError, NoCredentialsError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ClientError):
            error = current.response.get("Error", {})
            code = error.get("Code", "")
            if code in CREDENTIAL_ERROR_CODES:
                return f"{code}: {error.get('Message', '')}".strip()
        if isinstance(current, NoCredentialsError):
            return "no credentials"
        current = current.__cause__ or current.__context__
    return None


def _make_s3_manager_class() -> type:
    # Imported here so the home drive still comes up if these packages are broken.
    from s3contents import S3ContentsManager
    from s3contents.s3_fs import S3FS
    from s3contents.s3manager import validate_bucket
    from tornado.web import HTTPError
    from traitlets import Any as AnyTrait

    class WorkspaceS3ContentsManager(S3ContentsManager):
        """S3ContentsManager that connects lazily and fails per request, not per process.

        s3contents connects in __init__ and calls sys.exit on AccessDenied; here a refused
        token turns into a 503 on the S3 drive only, and the next request tries again.
        """

        workspace_credentials = AnyTrait(help="WorkspaceCredentials").tag(config=True)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # Skip S3ContentsManager.__init__: it connects (see the class docstring).
            super(S3ContentsManager, self).__init__(*args, **kwargs)
            self.run_init_s3_hook()
            self.bucket = validate_bucket(self.bucket, self.log)
            self._fs_lock = threading.Lock()
            self.workspace_credentials.start(self.log)
            self.boto3_session = self.workspace_credentials.aio_session()

        def _connect(self) -> Any:
            return S3FS(
                log=self.log,
                anon=False,
                boto3_session=self.boto3_session,
                bucket=self.bucket,
                delimiter=self.delimiter,
                endpoint_url=self.endpoint_url,
                skip_tls_verify=self.skip_tls_verify,
                kms_key_id=self.kms_key_id,
                prefix=self.prefix,
                region_name=self.region_name,
                signature_version=self.signature_version,
                sse=self.sse,
                s3fs_additional_kwargs=dict(self.s3fs_additional_kwargs or {}),
                s3fs_config_kwargs=dict(self.s3fs_config_kwargs or {}),
            )

        def _unavailable(self, reason: str) -> HTTPError:
            refresher = self.workspace_credentials.refresher
            if refresher is not None:
                refresher.refresh_soon()
            message = (
                f"The workspace S3 drive is unavailable: AWS refused the workspace "
                f"credentials ({reason}). Your home directory is unaffected; if this "
                f"persists, restart your server from the hub."
            )
            self.log.error("%s", message)
            return HTTPError(503, message, reason="S3 drive unavailable")

        @property
        def fs(self) -> Any:
            with self._fs_lock:
                if self._fs is None:
                    try:
                        self._fs = self._connect()
                    except SystemExit as exc:
                        # s3contents exits the whole server on AccessDenied.
                        raise self._unavailable("AccessDenied") from exc
                    except Exception as exc:
                        reason = credential_error(exc)
                        if reason is None:
                            raise
                        raise self._unavailable(reason) from exc
                return self._fs

    def guarded(name: str) -> Callable[..., Any]:
        base = getattr(S3ContentsManager, name)

        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return base(self, *args, **kwargs)
            except HTTPError:
                raise
            except Exception as exc:
                reason = credential_error(exc)
                if reason is None:
                    raise
                raise self._unavailable(reason) from exc

        method.__name__ = name
        method.__doc__ = base.__doc__
        return method

    # The methods HybridContentsManager delegates to its drives.
    for name in (
        "get",
        "save",
        "delete",
        "rename",
        "exists",
        "file_exists",
        "dir_exists",
        "is_hidden",
        "create_checkpoint",
        "list_checkpoints",
        "restore_checkpoint",
        "delete_checkpoint",
    ):
        setattr(WorkspaceS3ContentsManager, name, guarded(name))
    return WorkspaceS3ContentsManager


def s3_endpoint(env: Mapping[str, str], region: str) -> str:
    # The standard AWS variables, so a test or a VPC endpoint can redirect S3.
    return (
        env.get("AWS_ENDPOINT_URL_S3")
        or env.get("AWS_ENDPOINT_URL")
        or f"https://s3.{region}.amazonaws.com"
    )


def configure(c: Any, env: Mapping[str, str]) -> WorkspaceCredentials | None:
    """Configure the contents managers; returns the S3 drive's credentials, if any."""
    from hybridcontents import HybridContentsManager
    from jupyter_server.services.contents.largefilemanager import LargeFileManager

    # This file replaces the base image's /etc/jupyter/jupyter_server_config.py; these are
    # its settings (GEN_CERT aside: the hub's proxy terminates TLS).
    c.ServerApp.ip = ""
    c.ServerApp.open_browser = False
    c.InlineBackend.figure_formats = {"png", "jpeg", "svg", "pdf"}
    # Network file systems have no trash; deleting there would fail.
    c.FileContentsManager.delete_to_trash = False
    if env.get("NB_UMASK"):
        os.umask(int(env["NB_UMASK"], 8))

    # The file browser's root: the hub's Spawner.notebook_dir, which JupyterHub 5 passes as
    # JUPYTERHUB_ROOT_DIR (jupyterhub/spawner.py get_env) and jupyterhub-singleuser makes
    # ServerApp.root_dir: the workspace's shared folder (hub/extra_config/
    # 4_workspace_homes.py; HOME is then the user's own). Else HOME.
    home = env.get("JUPYTERHUB_ROOT_DIR") or env.get("HOME") or DEFAULT_HOME
    c.ServerApp.contents_manager_class = HybridContentsManager
    c.HybridContentsManager.manager_classes = {"": LargeFileManager}
    c.HybridContentsManager.manager_kwargs = {"": {"root_dir": home}}

    missing = missing_variables(env)
    if missing:
        _logger().warning(
            "S3 drive disabled, serving the home drive only: missing environment variables %s",
            ", ".join(missing),
        )
        return None

    import fsspec.config

    # s3contents checks for .s3keep markers through s3fs's listing cache; markers written
    # out of band (the marker Lambda) must show without a restart.
    fsspec.config.conf.setdefault("s3", {})["use_listings_cache"] = False

    credentials = WorkspaceCredentials(env)
    region = env["S3CONTENTS_AWS_REGION"]
    c.HybridContentsManager.manager_classes = {
        "": LargeFileManager,
        S3_DRIVE: _make_s3_manager_class(),
    }
    c.HybridContentsManager.manager_kwargs = {
        "": {"root_dir": home},
        S3_DRIVE: {
            "workspace_credentials": credentials,
            "bucket": env["S3CONTENTS_WORKSPACE_BUCKET"],
            "prefix": env["WORKSPACE"],
            "region_name": region,
            "endpoint_url": s3_endpoint(env, region),
            "signature_version": "s3v4",
            "sse": "AES256",
        },
    }
    return credentials


if "get_config" in globals():
    configure(get_config(), os.environ)  # type: ignore[name-defined]  # noqa: F821
