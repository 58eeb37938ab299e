"""End to end in headless Chromium: log in, pick a workspace and a profile, start.

Screenshots of the spawn page and its error states go to test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from tests.hub.fake_keycloak import EXCHANGE_GRANT
from tests.support.hub_config import REPO_ROOT

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = REPO_ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("Debian's chromium and chromium-driver are required for the browser tests")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--window-size=1200,1000",
    ):
        options.add_argument(flag)
    # An explicit driver path keeps Selenium from looking for one on the network.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def login(browser, real_hub, kc, username):
    browser.delete_all_cookies()
    kc.login_as = username
    browser.get(f"{real_hub.url}/hub/oauth_login")
    WebDriverWait(browser, 30).until(ec.url_contains("/hub/spawn"))


def screenshot(browser, name):
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / name))


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
    screenshot(browser, "spawn-page.png")

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
    screenshot(browser, "spawn-no-workspaces.png")


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
    screenshot(browser, "spawn-exchange-failure.png")
