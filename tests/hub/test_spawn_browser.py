"""End to end in headless Chromium: log in, pick a workspace and a profile, start.

Screenshots of the spawn page and its error states go to test-artifacts/ (git-ignored);
``make screenshots`` sets EODH_SCREENSHOTS=docs/screenshots, which refreshes the ones the
README shows.

The escaping tests put strings that run script if printed unescaped (conftest's
HOSTILE_SCRIPT, HOSTILE_ATTRIBUTE) on every path by which user-controlled text reaches
the page: workspace names in the login token (refused, then listed as unusable), a
refusal echoing a tampered workspace, and one echoing a tampered profile.
"""

from __future__ import annotations

import os
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from tests.hub.conftest import HOSTILE_ATTRIBUTE, HOSTILE_SCRIPT
from tests.hub.fake_keycloak import EXCHANGE_GRANT
from tests.support.hub_config import REPO_ROOT

pytestmark = pytest.mark.slow

ARTIFACTS = REPO_ROOT / "test-artifacts"
# Set by `make screenshots`: where the README's screenshots live.
DOCS_SCREENSHOTS = os.environ.get("EODH_SCREENSHOTS")


def login(browser, real_hub, kc, username):
    browser.delete_all_cookies()
    kc.login_as = username
    browser.get(f"{real_hub.url}/hub/oauth_login")
    WebDriverWait(browser, 30).until(ec.url_contains("/hub/spawn"))


def screenshot(browser, name, docs=False):
    """Save to test-artifacts/, and for the README's pictures also to EODH_SCREENSHOTS."""
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / name))
    if docs and DOCS_SCREENSHOTS:
        target = REPO_ROOT / DOCS_SCREENSHOTS
        target.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(target / name))


def assert_no_script_ran(browser):
    """Nothing hostile became markup: no marker set (onerror fires late), no <img src=x>."""
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert browser.execute_script("return window.__eodh_xss === undefined"), (
            "injected script ran: " + str(browser.execute_script("return window.__eodh_xss"))
        )
        time.sleep(0.1)
    assert not browser.find_elements(By.CSS_SELECTOR, "img[src='x']")
    for script in browser.find_elements(By.TAG_NAME, "script"):
        assert "__eodh_xss" not in (script.get_attribute("innerHTML") or "")


def tamper(browser, element_id, value):
    """Make the form submit ``value`` for the field, as a hand-made request would."""
    browser.execute_script(
        "var el = document.getElementById(arguments[0]);"
        "if (el.tagName === 'SELECT') { el.add(new Option('x', arguments[1], true, true)); }"
        "else { el.value = arguments[1]; el.checked = true; }",
        element_id,
        value,
    )


def submit_and_read_error(browser):
    browser.find_element(By.ID, "eodh-start").click()
    return WebDriverWait(browser, 30).until(
        ec.presence_of_element_located((By.ID, "eodh-spawn-error"))
    )


def test_pick_workspace_and_profile_and_start(browser, real_hub, kc):
    login(browser, real_hub, kc, "alice")
    select = WebDriverWait(browser, 30).until(
        ec.presence_of_element_located((By.ID, "eodh-workspace"))
    )
    label = browser.find_element(By.CSS_SELECTOR, "label[for='eodh-workspace']")
    assert label.text.strip() == "Workspace"
    assert [o.get_attribute("value") for o in Select(select).options] == ["alpha", "beta"]
    profiles = browser.find_elements(By.CSS_SELECTOR, "input[name='profile']")
    assert [p.get_attribute("value") for p in profiles] == ["eodh", "python-3-12", "r-4-4"]
    feedback = browser.find_element(By.ID, "eodh-feedback-link")
    assert feedback.get_attribute("href") == "https://hub.test.invalid/feedback"
    screenshot(browser, "spawn-page.png", docs=True)

    Select(select).select_by_value("beta")
    browser.find_element(By.CSS_SELECTOR, "label[for='eodh-profile-r-4-4']").click()
    browser.find_element(By.ID, "eodh-start").click()

    record = real_hub.wait_for_record("alice")
    assert record["user_options"] == {"workspace": "beta", "profile": "r-4-4"}
    assert record["namespace"] == "ws-beta"
    assert record["pvc_name"] == "pvc-beta"
    assert record["pod_name"] == "jupyter-alice"
    assert record["image"] == "quay.io/jupyter/r-notebook:r-4.4.2"
    env = record["env"]
    assert env["WORKSPACE"] == "beta"
    assert kc.decode(env["S3CONTENTS_WORKSPACE_ACCESS_TOKEN"])["workspace"] == "beta"
    assert env["S3CONTENTS_WORKSPACE_BUCKET"] == "test-workspace-bucket"
    (exchange,) = kc.grants(EXCHANGE_GRANT)
    assert exchange["form"]["scope"] == "workspace:beta"
    # The hub then sends the browser on to the (stub) server through the proxy.
    WebDriverWait(browser, 30).until(ec.url_contains("/notebooks/user/alice/"))
    assert "stub notebook" in browser.page_source


def test_no_workspaces_shows_why_and_offers_no_start(browser, real_hub, kc):
    login(browser, real_hub, kc, "bob")
    notice = browser.find_element(By.ID, "eodh-no-workspaces")
    assert "not a member of any workspace" in notice.text
    assert not browser.find_elements(By.ID, "eodh-start")
    assert browser.find_element(By.ID, "eodh-feedback-link").is_displayed()
    screenshot(browser, "spawn-no-workspaces.png", docs=True)


def test_refused_workspace_is_shown_on_the_page(browser, real_hub, kc):
    login(browser, real_hub, kc, "carol")
    # A tampered form: the page only offers gamma, the request asks for delta.
    browser.execute_script(
        "document.getElementById('eodh-workspace').add(new Option('delta', 'delta', true, true))"
    )
    browser.find_element(By.ID, "eodh-start").click()
    error = WebDriverWait(browser, 30).until(
        ec.presence_of_element_located((By.ID, "eodh-spawn-error"))
    )
    assert "not a member of workspace 'delta'" in error.text
    assert real_hub.record("carol") is None
    assert not kc.grants(EXCHANGE_GRANT)
    screenshot(browser, "spawn-refused-workspace.png")


def test_exchange_failure_is_shown_on_the_page(browser, real_hub, kc):
    login(browser, real_hub, kc, "carol")
    kc.exchange_override = (400, {"error": "invalid_request"})
    browser.find_element(By.ID, "eodh-start").click()
    error = WebDriverWait(browser, 30).until(
        ec.presence_of_element_located((By.ID, "eodh-spawn-error"))
    )
    assert "Could not get access to workspace 'gamma'" in error.text
    assert "HTTP 400" in error.text
    assert real_hub.record("carol") is None
    screenshot(browser, "spawn-exchange-failure.png", docs=True)


def test_hostile_workspace_names_in_the_token_are_listed_as_text(browser, real_hub, kc):
    login(browser, real_hub, kc, "mallory")
    assert_no_script_ran(browser)
    notice = browser.find_element(By.ID, "eodh-unusable-workspaces")
    names = [e.text for e in notice.find_elements(By.TAG_NAME, "code")]
    assert sorted(names) == sorted([HOSTILE_SCRIPT, HOSTILE_ATTRIBUTE])
    options = browser.find_elements(By.CSS_SELECTOR, "#eodh-workspace option")
    assert [o.get_attribute("value") for o in options] == ["theta"]


def test_a_refusal_echoing_a_hostile_workspace_is_text(browser, real_hub, kc):
    login(browser, real_hub, kc, "mallory")
    hostile = HOSTILE_SCRIPT + HOSTILE_ATTRIBUTE
    tamper(browser, "eodh-workspace", hostile)
    error = submit_and_read_error(browser)
    assert_no_script_ran(browser)
    assert f"Workspace '{hostile}' cannot be used" in error.text
    assert real_hub.record("mallory") is None
    assert not kc.grants(EXCHANGE_GRANT)


def test_a_refusal_echoing_a_hostile_profile_is_text(browser, real_hub, kc):
    login(browser, real_hub, kc, "mallory")
    hostile = HOSTILE_ATTRIBUTE + HOSTILE_SCRIPT
    tamper(browser, "eodh-profile-eodh", hostile)
    error = submit_and_read_error(browser)
    assert_no_script_ran(browser)
    assert f"There is no environment '{hostile}'" in error.text
    assert real_hub.record("mallory") is None
    assert not kc.grants(EXCHANGE_GRANT)
    screenshot(browser, "spawn-refused-profile.png")
