"""The notebook's S3 drive through the contents-manager API, on moto with the real
s3contents and hybridcontents, configured from the hub spawner's own environment."""

from __future__ import annotations

import json
import os
import stat
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from tornado.web import HTTPError

from tests.images.conftest import Aws
from tests.images.doubles import FakeHub, HubAnswer, fake_jwt, wait_for
from tests.images.notebook import contents_manager, notebook_environment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# Workspace analysis", "id": "c1"}
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def new_workspace() -> str:
    return f"ws-{uuid.uuid4().hex[:8]}"


def keys(aws: Aws, prefix: str = "") -> list[str]:
    pages = aws.s3.get_paginator("list_objects_v2").paginate(Bucket=aws.bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def names(model: dict[str, Any]) -> list[str]:
    return sorted(item["name"] for item in model["content"])


def env_for(aws: Aws, tmp_path: Path, workspace: str, token: str, **kwargs: Any) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return notebook_environment(
        workspace, token, home=home, s3_url=aws.moto.url, sts_url=aws.sts.url, **kwargs
    )


def test_contents_api_round_trip_lands_under_the_workspace_with_aes256(
    aws: Aws, tmp_path: Path
) -> None:
    workspace = new_workspace()
    token = fake_jwt(time.time() + 3600)
    first_call = len(aws.sts.tokens)
    with contents_manager(env_for(aws, tmp_path, workspace, token)) as cm:
        (tmp_path / "home" / "readme.txt").write_text("home drive")
        assert names(cm.get("")) == ["readme.txt", "s3"]
        assert cm.get("s3")["type"] == "directory"

        folder = cm.new_untitled(path="s3", type="directory")
        cm.rename(folder["path"], "s3/analysis")
        cm.save({"type": "notebook", "format": "json", "content": NOTEBOOK}, "s3/analysis/a.ipynb")
        read = cm.get("s3/analysis/a.ipynb")
        assert read["type"] == "notebook"
        assert read["content"]["cells"][0]["source"] == "# Workspace analysis"

        cm.rename("s3/analysis/a.ipynb", "s3/analysis/b.ipynb")
        assert [m["path"] for m in cm.get("s3/analysis")["content"]] == ["s3/analysis/b.ipynb"]
        assert names(cm.get("s3")) == ["analysis"]

        stored = keys(aws)
        ours = [k for k in stored if k.startswith(f"{workspace}/")]
        assert ours == [
            f"{workspace}/.s3keep",
            f"{workspace}/analysis/.s3keep",
            f"{workspace}/analysis/b.ipynb",
        ]
        for key in ours:
            head = aws.s3.head_object(Bucket=aws.bucket, Key=key)
            assert head.get("ServerSideEncryption") == "AES256", key

        cm.delete("s3/analysis/b.ipynb")
        cm.delete("s3/analysis")
        assert names(cm.get("s3")) == []
        assert keys(aws, f"{workspace}/") == [f"{workspace}/.s3keep"]

        # One web-identity assume, with the spawner's token, read from a private file.
        assert aws.sts.tokens[first_call:] == [token]
        token_file = Path(os.environ["AWS_WEB_IDENTITY_TOKEN_FILE"])
        assert token_file.read_text() == token
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert os.environ["AWS_ROLE_ARN"] == cm.managers["s3"].workspace_credentials.role_arn


def test_s3_drive_uses_no_static_keys_even_when_the_environment_has_them(
    aws: Aws, tmp_path: Path
) -> None:
    """Static keys must not win over the web identity: they would not be scoped."""
    workspace = new_workspace()
    token = fake_jwt(time.time() + 3600)
    env = env_for(
        aws,
        tmp_path,
        workspace,
        token,
        AWS_ACCESS_KEY_ID="testing-static",
        AWS_SECRET_ACCESS_KEY="testing-static",
    )
    first_call = len(aws.sts.tokens)
    with contents_manager(env) as cm:
        cm.get("s3")
        assert aws.sts.tokens[first_call:] == [token]
        # Kernels inherit this environment: the keys are gone there too.
        assert "AWS_ACCESS_KEY_ID" not in os.environ
        assert "AWS_SECRET_ACCESS_KEY" not in os.environ


def test_out_of_band_changes_show_without_a_stale_listing(aws: Aws, tmp_path: Path) -> None:
    """s3fs caches listings; the marker function and workflows write behind its back."""
    workspace = new_workspace()
    with contents_manager(env_for(aws, tmp_path, workspace, fake_jwt(time.time() + 3600))) as cm:
        aws.s3.put_object(Bucket=aws.bucket, Key=f"{workspace}/late/data.csv", Body=b"x,y\n")
        assert names(cm.get("s3")) == []  # no marker: s3contents hides the directory
        aws.s3.put_object(Bucket=aws.bucket, Key=f"{workspace}/late/.s3keep", Body=b"")
        assert names(cm.get("s3")) == ["late"]

        # Now that `late` has been listed (and would be cached), change it out of band.
        assert names(cm.get("s3/late")) == ["data.csv"]
        assert not cm.file_exists("s3/late/more.csv")
        assert not cm.dir_exists("s3/late/sub")
        aws.s3.put_object(Bucket=aws.bucket, Key=f"{workspace}/late/more.csv", Body=b"z")
        aws.s3.put_object(Bucket=aws.bucket, Key=f"{workspace}/late/sub/.s3keep", Body=b"")
        aws.s3.delete_object(Bucket=aws.bucket, Key=f"{workspace}/late/data.csv")
        assert cm.file_exists("s3/late/more.csv")
        assert cm.dir_exists("s3/late/sub")
        assert not cm.file_exists("s3/late/data.csv")


def test_refused_token_fails_the_s3_drive_clearly_and_keeps_home(aws: Aws, tmp_path: Path) -> None:
    workspace = new_workspace()
    token = fake_jwt(time.time() + 3600, note="refused")
    aws.sts.refused.add(token)
    with contents_manager(env_for(aws, tmp_path, workspace, token)) as cm:
        with pytest.raises(HTTPError) as refused:
            cm.get("s3")
        assert refused.value.status_code == 503
        assert "InvalidIdentityToken" in refused.value.log_message
        assert "home directory is unaffected" in refused.value.log_message

        cm.save({"type": "file", "format": "text", "content": "still here"}, "notes.txt")
        assert names(cm.get("")) == ["notes.txt", "s3"]
        assert cm.get("notes.txt")["content"] == "still here"
    assert keys(aws, f"{workspace}/") == []


def test_credentials_expire_mid_session_and_reassume_with_the_refreshed_token(
    aws: Aws, tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = new_workspace()
    # The spawner's token is about to expire; the hub will hand out fresh ones.
    spawn_token = fake_jwt(time.time() + 3, n=1)
    fresh = fake_jwt(time.time() + 3600, n=2)
    hub.issue(fresh, workspace, time.time() + 3600)
    # Seconds of STS session: re-assumed 1 s before expiry (refresh_window's floor), so the
    # reads right after the first assume still use it (STS truncates the expiry to the
    # second: at least 1.8 s to spare), and the token refresh above (at ~2.25 s) lands
    # before the wait below ends.
    duration = 4
    monkeypatch.setattr(aws.sts, "session_seconds", duration)
    env = env_for(aws, tmp_path, workspace, spawn_token, hub_api_url=hub.api_url)
    first_call = len(aws.sts.tokens)
    with contents_manager(env) as cm:
        credentials = cm.managers["s3"].workspace_credentials
        # The refresher asks the hub at most every 5 s (its rate limit, held by
        # test_token_refresher.py): waiting that out twice here would prove nothing more.
        credentials.refresher.min_interval = 0.5
        cm.save({"type": "file", "format": "text", "content": "v1"}, "s3/a.txt")
        assumed_at = time.monotonic()
        assert aws.sts.tokens[first_call:] == [spawn_token]
        cm.get("s3/a.txt")
        assert aws.sts.tokens[first_call:] == [spawn_token], "credentials not cached"

        # The refresher asks the hub at ~75% of the token's life and rewrites the file.
        wait_for(lambda: credentials.refresher.refreshes >= 1, 10, "the token refresh")
        assert Path(credentials.token_file).read_text() == fresh
        request = hub.requests[0]
        assert request.path == "/hub/api/eodh/workspace-token"
        assert request.query == {"server": [""]}
        assert request.authorization == f"token {hub.api_token}"

        # Past the credentials' expiry the next call re-assumes, with the fresh token, for a
        # 2 s session: due for renewal within 1 s (the refresh window's floor), so the next
        # phase waits 1 s, not 3. Nothing between reads S3, so nothing renews it earlier.
        monkeypatch.setattr(aws.sts, "session_seconds", 2)
        time.sleep(max(0.0, assumed_at + duration - 1 - time.monotonic()))
        assert cm.get("s3/a.txt")["content"] == "v1"
        reassumed_at = time.monotonic()
        duration = 2
        assert aws.sts.tokens[first_call:] == [spawn_token, fresh]

        # The hub hands out one token AWS refuses, then good ones again.
        refused = fake_jwt(time.time() + 3600, n=3)
        good = fake_jwt(time.time() + 3600, n=4)
        aws.sts.refused.add(refused)
        script = [refused, good]
        hub.answer = lambda _request: HubAnswer(
            200,
            {
                "access_token": script.pop(0) if len(script) > 1 else script[0],
                "expires_at": int(time.time() + 3600),
                "workspace": workspace,
            },
        )
        credentials.refresher.refresh_soon()
        wait_for(lambda: credentials.refresher.refreshes >= 2, 10, "the refused token")
        assert Path(credentials.token_file).read_text() == refused
        time.sleep(max(0.0, reassumed_at + duration - 1 - time.monotonic()))
        with pytest.raises(HTTPError) as failure:
            cm.get("s3/a.txt")
        assert failure.value.status_code == 503
        assert "InvalidIdentityToken" in failure.value.log_message
        assert aws.sts.tokens[-1] == refused
        cm.save({"type": "file", "format": "text", "content": "home"}, "home.txt")
        assert cm.get("home.txt")["content"] == "home"

        # The failure itself asked the hub for a new token: the next call works again.
        wait_for(lambda: Path(credentials.token_file).read_text() == good, 10, "recovery")
        assert cm.get("s3/a.txt")["content"] == "v1"
        assert aws.sts.tokens[-1] == good


def test_a_launched_notebook_opens_at_the_path_the_launch_url_names(
    aws: Aws, tmp_path: Path
) -> None:
    """The Resource Catalogue uploads to s3://<bucket>/<ws>/jupyter/<server>.ipynb and sends
    the browser to .../lab/tree/s3/jupyter/<server>.ipynb (eodhp-guide, parameterised-
    notebook-and-workflow-launch.md): that path must open the uploaded notebook, straight
    after the upload (no marker yet: the marker function may still be running)."""
    workspace = new_workspace()
    server = "ndvi-notebook_123456"
    aws.s3.put_object(
        Bucket=aws.bucket,
        Key=f"{workspace}/jupyter/{server}.ipynb",
        Body=json.dumps(NOTEBOOK).encode(),
    )
    with contents_manager(env_for(aws, tmp_path, workspace, fake_jwt(time.time() + 3600))) as cm:
        model = cm.get(f"s3/jupyter/{server}.ipynb")
        assert model["type"] == "notebook"
        assert model["content"]["cells"][0]["source"] == "# Workspace analysis"
