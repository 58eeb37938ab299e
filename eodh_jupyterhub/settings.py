"""Stack configuration, read once into one frozen, typed object.

Every key is read here and nowhere else: components receive plain values through their args.
Problems are collected and reported together, each naming the stack file, the key, what was
expected and an example, before a single resource is registered.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from components.helm_values import BASE_URL, ImageRef, NotebookResources
from components.hub_metrics import MetricsScraper

from .stack_config import PROJECT_ROOT, stack_names, stack_values

PROJECT = "eodh-jupyterhub"
NAMESPACE = "jupyter"
KEYCLOAK_REALM = "eodhp"

# Every pattern is applied with fullmatch: `match` with a closing "$" also accepts a trailing
# newline ("$" matches just before one), which would reach ARNs, bucket names and images.
_DOMAIN_RE = re.compile(r"(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_REGION_RE = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d")
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IPV4_RE = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
_ACCOUNT_RE = r"\d{12}"
_OIDC_PROVIDER_ARN_RE = re.compile(
    rf"arn:aws:iam::{_ACCOUNT_RE}:oidc-provider/(?P<host>[a-z0-9.-]+(/[A-Za-z0-9._~/-]+)?)"
)
# Registry host (with optional port), path, and a tag; digests are not used by this platform
# because the Makefiles in images/ are the source of truth for tags.
_IMAGE_RE = re.compile(
    r"(?P<repository>[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+)"
    r":(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})"
)
_SNS_TOPIC_ARN_RE = re.compile(r"arn:aws:sns:(?P<region>[a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}")
_SMOKE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_SECRET_NAME_RE = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
_CLIENT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_K8S_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_KEY_RE = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
_LABEL_VALUE_RE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
_MEMORY_RE = re.compile(r"(?P<number>\d+(\.\d+)?)(?P<unit>[KMGT]i?)?")

# AWS refuses a PutFunctionConcurrency that leaves fewer than 100 executions of the account
# unreserved (Lambda API reference, PutFunctionConcurrency). The default account quota is
# 1,000, so 900 is the most a reservation can ever be there; new accounts often have far less,
# and only a live check (preflight) can know the account's quota and its other reservations.
# A reservation there must be (the policy pack's lambda-reserved-concurrency rule: a burst of
# S3 events must not take the account's whole concurrency), so the default is small: 10, the
# value this function has always had, which fits any account with 110 or more.
AWS_UNRESERVED_CONCURRENCY_FLOOR = 100
MAX_MARKER_RESERVED_CONCURRENCY = 1000 - AWS_UNRESERVED_CONCURRENCY_FLOOR
DEFAULT_MARKER_RESERVED_CONCURRENCY = 10


class SettingsError(Exception):
    """Stack configuration that the program refuses to deploy, with every problem listed."""

    def __init__(self, stack_file: str, problems: list[str]):
        self.stack_file = stack_file
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"{stack_file}: invalid stack configuration "
            f"({len(problems)} problem{'s' if len(problems) != 1 else ''}); "
            f"no resource was touched:\n{lines}"
        )


@dataclass(frozen=True)
class Settings:
    """Everything the program needs for one stack; built only by `load_settings`."""

    stack: str
    aws_region: str
    platform_domain: str
    workspaces_domain: str
    # Where users reach the hub: the OAuth callback's and the login cookie's host. The
    # extra hosts only redirect to it (an OAuth round trip must start and end on one host).
    hub_host: str
    hub_extra_hosts: tuple[str, ...]
    keycloak_issuer: str
    hub_client_id: str
    workspaces_client_id: str
    oauth_client_secret_name: str
    workspaces_client_secret_name: str
    workspace_bucket: str
    eks_oidc_provider_arn: str
    keycloak_provider_arn: str | None
    hub_image: ImageRef
    notebook_image: ImageRef
    python_notebook_image: ImageRef
    r_notebook_image: ImageRef
    debug: bool
    notebook_resources: NotebookResources
    notebook_node_affinity: Mapping[str, tuple[str, ...]]
    notebook_storage_class: str
    notebook_storage_capacity: str
    cull_timeout_seconds: int
    protect_data: bool
    access_logs_bucket: str | None
    tls_secret_name: str | None
    marker_reserved_concurrency: int
    manage_workspace_bucket: bool
    # Apart from protect_data: other stacks (their keycloakProviderArn) and roles made outside
    # this program may trust the provider, so a throw-away stack's data policy must not decide.
    protect_keycloak_provider: bool
    user_servers_domain: str | None = None
    """`subdomain_host`: each user's servers on `<user>.<this domain>`, an origin apart from
    the hub's (docs/platform-contract.md, "Per-user origins"); None: under the hub's host."""
    user_servers_tls_secret_name: str | None = None
    """The wildcard certificate's Secret for `*.<user_servers_domain>`; None: tlsSecretName."""
    alarm_topic_arn: str | None = None
    """SNS topic the marker function's alarms notify; None: the alarms only change state."""
    smoke_user: str | None = None
    """`make smoke --server`: the test user whose server it starts, in `smoke_workspace`."""
    smoke_workspace: str | None = None
    metrics_scraper: MetricsScraper | None = None
    """The Prometheus pods that may read the hub's metrics; None: nobody in the cluster."""
    namespace: str = NAMESPACE

    @property
    def hub_url(self) -> str:
        """The hub's public URL (no trailing slash): everything user-facing derives from it."""
        return f"https://{self.hub_host}{BASE_URL}"

    @property
    def user_servers_tls_secret(self) -> str | None:
        """The Secret the user servers' wildcard Ingress names (None: the controller's default
        certificate, as the hub's host without tlsSecretName)."""
        if not self.user_servers_domain:
            return None
        return self.user_servers_tls_secret_name or self.tls_secret_name

    @property
    def aws_account(self) -> str:
        """The deploy account: the one holding the EKS cluster's OIDC provider."""
        return self.eks_oidc_provider_arn.split(":")[4]

    @property
    def created_keycloak_provider_arn(self) -> str | None:
        """The ARN of the provider this stack creates (IAM names it after the issuer URL)."""
        if self.keycloak_provider_arn:
            return None
        return (
            f"arn:aws:iam::{self.aws_account}:oidc-provider/"
            f"{self.keycloak_issuer.removeprefix('https://')}"
        )

    @property
    def eks_oidc_issuer_host(self) -> str:
        match = _OIDC_PROVIDER_ARN_RE.fullmatch(self.eks_oidc_provider_arn)
        assert match, "validated in load_settings"
        return match["host"]


RawConfig = Mapping[str, Any]
"""Fully qualified key (``eodh-jupyterhub:platformDomain``, ``aws:region``) to raw value.

Values are what Pulumi hands a program: strings, with objects and arrays as JSON text."""


class _Reader:
    """Reads and validates keys one by one, collecting problems instead of stopping at the first."""

    def __init__(self, raw: RawConfig, stack: str):
        self.raw = raw
        self.stack = stack
        self.problems: list[str] = []
        self.read_keys: set[str] = set()

    def _key(self, key: str) -> str:
        return key if ":" in key else f"{PROJECT}:{key}"

    def _problem(self, key: str, expected: str, example: str, got: Any = None) -> None:
        got_text = "it is missing" if got is None else f"got {json.dumps(got)}"
        self.problems.append(f"{key}: expected {expected}, for example {example}; {got_text}")

    def _raw(self, key: str) -> Any:
        full = self._key(key)
        self.read_keys.add(full)
        value = self.raw.get(full)
        return None if value is None or value == "" else value

    def string(
        self,
        key: str,
        expected: str,
        example: str,
        check: Callable[[str], bool],
        default: str | None = None,
        required: bool = True,
    ) -> str:
        value = self._raw(key)
        if value is None:
            if default is not None:
                return default
            if required:
                self._problem(self._key(key), expected, example)
            return ""
        if not isinstance(value, str) or not check(value):
            self._problem(self._key(key), expected, example, value)
            return ""
        return value

    def optional_string(
        self, key: str, expected: str, example: str, check: Callable[[str], bool]
    ) -> str | None:
        value = self.string(key, expected, example, check, required=False)
        return value or None

    def boolean(self, key: str, example: str, default: bool) -> bool:
        value = self._raw(key)
        if value is None:
            return default
        text = str(value).lower() if isinstance(value, (str, bool)) else None
        if text in ("true", "false"):
            return text == "true"
        self._problem(self._key(key), "a boolean (true or false)", example, value)
        return default

    def integer(self, key: str, example: str, default: int, minimum: int, maximum: int) -> int:
        value = self._raw(key)
        if value is None:
            return default
        text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        # int() itself would take "3600\n", " 3600", "+3600" and "3_600".
        number = int(text) if re.fullmatch(r"[0-9]+", text) else None
        if number is None or not minimum <= number <= maximum:
            self._problem(
                self._key(key), f"a whole number from {minimum} to {maximum}", example, value
            )
            return default
        return number

    def string_list(
        self, key: str, expected: str, example: str, check: Callable[[str], bool]
    ) -> tuple[str, ...]:
        """A JSON array of distinct strings each passing `check`; unset means empty."""
        value = self._raw(key)
        if value is None:
            return ()
        if isinstance(value, str):
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        if (
            not isinstance(value, list)
            or not all(isinstance(v, str) and check(v) for v in value)
            or len(set(value)) != len(value)
        ):
            self._problem(self._key(key), expected, example, value)
            return ()
        return tuple(value)

    def json_object(self, key: str, expected: str, example: str) -> dict[str, Any] | None:
        value = self._raw(key)
        if value is None:
            self._problem(self._key(key), expected, example)
            return None
        if isinstance(value, str):
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        if not isinstance(value, dict):
            self._problem(self._key(key), expected, example, value)
            return None
        return value


def _is_domain(value: str) -> bool:
    return bool(_DOMAIN_RE.fullmatch(value))


def _is_bucket_name(value: str) -> bool:
    # The S3 general-purpose bucket naming rules, including the reserved prefixes and suffixes.
    return (
        bool(_BUCKET_RE.fullmatch(value))
        and ".." not in value
        and ".-" not in value
        and "-." not in value
        and not _IPV4_RE.fullmatch(value)
        and not value.startswith(("xn--", "sthree-", "amzn-s3-demo-"))
        and not value.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"))
    )


def _image(reader: _Reader, key: str, example: str) -> ImageRef:
    text = reader.string(
        key,
        "an image reference <registry>/<path>:<tag>",
        json.dumps(example),
        lambda v: bool(_IMAGE_RE.fullmatch(v)),
    )
    match = _IMAGE_RE.fullmatch(text)
    return ImageRef(match["repository"], match["tag"]) if match else ImageRef("", "")


def _resources(reader: _Reader) -> NotebookResources:
    key = f"{PROJECT}:notebookResources"
    example = '{"cpuGuarantee": 0.5, "cpuLimit": 2, "memoryGuarantee": "1G", "memoryLimit": "4G"}'
    expected = "an object with cpuGuarantee, cpuLimit (cores) and memoryGuarantee, memoryLimit"
    obj = reader.json_object("notebookResources", expected, example)
    fallback = NotebookResources(0.0, 0.0, "", "")
    if obj is None:
        return fallback
    fields = {"cpuGuarantee", "cpuLimit", "memoryGuarantee", "memoryLimit"}
    if set(obj) != fields:
        reader._problem(key, expected + " (exactly these four fields)", example, obj)
        return fallback
    cpu = [obj["cpuGuarantee"], obj["cpuLimit"]]
    memory = [obj["memoryGuarantee"], obj["memoryLimit"]]
    if not all(isinstance(c, (int, float)) and not isinstance(c, bool) and c > 0 for c in cpu):
        reader._problem(key, "cpuGuarantee and cpuLimit as positive numbers", example, obj)
        return fallback
    if not all(isinstance(m, str) and _is_positive_quantity(m) for m in memory):
        reader._problem(
            key, 'memoryGuarantee and memoryLimit above zero, like "1G" or "512M"', example, obj
        )
        return fallback
    if cpu[0] > cpu[1] or _bytes(memory[0]) > _bytes(memory[1]):
        reader._problem(key, "guarantees no larger than limits", example, obj)
        return fallback
    return NotebookResources(float(cpu[0]), float(cpu[1]), memory[0], memory[1])


_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_UNITS.update({"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40})


def _is_positive_quantity(quantity: str) -> bool:
    """A Kubernetes memory or storage quantity above zero: "0", "0Gi" and "0.0M" are refused."""
    return bool(_MEMORY_RE.fullmatch(quantity)) and _bytes(quantity) > 0


def _bytes(quantity: str) -> float:
    match = _MEMORY_RE.fullmatch(quantity)
    assert match
    return float(match["number"]) * _UNITS[match["unit"] or ""]


def _node_affinity(reader: _Reader) -> dict[str, tuple[str, ...]]:
    key = f"{PROJECT}:notebookNodeAffinity"
    example = '{"eks.amazonaws.com/nodegroup": ["notebooks"]}'
    expected = "an object mapping a node label to the list of values a notebook node may have"
    obj = reader.json_object("notebookNodeAffinity", expected, example)
    if obj is None:
        return {}
    result: dict[str, tuple[str, ...]] = {}
    for label, values in obj.items():
        if (
            not _LABEL_KEY_RE.fullmatch(label)
            or not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) and v and _LABEL_VALUE_RE.fullmatch(v) for v in values)
        ):
            reader._problem(key, expected, example, obj)
            return {}
        result[label] = tuple(values)
    return result


def _metrics_scraper(reader: _Reader) -> MetricsScraper | None:
    key = f"{PROJECT}:metricsScraper"
    example = (
        '{"namespace": "prometheus", "podLabels": {"app.kubernetes.io/name": "prometheus", '
        '"app.kubernetes.io/component": "server"}}'
    )
    expected = (
        "an object with namespace (a Kubernetes namespace name) and podLabels (a non-empty "
        "object of pod labels), or leave unset"
    )
    value = reader._raw("metricsScraper")
    if value is None:
        return None
    if isinstance(value, str):
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(value)
    ok = (
        isinstance(value, dict)
        and set(value) == {"namespace", "podLabels"}
        and isinstance(value["namespace"], str)
        and bool(_K8S_NAME_RE.fullmatch(value["namespace"]))
        and len(value["namespace"]) <= 63
        and "." not in value["namespace"]
        and isinstance(value["podLabels"], dict)
        and bool(value["podLabels"])
        and all(
            isinstance(k, str)
            and _LABEL_KEY_RE.fullmatch(k)
            and isinstance(v, str)
            and _LABEL_VALUE_RE.fullmatch(v)
            for k, v in value["podLabels"].items()
        )
    )
    if not ok:
        reader._problem(key, expected, example, value)
        return None
    return MetricsScraper(value["namespace"], dict(value["podLabels"]))


# The longest label JupyterHub's hook (file 1) makes, and DNS's longest name.
_DNS_LABEL_MAX = 63
_DNS_NAME_MAX = 253


def _user_servers(
    reader: _Reader,
    *,
    platform_domain: str,
    workspaces_domain: str,
    keycloak_issuer: str,
    hub_host: str,
    hub_extra_hosts: tuple[str, ...],
) -> tuple[str | None, str | None]:
    """userServersDomain and its certificate's Secret; both unset: servers share the hub's host.

    JupyterHub puts a user's servers on `<label>.<domain>` (jupyterhub 5.3 user.py
    `User.domain`; the label from `subdomain_hook`, file 1), and the user servers' Ingress
    answers `*.<domain>`: one label, as a Kubernetes wildcard host matches. The domain must
    leave every host the platform already serves out of that set, and stay out of the
    platform's own domains, whose hosts and cookies belong to its services.
    """
    key = f"{PROJECT}:userServersDomain"
    example = '"users--nb.eodatahub-workspaces.org.uk"'
    domain = reader.optional_string(
        "userServersDomain",
        "a DNS domain name in lower case with a wildcard DNS record and certificate for "
        "*.<it> (or leave unset: servers share the hub's host)",
        example,
        _is_domain,
    )
    secret = reader.optional_string(
        "userServersTlsSecretName",
        "a Kubernetes Secret name holding the wildcard certificate for *.<userServersDomain> "
        "(or leave unset for tlsSecretName)",
        '"eodhp-users-tls"',
        lambda v: bool(_K8S_NAME_RE.fullmatch(v)) and len(v) <= 253,
    )
    if secret and not domain:
        reader.problems.append(
            f"{PROJECT}:userServersTlsSecretName: expected it unset while {key} is unset "
            f"(it is the certificate of the user servers' hosts), for example {key}: "
            f"{example} beside it; got {json.dumps(secret)}"
        )
    if not domain:
        return None, None

    def refuse(expected: str) -> tuple[None, None]:
        reader._problem(key, expected, example, domain)
        return None, None

    # Every host name <label>.<domain> must fit DNS: the hook's labels reach 63 characters.
    if len(domain) > _DNS_NAME_MAX - _DNS_LABEL_MAX - 1:
        return refuse(
            f"a domain of at most {_DNS_NAME_MAX - _DNS_LABEL_MAX - 1} characters, so that "
            f"<63-character user label>.<domain> stays within DNS's {_DNS_NAME_MAX}"
        )
    # Two labels under these stacks' TLD (org.uk) are a public suffix: nobody holds a wildcard
    # certificate for *.org.uk, and browsers keep each <user>.org.uk apart only by the Public
    # Suffix List. Three labels at least (a domain of its own, eodatahub-notebooks.org.uk, or
    # a name under one) rules that out without shipping the list.
    if domain.count(".") < 2:
        return refuse("a domain of three labels or more, not a public suffix such as org.uk")
    # `<workspace>.<workspacesDomain>` are the workspaces' own hosts: a domain that is one of
    # them would put users under a workspace's host. Workspace names never hold '--' (the
    # hub's rule, hub/extra_config/2 `eodh_workspace_name_problem`), so a label with '--'
    # is free: users--nb.<workspacesDomain>.
    label, _, parent = domain.partition(".")
    if domain == workspaces_domain or (parent == workspaces_domain and "--" not in label):
        return refuse(
            f"a domain other than workspacesDomain ({workspaces_domain}) and than "
            f"<workspace>.{workspaces_domain}, whose hosts belong to the workspaces (a label "
            f"holding '--' is no workspace's: users--nb.{workspaces_domain})"
        )
    issuer_host = urlsplit(keycloak_issuer).hostname or ""
    for name, owned in [
        ("platformDomain", platform_domain),
        ("keycloakIssuer's host", issuer_host),
    ]:
        if owned and (domain == owned or domain.endswith(f".{owned}")):
            return refuse(
                f"a domain outside {name} ({owned}): its hosts and cookies are the platform's "
                "services', Keycloak's login among them"
            )
    served = [
        ("hubHost", hub_host),
        *(("hubExtraHosts", h) for h in hub_extra_hosts),
        ("workspacesDomain", workspaces_domain),
        ("platformDomain", platform_domain),
        ("keycloakIssuer's host", issuer_host),
    ]
    for name, host in served:
        if host and (host == domain or host.partition(".")[2] == domain):
            return refuse(
                f"a domain whose hosts <user>.<domain> cannot be {name} {host} (a user of "
                f"that name would take the platform's host)"
            )
    return domain, secret


def load_settings(raw: RawConfig, stack: str) -> Settings:
    """Validate a stack's raw configuration; raise `SettingsError` listing every problem."""
    r = _Reader(raw, stack)

    aws_region = r.string(
        "aws:region",
        "an AWS region name",
        '"eu-west-2"',
        lambda v: bool(_REGION_RE.fullmatch(v)),
    )
    platform_domain = r.string(
        "platformDomain",
        "a DNS domain name in lower case",
        '"dev.eodatahub.org.uk"',
        _is_domain,
    )
    workspaces_domain = r.string(
        "workspacesDomain",
        "a DNS domain name in lower case",
        '"dev.eodatahub-workspaces.org.uk"',
        _is_domain,
    )
    # The platform serves the hub on the workspaces domain's own host (eodhp-guide
    # services/jupyter.md: https://eodatahub-workspaces.org.uk/notebooks), where the realm's
    # `jupyter` client has its redirect URI and the web presence links to.
    hub_host = r.string(
        "hubHost",
        "a DNS domain name in lower case (or leave unset for workspacesDomain)",
        '"eodatahub-workspaces.org.uk"',
        _is_domain,
        default=workspaces_domain,
    )
    hub_extra_hosts = r.string_list(
        "hubExtraHosts",
        "a list of distinct lower-case DNS domain names that redirect to hubHost",
        '["prod.eodatahub-workspaces.org.uk"]',
        _is_domain,
    )
    if hub_host and hub_host in hub_extra_hosts:
        r._problem(
            f"{PROJECT}:hubExtraHosts",
            f"hosts other than hubHost ({hub_host}), which cannot redirect to itself",
            '["prod.eodatahub-workspaces.org.uk"]',
            list(hub_extra_hosts),
        )
    default_issuer = (
        f"https://{platform_domain}/keycloak/realms/{KEYCLOAK_REALM}" if platform_domain else ""
    )
    keycloak_issuer = r.string(
        "keycloakIssuer",
        f"an https URL of the Keycloak realm {KEYCLOAK_REALM!r} without a trailing slash",
        f'"https://dev.eodatahub.org.uk/keycloak/realms/{KEYCLOAK_REALM}"',
        lambda v: bool(
            re.fullmatch(
                rf"https://[a-z0-9.-]+(:\d+)?(/[A-Za-z0-9._~-]+)*/realms/{KEYCLOAK_REALM}", v
            )
        ),
        default=default_issuer,
    )
    client_id = (
        "an OAuth client id",
        '"eodh-jupyterhub"',
        lambda v: bool(_CLIENT_ID_RE.fullmatch(v)),
    )
    hub_client_id = r.string("hubClientId", *client_id)
    workspaces_client_id = r.string("workspacesClientId", *client_id)
    if hub_client_id and hub_client_id == workspaces_client_id:
        # The notebook role trusts tokens whose audience is the workspaces client; with one
        # client for both, a login token (no workspace scope) would pass the same audience check.
        r.problems.append(
            f"{PROJECT}:workspacesClientId: expected a client other than {PROJECT}:hubClientId "
            "(the notebook role's audience must tell a workspace token from a login token), "
            f'for example "eodh-workspaces"; got {json.dumps(workspaces_client_id)}, the same '
            "as hubClientId"
        )
    secret_name = (
        "the name of an AWS Secrets Manager secret (not its value)",
        '"eodhp-dev/jupyterhub/oauth-client-secret"',
        lambda v: bool(_SECRET_NAME_RE.fullmatch(v)) and not v.startswith("arn:"),
    )
    oauth_secret = r.string("oauthClientSecretName", *secret_name)
    workspaces_secret = r.string("workspacesClientSecretName", *secret_name)
    bucket_rule = (
        "an S3 bucket name (3-63 characters: lower-case letters, digits, dots and hyphens)",
        '"workspaces-eodhp-dev"',
        _is_bucket_name,
    )
    workspace_bucket = r.string("workspaceBucket", *bucket_rule)
    access_logs_bucket = r.optional_string("accessLogsBucket", *bucket_rule)
    eks_oidc_provider_arn = r.string(
        "eksOidcProviderArn",
        "the IAM ARN of the EKS cluster's OIDC provider",
        '"arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-2.amazonaws.com/id/EXAMPLE"',
        lambda v: bool(_OIDC_PROVIDER_ARN_RE.fullmatch(v)),
    )
    keycloak_provider_arn = r.optional_string(
        "keycloakProviderArn",
        "the IAM ARN of an existing OIDC provider for the Keycloak realm (or leave unset "
        "to create one)",
        f'"arn:aws:iam::123456789012:oidc-provider/dev.eodatahub.org.uk/keycloak/realms/'
        f'{KEYCLOAK_REALM}"',
        lambda v: (
            bool(_OIDC_PROVIDER_ARN_RE.fullmatch(v)) and v.endswith(f"/realms/{KEYCLOAK_REALM}")
        ),
    )
    hub_image = _image(r, "hubImage", "public.ecr.aws/eodh/eodh-jupyter-hub:4.2.0-0.2.0")
    notebook_image = _image(
        r, "notebookImage", "public.ecr.aws/eodh/eodh-default-notebook:python-3.12-0.2.11"
    )
    python_image = _image(r, "pythonNotebookImage", "quay.io/jupyter/base-notebook:python-3.12")
    r_image = _image(r, "rNotebookImage", "quay.io/jupyter/r-notebook:r-4.4.2")
    debug = r.boolean("debug", "true", default=False)
    resources = _resources(r)
    affinity = _node_affinity(r)
    storage_class = r.string(
        "notebookStorageClass",
        "a Kubernetes StorageClass name",
        '"file-storage"',
        lambda v: bool(_K8S_NAME_RE.fullmatch(v)) and len(v) <= 253,
    )
    storage_capacity = r.string(
        "notebookStorageCapacity",
        "a storage quantity above zero",
        '"10Gi"',
        _is_positive_quantity,
    )
    cull_timeout = r.integer("cullTimeoutSeconds", "3600", 3600, 300, 7 * 24 * 3600)
    protect_data = r.boolean("protectData", "true", default=True)
    tls_secret_name = r.optional_string(
        "tlsSecretName",
        "a Kubernetes Secret name holding the ingress certificate (or leave unset)",
        '"eodhp-tls"',
        lambda v: bool(_K8S_NAME_RE.fullmatch(v)) and len(v) <= 253,
    )
    user_servers_domain, user_servers_tls_secret_name = _user_servers(
        r,
        platform_domain=platform_domain,
        workspaces_domain=workspaces_domain,
        keycloak_issuer=keycloak_issuer,
        hub_host=hub_host,
        hub_extra_hosts=hub_extra_hosts,
    )

    marker_reserved_concurrency = r.integer(
        "markerReservedConcurrency",
        "10",
        DEFAULT_MARKER_RESERVED_CONCURRENCY,
        1,
        MAX_MARKER_RESERVED_CONCURRENCY,
    )
    manage_workspace_bucket = r.boolean("manageWorkspaceBucket", "false", default=True)
    if not manage_workspace_bucket and access_logs_bucket:
        r.problems.append(
            f"{PROJECT}:accessLogsBucket: expected it unset while {PROJECT}:"
            "manageWorkspaceBucket is false (access logging is part of the shared bucket's "
            "configuration, which this stack must not write); got "
            f"{json.dumps(access_logs_bucket)}"
        )
    protect_keycloak_provider = r.boolean("protectKeycloakProvider", "true", default=True)
    # `make smoke --server` starts this user's server in this workspace: both or neither.
    smoke_user = r.optional_string(
        "smokeUser",
        "a JupyterHub user name (a test user of the realm)",
        '"eodh-smoke"',
        lambda v: bool(_SMOKE_NAME_RE.fullmatch(v)),
    )
    smoke_workspace = r.optional_string(
        "smokeWorkspace",
        "a workspace name the smoke user belongs to",
        '"smoke-tests"',
        lambda v: bool(_SMOKE_NAME_RE.fullmatch(v)),
    )
    if bool(smoke_user) != bool(smoke_workspace):
        r.problems.append(
            f"{PROJECT}:smokeUser and {PROJECT}:smokeWorkspace: expected both set or both "
            f"unset; got smokeUser {json.dumps(smoke_user)}, smokeWorkspace "
            f"{json.dumps(smoke_workspace)}"
        )
    # CloudWatch notifies only a topic in the alarm's own region.
    alarm_topic_arn = r.optional_string(
        "alarmTopicArn",
        f"an SNS topic ARN in {aws_region} (or leave unset)",
        f'"arn:aws:sns:{aws_region}:123456789012:eodhp-alerts"',
        lambda v: bool((m := _SNS_TOPIC_ARN_RE.fullmatch(v)) and m["region"] == aws_region),
    )

    metrics_scraper = _metrics_scraper(r)

    _unknown_project_keys(r)
    if r.problems:
        raise SettingsError(f"Pulumi.{stack}.yaml", r.problems)

    return Settings(
        stack=stack,
        aws_region=aws_region,
        platform_domain=platform_domain,
        workspaces_domain=workspaces_domain,
        hub_host=hub_host,
        hub_extra_hosts=hub_extra_hosts,
        keycloak_issuer=keycloak_issuer,
        hub_client_id=hub_client_id,
        workspaces_client_id=workspaces_client_id,
        oauth_client_secret_name=oauth_secret,
        workspaces_client_secret_name=workspaces_secret,
        workspace_bucket=workspace_bucket,
        eks_oidc_provider_arn=eks_oidc_provider_arn,
        keycloak_provider_arn=keycloak_provider_arn,
        hub_image=hub_image,
        notebook_image=notebook_image,
        python_notebook_image=python_image,
        r_notebook_image=r_image,
        debug=debug,
        notebook_resources=resources,
        notebook_node_affinity=affinity,
        notebook_storage_class=storage_class,
        notebook_storage_capacity=storage_capacity,
        cull_timeout_seconds=cull_timeout,
        protect_data=protect_data,
        access_logs_bucket=access_logs_bucket,
        tls_secret_name=tls_secret_name,
        user_servers_domain=user_servers_domain,
        user_servers_tls_secret_name=user_servers_tls_secret_name,
        marker_reserved_concurrency=marker_reserved_concurrency,
        manage_workspace_bucket=manage_workspace_bucket,
        protect_keycloak_provider=protect_keycloak_provider,
        alarm_topic_arn=alarm_topic_arn,
        smoke_user=smoke_user,
        smoke_workspace=smoke_workspace,
        metrics_scraper=metrics_scraper,
    )


def _unknown_project_keys(reader: _Reader) -> None:
    """A misspelt key would otherwise be ignored and its default silently used."""
    known = sorted(k for k in reader.read_keys if k.startswith(f"{PROJECT}:"))
    for key in sorted(reader.raw):
        if key.startswith(f"{PROJECT}:") and key not in reader.read_keys:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(known)}"
            reader.problems.append(f"{key}: unknown setting; {hint}")


def shared_provider_problems(stacks: Mapping[str, Settings]) -> list[str]:
    """Cross-stack rule the settings of one stack cannot see: a Keycloak provider that another
    stack's keycloakProviderArn names must be protected and retained by the stack creating it,
    or destroying that stack (throw-away or not) breaks the other's notebook role."""
    references = {n: s.keycloak_provider_arn for n, s in stacks.items() if s.keycloak_provider_arn}
    return [
        f"Pulumi.{name}.yaml: {problem}"
        for name, settings in sorted(stacks.items())
        for problem in unprotected_shared_provider(name, settings, references)
    ]


def unprotected_shared_provider(
    stack: str, settings: Settings, references: Mapping[str, str | None]
) -> list[str]:
    """The problem, if `stack` creates a provider that another stack (`references`: stack ->
    its keycloakProviderArn) trusts, and leaves it unprotected."""
    arn = settings.created_keycloak_provider_arn
    if not arn or settings.protect_keycloak_provider:
        return []
    users = sorted(name for name, ref in references.items() if ref == arn and name != stack)
    if not users:
        return []
    files = ", ".join(f"Pulumi.{name}.yaml" for name in users)
    return [
        f"{PROJECT}:protectKeycloakProvider: expected true, because {files} names the "
        f"provider this stack creates ({arn}) in keycloakProviderArn; got false"
    ]


def provider_references(root: Path = PROJECT_ROOT) -> dict[str, str | None]:
    """Each stack file's keycloakProviderArn, read from the files beside Pulumi.yaml."""
    key = f"{PROJECT}:keycloakProviderArn"
    return {name: stack_values(name, root).get(key) or None for name in stack_names(root)}


def settings_from_pulumi() -> Settings:
    """Read the running stack's configuration the way the Pulumi engine hands it over."""
    import pulumi
    import pulumi.runtime.config as runtime_config

    raw: dict[str, Any] = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    stack = pulumi.get_stack()
    settings = load_settings(raw, stack)
    # The one rule that needs the other stacks: they are the files beside this one.
    problems = unprotected_shared_provider(stack, settings, provider_references())
    if problems:
        raise SettingsError(f"Pulumi.{stack}.yaml", problems)
    return settings
