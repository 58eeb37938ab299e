"""Read-only checks of the live environment before any `pulumi up` (or import).

    python -m tools.preflight dev [--adopting]    # exit 0 when every check passes

Each check says what is wrong and how to fix it. Nothing is written anywhere: Kubernetes is
only read (Secrets as metadata only: `PartialObjectMetadata`, so no secret value is fetched),
AWS only through Get/Head/List calls. `--adopting` means the environment runs under ArgoCD
today: what `make import-plan` imports must then exist rather than be absent.

Kubernetes: the kubeconfig context is the stack's `kubernetes:context` (the one the program's
provider uses), from $KUBECONFIG or ~/.kube/config; token, client certificate and exec
credentials (EKS: `aws eks get-token`) are supported. AWS: the default credential chain.
"""

from __future__ import annotations

import argparse
import ast
import base64
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from eodh_jupyterhub import yaml_loader

if TYPE_CHECKING:
    from eodh_jupyterhub.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
AUTHENTICATOR_CONFIG = ROOT / "hub" / "extra_config" / "2_configure_authenticator.py"
# Lambda keeps this much of the account's concurrency unreserved; a reservation that would go
# below it is refused (Lambda developer guide, "Configuring reserved concurrency").
MIN_UNRESERVED_CONCURRENCY = 100
EXTERNAL_SECRETS_KINDS = ("secretstores", "externalsecrets")
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
DEFAULT_INGRESS_CONFIGMAP = "ingress-nginx/ingress-nginx-controller"
TIMEOUT = 10


@dataclass
class Result:
    check: str
    ok: bool
    message: str
    fix: str = ""


class Failed(Exception):
    def __init__(self, message: str, fix: str):
        super().__init__(message)
        self.fix = fix


# -- Kubernetes: just enough of a client to read a few objects ---------------------------


@dataclass
class KubeClient:
    server: str
    session: requests.Session = field(default_factory=requests.Session)

    def get(self, path: str, accept: str = "application/json") -> requests.Response:
        return self.session.get(
            self.server.rstrip("/") + path, headers={"Accept": accept}, timeout=TIMEOUT
        )


def _kubeconfig_path() -> Path:
    first = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    return Path(first) if first else Path.home() / ".kube" / "config"


def _data_file(data: str, directory: str) -> str:
    path = Path(directory) / f"kube-{len(os.listdir(directory))}"
    path.write_bytes(base64.b64decode(data))
    return str(path)


def kube_client(context: str, workdir: str) -> KubeClient:
    path = _kubeconfig_path()
    if not path.is_file():
        raise Failed(
            f"no kubeconfig at {path}",
            f"aws eks update-kubeconfig --name <cluster> --alias {context}",
        )
    config = yaml_loader.safe_load(path.read_text()) or {}

    def named(section: str, name: str) -> dict[str, Any]:
        for item in config.get(section) or []:
            if item.get("name") == name:
                return item.get(section[:-1]) or {}
        known = ", ".join(i.get("name", "?") for i in config.get("contexts") or [])
        raise Failed(
            f"kubeconfig {path} has no {section[:-1]} {name!r} (contexts: {known or 'none'})",
            f"aws eks update-kubeconfig --name <cluster> --alias {context}",
        )

    ctx = named("contexts", context)
    cluster = named("clusters", ctx.get("cluster", ""))
    user = named("users", ctx.get("user", "")) if ctx.get("user") else {}
    session = requests.Session()
    if cluster.get("certificate-authority-data"):
        session.verify = _data_file(cluster["certificate-authority-data"], workdir)
    elif cluster.get("certificate-authority"):
        session.verify = cluster["certificate-authority"]
    if cluster.get("insecure-skip-tls-verify"):
        session.verify = False
    token = user.get("token")
    if user.get("exec"):
        token = _exec_token(user["exec"])
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    if user.get("client-certificate-data"):
        session.cert = (
            _data_file(user["client-certificate-data"], workdir),
            _data_file(user["client-key-data"], workdir),
        )
    return KubeClient(cluster["server"], session)


def _exec_token(spec: dict[str, Any]) -> str:
    env = {**os.environ, **{e["name"]: e["value"] for e in spec.get("env") or []}}
    try:
        done = subprocess.run(
            [spec["command"], *(spec.get("args") or [])],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise Failed(
            f"the kubeconfig's credential command {spec['command']!r} failed: {error}",
            "check the AWS credentials (aws sts get-caller-identity) and the command",
        ) from None
    return json.loads(done.stdout)["status"]["token"]


# -- The checks ---------------------------------------------------------------------------


def check_cluster(kube: KubeClient, context: str) -> str:
    try:
        response = kube.get("/version")
    except requests.RequestException as error:
        raise Failed(
            f"context {context!r}: API server {kube.server} unreachable "
            f"({error.__class__.__name__})",
            "connect to the VPN / check the cluster endpoint, then retry",
        ) from None
    if response.status_code in (401, 403):
        raise Failed(
            f"context {context!r}: the API server refused the credentials "
            f"(HTTP {response.status_code})",
            "refresh credentials (aws sso login) and check the EKS access entry for your role",
        )
    if response.status_code != 200:
        raise Failed(f"GET /version answered HTTP {response.status_code}", "check the cluster")
    return f"context {context!r} reachable, Kubernetes {response.json().get('gitVersion')}"


def check_external_secrets(kube: KubeClient) -> str:
    response = kube.get("/apis/external-secrets.io/v1")
    if response.status_code == 404:
        raise Failed(
            "external-secrets.io/v1 is not served: the program's SecretStore and "
            "ExternalSecret would be refused",
            "upgrade the External Secrets operator and its CRDs to a release serving v1 "
            "(the repository is tested with vendor/external-secrets-2.9.0)",
        )
    if response.status_code != 200:
        raise Failed(
            f"GET /apis/external-secrets.io/v1 answered HTTP {response.status_code}",
            "check your access to API discovery",
        )
    served = {r.get("name") for r in response.json().get("resources", [])}
    missing = [k for k in EXTERNAL_SECRETS_KINDS if k not in served]
    if missing:
        raise Failed(
            f"external-secrets.io/v1 does not serve {', '.join(missing)}",
            "install the External Secrets CRDs for SecretStore and ExternalSecret",
        )
    return "external-secrets.io/v1 serves SecretStore and ExternalSecret"


def _object_exists(kube: KubeClient, path: str) -> bool:
    """Whether the API server has the object at `path` (its metadata only is read)."""
    response = kube.get(path, accept=METADATA_ONLY)
    if response.status_code not in (200, 404):
        raise Failed(f"GET {path} answered HTTP {response.status_code}", "check your access")
    return response.status_code == 200


def check_tls_secret(kube: KubeClient, settings: Settings) -> str:
    named = [
        ("tlsSecretName", settings.tls_secret_name),
        ("userServersTlsSecretName", settings.user_servers_tls_secret_name),
    ]
    found = []
    for key, name in named:
        if not name:
            continue
        if not _object_exists(kube, f"/api/v1/namespaces/{settings.namespace}/secrets/{name}"):
            raise Failed(
                f"TLS secret {settings.namespace}/{name} ({key}) does not exist: the "
                "ingress would serve the controller's default certificate",
                f"create it in namespace {settings.namespace} (or copy it there), or unset "
                f"{key} if TLS ends at the load balancer",
            )
        found.append(f"{settings.namespace}/{name}")
    if not found:
        return "no tlsSecretName: TLS ends at the load balancer, nothing to check"
    return f"TLS secret(s) {', '.join(found)} exist"


def _resolve(host: str) -> list[str]:
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _connect(address: str, port: int) -> socket.socket:
    return socket.create_connection((address, port), timeout=TIMEOUT)


@dataclass(frozen=True)
class Network:
    """How preflight reaches the platform's public side; tests point it at 127.0.0.1."""

    resolve: Callable[[str], list[str]] = _resolve
    connect: Callable[[str, int], socket.socket] = _connect
    # None: the system's trust store, as a browser would check the certificate.
    tls: ssl.SSLContext | None = None
    https_port: int = 443


def _user_servers_ingress_exists(kube: KubeClient, settings: Settings) -> bool:
    from components.jupyterhub import USER_SERVERS_INGRESS

    return _object_exists(
        kube,
        f"/apis/networking.k8s.io/v1/namespaces/{settings.namespace}/ingresses/"
        f"{USER_SERVERS_INGRESS}",
    )


def check_user_servers_origin(
    settings: Settings, network: Network, kube: KubeClient | None = None
) -> str:
    """A host no one has named yet resolves under userServersDomain, to where hubHost does,
    and presents a valid certificate for itself: what every new user's `<user>.<domain>`
    will need.

    A random label stands for the next user: an explicit record made for one test host
    would pass a fixed-name check without the wildcard record (`*.<domain>`) or the
    wildcard certificate. Resolving proves less than it seems: a wildcard record of a parent
    domain (`*.<parent>`) answers every deeper name too, and a stale one points elsewhere;
    hence the comparison with hubHost's addresses. Only DNS, TCP, the TLS handshake and, when
    that fails, one Ingress read: nothing is requested of the platform.
    """
    from components.jupyterhub import USER_SERVERS_INGRESS

    domain = settings.user_servers_domain
    if not domain:
        return "no userServersDomain: servers share the hub's host, nothing to check"
    host = f"preflight-{secrets.token_hex(4)}.{domain}"
    try:
        addresses = network.resolve(host)
    except OSError as error:
        raise Failed(
            f"{host} does not resolve ({error}): userServersDomain {domain} needs a wildcard "
            f"DNS record *.{domain}, or no user's server can be reached",
            f"create *.{domain} pointing where {settings.hub_host} does (the ingress "
            "controller's load balancer), or unset userServersDomain",
        ) from None
    if not addresses:
        raise Failed(f"{host} resolves to no address", f"check the DNS record *.{domain}")
    try:
        hub_addresses = network.resolve(settings.hub_host)
    except OSError as error:
        raise Failed(
            f"hubHost {settings.hub_host} does not resolve ({error}): nothing to compare "
            f"*.{domain} with",
            f"check the DNS record of {settings.hub_host}",
        ) from None
    if not set(addresses) & set(hub_addresses):
        raise Failed(
            f"{host} resolves to {addresses}, hubHost {settings.hub_host} to "
            f"{hub_addresses}: the users' hosts would reach another endpoint (a stale or "
            "another domain's wildcard record)",
            f"point *.{domain} where {settings.hub_host} does (the ingress controller's "
            "load balancer)",
        )
    context = network.tls or ssl.create_default_context()
    secret = settings.user_servers_tls_secret or "the ingress controller's default certificate"
    try:
        with (
            network.connect(addresses[0], network.https_port) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            version = tls.version()
    except ssl.SSLCertVerificationError as error:
        # ingress-nginx serves a Secret's certificate only for hosts in some Ingress's `tls`
        # (rootfs/etc/nginx/lua/certificate.lua: by host, else the default certificate): the
        # wildcard host's Ingress comes with the first `pulumi up` that sets the domain.
        if (
            settings.user_servers_tls_secret
            and kube is not None
            and not _user_servers_ingress_exists(kube, settings)
        ):
            return (
                f"*.{domain} resolves where {settings.hub_host} does ({host} -> "
                f"{addresses[0]}); its certificate ({secret}) is checkable only after the "
                f"first `pulumi up` creates the Ingress {settings.namespace}/"
                f"{USER_SERVERS_INGRESS}: run `make preflight STACK={settings.stack}` again "
                f"then (now: {error.verify_message})"
            )
        raise Failed(
            f"the certificate {addresses[0]}:{network.https_port} presents for {host} does not "
            f"validate: {error.verify_message}; browsers would refuse every user's server",
            f"serve a certificate for *.{domain} (now: {secret}): a wildcard certificate in "
            "the Secret userServersTlsSecretName names (or tlsSecretName)",
        ) from None
    except OSError as error:
        raise Failed(
            f"no TLS handshake with {host} at {addresses[0]}:{network.https_port}: {error}",
            f"check that *.{domain} reaches the ingress controller and that it serves TLS",
        ) from None
    return (
        f"*.{domain} resolves where {settings.hub_host} does ({host} -> {addresses[0]}) and "
        f"presents a valid certificate ({version}, {secret})"
    )


def required_controller_settings(annotations: dict[str, str]) -> dict[str, str]:
    """What ingress-nginx's ConfigMap must allow for the program's Ingress annotations.

    Snippet annotations are refused unless `allow-snippet-annotations` is "true" (off by
    default since controller 1.9), and `configuration-snippet`-like annotations are risk
    level Critical, above the default `annotations-risk-level` of High (controller 1.12).
    """
    if any(key.endswith("-snippet") for key in annotations):
        return {"allow-snippet-annotations": "true", "annotations-risk-level": "Critical"}
    return {}


def check_ingress_controller(kube: KubeClient, required: dict[str, str], configmap: str) -> str:
    if not required:
        return "the Ingress uses no snippet annotation: nothing needed from the controller"
    namespace, name = configmap.split("/", 1)
    response = kube.get(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
    if response.status_code == 404:
        raise Failed(
            f"ingress-nginx ConfigMap {configmap} not found: cannot confirm the header guard",
            "pass --ingress-configmap <namespace>/<name> (the controller's --configmap flag)",
        )
    if response.status_code != 200:
        raise Failed(f"GET ConfigMap {configmap}: HTTP {response.status_code}", "check access")
    data = response.json().get("data") or {}
    wrong = {k: v for k, v in required.items() if data.get(k) != v}
    if wrong:
        have = {k: data.get(k, "(unset)") for k in wrong}
        raise Failed(
            f"header guard: ingress-nginx {configmap} has {have}; the Ingress's snippet "
            f"annotation needs {wrong}, else the controller refuses the Ingress",
            "set " + ", ".join(f'{k}: "{v}"' for k, v in wrong.items()) + f" in {configmap} "
            "(ingress-nginx chart: controller.allowSnippetAnnotations and controller.config)",
        )
    unsafe = header_name_bypasses(data)
    if unsafe:
        raise Failed(
            f"header guard: ingress-nginx {configmap} has {unsafe}: nginx then passes a header "
            "spelt with underscores (Remote_User), which the guard's names with dashes do not "
            "clear, and servers that read headers CGI-style take it for Remote-User",
            f'remove them from {configmap} or set "enable-underscores-in-headers": "false" and '
            '"ignore-invalid-headers": "true" (the controller\'s defaults)',
        )
    return (
        f"ingress-nginx {configmap} allows the header guard's snippet and drops header names "
        "with underscores"
    )


# ingress-nginx's ConfigMap keys for nginx's underscores_in_headers / ignore_invalid_headers,
# defaults false / true (internal/ingress/controller/config/config.go, EnableUnderscoresInHeaders
# and IgnoreInvalidHeaders). Values are decoded by mapstructure's weak typing: Go's
# strconv.ParseBool, and "" counts as false.
_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False", ""}
HEADER_NAME_SAFE = {"enable-underscores-in-headers": False, "ignore-invalid-headers": True}


def header_name_bypasses(data: dict[str, str]) -> dict[str, str]:
    """The ConfigMap's settings that let a header name with underscores reach the hub."""
    unsafe = {}
    for key, safe in HEADER_NAME_SAFE.items():
        if key not in data:
            continue
        value = str(data[key])
        parsed = True if value in _GO_TRUE else False if value in _GO_FALSE else None
        if parsed is not safe:
            unsafe[key] = value
    return unsafe


def requested_scopes(config_file: Path = AUTHENTICATOR_CONFIG) -> list[str]:
    """The scopes the hub asks Keycloak for: `c.EODHAuthenticator.scope` in its config."""
    for node in ast.walk(ast.parse(config_file.read_text())):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and ast.unparse(node.targets[0]) == "c.EODHAuthenticator.scope"
        ):
            return list(ast.literal_eval(node.value))
    raise ValueError(f"{config_file}: no c.EODHAuthenticator.scope")


def check_keycloak(issuer: str, scopes: list[str]) -> str:
    url = f"{issuer}/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=TIMEOUT)
    except requests.RequestException as error:
        raise Failed(
            f"{url} unreachable ({error.__class__.__name__})",
            "check keycloakIssuer / platformDomain and that Keycloak is up",
        ) from None
    if response.status_code != 200:
        raise Failed(
            f"{url} answered HTTP {response.status_code}: no realm there",
            "check keycloakIssuer (realm eodhp) and that the realm exists",
        )
    document = response.json()
    if document.get("issuer") != issuer:
        raise Failed(
            f"the realm says its issuer is {document.get('issuer')!r}, not {issuer!r}: tokens "
            "would fail the hub's and IAM's issuer checks",
            "set keycloakIssuer to the realm's issuer exactly (or fix Keycloak's hostname)",
        )
    supported = set(document.get("scopes_supported") or [])
    missing = [s for s in scopes if s not in supported]
    if missing:
        raise Failed(
            f"the realm does not offer the scopes the hub requests: {missing}",
            "create the client scope(s) in realm eodhp and add them to the hub's client "
            "(docs/keycloak.md)",
        )
    return f"realm discovery OK; offers {', '.join(scopes)}"


def check_hub_client(issuer: str, client_id: str, callback_url: str) -> str:
    """The realm knows the hub's client, with standard flow and the hub's callback registered.

    Read from the realm's public authorization endpoint, as a browser starting a login
    would (nothing is created: Keycloak only opens an authentication session). Keycloak
    answers an unknown client with a 400 error page "Client not found."
    (AuthorizationEndpoint.checkClient, Messages.CLIENT_NOT_FOUND), an unregistered
    redirect URI with a 400 "Invalid parameter: redirect_uri"
    (AuthorizationEndpointChecker.checkRedirectUri) and a client without standard flow with
    a 401 "Standard flow is disabled" (checkResponseType); otherwise with its login page.
    Whether the client is confidential and its secret matches only the admin API or a real
    login can tell: docs/keycloak.md lists those as manual checks.
    """
    url = f"{issuer}/protocol/openid-connect/auth"
    params = {
        "client_id": client_id,
        "redirect_uri": callback_url,
        "response_type": "code",
        "scope": "openid",
        "state": "eodh-preflight",
    }
    try:
        response = requests.get(url, params=params, allow_redirects=False, timeout=TIMEOUT)
    except requests.RequestException as error:
        raise Failed(
            f"{url} unreachable ({error.__class__.__name__})",
            "check keycloakIssuer and that Keycloak is up",
        ) from None
    text = response.text.lower()
    fix_client = 'docs/keycloak.md, "The hub\'s client"'
    if response.status_code == 400 and "client not found" in text:
        raise Failed(
            f"the realm has no client {client_id!r}: nobody could log in to the hub",
            f"set hubClientId to the realm's hub client (jupyter) or create it ({fix_client})",
        )
    if response.status_code == 400 and "redirect_uri" in text:
        raise Failed(
            f"client {client_id!r} does not list {callback_url} among its valid redirect URIs: "
            "Keycloak would refuse every login",
            f"add it to the client's valid redirect URIs, or check hubHost ({fix_client})",
        )
    if response.status_code == 401 and "standard flow" in text:
        raise Failed(
            f"client {client_id!r} has standard flow disabled: the hub's code flow is refused",
            f"turn standard flow on for the client ({fix_client})",
        )
    location = response.headers.get("Location", "")
    if response.status_code == 200 or (
        response.status_code in (302, 303) and location.startswith(callback_url)
    ):
        return f"client {client_id!r} exists and accepts the callback {callback_url}"
    raise Failed(
        f"{url} answered HTTP {response.status_code} for client {client_id!r}",
        f"open the URL in a browser and read Keycloak's message ({fix_client})",
    )


def _aws_code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


def check_bucket(s3: Any, settings: Settings, adopting: bool) -> str:
    from botocore.exceptions import ClientError

    bucket = settings.workspace_bucket
    try:
        s3.head_bucket(Bucket=bucket)
        exists = True
    except ClientError as error:
        code = _aws_code(error)
        if code in ("403", "AccessDenied"):
            raise Failed(
                f"bucket {bucket} exists but this identity may not read it (403)",
                "check the bucket's account and your role's s3:ListBucket",
            ) from None
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise
        exists = False
    managed = settings.manage_workspace_bucket
    if not managed:
        if not exists:
            raise Failed(
                f"bucket {bucket} does not exist, and manageWorkspaceBucket is false "
                "(the stack only references it)",
                "create the platform's workspace bucket first, or set manageWorkspaceBucket: "
                "true for a new environment",
            )
        notification = s3.get_bucket_notification_configuration(Bucket=bucket)
        if "EventBridgeConfiguration" not in notification:
            raise Failed(
                f"bucket {bucket}: EventBridge notifications are off, so the marker function "
                "(triggered through EventBridge when the bucket is shared) would never run",
                "add an empty EventBridgeConfiguration to the bucket's notification "
                "configuration, keeping what is there (get-bucket-notification-configuration, "
                "add it, put-bucket-notification-configuration: a put replaces the whole)",
            )
        return f"bucket {bucket} exists and sends events to EventBridge"
    if adopting and not exists:
        raise Failed(
            f"bucket {bucket} does not exist, but import-plan imports it",
            "check workspaceBucket; for a new environment run without --adopting",
        )
    if not adopting and exists:
        raise Failed(
            f"bucket {bucket} already exists: the first up would fail to create it",
            "import it (make import-plan, then pulumi import; rerun with --adopting), or set "
            "manageWorkspaceBucket: false if other services share it",
        )
    return (
        f"bucket {bucket} {'exists (imported)' if exists else 'absent (the first up creates it)'}"
    )


def provider_audiences_dropped(live: list[str], settings: Settings) -> list[str]:
    """Audiences the provider trusts that the program does not declare. A stack that owns the
    provider sets its client list to exactly the program's on every up (aws_iam_openid_connect_
    provider's `client_id_list` is the whole list), so importing it would remove these; the
    platform's own services assume roles through the same realm provider."""
    return sorted(set(live) - {settings.workspaces_client_id})


def check_oidc_provider(iam: Any, settings: Settings, adopting: bool) -> str:
    from botocore.exceptions import ClientError

    referenced = settings.keycloak_provider_arn
    path = settings.keycloak_issuer.split("://", 1)[-1]
    arn = referenced or f"arn:aws:iam::{settings.aws_account}:oidc-provider/{path}"
    try:
        live = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
        exists = True
    except ClientError as error:
        if _aws_code(error) != "NoSuchEntity":
            raise
        exists = False
    audiences = list(live.get("ClientIDList") or []) if exists else []
    if referenced:
        if not exists:
            raise Failed(
                f"keycloakProviderArn {arn} does not exist: the notebook role would trust nothing",
                "create it in the stack that owns it first, or unset keycloakProviderArn so "
                "this stack creates one",
            )
        if settings.workspaces_client_id not in audiences:
            raise Failed(
                f"referenced OIDC provider {arn} trusts {audiences}, not the notebook role's "
                f"audience {settings.workspaces_client_id!r}: no workspace token is accepted",
                f"aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-"
                f"arn {arn} --client-id {settings.workspaces_client_id} (adds; removes nothing)",
            )
        return f"referenced OIDC provider {arn} exists and trusts {audiences}"
    if exists and not adopting:
        raise Failed(
            f"OIDC provider {arn} already exists: the first up would fail (EntityAlreadyExists)",
            "import it (make import-plan; rerun with --adopting), or set keycloakProviderArn "
            "to share it",
        )
    if adopting and not exists:
        raise Failed(
            f"OIDC provider {arn} does not exist, but import-plan imports it",
            "run without --adopting: the first up creates it",
        )
    dropped = provider_audiences_dropped(audiences, settings)
    if dropped:
        raise Failed(
            f"OIDC provider {arn} also trusts {dropped}: imported, the first up would set its "
            f"client list to [{settings.workspaces_client_id!r}] and remove them (other "
            "services assume roles through it)",
            f"reference it instead of importing it: keycloakProviderArn: {arn} in "
            f"Pulumi.{settings.stack}.yaml (as dev3 does); import-plan then leaves it out",
        )
    return f"OIDC provider {arn} {'exists (imported)' if exists else 'absent (created)'}"


def check_lambda_concurrency(lambda_client: Any, reservation: int) -> str:
    limit = lambda_client.get_account_settings()["AccountLimit"]
    unreserved = int(limit["UnreservedConcurrentExecutions"])
    left = unreserved - reservation
    if left < MIN_UNRESERVED_CONCURRENCY:
        raise Failed(
            f"reserving {reservation} for the marker function leaves {left} unreserved "
            f"(of {unreserved}); Lambda keeps at least {MIN_UNRESERVED_CONCURRENCY}, so the "
            "first up would fail",
            f"lower markerReservedConcurrency to at most {unreserved - 100}, or "
            "raise the account's Lambda concurrency quota (Service Quotas)",
        )
    return f"reserving {reservation} leaves {left} unreserved (>= 100)"


# -- Running them -------------------------------------------------------------------------


def _run(name: str, check: Callable[[], str]) -> Result:
    try:
        return Result(name, True, check())
    except Failed as failure:
        return Result(name, False, str(failure), failure.fix)
    except Exception as error:  # a check that crashes is a failed check, not a traceback
        return Result(name, False, f"{error.__class__.__name__}: {error}", "see the message")


def ingress_annotations(stack: str) -> dict[str, str]:
    from eodh_jupyterhub.offline import run_stack

    ingresses = run_stack(stack).of_type("kubernetes:networking.k8s.io/v1:Ingress")
    merged: dict[str, str] = {}
    for ingress in ingresses:
        merged.update(ingress.plain_inputs["metadata"].get("annotations") or {})
    return merged


def run_checks(
    settings: Settings,
    context: str,
    annotations: dict[str, str],
    adopting: bool = False,
    ingress_configmap: str = DEFAULT_INGRESS_CONFIGMAP,
    session: Any = None,
    network: Network | None = None,
) -> list[Result]:
    import boto3

    session = session or boto3.Session(region_name=settings.aws_region)
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as workdir:
        try:
            kube: KubeClient | None = kube_client(context, workdir)
        except Failed as failure:
            kube = None
            results.append(Result("cluster-context", False, str(failure), failure.fix))
        if kube is not None:
            results.append(_run("cluster-context", lambda: check_cluster(kube, context)))
        if kube is not None and results[-1].ok:
            results.append(_run("external-secrets-v1", lambda: check_external_secrets(kube)))
            results.append(_run("tls-secret", lambda: check_tls_secret(kube, settings)))
            required = required_controller_settings(annotations)
            results.append(
                _run(
                    "ingress-controller-header-guard",
                    lambda: check_ingress_controller(kube, required, ingress_configmap),
                )
            )
        else:
            for name in ("external-secrets-v1", "tls-secret", "ingress-controller-header-guard"):
                results.append(Result(name, False, "skipped: cluster unreachable", "see above"))
    results.append(
        _run(
            "user-servers-origin",
            lambda: check_user_servers_origin(settings, network or Network(), kube),
        )
    )
    scopes = requested_scopes()
    results.append(
        _run("keycloak-discovery", lambda: check_keycloak(settings.keycloak_issuer, scopes))
    )
    results.append(
        _run(
            "keycloak-hub-client",
            lambda: check_hub_client(
                settings.keycloak_issuer,
                settings.hub_client_id,
                f"{settings.hub_url}/hub/oauth_callback",
            ),
        )
    )
    results.append(
        _run("workspace-bucket", lambda: check_bucket(session.client("s3"), settings, adopting))
    )
    results.append(
        _run(
            "keycloak-oidc-provider",
            lambda: check_oidc_provider(session.client("iam"), settings, adopting),
        )
    )
    results.append(
        _run(
            "lambda-reserved-concurrency",
            lambda: check_lambda_concurrency(
                session.client("lambda"), settings.marker_reserved_concurrency
            ),
        )
    )
    return results


def report(results: list[Result]) -> str:
    lines = []
    for result in results:
        lines.append(f"{'PASS' if result.ok else 'FAIL'}  {result.check}: {result.message}")
        if not result.ok:
            lines.append(f"      fix: {result.fix}")
    failed = sum(not r.ok for r in results)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack")
    parser.add_argument(
        "--adopting",
        action="store_true",
        help="the environment runs under ArgoCD: what import-plan imports must exist",
    )
    parser.add_argument("--ingress-configmap", default=DEFAULT_INGRESS_CONFIGMAP)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from eodh_jupyterhub.settings import SettingsError, load_settings
    from eodh_jupyterhub.stack_config import StackConfigError, kubernetes_context, pulumi_config

    try:
        settings = load_settings(pulumi_config(args.stack), args.stack)
        context = kubernetes_context(args.stack)
    except (SettingsError, StackConfigError) as error:
        print(error, file=sys.stderr)
        return 2
    results = run_checks(
        settings,
        str(context),
        ingress_annotations(args.stack),
        adopting=args.adopting,
        ingress_configmap=args.ingress_configmap,
    )
    print(report(results), end="")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
