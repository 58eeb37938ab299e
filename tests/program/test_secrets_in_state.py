"""No generated secret, in any encoding, lands where Pulumi state keeps it unencrypted.

State keeps every resource's id in clear (the engine refuses to make an id secret), and every
input and output that is not secret. The mocks give ids the way the real providers do (see
eodh_jupyterhub/offline.py), so a generator whose id is its value shows here as it would in
`pulumi stack export`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Iterator
from typing import Any

import pulumi
import pulumi_random as random
import pytest

from components.hub_secrets import GeneratedHubSecrets
from eodh_jupyterhub.offline import Recording, is_secret, reveal, run_with_config
from tests.support.stacks import pulumi_config

WINDOW = 16  # a leaked fragment this long (64+ bits) is no coincidence


def _encodings(raw: bytes) -> set[str]:
    b64 = base64.b64encode(raw).decode()
    url = base64.urlsafe_b64encode(raw).decode()
    return {
        raw.hex(),
        raw.hex().upper(),
        b64,
        b64.rstrip("="),
        url,
        url.rstrip("="),
        str(int.from_bytes(raw, "big")),
    }


def _decodings(text: str) -> Iterator[bytes]:
    """The bytes `text` may stand for: hex, or base64 in either alphabet, padded or not."""
    padded = text + "=" * (-len(text) % 4)
    decoders = (
        bytes.fromhex,
        lambda t: base64.b64decode(padded, validate=True),
        lambda t: base64.b64decode(padded, altchars=b"-_", validate=True),
    )
    for decode in decoders:
        with contextlib.suppress(binascii.Error, ValueError):
            yield decode(text)


def derived_forms(value: str) -> set[str]:
    """`value` and everything one encoding step away from it, in either direction."""
    forms = {value, value.lower(), value.upper()} | _encodings(value.encode())
    for raw in _decodings(value):
        if len(raw) >= WINDOW // 2:
            forms |= _encodings(raw)
    return {f for f in forms if len(f) >= WINDOW}


def generated_values(recording: Recording) -> set[str]:
    """Every value a random generator produced in this run, read from its outputs."""
    values = set()
    for resource in recording.resources:
        if not resource.type.startswith("random:"):
            continue
        for key in ("result", "hex", "b64Std", "b64Url", "base64", "dec"):
            value = reveal(resource.outputs.get(key))
            if isinstance(value, str) and value:
                values.add(value)
    return values


def _clear_strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """(location, text) of every string state would keep unencrypted, keys included."""
    if is_secret(value):
        return
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{where}.{key}", str(key)
            yield from _clear_strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _clear_strings(item, f"{where}[{index}]")


def clear_fields(recording: Recording) -> Iterator[tuple[str, str]]:
    for resource in recording.resources:
        yield f"{resource.name}: id", resource.id
        # The `import_` option's id stays in state as `importID`, in clear (pulumi/pulumi
        # pkg/resource/deploy/step_generator.go sets it; stack.SerializeResource writes it).
        yield f"{resource.name}: importID", resource.import_id
        yield f"{resource.name}: urn", resource.urn
        yield from _clear_strings(resource.inputs, f"{resource.name}: inputs")
        yield from _clear_strings(resource.outputs, f"{resource.name}: outputs")
    for key, value in recording.outputs.items():
        if key not in recording.secret_outputs:
            yield from _clear_strings(value, f"stack output {key}")


def fragments(values: set[str]) -> set[str]:
    return {
        form[start : start + WINDOW]
        for value in values
        for form in derived_forms(value)
        for start in range(len(form) - WINDOW + 1)
    }


def holds_fragment(text: str, known: set[str]) -> bool:
    return any(text[i : i + WINDOW] in known for i in range(len(text) - WINDOW + 1))


def leaks(recording: Recording) -> list[str]:
    known = fragments(generated_values(recording))
    return [
        f"{where} holds part of a generated secret"
        for where, text in clear_fields(recording)
        if holds_fragment(text, known)
    ]


def test_no_generated_secret_reaches_clear_state(recording: Recording) -> None:
    assert generated_values(recording), "the stack generates its hub secrets"
    assert leaks(recording) == []


def test_generators_have_ids_that_carry_nothing(up_recording: Recording) -> None:
    generators = [r for r in up_recording.resources if r.type.startswith("random:")]
    # The hub's three, and the metrics token where a scraper is set.
    scraper = pulumi_config(up_recording.stack).get("eodh-jupyterhub:metricsScraper")
    assert len(generators) == 3 + bool(scraper)
    # terraform-provider-random resource_password.go: the id is "none" on create and import.
    assert {r.id for r in generators} == {"none"}


# The check itself must catch what it is for: generators whose id is the value.
def _old_random_id_component(recording: Recording) -> None:
    # The earlier GeneratedHubSecrets: RandomId with every output said secret, "id" included.
    generated = random.RandomId(
        "hub-secrets-cookie-secret",
        byte_length=32,
        opts=pulumi.ResourceOptions(
            additional_secret_outputs=["hex", "b64_std", "b64_url", "dec", "id"]
        ),
    )
    pulumi.export("cookie", generated.hex.apply(pulumi.Output.secret))


def _random_bytes_generator(recording: Recording) -> None:
    generated = random.RandomBytes("hub-secrets-cookie-secret", length=32)
    pulumi.export("cookie", generated.hex)


@pytest.mark.parametrize("program", [_old_random_id_component, _random_bytes_generator])
@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_the_check_catches_a_generator_whose_id_is_its_value(program, preview: bool) -> None:
    recording = run_with_config("dev", pulumi_config("dev"), preview=preview, program=program)
    assert recording.secret_outputs == {"cookie"}
    assert leaks(recording) == ["hub-secrets-cookie-secret: id holds part of a generated secret"]


def _imported_with_the_option(recording: Recording) -> None:
    def with_import(args: pulumi.ResourceTransformationArgs):
        if args.type_ != "random:index/randomPassword:RandomPassword":
            return None
        opts = pulumi.ResourceOptions(import_=bytes(range(32)).hex())
        return pulumi.ResourceTransformationResult(
            args.props, pulumi.ResourceOptions.merge(args.opts, opts)
        )

    pulumi.runtime.register_stack_transformation(with_import)
    secrets = GeneratedHubSecrets("hub-secrets")
    pulumi.export("cookie", secrets.cookie_secret)


def test_the_check_catches_an_import_through_the_resource_option() -> None:
    # Why existing values come in with `pulumi import --file` (which drops the import id and
    # keeps the provider's "none": pkg/resource/deploy/step.go, ImportStep.Apply), never with
    # the import_ option.
    recording = run_with_config("dev", pulumi_config("dev"), program=_imported_with_the_option)
    assert recording.outputs["cookie"] == bytes(range(32)).hex()
    assert {r.id for r in recording.of_type("random:index/randomPassword:RandomPassword")} == {
        "none"
    }
    assert sorted(leaks(recording)) == [
        f"hub-secrets-{role}: importID holds part of a generated secret"
        for role in ("cookie-secret", "crypt-key", "proxy-secret-token")
    ]


def test_the_check_sees_every_encoding_and_fragments() -> None:
    value = bytes(range(32)).hex()
    raw = bytes.fromhex(value)
    known = fragments({value})
    for form in (
        value,
        value.upper(),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        str(int.from_bytes(raw, "big")),
        base64.b64encode(value.encode()).decode(),  # as a Kubernetes Secret's data holds it
        f"prefix-{value[10:30]}-suffix",
    ):
        assert holds_fragment(form, known), form
    assert not holds_fragment(bytes(range(32, 64)).hex(), known)
    assert not holds_fragment(value[: WINDOW - 1], known)
