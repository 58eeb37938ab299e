"""The notebook half of the long-session design: the token file and its refresher,
against a real HTTP server on 127.0.0.1 playing the hub's workspace-token endpoint."""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.images.doubles import FakeHub, HubAnswer, HubRequest, fake_jwt, wait_for
from tests.images.notebook import _config_module, load_config

config = _config_module()
WORKSPACE = "ws-refresh"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    config.write_token_file(str(path), "initial")
    return path


def refresher(
    hub: FakeHub, token_file: Path, token: str, **kwargs: Any
) -> config.WorkspaceTokenRefresher:
    return config.WorkspaceTokenRefresher(
        token_file=str(token_file),
        token=token,
        api_url=hub.api_url,
        api_token=hub.api_token,
        server_name=kwargs.pop("server_name", "gpu"),
        workspace=WORKSPACE,
        log=logging.getLogger("test"),
        **kwargs,
    )


@pytest.fixture
def running() -> Iterator[list[config.WorkspaceTokenRefresher]]:
    started: list[config.WorkspaceTokenRefresher] = []
    yield started
    for thread in started:
        thread.stop()
        thread.join(timeout=5)


def test_jwt_expiry_reads_exp_without_verifying() -> None:
    assert config.jwt_expiry(fake_jwt(1234567890)) == 1234567890
    assert config.jwt_expiry("not-a-jwt") is None
    assert config.jwt_expiry("a.!!!.c") is None


def test_token_file_is_private_and_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "token"
    config.write_token_file(str(path), "first")
    inode = path.stat().st_ino
    config.write_token_file(str(path), "second")
    assert path.read_text() == "second"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # A new inode: readers holding the old file never see a half-written token.
    assert path.stat().st_ino != inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["token"]


def test_refreshes_at_three_quarters_of_the_lifetime_through_the_hub(
    hub: FakeHub, token_file: Path, running: list
) -> None:
    lifetime = 4.0
    fresh = fake_jwt(time.time() + 3600)
    hub.issue(fresh, WORKSPACE, time.time() + 3600)
    thread = refresher(hub, token_file, fake_jwt(time.time() + lifetime))
    started = time.monotonic()
    thread.start()
    running.append(thread)
    wait_for(lambda: thread.refreshes == 1, 10, "a refresh")
    elapsed = time.monotonic() - started
    # exp is whole seconds, so the token lives 3 to 4 s: refresh at 2.25 to 3 s.
    assert 2.0 <= elapsed <= 3.6, elapsed
    assert token_file.read_text() == fresh
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    [request] = hub.requests
    assert request.path == "/hub/api/eodh/workspace-token"
    assert request.query == {"server": ["gpu"]}
    assert request.authorization == f"token {hub.api_token}"
    # The next refresh waits for the new token's lifetime, not the old one's.
    assert thread.next_delay() > 2000


def test_backs_off_on_hub_errors_then_recovers(
    hub: FakeHub, token_file: Path, running: list, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="test")
    replies = [
        HubAnswer(502, {"message": "Could not renew the workspace token: keycloak down"}),
        HubAnswer(403, {"message": "not a member"}),
    ]
    fresh = fake_jwt(time.time() + 3600)

    def answer(_request: HubRequest) -> HubAnswer:
        if replies:
            return replies.pop(0)
        return HubAnswer(
            200, {"access_token": fresh, "expires_at": time.time() + 3600, "workspace": WORKSPACE}
        )

    hub.answer = answer
    thread = refresher(
        hub,
        token_file,
        fake_jwt(time.time() + 2),
        initial_backoff=0.3,
        min_interval=0,
    )
    thread.start()
    running.append(thread)
    wait_for(lambda: thread.refreshes == 1, 10, "recovery")
    assert thread.failures == 2
    assert token_file.read_text() == fresh
    warnings = [r.getMessage() for r in caplog.records if r.name == "test"]
    assert "keycloak down" in warnings[0]
    assert "not allowed" in warnings[1]
    assert len(hub.requests) == 3


def test_a_token_for_another_workspace_is_never_written(hub: FakeHub, token_file: Path) -> None:
    hub.issue(fake_jwt(time.time() + 3600), "someone-elses-ws", time.time() + 3600)
    thread = refresher(hub, token_file, fake_jwt(time.time() + 3600))
    with pytest.raises(config.TokenRefreshError, match="someone-elses-ws"):
        thread.refresh()
    assert token_file.read_text() == "initial"


def test_refresh_soon_is_rate_limited(hub: FakeHub, token_file: Path, running: list) -> None:
    hub.issue(fake_jwt(time.time() + 3600), WORKSPACE, time.time() + 3600)
    thread = refresher(hub, token_file, fake_jwt(time.time() + 3600), min_interval=1.0)
    thread.start()
    running.append(thread)
    for _ in range(20):
        thread.refresh_soon()
        time.sleep(0.05)
    wait_for(lambda: thread.refreshes >= 1, 5, "the first on-demand refresh")
    assert len(hub.requests) <= 2, "every failing request must not hit the hub"


def test_a_refresh_asked_for_within_the_rate_limit_is_delayed_not_dropped(
    hub: FakeHub, token_file: Path, running: list
) -> None:
    # STS refusing the token on disk right after a refresh must still get a new one: the
    # wake-up waits out the limit, then asks the hub (else the drive stays broken until the
    # next scheduled refresh, 45 minutes later for an hour's token).
    hub.issue(fake_jwt(time.time() + 3600), WORKSPACE, time.time() + 3600)
    thread = refresher(hub, token_file, fake_jwt(time.time() + 3600), min_interval=1.0)
    thread.start()
    running.append(thread)
    thread.refresh_soon()
    wait_for(lambda: thread.refreshes == 1, 5, "the first on-demand refresh")
    asked_again = time.monotonic()
    thread.refresh_soon()
    wait_for(lambda: thread.refreshes == 2, 5, "the refresh asked for within the limit")
    assert time.monotonic() - asked_again >= 0.8, "the rate limit was not waited out"
    assert len(hub.requests) == 2


def test_config_without_variables_keeps_only_the_home_drive(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"HOME": str(tmp_path), "WORKSPACE": "ws1"}
    with caplog.at_level(logging.WARNING), pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        cfg = load_config()
    assert cfg.HybridContentsManager.manager_classes.keys() == {""}
    assert cfg.HybridContentsManager.manager_kwargs[""] == {"root_dir": str(tmp_path)}
    [line] = [r.getMessage() for r in caplog.records if "S3 drive disabled" in r.getMessage()]
    assert line.endswith(
        "S3CONTENTS_WORKSPACE_ACCESS_TOKEN, S3CONTENTS_AWS_ROLE_ARN, S3CONTENTS_AWS_REGION, "
        "S3CONTENTS_WORKSPACE_BUCKET"
    )


def test_config_with_every_variable_declares_the_s3_drive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.images.notebook import spawner_environment

    env = spawner_environment("ws1", "test-token")
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in {**env, "HOME": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    cfg = load_config()
    drive = cfg.HybridContentsManager.manager_kwargs["s3"]
    assert {k: v for k, v in drive.items() if k != "workspace_credentials"} == {
        "bucket": env["S3CONTENTS_WORKSPACE_BUCKET"],
        "prefix": "ws1",
        "region_name": env["S3CONTENTS_AWS_REGION"],
        "endpoint_url": f"https://s3.{env['S3CONTENTS_AWS_REGION']}.amazonaws.com",
        "signature_version": "s3v4",
        "sse": "AES256",
    }
    credentials = drive["workspace_credentials"]
    assert credentials.role_arn == env["S3CONTENTS_AWS_ROLE_ARN"]
    assert credentials.token_file is None, "no side effects before the server builds the drive"
    # Never static keys: s3contents would pin them for the life of the server.
    assert not {"access_key_id", "secret_access_key", "session_token"} & drive.keys()
    import fsspec.config

    assert fsspec.config.conf["s3"]["use_listings_cache"] is False
