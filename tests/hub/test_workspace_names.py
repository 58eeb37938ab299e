"""Workspace names and the workspaces claim: refused, never rewritten.

A workspace is the namespace ``ws-<name>`` and the volume ``pvc-<name>``; two workspaces
must never share either. The Kubernetes rules below are copied as literals from
k8s.io/apimachinery/pkg/util/validation/validation.go (IsDNS1123Label, max 63, for
namespaces; IsDNS1123Subdomain, max 253, for PersistentVolumeClaims, whose names
ValidatePersistentVolumeName checks with NameIsDNSSubdomain).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tornado import web

from tests.hub.fake_keycloak import EXCHANGE_GRANT

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def is_namespace_name(name: str) -> bool:
    return len(name) <= 63 and DNS1123_LABEL.fullmatch(name) is not None


def is_pvc_name(name: str) -> bool:
    return len(name) <= 253 and DNS1123_SUBDOMAIN.fullmatch(name) is not None


ACCEPTED = ["a", "alpha", "ws1", "my-workspace", "a" + "b" * 58 + "c"]
REFUSED = {
    "": "empty",
    "Alpha": "lower-case",
    "1abc": "start with a letter",  # a DNS label, but KubeSpawner would hash it
    "a--b": "'--'",  # a DNS label, but KubeSpawner would hash it
    "-a": "start with a letter",
    "a-": "end with a letter or digit",
    "a_b": "lower-case letters, digits and '-'",
    "a.b": "lower-case letters, digits and '-'",
    "alpha ": "lower-case letters, digits and '-'",
    "a" * 61: "longer than 60",
    "<script>": "lower-case letters, digits and '-'",
    # A platform service's prefix of the shared bucket: the notebook role would grant it.
    "workflow-harvester": "reserved",
}
RESERVED = {"workflow-harvester"}


@pytest.fixture
def names(hub_ns):
    return hub_ns["eodh_workspace_name_problem"]


def expanded(spawner, workspace):
    """What eodh-jpyauth makes of the templates for ``workspace`` (its own expansion)."""
    spawner.workspace = workspace
    return (
        spawner._expand_user_properties(spawner.user_namespace_template),
        spawner._expand_user_properties(spawner.pvc_name_template),
    )


@pytest.mark.parametrize("name", ACCEPTED)
def test_accepted_names_become_their_own_namespace_and_volume(names, make_spawner, name):
    assert names(name) is None
    namespace, pvc = expanded(make_spawner("alice"), name)
    assert (namespace, pvc) == (f"ws-{name}", f"pvc-{name}")
    assert is_namespace_name(namespace) and is_pvc_name(pvc)


@pytest.mark.parametrize(("name", "reason"), REFUSED.items())
def test_refused_names_say_why(names, name, reason):
    assert reason in names(name)


@pytest.fixture
def alice_spawner(make_spawner):
    return make_spawner("alice")


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.text(max_size=70),
        st.from_regex(r"[a-z0-9-]{1,66}", fullmatch=True),
    )
)
def test_a_name_is_accepted_exactly_when_it_stays_its_own_valid_namespace(
    names, alice_spawner, name
):
    namespace, pvc = expanded(alice_spawner, name)
    kept = (
        (namespace, pvc) == (f"ws-{name}", f"pvc-{name}")
        and is_namespace_name(namespace)
        and name not in RESERVED
    )
    assert (names(name) is None) == kept
    if kept:
        assert is_pvc_name(pvc)


@pytest.mark.parametrize(("name", "reason"), REFUSED.items())
def test_spawn_in_an_unusable_name_is_refused_before_any_exchange(
    run, make_spawner, kc, name, reason
):
    spawner = make_spawner("alice")
    with pytest.raises(web.HTTPError) as refused:
        run(spawner.run_options_from_form({"workspace": [name], "profile": ["eodh"]}))
    if name:
        assert refused.value.status_code == 400
        assert str(refused.value).startswith(f"Workspace '{name}' cannot be used: ")
        assert reason in str(refused.value)
    else:
        assert "Choose a workspace" in str(refused.value)
    assert not kc.grants(EXCHANGE_GRANT)


def test_unusable_names_in_the_claim_are_not_offered_but_listed(make_spawner, run, kc):
    kc.users["alice"] = ["alpha", "Beta", "a--b"]
    spawner = make_spawner("alice")
    state = spawner.user.auth_state
    assert state["workspaces"] == ["alpha"]
    assert [u["name"] for u in state["unusable_workspaces"]] == ["Beta", "a--b"]
    assert "'--'" in state["unusable_workspaces"][1]["problem"]
    form = run(spawner.get_options_form())
    assert 'value="alpha"' in form and "Beta" not in form


# -- the claim's shape -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("claim", "said"),
    [
        ("alpha", "as a JSON string"),
        ({"alpha": True}, "as a JSON object"),
        (7, "as a JSON number"),
        (None, "as null"),
        (["alpha", 7], "holds a JSON number"),
        (["alpha", ["beta"]], "holds a JSON array"),
    ],
)
def test_a_claim_that_is_not_an_array_of_strings_refuses_the_login(hub_ns, kc, claim, said):
    kc.users["alice"] = claim
    authenticator = hub_ns["c"].JupyterHub.authenticator_class(config=hub_ns["c"])
    with pytest.raises(web.HTTPError) as refused:
        authenticator.build_auth_state_dict(
            kc.issue_user_tokens("alice"), {"preferred_username": "alice"}
        )
    assert refused.value.status_code == 403
    assert said in str(refused.value)
    assert "must be" in str(refused.value)


def test_no_claim_means_no_workspaces(hub_ns, kc):
    del kc.users["alice"]
    authenticator = hub_ns["c"].JupyterHub.authenticator_class(config=hub_ns["c"])
    state = authenticator.build_auth_state_dict(
        kc.issue_user_tokens("alice"), {"preferred_username": "alice"}
    )
    assert state["workspaces"] == [] and state["unusable_workspaces"] == []


def test_an_old_auth_state_with_a_split_string_claim_cannot_spawn(run, make_spawner, kc):
    # Saved before the claim was checked: eodh-jpyauth sorted the string "alpha" into
    # letters, each a valid name. The token's own claim is what counts.
    kc.users["alice"] = "alpha"
    tokens = kc.issue_user_tokens("alice")
    old_state = {**tokens, "workspaces": sorted("alpha")}
    spawner = make_spawner("alice", auth_state=old_state)
    with pytest.raises(web.HTTPError, match="as a JSON string"):
        run(spawner.run_options_from_form({"workspace": ["a"]}))
    spawner.user_options = {"workspace": "a"}
    with pytest.raises(web.HTTPError, match="as a JSON string"):
        run(spawner.run_pre_spawn_hook())
    assert not kc.grants(EXCHANGE_GRANT)


def test_fake_keycloak_matches_whole_names_only(run, hub_ns, kc):
    # A string claim must not make every substring of it a workspace at the exchange.
    kc.users["alice"] = "alpha-beta"
    subject = kc.user_token("alice")
    for part in ("alpha", "beta", "a"):
        with pytest.raises(hub_ns["WorkspaceTokenError"], match="invalid_scope"):
            run(hub_ns["exchange_workspace_token"](subject, part))
    kc.users["alice"] = ["alpha-beta"]
    with pytest.raises(hub_ns["WorkspaceTokenError"], match="invalid_scope"):
        run(hub_ns["exchange_workspace_token"](subject, "alpha"))
    assert run(hub_ns["exchange_workspace_token"](subject, "alpha-beta"))["workspace"] == (
        "alpha-beta"
    )


def test_the_hub_refuses_exactly_the_prefixes_the_function_leaves_alone(hub_ns) -> None:
    # Two copies (the hub ships as files and cannot import components): they must agree,
    # or a workspace could be named like a prefix the function never marks.
    from components.marker_function import PLATFORM_PREFIXES

    assert hub_ns["EODH_RESERVED_WORKSPACE_NAMES"] == frozenset(PLATFORM_PREFIXES)
