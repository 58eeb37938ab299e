"""The ingress header guard, run in a real nginx with the headers-more module.

The Ingress's `configuration-snippet` is what ingress-nginx pastes into the location block
of /notebooks (rootfs/etc/nginx/template/nginx.tmpl: `{{ $location.ConfigurationSnippet }}`).
Here that exact text goes into the location of a local nginx that proxies to an echo server
on 127.0.0.1, and hostile identity headers are sent through it: the upstream (the hub's
proxy in production) must receive none of them, and everything else unchanged.

nginx: Debian's `nginx` with `libnginx-mod-http-headers-more-filter` (headers-more 0.34; the
controller builds 0.37 in statically, images/nginx/rootfs/build.sh). Missing locally, the
test is skipped with the reason; under CI=true it fails.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from eodh_jupyterhub.offline import Recording, reveal
from tests.support.recordings import recording_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HEADERS_MORE = Path("/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so")
SNIPPET = "nginx.ingress.kubernetes.io/configuration-snippet"

# What a client might send to pass as someone else (oauth2-proxy's and the usual trusted-
# proxy header names, in odd cases too), written out here rather than taken from the code.
HOSTILE = [
    ("Remote-User", "admin"),
    ("remote-user", "admin-lowercase"),
    ("X-Forwarded-User", "admin"),
    ("X-Forwarded-Email", "admin@example.org"),
    ("X-Forwarded-Preferred-Username", "admin"),
    ("X-Forwarded-Groups", "admins"),
    ("X-Forwarded-Access-Token", "not-a-real-token"),
    ("X-Auth-Request-User", "admin"),
    ("X-Auth-Request-Email", "admin@example.org"),
    ("X-Auth-Request-Preferred-Username", "admin"),
    ("X-Auth-Request-Groups", "admins"),
    ("X-Auth-Request-Access-Token", "not-a-real-token"),
    ("x-auth-request-some-future-header", "admin"),
]
# What the hub needs to keep receiving: its own cookies, API tokens, ordinary headers.
BENIGN = [
    ("Cookie", "jupyterhub-session-id=abc"),
    ("Authorization", "token not-a-real-token"),
    ("X-Requested-With", "XMLHttpRequest"),
    ("X-Forwarded-Prefix", "/notebooks"),
    ("Remote-Username-Hint", "kept: not an identity header"),
]


def _ingress(recording: Recording, name: str) -> dict:
    (ingress,) = [
        i
        for i in recording.of_type("kubernetes:networking.k8s.io/v1:Ingress")
        if reveal(i.inputs)["metadata"]["name"] == name
    ]
    return reveal(ingress.inputs)


def _ingress_snippet(recording: Recording) -> str:
    # The Ingress that proxies to the hub (an extra host's redirect Ingress proxies nothing).
    return _ingress(recording, "jupyterhub")["metadata"]["annotations"][SNIPPET]


def _locations(recording: Recording) -> dict[str, str]:
    """nginx location -> snippet, for each path of the hub host's Ingresses, written the way
    ingress-nginx writes them (internal/ingress/controller/template/template.go,
    buildLocation: `= <path>` for Exact; a Prefix path `/notebooks` becomes `/notebooks/`
    plus `= /notebooks`, covered here by nginx's own prefix match of `/notebooks`)."""
    locations = {}
    for name in ("jupyterhub", "jupyterhub-metrics-refusal"):
        ingress = _ingress(recording, name)
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                exact = "= " if path["pathType"] == "Exact" else ""
                locations[exact + path["path"]] = ingress["metadata"]["annotations"][SNIPPET]
    return locations


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps([[k, v] for k, v in self.headers.items()]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def echo() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _require_nginx() -> None:
    missing = [str(p) for p in (Path(NGINX), HEADERS_MORE) if not p.exists()]
    if missing:
        reason = (
            "needs nginx with headers-more (Debian nginx, "
            f"libnginx-mod-http-headers-more-filter): {missing}"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def _serve(tmp: Path, locations: dict[str, str], upstream: int) -> tuple[subprocess.Popen, int]:
    """One nginx, one location per snippet, each proxying to the echo upstream."""
    port = _free_port()
    blocks = "\n".join(
        f"""
        location {path} {{
            {snippet}
            proxy_pass http://127.0.0.1:{upstream};
        }}"""
        for path, snippet in locations.items()
    )
    for folder in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / folder).mkdir(exist_ok=True)
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"""
load_module {HEADERS_MORE};
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        {blocks}
    }}
}}
"""
    )
    check = subprocess.run(
        [NGINX, "-t", "-q", "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, (check.stderr, (tmp / "error.log").read_text())
    process = subprocess.Popen(
        [NGINX, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            if process.poll() is not None:
                raise AssertionError((tmp / "error.log").read_text()) from None
            time.sleep(0.05)
    process.kill()
    raise AssertionError("nginx did not start")


def _status(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", path)
    status = connection.getresponse().status
    connection.close()
    return status


def _upstream_headers(port: int, path: str) -> list[tuple[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.putrequest("GET", path, skip_accept_encoding=True)
    for name, value in HOSTILE + BENIGN:
        connection.putheader(name, value)
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 200, response.read()
    received = [(k, v) for k, v in json.loads(response.read())]
    connection.close()
    return received


def _leaked(received: list[tuple[str, str]]) -> list[str]:
    hostile = {name.lower() for name, _ in HOSTILE}
    return sorted(name for name, _ in received if name.lower() in hostile)


def _mutants(snippet: str) -> dict[str, str]:
    """The snippet with each header name dropped in turn (the bug: a guard that forgets one)."""
    directive, _, rest = snippet.strip().partition(" ")
    names = rest.rstrip(";").split()
    return {name: f"{directive} {' '.join(n for n in names if n != name)};" for name in names}


def test_the_guard_strips_every_identity_header_in_real_nginx(echo: int, tmp_path: Path) -> None:
    _require_nginx()
    snippet = _ingress_snippet(recording_for("prod"))
    mutants = _mutants(snippet)
    assert len(mutants) >= 3
    locations = {"/notebooks": snippet, "/unguarded": ""}
    locations |= {f"/without-{i}": text for i, text in enumerate(mutants.values())}
    nginx, port = _serve(tmp_path, locations, echo)
    try:
        # Without a guard nginx passes all of them: the probe itself is sound.
        assert len(_leaked(_upstream_headers(port, "/unguarded"))) == len(HOSTILE)
        received = _upstream_headers(port, "/notebooks/hub/login")
        assert _leaked(received) == []
        for name, value in BENIGN:
            assert (name, value) in received, f"the guard also removed {name}"
        # Dropping any one name from the guard lets a hostile header through.
        for i, dropped in enumerate(mutants):
            assert _leaked(_upstream_headers(port, f"/without-{i}")), f"nothing needs {dropped}"
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)


def test_the_public_path_refuses_the_hub_metrics_in_real_nginx(echo: int, tmp_path: Path) -> None:
    _require_nginx()
    locations = _locations(recording_for("prod"))
    assert {"= /notebooks/hub/metrics", "= /notebooks/hub/api/metrics"} <= set(locations)
    nginx, port = _serve(tmp_path, locations, echo)
    try:
        # nginx matches the normalised URI: encoded and doubled spellings are the same path.
        for path in (
            "/notebooks/hub/metrics",
            "/notebooks/hub/metrics?format=text",
            "/notebooks//hub/metrics",
            "/notebooks/hub/%6Detrics",
            "/notebooks/hub/./metrics",
            "/notebooks/hub/api/metrics",
            "/notebooks/hub/api//metrics",
        ):
            assert _status(port, path) == 404, path
        # Everything else of the hub is still proxied.
        for path in ("/notebooks/hub/login", "/notebooks/hub/metricsx", "/notebooks/hub/api/users"):
            assert _status(port, path) == 200, path
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)


def test_every_stack_uses_the_same_guard(stack: str) -> None:
    assert _ingress_snippet(recording_for(stack)) == (
        "more_clear_input_headers Remote-User X-Forwarded-User X-Forwarded-Email "
        "X-Forwarded-Preferred-Username X-Forwarded-Groups X-Forwarded-Access-Token "
        "X-Auth-Request-*;\n"
    )


@pytest.mark.parametrize("bad", [(), ("Remote User",), ('X-Auth"',), ("X-*-User",), ("",)])
def test_the_guard_refuses_what_is_not_a_header_name(bad: tuple[str, ...]) -> None:
    from components.jupyterhub import header_guard_snippet

    with pytest.raises(ValueError):
        header_guard_snippet(bad)


def test_an_extra_hosts_redirect_keeps_the_launch_urls_path_and_query_in_real_nginx(
    echo: int, tmp_path: Path
) -> None:
    """prod's redirect Ingress, as ingress-nginx renders `permanent-redirect` in the location
    (rootfs/etc/nginx/template/nginx.tmpl: `return {{ Redirect.Code }} {{ Redirect.URL }};`):
    a launch URL on prod.eodatahub-workspaces.org.uk arrives whole on the hub's host."""
    _require_nginx()
    (redirect,) = [
        reveal(i.inputs)
        for i in recording_for("prod").of_type("kubernetes:networking.k8s.io/v1:Ingress")
        if reveal(i.inputs)["metadata"]["name"] == "jupyterhub-redirect"
    ]
    annotations = redirect["metadata"]["annotations"]
    url = annotations["nginx.ingress.kubernetes.io/permanent-redirect"]
    code = annotations["nginx.ingress.kubernetes.io/permanent-redirect-code"]
    nginx, port = _serve(tmp_path, {"/notebooks": f"return {code} {url};"}, echo)
    launch = (
        "/notebooks/hub/spawn/alice/ndvi-notebook_123456?workspace=alpha&next=https://"
        "eodatahub-workspaces.org.uk/notebooks/user/alice/ndvi-notebook_123456/lab/tree/s3/"
        "jupyter/ndvi-notebook_123456.ipynb"
    )
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("POST", launch, body=b"", headers={"Host": "prod.example"})
        response = connection.getresponse()
        assert response.status == 308
        assert response.getheader("Location") == f"https://eodatahub-workspaces.org.uk{launch}"
        connection.close()
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
