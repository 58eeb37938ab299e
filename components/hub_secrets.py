"""The hub's cookie secret, proxy token and crypt key, generated once and kept in state.

The chart can generate these itself only through Helm `lookup`, which sees nothing when the
chart is rendered without the live cluster and then regenerates them, logging everybody out
(z2jh issue 2887). A generator without keepers never changes on `pulumi up`; rotating one is a
deliberate `pulumi up --replace <urn>` (see the README's operations section).

Why `RandomPassword` and not `RandomId` or `RandomBytes`: Pulumi stores a resource's id in
clear text (the engine refuses `additional_secret_outputs=["id"]`), so the id must carry
nothing of the value.
- `RandomId`: the id *is* the value (terraform-provider-random, internal/provider/
  resource_id.go: `ID: types.StringValue(id)` with `B64URL: prefix + id`).
- `RandomBytes`: the Terraform resource has no id, and pulumi-random computes one from the
  value (pulumi/pulumi-random provider/resources.go, `computeRandomBytesID` returns the
  `base64` property, unwrapping its secret).
- `RandomPassword`: the id is the constant "none" on create and on import
  (resource_password.go: `plan.ID = types.StringValue("none")`, and in ImportState
  `ID: types.StringValue("none")`); `result` and `bcrypt_hash` are Sensitive, which
  pulumi-random's schema turns into secret outputs. Every other property is one of our own
  inputs (length, character classes), none derived from the value.

No alias from the earlier RandomIds: no Pulumi stack has been deployed yet (the environments
run ArgoCD), so there is no state to carry over. Existing values come in by import instead.
"""

from __future__ import annotations

import base64
import binascii
import re

import pulumi
import pulumi_random as random

# 32 bytes, as 64 hex characters: what JupyterHub asks for. The cookie secret is read with
# bytes.fromhex (JupyterHub app.py, _validate_secret_key) and a 64-character crypt key is
# hex-decoded (jupyterhub/crypto.py, _validate_key); the chart passes both through verbatim
# (vendor/jupyterhub-4.2.0/templates/hub/_helpers-passwords.tpl).
SECRET_BYTES = 32
SECRET_LENGTH = 2 * SECRET_BYTES
HEX_ALPHABET = "0123456789abcdef"
GENERATED_SECRETS = ("cookie-secret", "proxy-secret-token", "crypt-key")
GENERATOR_TYPE = "random:index/randomPassword:RandomPassword"

# Importing an existing value: `pulumi import --file` with type GENERATOR_TYPE, the
# generator's name and parent, and `import_id(role, value)` as the id (never on a command line,
# which the process list shows). The import id IS the value, verbatim (resource_password.go
# ImportState: `Result: types.StringValue(id)`). `pulumi import` keeps none of it in clear: it
# drops the import id and stores the provider's id "none" (pulumi/pulumi
# pkg/resource/deploy/step.go, ImportStep.Apply). Not the `import_` resource option: the engine
# keeps that id in state as `importID`, in clear (tests/program/test_secrets_in_state.py).
# The import writes length = len(value), upper/lower/numeric/special = true, no override_special.
# Those differ from the inputs below, and each of them forces a replacement, which would
# regenerate the value right after the import; ignoring them keeps the imported value (the
# engine applies ignore_changes to an import's diff: pulumi/pulumi pkg/resource/deploy/step.go,
# ImportStep.Apply). They never need to change later either: rotation is a --replace.
IMPORT_IGNORED_INPUTS = (
    "length",
    "lower",
    "upper",
    "numeric",
    "number",
    "special",
    "overrideSpecial",
    "minLower",
    "minUpper",
    "minNumeric",
    "minSpecial",
)

_HEX_64 = re.compile(r"[0-9a-fA-F]{64}")
# The chart generates the proxy token with `randAlphaNum 64`; any printable, space-free token
# works for configurable-http-proxy.
_TOKEN = re.compile(r"[\x21-\x7e]{16,512}")


class ImportValueError(ValueError):
    pass


def import_id(role: str, value: str) -> str:
    """The `pulumi import` id of generator `role` holding `value` (an existing environment's).

    Refuses values JupyterHub would refuse, so a bad copy fails here and not at hub start.
    """
    if role == "cookie-secret":
        # JupyterHub reads a string cookie secret with bytes.fromhex.
        return import_id_from_hex(value)
    if role == "crypt-key":
        return value if _HEX_64.fullmatch(value) else _base64_crypt_key(value)
    if role == "proxy-secret-token":
        if not _TOKEN.fullmatch(value):
            raise ImportValueError(
                "proxy-secret-token: expected 16 to 512 printable characters without spaces"
            )
        return value
    raise ImportValueError(f"unknown generated secret {role!r}; known: {GENERATED_SECRETS}")


def import_id_from_hex(hex_value: str) -> str:
    """The import id of a 32-byte secret given as 64 hex characters: the value itself."""
    if not _HEX_64.fullmatch(hex_value):
        raise ImportValueError(f"expected {SECRET_LENGTH} hex characters (32 bytes)")
    return hex_value


def _base64_crypt_key(value: str) -> str:
    if ";" in value:
        raise ImportValueError("crypt-key: one key only; this stack manages a single key")
    # The other text form CryptKeeper accepts: 44 characters of URL-safe base64, 32 bytes.
    try:
        ok = len(value) == 44 and len(base64.urlsafe_b64decode(value)) == SECRET_BYTES
    except (binascii.Error, ValueError):
        ok = False
    if not ok:
        raise ImportValueError(
            f"crypt-key: expected {SECRET_LENGTH} hex characters or 44 characters of "
            "URL-safe base64, either holding 32 bytes"
        )
    return value


class GeneratedHubSecrets(pulumi.ComponentResource):
    cookie_secret: pulumi.Output[str]
    proxy_secret_token: pulumi.Output[str]
    crypt_key: pulumi.Output[str]

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eodh:secrets:GeneratedHubSecrets", name, None, opts)
        values = {}
        for role in GENERATED_SECRETS:
            generated = random.RandomPassword(
                f"{name}-{role}",
                length=SECRET_LENGTH,
                # One character class holding exactly the 16 hex digits: every character is
                # drawn uniformly from it (internal/random/string.go), 4 bits each, 256 bits.
                special=True,
                override_special=HEX_ALPHABET,
                upper=False,
                lower=False,
                numeric=False,
                min_special=0,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # Secret already by the provider schema; said again so that no future
                    # schema change can put them in clear text.
                    additional_secret_outputs=["result", "bcryptHash"],
                    ignore_changes=list(IMPORT_IGNORED_INPUTS),
                ),
            )
            # Output.secret keeps it secret under mocks too, which drop the option.
            values[role] = generated.result.apply(pulumi.Output.secret)
        self.cookie_secret = values["cookie-secret"]
        self.proxy_secret_token = values["proxy-secret-token"]
        self.crypt_key = values["crypt-key"]
        self.register_outputs(
            {
                "cookie_secret": self.cookie_secret,
                "proxy_secret_token": self.proxy_secret_token,
                "crypt_key": self.crypt_key,
            }
        )
