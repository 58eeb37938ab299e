"""The running hub's secrets come over unchanged: live Secret -> import ids -> the random
provider's import (as the offline mocks model terraform-provider-random's ImportState) -> the
release values -> the chart's Secret `hub`, byte for byte; and nothing of them reaches argv,
disk or output."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pulumi
import pytest

from components.hub_secrets import ImportValueError
from eodh_jupyterhub.offline import Recording, run_main, run_with_config
from tests.support.recordings import recording_for
from tests.support.stacks import pulumi_config
from tools import adopt_release, import_secrets
from tools.import_plan import engine_urns, program_urn

# Shaped like the chart's own (randHex 64, randAlphaNum 64, randHex 64); obviously not real.
COOKIE = "0123456789abcdef" * 4
PROXY = "NotARealProxyTokenJustForTheMigrationTests" + "0" * 22
CRYPT = "fedcba9876543210" * 4


def _live_secret(cookie: str = COOKIE, proxy: str = PROXY, crypt: str = CRYPT) -> dict[str, Any]:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return {
        "kind": "Secret",
        "metadata": {"name": "hub", "namespace": "jupyter"},
        "data": {
            "hub.config.JupyterHub.cookie_secret": b64(cookie),
            "hub.config.ConfigurableHTTPProxy.auth_token": b64(proxy),
            "hub.config.CryptKeeper.keys": b64(crypt),
            "values.yaml": b64("{}"),
        },
    }


def _imported_run(document: dict[str, Any]) -> Recording:
    """The program, with each generator taking the import the file describes (what the
    engine does for `pulumi import`: the provider reads the resource from its id)."""
    ids = {e["name"]: e["id"] for e in document["resources"] if "id" in e}

    def program(recording: Recording) -> None:
        def with_import(args: pulumi.ResourceTransformationArgs):
            if args.name in ids:
                return pulumi.ResourceTransformationResult(
                    args.props,
                    pulumi.ResourceOptions.merge(
                        args.opts, pulumi.ResourceOptions(import_=ids[args.name])
                    ),
                )
            return None

        pulumi.runtime.register_stack_transformation(with_import)
        run_main(recording)

    return run_with_config("dev", pulumi_config("dev"), program=program)


def test_live_values_reach_the_charts_secret_unchanged() -> None:
    values = import_secrets.values_from_secret(_live_secret())
    document = import_secrets.import_document(recording_for("dev"), values)
    recording = _imported_run(document)
    imported = {r.name: r.import_id for r in recording.resources if r.import_id}
    assert len(imported) == 3
    (release,) = recording.of_type("kubernetes:helm.sh/v3:Release")
    chart_values = release.plain_inputs["values"]
    assert chart_values["hub"]["cookieSecret"] == COOKIE
    assert chart_values["proxy"]["secretToken"] == PROXY
    assert chart_values["hub"]["config"]["CryptKeeper"]["keys"] == [CRYPT]
    # Where the hub and proxy read them: the chart's Secret `hub`.
    documents = adopt_release.render_chart(chart_values, "jupyter")
    (secret,) = [d for d in documents if d["kind"] == "Secret" and d["metadata"]["name"] == "hub"]
    live = _live_secret()["data"]
    for key in import_secrets.SECRET_KEYS.values():
        assert secret["data"][key] == live[key], key


def test_the_import_lands_on_the_programs_generators() -> None:
    recording = recording_for("dev")
    document = import_secrets.import_document(
        recording, import_secrets.values_from_secret(_live_secret())
    )
    urns = engine_urns(document, "dev", "eodh-jupyterhub")
    program = {program_urn(r.urn): r for r in recording.resources}
    for entry in document["resources"]:
        assert program[urns[entry["name"]]].type == entry["type"]
    with_parent = import_secrets.import_document(
        recording, import_secrets.values_from_secret(_live_secret()), parent_exists=True
    )
    assert [e["name"] for e in with_parent["resources"]] == [
        "hub-secrets-cookie-secret",
        "hub-secrets-proxy-secret-token",
        "hub-secrets-crypt-key",
    ]
    urns = engine_urns(with_parent, "dev", "eodh-jupyterhub")
    assert all(urns[n] in program for n in urns)


@pytest.mark.parametrize(
    "live, role",
    [
        (_live_secret(cookie="not-hex-at-all"), "64 hex"),
        (_live_secret(crypt=CRYPT + ";" + CRYPT), "one key only"),
        (_live_secret(proxy="short"), "proxy-secret-token"),
    ],
)
def test_values_jupyterhub_would_refuse_are_refused_without_echo(live, role) -> None:
    values = import_secrets.values_from_secret(live)
    with pytest.raises(ImportValueError) as caught:
        import_secrets.import_document(recording_for("dev"), values)
    assert role in str(caught.value)
    for value in values.values():
        assert value not in str(caught.value)


def test_a_secret_without_the_charts_keys_is_refused() -> None:
    live = _live_secret()
    del live["data"]["hub.config.CryptKeeper.keys"]
    with pytest.raises(
        import_secrets.SecretImportError, match=re.escape("hub.config.CryptKeeper.keys")
    ):
        import_secrets.values_from_secret(live)


def test_values_go_through_a_pipe_and_output_is_masked(monkeypatch, capsys) -> None:
    values = import_secrets.values_from_secret(_live_secret())
    document = import_secrets.import_document(recording_for("dev"), values)
    seen: dict[str, Any] = {}

    class Done:
        returncode = 0
        stdout = f"imported [id={COOKIE}] hub-secrets-cookie-secret\n"
        stderr = f"warning about {PROXY}\n"

    def fake_run(command, **kwargs):
        seen["command"], seen["input"] = command, kwargs.get("input")
        return Done()

    monkeypatch.setattr(import_secrets.subprocess, "run", fake_run)
    assert import_secrets.run_import("dev", document, values) == 0
    assert seen["command"][:2] == ["pulumi", "import"]
    assert seen["command"][seen["command"].index("--file") + 1] == "/dev/stdin"
    assert "--generate-code=false" in seen["command"]
    for value in values.values():
        assert all(value not in word for word in seen["command"])
    assert json.loads(seen["input"]) == document
    out = capsys.readouterr()
    for value in values.values():
        assert value not in out.out and value not in out.err
    assert "[id=[secret]]" in out.out


def test_secrets_are_imported_only_into_an_organisations_stack(monkeypatch, capsys) -> None:
    monkeypatch.delenv("PULUMI_ORG", raising=False)
    ran: list = []
    monkeypatch.setattr(import_secrets.subprocess, "run", lambda *a, **k: ran.append(a))
    assert import_secrets.main(["dev"]) == 2
    assert ran == []
    assert "set PULUMI_ORG" in capsys.readouterr().err
