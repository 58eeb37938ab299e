"""Settings: every stack loads; bad configuration fails clearly before any resource exists."""

from __future__ import annotations

import json

import pytest

from eodh_jupyterhub.offline import Recording, run_with_config
from eodh_jupyterhub.settings import ImageRef, SettingsError, load_settings
from tests.support.stacks import effective_config, pulumi_config, stack_values

P = "eodh-jupyterhub:"
DELETE = object()

# (case id, key, bad value or DELETE, text the message must contain besides key and file)
BAD_CONFIGS = [
    ("missing-platform-domain", f"{P}platformDomain", DELETE, "it is missing"),
    ("platform-domain-with-scheme", f"{P}platformDomain", "https://dev.eodatahub.org.uk", "DNS"),
    ("platform-domain-upper-case", f"{P}platformDomain", "Dev.EODataHub.org.uk", "DNS"),
    ("workspaces-domain-underscore", f"{P}workspacesDomain", "dev_workspaces.org.uk", "DNS"),
    ("hub-host-with-path", f"{P}hubHost", "eodatahub-workspaces.org.uk/notebooks", "DNS"),
    ("hub-extra-hosts-not-a-list", f"{P}hubExtraHosts", "prod.eodatahub.org.uk", "list of"),
    ("hub-extra-hosts-repeated", f"{P}hubExtraHosts", '["a.org.uk", "a.org.uk"]', "distinct"),
    (
        "hub-extra-hosts-hold-the-hub-host",
        f"{P}hubExtraHosts",
        '["dev.eodatahub-workspaces.org.uk"]',
        "cannot redirect to itself",
    ),
    ("region-malformed", "aws:region", "europe-london", "AWS region"),
    ("region-missing", "aws:region", DELETE, "it is missing"),
    ("bucket-upper-case", f"{P}workspaceBucket", "Workspaces-EODHP", "S3 bucket name"),
    ("bucket-too-short", f"{P}workspaceBucket", "ws", "S3 bucket name"),
    ("bucket-ip-address", f"{P}workspaceBucket", "192.168.10.1", "S3 bucket name"),
    ("bucket-double-dot", f"{P}workspaceBucket", "workspaces..dev", "S3 bucket name"),
    ("bucket-reserved-suffix", f"{P}workspaceBucket", "workspaces-s3alias", "S3 bucket name"),
    ("eks-provider-not-an-arn", f"{P}eksOidcProviderArn", "oidc.eks.amazonaws.com/id/X", "ARN"),
    (
        "eks-provider-wrong-service",
        f"{P}eksOidcProviderArn",
        "arn:aws:iam::123456789012:role/oidc",
        "ARN",
    ),
    (
        "keycloak-provider-other-realm",
        f"{P}keycloakProviderArn",
        "arn:aws:iam::123456789012:oidc-provider/dev.eodatahub.org.uk/keycloak/realms/master",
        "ARN",
    ),
    (
        "keycloak-issuer-http",
        f"{P}keycloakIssuer",
        "http://dev.eodatahub.org.uk/realms/eodhp",
        "https",
    ),
    ("hub-image-without-tag", f"{P}hubImage", "public.ecr.aws/eodh/eodh-jupyter-hub", "image"),
    ("notebook-image-bad-tag", f"{P}notebookImage", "quay.io/jupyter/base:bad tag!", "image"),
    ("debug-not-boolean", f"{P}debug", "yes", "boolean"),
    ("cull-timeout-not-number", f"{P}cullTimeoutSeconds", "one hour", "whole number"),
    ("cull-timeout-too-small", f"{P}cullTimeoutSeconds", "10", "whole number"),
    ("resources-not-json", f"{P}notebookResources", "cpu=2", "cpuGuarantee"),
    (
        "resources-guarantee-above-limit",
        f"{P}notebookResources",
        json.dumps(
            {"cpuGuarantee": 4, "cpuLimit": 1, "memoryGuarantee": "1G", "memoryLimit": "2G"}
        ),
        "no larger than limits",
    ),
    (
        "resources-memory-unit",
        f"{P}notebookResources",
        json.dumps(
            {"cpuGuarantee": 1, "cpuLimit": 1, "memoryGuarantee": "1GB", "memoryLimit": "2G"}
        ),
        "memoryGuarantee",
    ),
    (
        "affinity-values-not-list",
        f"{P}notebookNodeAffinity",
        json.dumps({"eks.amazonaws.com/nodegroup": "notebooks"}),
        "node label",
    ),
    (
        "secret-name-is-arn",
        f"{P}oauthClientSecretName",
        "arn:aws:secretsmanager:x",
        "Secrets Manager",
    ),
    ("client-id-with-space", f"{P}hubClientId", "eodh jupyterhub", "OAuth client id"),
    ("unknown-key-typo", f"{P}platfromDomain", "dev.eodatahub.org.uk", "did you mean"),
    ("storage-class-invalid", f"{P}notebookStorageClass", "File_Storage", "StorageClass"),
    # 0 is AWS's "throttle every invocation", never a way of saying "no reservation".
    ("reserved-concurrency-zero", f"{P}markerReservedConcurrency", "0", "from 1 to 900"),
    ("reserved-concurrency-negative", f"{P}markerReservedConcurrency", "-5", "from 1 to 900"),
    ("reserved-concurrency-empty", f"{P}markerReservedConcurrency", " ", "from 1 to 900"),
    # More than the default account quota (1,000) minus the 100 AWS keeps unreserved.
    ("reserved-concurrency-too-big", f"{P}markerReservedConcurrency", "901", "from 1 to 900"),
    ("reserved-concurrency-fraction", f"{P}markerReservedConcurrency", "2.5", "whole number"),
    ("reserved-concurrency-words", f"{P}markerReservedConcurrency", "ten", "whole number"),
    ("manage-bucket-not-boolean", f"{P}manageWorkspaceBucket", "no", "boolean"),
    # Sizes must be above zero: a 0-byte claim or a 0-memory limit is no notebook.
    ("storage-capacity-zero", f"{P}notebookStorageCapacity", "0", "above zero"),
    ("storage-capacity-zero-gi", f"{P}notebookStorageCapacity", "0Gi", "above zero"),
    ("storage-capacity-zero-point", f"{P}notebookStorageCapacity", "0.0M", "above zero"),
    (
        "memory-guarantee-zero",
        f"{P}notebookResources",
        json.dumps({"cpuGuarantee": 1, "cpuLimit": 1, "memoryGuarantee": "0", "memoryLimit": "2G"}),
        "above zero",
    ),
    (
        "memory-limit-zero",
        f"{P}notebookResources",
        json.dumps(
            {"cpuGuarantee": 1, "cpuLimit": 1, "memoryGuarantee": "0G", "memoryLimit": "0G"}
        ),
        "above zero",
    ),
    (
        "cpu-guarantee-zero",
        f"{P}notebookResources",
        json.dumps(
            {"cpuGuarantee": 0, "cpuLimit": 1, "memoryGuarantee": "1G", "memoryLimit": "2G"}
        ),
        "positive numbers",
    ),
    (
        "cpu-limit-zero",
        f"{P}notebookResources",
        json.dumps(
            {"cpuGuarantee": 0, "cpuLimit": 0, "memoryGuarantee": "1G", "memoryLimit": "2G"}
        ),
        "positive numbers",
    ),
    # int() alone takes these; a stack file never means them.
    ("cull-timeout-plus-sign", f"{P}cullTimeoutSeconds", "+3600", "whole number"),
    ("cull-timeout-underscore", f"{P}cullTimeoutSeconds", "3_600", "whole number"),
    # Nested strings are checked as strictly as top-level ones.
    (
        "memory-trailing-newline",
        f"{P}notebookResources",
        json.dumps(
            {"cpuGuarantee": 1, "cpuLimit": 1, "memoryGuarantee": "1G\n", "memoryLimit": "2G"}
        ),
        "memoryGuarantee",
    ),
    (
        "affinity-value-trailing-newline",
        f"{P}notebookNodeAffinity",
        json.dumps({"eks.amazonaws.com/nodegroup": ["notebooks\n"]}),
        "node label",
    ),
    (
        "affinity-label-trailing-newline",
        f"{P}notebookNodeAffinity",
        json.dumps({"eks.amazonaws.com/nodegroup\n": ["notebooks"]}),
        "node label",
    ),
    # Without pod labels every pod of the namespace would be let in to the hub.
    (
        "metrics-scraper-without-pod-labels",
        f"{P}metricsScraper",
        json.dumps({"namespace": "prometheus", "podLabels": {}}),
        "non-empty object of pod labels",
    ),
    (
        "metrics-scraper-bad-namespace",
        f"{P}metricsScraper",
        json.dumps({"namespace": "Prometheus", "podLabels": {"app": "prometheus"}}),
        "Kubernetes namespace name",
    ),
    (
        "metrics-scraper-misspelt-field",
        f"{P}metricsScraper",
        json.dumps({"namespace": "prometheus", "podLabel": {"app": "prometheus"}}),
        "podLabels",
    ),
    (
        "metrics-scraper-label-not-a-string",
        f"{P}metricsScraper",
        json.dumps({"namespace": "prometheus", "podLabels": {"app": True}}),
        "podLabels",
    ),
    ("metrics-scraper-not-an-object", f"{P}metricsScraper", "prometheus", "namespace"),
    ("user-servers-domain-with-scheme", f"{P}userServersDomain", "https://users.org.uk", "DNS"),
    # `<workspace>.<workspacesDomain>` are the workspaces' hosts.
    (
        "user-servers-domain-is-the-workspaces-domain",
        f"{P}userServersDomain",
        "dev.eodatahub-workspaces.org.uk",
        "other than workspacesDomain (dev.eodatahub-workspaces.org.uk)",
    ),
    # dev's hub host is dev.<it>: a user named "dev" would take it.
    (
        "user-servers-domain-holds-the-hub-host",
        f"{P}userServersDomain",
        "eodatahub-workspaces.org.uk",
        "cannot be hubHost dev.eodatahub-workspaces.org.uk",
    ),
    # Platform hosts (Keycloak's login at dev.eodatahub.org.uk/keycloak among them) and their
    # cookies: users' servers stay out.
    (
        "user-servers-domain-is-the-platform-domain",
        f"{P}userServersDomain",
        "dev.eodatahub.org.uk",
        "outside platformDomain (dev.eodatahub.org.uk)",
    ),
    (
        "user-servers-domain-under-the-platform-domain",
        f"{P}userServersDomain",
        "users.dev.eodatahub.org.uk",
        "outside platformDomain (dev.eodatahub.org.uk)",
    ),
    # The host of a workspace named "users".
    (
        "user-servers-domain-is-a-workspaces-host",
        f"{P}userServersDomain",
        "users.dev.eodatahub-workspaces.org.uk",
        "than <workspace>.dev.eodatahub-workspaces.org.uk",
    ),
    # A user named "dev" would take the platform's host.
    (
        "user-servers-domain-holds-the-platform-domain",
        f"{P}userServersDomain",
        "eodatahub.org.uk",
        "cannot be platformDomain dev.eodatahub.org.uk",
    ),
    (
        "user-servers-domain-too-long-for-a-63-character-label",
        f"{P}userServersDomain",
        f"{'a' * 61}.{'b' * 60}.{'c' * 60}.org.uk",
        "at most 189 characters",
    ),
    (
        "user-servers-domain-a-public-suffix",
        f"{P}userServersDomain",
        "org.uk",
        "three labels or more",
    ),
    (
        "user-servers-certificate-without-domain",
        f"{P}userServersTlsSecretName",
        "eodhp-users-tls",
        "unset while eodh-jupyterhub:userServersDomain is unset",
    ),
]


def _mutated(stack: str, key: str, value: object) -> dict[str, str]:
    config = pulumi_config(stack)
    if value is DELETE:
        config.pop(key, None)
    else:
        config[key] = value  # type: ignore[assignment]
    return config


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [case[1:] for case in BAD_CONFIGS],
    ids=[case[0] for case in BAD_CONFIGS],
)
def test_bad_config_fails_clearly_before_any_resource(key: str, value: object, needle: str) -> None:
    recording = Recording(stack="dev", preview=True)
    with pytest.raises(SettingsError) as raised:
        run_with_config("dev", _mutated("dev", key, value), preview=True, recording=recording)
    message = str(raised.value)
    assert message.startswith("Pulumi.dev.yaml: invalid stack configuration")
    assert key in message
    assert needle in message
    problem = next(line for line in message.splitlines() if key in line)
    if "unknown setting" not in problem:
        assert "expected" in problem and "for example" in problem
    assert recording.resources == [], "a resource was registered despite bad config"


def test_one_client_for_login_and_workspaces_is_refused() -> None:
    config = _mutated("staging", f"{P}hubClientId", "jupyter")
    config[f"{P}workspacesClientId"] = "jupyter"
    with pytest.raises(SettingsError) as raised:
        load_settings(config, "staging")
    assert str(raised.value).startswith("Pulumi.staging.yaml:")
    (problem,) = raised.value.problems
    assert problem.startswith(f"{P}workspacesClientId: expected a client other than {P}hubClientId")
    assert '"jupyter", the same as hubClientId' in problem


def test_bad_config_corpus_is_large_enough() -> None:
    assert len(BAD_CONFIGS) >= 15


def test_every_problem_is_reported_at_once() -> None:
    config = _mutated("prod", f"{P}workspaceBucket", "BAD")
    config[f"{P}debug"] = "maybe"
    del config[f"{P}platformDomain"]
    with pytest.raises(SettingsError) as raised:
        load_settings(config, "prod")
    assert len(raised.value.problems) == 3
    assert str(raised.value).startswith("Pulumi.prod.yaml:")


def test_every_stack_loads(stack: str) -> None:
    settings = load_settings(pulumi_config(stack), stack)
    config = effective_config(stack)
    assert settings.platform_domain == config[f"{P}platformDomain"]
    assert settings.workspace_bucket == config[f"{P}workspaceBucket"]
    assert settings.aws_region == "eu-west-2"


def test_issuer_defaults_to_the_platform_keycloak_realm() -> None:
    settings = load_settings(pulumi_config("prod"), "prod")
    assert settings.keycloak_issuer == "https://eodatahub.org.uk/keycloak/realms/eodhp"


def test_dev3_shares_the_dev_realm_and_its_identity_provider() -> None:
    settings = load_settings(pulumi_config("dev3"), "dev3")
    assert settings.keycloak_issuer == "https://dev.eodatahub.org.uk/keycloak/realms/eodhp"
    assert settings.keycloak_provider_arn and settings.keycloak_provider_arn.endswith(
        "oidc-provider/dev.eodatahub.org.uk/keycloak/realms/eodhp"
    )


def test_per_environment_differences() -> None:
    dev = load_settings(pulumi_config("dev"), "dev")
    prod = load_settings(pulumi_config("prod"), "prod")
    assert dev.debug is True and prod.debug is False
    assert dev.protect_data is False and prod.protect_data is True
    assert prod.notebook_resources.memory_limit == "16G"
    assert dev.notebook_resources.memory_limit == "2G"
    assert prod.notebook_node_affinity == {
        "eks.amazonaws.com/nodegroup": ("notebooks", "notebooks-large")
    }
    assert prod.cull_timeout_seconds == 3600 and dev.cull_timeout_seconds == 1800
    # Production's bucket as every production document names it; elsewhere -<env>.
    assert prod.workspace_bucket == "workspaces-eodhp" and dev.workspace_bucket.endswith("-dev")


@pytest.mark.parametrize(
    ("stack_name", "url"),
    [
        ("prod", "https://eodatahub-workspaces.org.uk/notebooks"),
        ("staging", "https://staging.eodatahub-workspaces.org.uk/notebooks"),
        ("dev", "https://dev.eodatahub-workspaces.org.uk/notebooks"),
    ],
)
def test_the_hub_is_served_where_the_platform_sends_users(stack_name: str, url: str) -> None:
    # eodhp-guide services/jupyter.md and the launch URLs of the Resource Catalogue put the
    # hub on the workspaces domain, not the platform domain.
    settings = load_settings(pulumi_config(stack_name), stack_name)
    assert settings.hub_url == url


def test_hub_host_can_be_moved_and_given_redirecting_hosts() -> None:
    config = pulumi_config("prod")
    config[f"{P}hubHost"] = "prod.eodatahub-workspaces.org.uk"
    config[f"{P}hubExtraHosts"] = '["eodatahub-workspaces.org.uk"]'
    settings = load_settings(config, "prod")
    assert settings.hub_url == "https://prod.eodatahub-workspaces.org.uk/notebooks"
    assert settings.hub_extra_hosts == ("eodatahub-workspaces.org.uk",)
    assert load_settings(pulumi_config("prod"), "prod").hub_extra_hosts == (
        "prod.eodatahub-workspaces.org.uk",
    )


def test_images_parse_into_repository_and_tag() -> None:
    settings = load_settings(pulumi_config("dev"), "dev")
    assert settings.hub_image == ImageRef("public.ecr.aws/eodh/eodh-jupyter-hub", "4.2.0-0.2.0")
    assert str(settings.notebook_image) == (
        "public.ecr.aws/eodh/eodh-default-notebook:python-3.12-0.2.11"
    )


def test_settings_are_frozen() -> None:
    settings = load_settings(pulumi_config("dev"), "dev")
    with pytest.raises(AttributeError):
        settings.debug = False  # type: ignore[misc]


def test_stack_files_hold_no_secret_values(stack: str) -> None:
    from eodh_jupyterhub.stack_config import PROJECT_ROOT

    text = (PROJECT_ROOT / f"Pulumi.{stack}.yaml").read_text()
    assert "secure:" not in text
    for forbidden in ("AKIA", "BEGIN PRIVATE KEY", "client_secret", "password"):
        assert forbidden not in text


def test_marker_reserved_concurrency_defaults_to_a_small_reservation(stack: str) -> None:
    # Small enough for any account with 110 or more (AWS keeps 100 unreserved), and a cap on
    # what an upload burst can take, as the policy pack's lambda-reserved-concurrency wants.
    assert load_settings(pulumi_config(stack), stack).marker_reserved_concurrency == 10


@pytest.mark.parametrize(("raw", "expected"), [("1", 1), ("25", 25), ("900", 900)])
def test_marker_reserved_concurrency_accepts_numbers_in_range(raw: str, expected: int) -> None:
    config = _mutated("dev", f"{P}markerReservedConcurrency", raw)
    assert load_settings(config, "dev").marker_reserved_concurrency == expected


def test_manage_workspace_bucket_defaults_to_true(stack: str) -> None:
    config = pulumi_config(stack)
    stated = stack_values(stack).get(f"{P}manageWorkspaceBucket")
    expected = True if stated is None else stated in (True, "true")
    assert load_settings(config, stack).manage_workspace_bucket is expected
    config.pop(f"{P}manageWorkspaceBucket")  # absent: the settings' own default
    config.pop(f"{P}accessLogsBucket", None)
    assert load_settings(config, stack).manage_workspace_bucket is True


def test_manage_workspace_bucket_can_be_switched_off() -> None:
    config = _mutated("dev", f"{P}manageWorkspaceBucket", "false")
    assert load_settings(config, "dev").manage_workspace_bucket is False


def _only_problem(config: dict[str, str], stack: str) -> str:
    """The one problem `load_settings` reports for `config`."""
    with pytest.raises(SettingsError) as raised:
        load_settings(config, stack)
    (problem,) = raised.value.problems
    return problem


def _string_keys(stack: str) -> list[str]:
    """Every key the settings read whose value is text (not an object), set or defaulted."""
    config = effective_config(stack)
    return sorted(
        key
        for key, value in config.items()
        if (key.startswith(P) or key == "aws:region") and not isinstance(value, (dict, list))
    )


def test_every_text_key_is_covered() -> None:
    # The list below is derived from the files; make sure it did not come out nearly empty.
    assert {f"{P}platformDomain", f"{P}workspaceBucket", "aws:region", f"{P}debug"} <= set(
        _string_keys("dev3")
    )
    assert len(_string_keys("dev3")) >= 20


@pytest.mark.parametrize("key", _string_keys("dev3"))
def test_a_trailing_newline_fails_naming_the_key(key: str) -> None:
    # dev3 sets the most keys (keycloakIssuer and keycloakProviderArn included).
    config = pulumi_config("dev3")
    config[key] = config.get(key, "") + "\n"
    with pytest.raises(SettingsError) as raised:
        load_settings(config, "dev3")
    assert [p for p in raised.value.problems if p.startswith(f"{key}:")], raised.value.problems


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (f"{P}notebookStorageCapacity", "1"),
        (f"{P}notebookStorageCapacity", "500Mi"),
        (f"{P}notebookStorageCapacity", "0.5Gi"),
    ],
)
def test_small_positive_sizes_are_accepted(key: str, value: str) -> None:
    assert load_settings(_mutated("dev", key, value), "dev").notebook_storage_capacity == value


def test_metrics_scraper_is_the_platform_prometheus_unless_switched_off(stack: str) -> None:
    from components.hub_metrics import MetricsScraper

    # eodhp-guide services/prometheus.md: the platform's Prometheus runs in `prometheus`.
    assert load_settings(pulumi_config(stack), stack).metrics_scraper == MetricsScraper(
        "prometheus",
        {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/component": "server"},
    )
    off = _mutated(stack, f"{P}metricsScraper", "")
    assert load_settings(off, stack).metrics_scraper is None


def test_user_servers_domain_is_off_in_every_stack(stack: str) -> None:
    # The platform has no wildcard domain and certificate for it yet (docs/platform-contract.md).
    settings = load_settings(pulumi_config(stack), stack)
    assert settings.user_servers_domain is None
    assert settings.user_servers_tls_secret is None


def test_user_servers_domain_and_its_certificate() -> None:
    # A label holding '--' is no workspace's name (hub/extra_config/2), so no workspace's host.
    config = _mutated(
        "staging", f"{P}userServersDomain", "users--nb.staging.eodatahub-workspaces.org.uk"
    )
    settings = load_settings(config, "staging")
    assert settings.user_servers_domain == "users--nb.staging.eodatahub-workspaces.org.uk"
    # Without a certificate of its own the wildcard host uses the hub's Secret.
    assert settings.user_servers_tls_secret == settings.tls_secret_name == "eodhp-tls"
    config[f"{P}userServersTlsSecretName"] = "eodhp-users-tls"
    assert load_settings(config, "staging").user_servers_tls_secret == "eodhp-users-tls"


def test_user_servers_domain_leaves_the_workspaces_domain_and_keycloaks_host() -> None:
    # The hub on a host of its own: a user named like the workspaces domain's first label
    # would take its apex.
    config = _mutated("dev", f"{P}hubHost", "notebooks.dev.eodatahub.org.uk")
    config[f"{P}userServersDomain"] = "eodatahub-workspaces.org.uk"
    problem = _only_problem(config, "dev")
    assert "cannot be workspacesDomain dev.eodatahub-workspaces.org.uk" in problem
    # Keycloak on a host of its own: its host and anything under it are the realm's.
    config = _mutated("dev", f"{P}keycloakIssuer", "https://auth.example.org.uk/realms/eodhp")
    for domain in ("auth.example.org.uk", "users.auth.example.org.uk"):
        config[f"{P}userServersDomain"] = domain
        problem = _only_problem(config, "dev")
        assert "outside keycloakIssuer's host (auth.example.org.uk)" in problem, problem
    config[f"{P}userServersDomain"] = "example.org.uk"
    problem = _only_problem(config, "dev")
    assert "cannot be keycloakIssuer's host auth.example.org.uk" in problem


def test_workspace_names_never_hold_a_double_hyphen() -> None:
    """Settings take a '--' label under workspacesDomain as no workspace's host."""
    from tests.support.hub_config import load_hub_config, release_env

    problem = load_hub_config(release_env())["eodh_workspace_name_problem"]
    assert problem("users-nb") is None
    assert problem("users--nb") is not None


def test_user_servers_domain_may_not_hold_a_redirecting_hub_host() -> None:
    config = _mutated("dev", f"{P}hubExtraHosts", '["notebooks.users.example.org.uk"]')
    config[f"{P}userServersDomain"] = "users.example.org.uk"
    problem = _only_problem(config, "dev")
    assert problem.startswith(f"{P}userServersDomain: expected a domain whose hosts")
    assert "cannot be hubExtraHosts notebooks.users.example.org.uk" in problem
    assert 'for example "users--nb.eodatahub-workspaces.org.uk"' in problem
