"""The workspace options form and its parser, on the configured eodh-jpyauth spawner."""

from __future__ import annotations

import html
import re

import pytest
from tornado import web

from tests.hub.conftest import PROFILES
from tests.hub.fake_keycloak import EXCHANGE_GRANT


def _options(form_html: str, name: str) -> list[str]:
    """Values of the <option>s of the select called ``name``, or of its radio inputs."""
    select = re.search(rf'<select[^>]*name="{name}".*?</select>', form_html, re.S)
    if select:
        return [html.unescape(v) for v in re.findall(r'value="([^"]*)"', select.group(0))]
    return re.findall(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', form_html)


def test_form_offers_both_workspaces_and_every_profile(run, make_spawner):
    spawner = make_spawner("alice")
    form = run(spawner.get_options_form())
    assert _options(form, "workspace") == ["alpha", "beta"]
    assert _options(form, "profile") == [p["slug"] for p in PROFILES]
    assert re.search(r'<label for="eodh-workspace"[^>]*>.*Workspace', form, re.S)
    # The chart's default profile is pre-selected.
    assert re.search(r'value="eodh" checked', form)


def test_form_reads_a_callable_profile_list(run, make_spawner):
    spawner = make_spawner("alice", profile_list=lambda s: PROFILES[1:])
    form = run(spawner.get_options_form())
    assert _options(form, "profile") == ["python-3-12", "r-4-4"]


def test_form_is_never_empty_even_without_workspaces(run, make_spawner):
    # An empty form would make JupyterHub spawn straight away, without a workspace.
    spawner = make_spawner("bob")
    form = run(spawner.get_options_form())
    assert form.strip()
    assert _options(form, "workspace") == []


def test_profile_texts_are_escaped(run, make_spawner):
    # Profiles come from the chart values; the form must still print them as text.
    hostile = [
        {
            "display_name": '"><script>x()</script>',
            "slug": "odd",
            "description": "<img src=x onerror=y()>",
            "kubespawner_override": {},
        }
    ]
    form = run(make_spawner("alice", profile_list=hostile).get_options_form())
    assert "<script>" not in form and "<img" not in form
    assert "&lt;script&gt;x()&lt;/script&gt;" in form
    assert "&lt;img src=x onerror=y()&gt;" in form


def test_unusable_workspace_names_never_reach_the_form(run, make_spawner, kc):
    kc.users["alice"] = ["alpha", '"><script>x()</script>']
    form = run(make_spawner("alice").get_options_form())
    assert _options(form, "workspace") == ["alpha"]
    assert "script" not in form


def test_unknown_profile_is_refused_before_any_exchange(run, make_spawner, kc):
    spawner = make_spawner("alice")
    with pytest.raises(web.HTTPError) as refused:
        run(spawner.run_options_from_form({"workspace": ["alpha"], "profile": ["gpu"]}))
    assert refused.value.status_code == 400
    assert str(refused.value) == (
        "There is no environment 'gpu'. Choose one of: eodh, python-3-12, r-4-4."
    )
    assert not kc.grants(EXCHANGE_GRANT)


def test_submitting_puts_workspace_and_profile_into_user_options(run, make_spawner):
    spawner = make_spawner("alice")
    options = run(spawner.run_options_from_form({"workspace": ["beta"], "profile": ["r-4-4"]}))
    assert options == {"workspace": "beta", "profile": "r-4-4"}

    # What JupyterHub then does with them: the spawner loads them into its names.
    spawner.user_options = options
    run(spawner.load_user_options())
    assert spawner.namespace == "ws-beta"
    assert spawner.pvc_name == "pvc-beta"
    assert spawner.pod_name == "jupyter-alice"
    assert spawner.image == "quay.io/jupyter/r-notebook:r-4.4.2"
    assert spawner.get_state()["workspace"] == "beta"


@pytest.mark.parametrize(
    ("user", "formdata", "status", "message"),
    [
        ("alice", {"workspace": ["gamma"]}, 403, "not a member of workspace 'gamma'"),
        # Parts of alice's own workspace names (alpha, beta) are other workspaces.
        ("alice", {"workspace": ["alph"]}, 403, "not a member of workspace 'alph'"),
        ("alice", {"workspace": ["lpha"]}, 403, "not a member of workspace 'lpha'"),
        ("alice", {"workspace": ["eta"]}, 403, "not a member of workspace 'eta'"),
        ("alice", {"profile": ["eodh"]}, 400, "Choose a workspace"),
        ("bob", {"workspace": ["alpha"]}, 403, "not a member of any workspace"),
    ],
)
def test_workspace_outside_the_auth_state_is_refused(
    run, make_spawner, user, formdata, status, message
):
    spawner = make_spawner(user)
    with pytest.raises(web.HTTPError) as refused:
        run(spawner.run_options_from_form(formdata))
    assert refused.value.status_code == status
    assert message in str(refused.value)
    assert not str(refused.value).startswith("HTTP "), "the spawn page shows str(e) as is"
