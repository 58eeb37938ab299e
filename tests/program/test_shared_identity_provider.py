"""A Keycloak provider another stack trusts is protected and retained by the stack creating it.

dev3 shares dev's realm and names dev's provider in keycloakProviderArn, while dev's data is
throw-away (protectData: false). The provider's protection is its own setting, so destroying
dev can neither delete it nor break dev3's notebook role.
"""

from __future__ import annotations

import pytest

from eodh_jupyterhub.offline import Recording, run_with_config
from eodh_jupyterhub.settings import (
    Settings,
    SettingsError,
    load_settings,
    provider_references,
    shared_provider_problems,
)
from tests.support.recordings import recording_for
from tests.support.stacks import pulumi_config, stack_names

P = "eodh-jupyterhub:"
PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"


def _all_settings(**overrides: dict[str, str]) -> dict[str, Settings]:
    result = {}
    for stack in stack_names():
        config = pulumi_config(stack) | overrides.get(stack, {})
        result[stack] = load_settings(config, stack)
    return result


def _provider(recording: Recording):
    (provider,) = recording.of_type(PROVIDER)
    return provider


def test_every_referenced_provider_is_created_by_a_stack_here() -> None:
    stacks = _all_settings()
    created = {s.created_keycloak_provider_arn: n for n, s in stacks.items()}
    referenced = {n: s.keycloak_provider_arn for n, s in stacks.items() if s.keycloak_provider_arn}
    assert referenced == {
        "dev3": "arn:aws:iam::312280911266:oidc-provider/dev.eodatahub.org.uk/keycloak/realms/eodhp"
    }
    assert created[referenced["dev3"]] == "dev"


def test_the_stack_files_share_no_unprotected_provider() -> None:
    assert shared_provider_problems(_all_settings()) == []


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_dev_protects_and_retains_the_provider_dev3_trusts(preview: bool) -> None:
    recording = recording_for("dev", preview=preview)
    provider = _provider(recording)
    assert provider.protect and provider.retain_on_delete
    # ... while nothing else of dev is protected (protectData: false).
    assert [r.name for r in recording.resources if r.protect] == [provider.name]


def test_turning_off_protection_of_a_shared_provider_is_refused() -> None:
    stacks = _all_settings(dev={f"{P}protectKeycloakProvider": "false"})
    (problem,) = shared_provider_problems(stacks)
    assert problem.startswith("Pulumi.dev.yaml: eodh-jupyterhub:protectKeycloakProvider")
    assert "Pulumi.dev3.yaml" in problem and "keycloakProviderArn" in problem


def test_a_provider_nobody_else_trusts_may_go_unprotected() -> None:
    # test's provider serves test alone: a throw-away stack may opt out and destroy cleanly.
    stacks = _all_settings(test={f"{P}protectKeycloakProvider": "false"})
    assert shared_provider_problems(stacks) == []
    recording = recording_for("test")
    assert _provider(recording).protect  # the default still protects it


def test_protection_of_a_created_provider_follows_its_own_setting(stack: str) -> None:
    settings = load_settings(pulumi_config(stack), stack)
    providers = recording_for(stack).of_type(PROVIDER)
    if settings.keycloak_provider_arn:
        assert providers == []
        return
    (provider,) = providers
    assert provider.protect is settings.protect_keycloak_provider is True
    assert provider.retain_on_delete is True


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_the_program_refuses_to_unprotect_a_shared_provider(preview: bool) -> None:
    # At `pulumi preview`/`up` time too, not only in CI: the stack files lie beside Pulumi.yaml.
    config = pulumi_config("dev") | {f"{P}protectKeycloakProvider": "false"}
    recording = Recording(stack="dev", preview=preview)
    with pytest.raises(SettingsError) as raised:
        run_with_config("dev", config, preview=preview, recording=recording)
    message = str(raised.value)
    assert message.startswith("Pulumi.dev.yaml: invalid stack configuration")
    assert f"{P}protectKeycloakProvider: expected true" in message
    assert "Pulumi.dev3.yaml" in message
    assert recording.resources == [], "a resource was registered despite the refusal"


def test_the_program_lets_an_unshared_provider_go_unprotected() -> None:
    config = pulumi_config("test") | {f"{P}protectKeycloakProvider": "false"}
    recording = run_with_config("test", config)
    provider = _provider(recording)
    assert not provider.protect and not provider.retain_on_delete


def test_provider_references_are_read_from_the_stack_files() -> None:
    references = provider_references()
    assert set(references) == set(stack_names())
    assert {k: v for k, v in references.items() if v} == {
        "dev3": "arn:aws:iam::312280911266:oidc-provider/dev.eodatahub.org.uk/keycloak/realms/eodhp"
    }
