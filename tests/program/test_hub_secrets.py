"""The generated hub secrets: secret everywhere, valid for JupyterHub, stable, importable."""

from __future__ import annotations

import base64

import pulumi
import pytest
from jupyterhub.crypto import _validate_key  # what the hub itself accepts as a crypt key

from components.hub_secrets import (
    GENERATED_SECRETS,
    GeneratedHubSecrets,
    ImportValueError,
    import_id,
    import_id_from_hex,
)
from eodh_jupyterhub.offline import (
    MockProviderError,
    Recording,
    is_secret,
    reveal,
    run_with_config,
)
from tests.support.stacks import pulumi_config

PASSWORD = "random:index/randomPassword:RandomPassword"
# Stand-ins shaped like real values, plainly not real ones.
HEX_VALUE = "0123456789abcdef" * 4
CHART_PROXY_TOKEN = "Ab3" * 21 + "x"  # the chart makes it with randAlphaNum 64


def _export_generated(recording: Recording, imports: dict[str, str] | None = None) -> None:
    if imports:
        # The mocks see an import through the import_ option (the provider reads from the id);
        # real imports go through `pulumi import --file`, which keeps no import id in state.
        def with_import(args: pulumi.ResourceTransformationArgs):
            role = args.name.removeprefix("hub-secrets-")
            if role not in imports:
                return None
            opts = pulumi.ResourceOptions(import_=imports[role])
            return pulumi.ResourceTransformationResult(
                args.props, pulumi.ResourceOptions.merge(args.opts, opts)
            )

        pulumi.runtime.register_stack_transformation(with_import)
    secrets = GeneratedHubSecrets("hub-secrets")
    pulumi.export("cookie", secrets.cookie_secret)
    pulumi.export("proxy", secrets.proxy_secret_token)
    pulumi.export("crypt", secrets.crypt_key)


def test_generated_secrets_are_secret_outputs_jupyterhub_accepts() -> None:
    recording = run_with_config("dev", pulumi_config("dev"), program=_export_generated)
    assert recording.secret_outputs == {"cookie", "proxy", "crypt"}
    values = {key: recording.outputs[key] for key in ("cookie", "proxy", "crypt")}
    assert len(set(values.values())) == 3
    for value in values.values():
        assert len(value) == 64 and set(value) <= set("0123456789abcdef")
    # JupyterHub app.py reads a string cookie secret with bytes.fromhex and wants 32 bytes.
    assert len(bytes.fromhex(values["cookie"])) == 32
    assert len(_validate_key(values["crypt"])) == 32


def _hub_generators(recording: Recording) -> list:
    """The hub's own three (the metrics token, hub_metrics.py, is new with this program and
    has no value to import)."""
    return [r for r in recording.of_type(PASSWORD) if r.parent_name == "hub-secrets"]


def test_generators_are_hex_passwords_without_keepers(up_recording: Recording) -> None:
    generators = _hub_generators(up_recording)
    assert sorted(r.name for r in generators) == sorted(
        f"hub-secrets-{n}" for n in ("cookie-secret", "proxy-secret-token", "crypt-key")
    )
    for generator in generators:
        inputs = reveal(generator.inputs)
        assert inputs["length"] == 64
        # One class of exactly the 16 hex digits: every character uniform over it.
        assert inputs["special"] is True and inputs["overrideSpecial"] == "0123456789abcdef"
        assert (inputs["upper"], inputs["lower"], inputs["numeric"]) == (False, False, False)
        # Keepers would regenerate the value (and log everyone out) whenever they change.
        assert "keepers" not in inputs
        assert {"result", "bcryptHash"} <= set(generator.additional_secret_outputs)
        assert is_secret(generator.outputs["result"])
        assert is_secret(generator.outputs["bcryptHash"])
        assert generator.parent_name == "hub-secrets"


def test_an_import_keeps_the_existing_value_and_is_not_replaced(up_recording: Recording) -> None:
    # terraform-provider-random resource_password.go ImportState writes length=len(value) and
    # upper/lower/numeric/special=true, no override_special: each differs from the inputs and
    # forces a replacement, so each must be ignored or the import regenerates the value.
    for generator in _hub_generators(up_recording):
        assert {
            "length",
            "upper",
            "lower",
            "numeric",
            "number",
            "special",
            "overrideSpecial",
            "minUpper",
            "minLower",
            "minNumeric",
            "minSpecial",
        } <= set(generator.ignore_changes)


def test_imported_values_come_out_unchanged() -> None:
    imports = {
        "cookie-secret": import_id("cookie-secret", HEX_VALUE),
        "proxy-secret-token": import_id("proxy-secret-token", CHART_PROXY_TOKEN),
        "crypt-key": import_id("crypt-key", HEX_VALUE.upper()),
    }
    recording = run_with_config(
        "dev", pulumi_config("dev"), program=lambda r: _export_generated(r, imports)
    )
    assert recording.outputs["cookie"] == HEX_VALUE
    assert recording.outputs["proxy"] == CHART_PROXY_TOKEN
    assert recording.outputs["crypt"] == HEX_VALUE.upper()
    assert recording.secret_outputs == {"cookie", "proxy", "crypt"}
    for generator in recording.of_type(PASSWORD):
        assert generator.id == "none"
        assert generator.import_id == imports[generator.name.removeprefix("hub-secrets-")]


def test_import_ids_are_the_values_jupyterhub_accepts() -> None:
    assert import_id_from_hex(HEX_VALUE) == HEX_VALUE
    assert import_id("cookie-secret", HEX_VALUE) == HEX_VALUE
    assert import_id("proxy-secret-token", CHART_PROXY_TOKEN) == CHART_PROXY_TOKEN
    url_safe = base64.urlsafe_b64encode(bytes(range(32))).decode()
    for key in (HEX_VALUE, url_safe):
        assert import_id("crypt-key", key) == key
        assert len(_validate_key(key)) == 32


@pytest.mark.parametrize(
    ("role", "value", "needle"),
    [
        ("cookie-secret", HEX_VALUE[:-1], "64 hex characters"),
        ("cookie-secret", HEX_VALUE + "\n", "64 hex characters"),
        ("cookie-secret", "g" * 64, "64 hex characters"),
        ("crypt-key", HEX_VALUE[:-2], "64 hex characters or 44"),
        ("crypt-key", f"{HEX_VALUE};{HEX_VALUE}", "one key only"),
        ("proxy-secret-token", "has a space in it somewhere", "without spaces"),
        ("proxy-secret-token", "", "printable"),
        ("api-token", HEX_VALUE, "unknown generated secret"),
    ],
)
def test_import_ids_refuse_what_jupyterhub_refuses(role: str, value: str, needle: str) -> None:
    with pytest.raises(ImportValueError, match=needle):
        import_id(role, value)
    if role == "crypt-key" and ";" not in value:
        with pytest.raises(ValueError):
            _validate_key(value)


def test_generated_secret_names_are_stable() -> None:
    # Renaming a generator replaces it, which rotates the secret on the next `pulumi up`.
    assert GENERATED_SECRETS == ("cookie-secret", "proxy-secret-token", "crypt-key")


def test_mock_secret_detection_works() -> None:
    from pulumi.runtime import rpc

    assert is_secret(rpc.wrap_rpc_secret("x"))
    assert not is_secret("x")


def test_mock_password_refuses_an_empty_character_set() -> None:
    import pulumi_random as random

    def program(recording: Recording) -> None:
        random.RandomPassword(
            "empty", length=8, upper=False, lower=False, numeric=False, special=False
        )

    with pytest.raises(MockProviderError, match="character set specified is empty"):
        run_with_config("dev", pulumi_config("dev"), program=program)
