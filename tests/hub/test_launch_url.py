"""Notebook launches from the Resource Catalogue, followed in Chromium exactly as built.

The platform's parameterisation API uploads the notebook to
s3://<bucket>/<ws>/jupyter/<server>.ipynb and returns (eodhp-guide, docs/explanation/
architecture/parameterised-notebook-and-workflow-launch.md):

    https://<hub host>/notebooks/hub/spawn/<user>/<server>?workspace=<ws>
        &next=https://<hub host>/notebooks/user/<user>/<server>/lab/tree/s3/jupyter/<server>.ipynb

with server names like ndvi-notebook_123456. Here the hub host is the real hub's (its
HUB_HOST), the fake Keycloak logs in, and the recording spawner stands for Kubernetes: the
stub server behind the proxy answers the notebook's URL.
"""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.hub.fake_keycloak import EXCHANGE_GRANT
from tests.hub.test_spawn_browser import login

pytestmark = pytest.mark.slow


def launch_url(real_hub, user: str, server: str, workspace: str) -> str:
    """The URL exactly as the launch service writes it (next is not encoded)."""
    base = f"http://{real_hub.host}/notebooks"
    notebook = f"{base}/user/{user}/{server}/lab/tree/s3/jupyter/{server}.ipynb"
    return f"{base}/hub/spawn/{user}/{server}?workspace={workspace}&next={notebook}"


def lands_in_the_notebook(browser, user: str, server: str) -> None:
    path = f"/notebooks/user/{user}/{server}/lab/tree/s3/jupyter/{server}.ipynb"
    WebDriverWait(browser, 30).until(lambda b: urlparse(b.current_url).path == path)
    assert "stub notebook" in browser.page_source


def servers(real_hub, user: str) -> dict:
    response = real_hub.admin("GET", f"/users/{user}?include_stopped_servers=1")
    response.raise_for_status()
    return response.json()["servers"]


def wait_stopped(real_hub, user: str, server: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = servers(real_hub, user).get(server)
        if state and state["stopped"] and not state["pending"]:
            return
        time.sleep(0.2)
    raise AssertionError(f"{user}/{server} did not stop: {servers(real_hub, user)}")


def pod_deletes(real_hub, user: str) -> list[str]:
    return [
        call["name"]
        for call in real_hub.k8s_calls()
        if call["user"] == user and call["method"] == "delete_namespaced_pod"
    ]


def test_a_logged_in_launch_starts_the_named_server_and_opens_the_notebook(browser, real_hub, kc):
    login(browser, real_hub, kc, "lena")
    browser.get(launch_url(real_hub, "lena", "ndvi-notebook_123456", "lambda"))
    lands_in_the_notebook(browser, "lena", "ndvi-notebook_123456")

    record = real_hub.wait_for_record("lena~ndvi-notebook_123456")
    assert record["user_options"]["workspace"] == "lambda"
    assert (record["namespace"], record["pvc_name"]) == ("ws-lambda", "pvc-lambda")
    assert record["pod_name"].startswith("jupyter-lena--ndvi-notebook")
    assert record["env"]["WORKSPACE"] == "lambda"
    (exchange,) = kc.grants(EXCHANGE_GRANT)
    assert exchange["form"]["scope"] == "workspace:lambda"

    # Stopped (culled, or by the user): the same URL starts it again and opens the notebook.
    assert real_hub.admin("DELETE", "/users/lena/servers/ndvi-notebook_123456").ok
    wait_stopped(real_hub, "lena", "ndvi-notebook_123456")
    browser.get(launch_url(real_hub, "lena", "ndvi-notebook_123456", "lambda"))
    lands_in_the_notebook(browser, "lena", "ndvi-notebook_123456")
    assert servers(real_hub, "lena")["ndvi-notebook_123456"]["ready"]

    # Another workspace: both run side by side.
    browser.get(launch_url(real_hub, "lena", "ndvi-notebook_200000", "mu"))
    lands_in_the_notebook(browser, "lena", "ndvi-notebook_200000")
    running = servers(real_hub, "lena")
    assert running["ndvi-notebook_123456"]["ready"] and running["ndvi-notebook_200000"]["ready"]

    # A second launch into the same workspace stops nothing (any site can send the browser
    # to a link): 409, the reason on the page, the first server still running, no exchange.
    first_pod = record["pod_name"]
    deleted_before = pod_deletes(real_hub, "lena").count(first_pod)
    exchanges_before = len(kc.grants(EXCHANGE_GRANT))
    second_launch = launch_url(real_hub, "lena", "ndvi-notebook_300000", "lambda")
    refused = real_hub.login(kc, "lena").get(second_launch, allow_redirects=False, timeout=30)
    assert refused.status_code == 409
    assert "&#39;ndvi-notebook_123456&#39; is running in workspace &#39;lambda&#39;" in (
        refused.text
    )
    browser.get(second_launch)
    error = WebDriverWait(browser, 30).until(
        ec.presence_of_element_located((By.ID, "eodh-spawn-error"))
    )
    assert "A link never stops a running server" in error.text
    running = servers(real_hub, "lena")
    assert running["ndvi-notebook_123456"]["ready"]
    assert "ndvi-notebook_300000" not in running or running["ndvi-notebook_300000"]["stopped"]
    assert pod_deletes(real_hub, "lena").count(first_pod) == deleted_before
    assert len(kc.grants(EXCHANGE_GRANT)) == exchanges_before

    # The form below the refusal, the user's own choice, replaces the first: its pod is
    # deleted (its own name, not the new server's) and it is listed as stopped.
    Select(browser.find_element(By.ID, "eodh-workspace")).select_by_value("lambda")
    browser.find_element(By.ID, "eodh-start").click()
    lands_in_the_notebook(browser, "lena", "ndvi-notebook_300000")
    after = servers(real_hub, "lena")
    assert after["ndvi-notebook_123456"]["stopped"]
    assert after["ndvi-notebook_200000"]["ready"] and after["ndvi-notebook_300000"]["ready"]
    assert pod_deletes(real_hub, "lena").count(first_pod) == deleted_before + 1
    second = real_hub.record("lena~ndvi-notebook_300000")
    assert second["pod_name"] != first_pod and second["namespace"] == "ws-lambda"

    browser.get(f"{real_hub.url}/hub/home")
    row = browser.find_element(By.CSS_SELECTOR, "tr[data-server-name='ndvi-notebook_123456']")
    assert "start" in row.text.lower() and "stop" not in row.text.lower()


def test_a_logged_out_launch_logs_in_then_opens_the_notebook(browser, real_hub, kc):
    browser.delete_all_cookies()
    kc.login_as = "otto"
    browser.get(launch_url(real_hub, "otto", "ndvi-notebook_123456", "omicron"))
    WebDriverWait(browser, 30).until(ec.url_contains("/hub/login"))
    browser.find_element(By.PARTIAL_LINK_TEXT, "Sign in with").click()
    lands_in_the_notebook(browser, "otto", "ndvi-notebook_123456")
    record = real_hub.wait_for_record("otto~ndvi-notebook_123456")
    assert record["namespace"] == "ws-omicron"


def test_a_launch_into_someone_elses_workspace_is_refused_before_any_exchange(
    browser, real_hub, kc
):
    url = launch_url(real_hub, "nina", "ndvi-notebook_123456", "kappa")
    session = real_hub.login(kc, "nina")
    response = session.get(url, allow_redirects=False, timeout=30)
    assert response.status_code == 403
    assert "You are not a member of workspace &#39;kappa&#39;" in response.text

    login(browser, real_hub, kc, "nina")
    browser.get(url)
    error = WebDriverWait(browser, 30).until(
        ec.presence_of_element_located((By.ID, "eodh-spawn-error"))
    )
    assert "not a member of workspace 'kappa'" in error.text
    assert real_hub.record("nina~ndvi-notebook_123456") is None
    assert not kc.grants(EXCHANGE_GRANT)
    assert (
        "ndvi-notebook_123456" not in servers(real_hub, "nina")
        or servers(real_hub, "nina")["ndvi-notebook_123456"]["stopped"]
    )
