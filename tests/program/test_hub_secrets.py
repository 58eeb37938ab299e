"""The generated hub secrets: secret everywhere, and stable across deploys."""

from __future__ import annotations

import pulumi

from components.hub_secrets import GENERATED_SECRETS, GeneratedHubSecrets
from eodh_jupyterhub.offline import Recording, is_secret, run_with_config
from tests.support.stacks import pulumi_config


def _export_generated(recording: Recording) -> None:
    secrets = GeneratedHubSecrets("hub-secrets")
    pulumi.export("cookie", secrets.cookie_secret)
    pulumi.export("proxy", secrets.proxy_secret_token)
    pulumi.export("crypt", secrets.crypt_key)


def test_generated_secrets_are_secret_outputs() -> None:
    recording = run_with_config("dev", pulumi_config("dev"), program=_export_generated)
    assert recording.secret_outputs == {"cookie", "proxy", "crypt"}
    for key in ("cookie", "proxy", "crypt"):
        assert len(recording.outputs[key]) == 64  # 32 bytes as hex


def test_random_ids_keep_every_output_secret_and_have_no_keepers(up_recording: Recording) -> None:
    generators = up_recording.of_type("random:index/randomId:RandomId")
    assert sorted(r.name for r in generators) == sorted(
        f"hub-secrets-{n}" for n in GENERATED_SECRETS
    )
    for generator in generators:
        assert generator.inputs["byteLength"] == 32
        # Keepers would regenerate the value (and log everyone out) whenever they change.
        assert "keepers" not in generator.inputs
        assert {"hex", "b64Std", "b64Url", "dec", "id"} <= set(generator.additional_secret_outputs)
        assert generator.parent_name == "hub-secrets"


def test_generated_secret_names_are_stable() -> None:
    # Renaming a generator replaces it, which rotates the secret on the next `pulumi up`.
    assert GENERATED_SECRETS == ("cookie-secret", "proxy-secret-token", "crypt-key")


def test_mock_secret_detection_works() -> None:
    from pulumi.runtime import rpc

    assert is_secret(rpc.wrap_rpc_secret("x"))
    assert not is_secret("x")
