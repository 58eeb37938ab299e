"""The offline mocks give ids and outputs the way the real providers do.

Random: terraform-provider-random (the commit pulumi-random 4.21 pins) internal/provider/
resource_id.go, resource_bytes.go, resource_password.go, resource_string.go, and
pulumi-random's provider/resources.go (`computeRandomBytesID`). Kubernetes and AWS: the
Import sections of the pulumi-kubernetes and pulumi-aws resource docs.
"""

from __future__ import annotations

import base64

import pulumi
import pulumi_random as random
import pytest

from eodh_jupyterhub.offline import (
    MockProviderError,
    Recording,
    is_secret,
    reveal,
    run_with_config,
)
from tests.support.stacks import pulumi_config


def _run(program) -> Recording:
    return run_with_config("dev", pulumi_config("dev"), program=program)


def test_random_id_is_its_own_value_unpadded_base64url() -> None:
    recording = _run(lambda r: random.RandomId("gen", byte_length=32, prefix="p-"))
    (generated,) = recording.resources
    raw = bytes.fromhex(generated.outputs["hex"].removeprefix("p-"))
    assert len(raw) == 32
    # resource_id.go: ID = RawURLEncoding (no padding); b64_url = prefix + ID.
    assert generated.id == base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert generated.outputs["b64Url"] == "p-" + generated.id
    assert generated.outputs["b64Std"] == "p-" + base64.b64encode(raw).decode()
    assert generated.outputs["dec"] == "p-" + str(int.from_bytes(raw, "big"))
    # Nothing in the schema is secret: without additional_secret_outputs all is in clear.
    assert not any(is_secret(v) for v in generated.outputs.values())


def test_random_id_secret_outputs_follow_the_option_but_never_the_id() -> None:
    def program(recording: Recording) -> None:
        random.RandomId(
            "gen",
            byte_length=8,
            opts=pulumi.ResourceOptions(additional_secret_outputs=["hex", "b64Url", "id"]),
        )

    (generated,) = _run(program).resources
    assert is_secret(generated.outputs["hex"]) and is_secret(generated.outputs["b64Url"])
    assert not is_secret(generated.outputs["dec"])
    assert generated.id == reveal(generated.outputs["b64Url"])  # the engine refuses "id"


def test_random_bytes_id_is_its_base64_value() -> None:
    (generated,) = _run(lambda r: random.RandomBytes("gen", length=32)).resources
    value = reveal(generated.outputs["base64"])
    assert is_secret(generated.outputs["base64"]) and is_secret(generated.outputs["hex"])
    assert generated.id == value
    assert base64.b64decode(value).hex() == reveal(generated.outputs["hex"])


def test_random_password_id_is_none_and_its_result_secret() -> None:
    (generated,) = _run(lambda r: random.RandomPassword("gen", length=20)).resources
    assert generated.id == "none"
    assert is_secret(generated.outputs["result"]) and is_secret(generated.outputs["bcryptHash"])
    assert len(reveal(generated.outputs["result"])) == 20


def test_random_password_draws_only_from_its_character_classes() -> None:
    def program(recording: Recording) -> None:
        random.RandomPassword(
            "gen",
            length=200,
            upper=False,
            lower=False,
            numeric=True,
            special=True,
            override_special="xyz",
            min_special=5,
        )

    (generated,) = _run(program).resources
    result = reveal(generated.outputs["result"])
    assert len(result) == 200 and set(result) <= set("0123456789xyz")
    assert sum(c in "xyz" for c in result) >= 5


def test_random_password_import_takes_the_value_verbatim() -> None:
    def program(recording: Recording) -> None:
        random.RandomPassword(
            "gen", length=64, upper=False, opts=pulumi.ResourceOptions(import_="Abc-123_xyz")
        )

    (generated,) = _run(program).resources
    assert generated.id == "none" and generated.import_id == "Abc-123_xyz"
    assert reveal(generated.outputs["result"]) == "Abc-123_xyz"
    # ImportState: length from the value, every class on (what forces ignore_changes).
    assert generated.outputs["length"] == 11 and generated.outputs["upper"] is True


def test_random_string_is_its_own_id_in_clear() -> None:
    (generated,) = _run(lambda r: random.RandomString("gen", length=12)).resources
    assert generated.id == generated.outputs["result"] and not is_secret(
        generated.outputs["result"]
    )


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        (
            {"length": 8, "upper": False, "lower": False, "numeric": False, "special": False},
            "empty",
        ),
        ({"length": 2, "min_upper": 2, "min_lower": 1}, "sum of the minimums"),
        ({"length": 0}, "below 1"),
    ],
)
def test_random_password_refuses_what_the_provider_refuses(kwargs, needle: str) -> None:
    with pytest.raises(MockProviderError, match=needle):
        _run(lambda r: random.RandomPassword("gen", **kwargs))


def test_random_id_import_refuses_what_is_not_base64url() -> None:
    def program(recording: Recording) -> None:
        random.RandomId("gen", byte_length=4, opts=pulumi.ResourceOptions(import_="not*b64"))

    with pytest.raises(MockProviderError, match="Import Random ID Error"):
        _run(program)


def test_program_ids_follow_each_providers_format(up_recording: Recording, stack: str) -> None:
    ids = {r.name: r.id for r in up_recording.resources if r.custom}
    namespace = "jupyter"
    assert ids["jupyter-namespace"] == namespace  # cluster-scoped: <name>
    assert ids["hub-rbac-cluster-role"] == "hub"
    assert ids["jupyterhub-templates"] == f"{namespace}/hub-templates"  # <namespace>/<name>
    assert ids["jupyterhub-release"] == f"{namespace}/jupyterhub"  # Helm: <namespace>/<name>
    assert ids["s3keep-function"] == "s3keep-function"
    assert ids["s3keep-async"] == ids["s3keep-function"]
    assert ids["s3keep-logs"] == "s3keep-logs"
    assert ids["s3keep-failures"].startswith("https://sqs.")  # a queue is its URL
    for resource in up_recording.resources:
        if resource.type == "aws:cloudwatch/eventRule:EventRule":
            assert resource.id == reveal(resource.outputs["name"])
        if resource.type == "aws:iam/rolePolicy:RolePolicy":
            assert resource.id == f"{reveal(resource.inputs['role'])}:{resource.name}"
        if resource.type == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            assert resource.id.startswith("arn:aws:iam::") and ":oidc-provider/" in resource.id
        if not resource.custom:
            assert resource.id == ""  # components have no id


@pytest.mark.parametrize("manage_bucket", [True, False], ids=["managed", "shared"])
def test_bucket_resources_are_known_by_the_bucket_name(stack: str, manage_bucket: bool) -> None:
    """Both modes: every stack file shares the platform's bucket today, so the managed bucket's
    resources are only seen with the key flipped."""
    from tests.support.bucket_modes import recording_in_mode

    recording = recording_in_mode(stack, manage_bucket)
    bucket = pulumi_config(stack)["eodh-jupyterhub:workspaceBucket"]
    s3 = {r.name: r.id for r in recording.resources if r.custom and r.type.startswith("aws:s3/")}
    if not manage_bucket:
        assert s3 == {}  # only looked up: nothing of the platform's bucket is in the state
        return
    assert s3.pop("workspaces-bucket") == bucket
    # Every configuration resource of a bucket is known by the bucket's name.
    assert s3 and set(s3.values()) == {bucket}, s3
