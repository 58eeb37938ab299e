"""The JupyterHub Helm release, its templates ConfigMap and ingress, for every stack."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from components.helm_values import HubFiles, build_values
from eodh_jupyterhub.hub_inputs import hub_values_inputs
from eodh_jupyterhub.offline import Recording, is_secret, reveal, run_with_config
from eodh_jupyterhub.schemas import z2jh_validation_errors
from eodh_jupyterhub.settings import load_settings
from eodh_jupyterhub.stack_config import PROJECT_ROOT
from tests.support.recordings import recording_for, recording_with_user_servers
from tests.support.stacks import effective_config, pulumi_config

HUB_DIR = PROJECT_ROOT / "hub"
RELEASE = "kubernetes:helm.sh/v3:Release"


def _release(recording: Recording) -> Any:
    (release,) = recording.of_type(RELEASE)
    return release


def _values(recording: Recording) -> dict[str, Any]:
    return reveal(_release(recording).inputs["values"])


def _fixed_inputs(stack: str, files: HubFiles | None = None):
    return hub_values_inputs(
        load_settings(pulumi_config(stack), stack),
        files or HubFiles.read(HUB_DIR),
        release_namespace="jupyter",
        oauth_secret_name="jupyterhub-oauth",
        oauth_client_secret_key="OAUTH_CLIENT_SECRET",
        workspaces_client_secret_key="WORKSPACES_CLIENT_SECRET",
        notebook_role_arn="arn:aws:iam::000000000000:role/notebook",
        workspace_bucket="workspaces-example",
        cookie_secret="0" * 64,
        proxy_secret_token="1" * 64,
        crypt_key="2" * 64,
        metrics_token="3" * 64,
    )


def test_release_is_the_pinned_chart(recording: Recording) -> None:
    inputs = _release(recording).inputs
    assert inputs["chart"] == "jupyterhub"
    assert inputs["version"] == "4.2.0"
    assert inputs["repositoryOpts"] == {"repo": "https://hub.jupyter.org/helm-chart/"}
    assert inputs["namespace"] == "jupyter"
    assert inputs["atomic"] is True and inputs["cleanupOnFail"] is True
    assert 300 <= inputs["timeout"] <= 1800 and inputs["maxHistory"] == 10


def test_release_waits_for_namespace_rbac_and_secrets(recording: Recording) -> None:
    depends = set(_release(recording).depends_on)
    # Depending on a component means depending on every resource inside it.
    for component in ("jupyter", "hub-rbac", "hub-secrets", "oauth-client-secrets"):
        children = recording.children_of(recording.named(component))
        assert children and {c.urn for c in children} <= depends, component
    assert recording.named("jupyterhub-templates").urn in depends
    # The hub reads jupyterhub-oauth at start: the release waits for the ExternalSecret
    # (which Pulumi awaits until Ready, see test_stacks) and so for the Secret it writes.
    (external_secret,) = recording.of_type("kubernetes:external-secrets.io/v1:ExternalSecret")
    assert external_secret.urn in depends
    assert external_secret.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == (
        "condition=Ready"
    )


def test_values_validate_against_the_chart_schema(recording: Recording) -> None:
    assert z2jh_validation_errors(_values(recording)) == []


def test_chart_schema_check_catches_a_wrong_type() -> None:
    values = build_values(_fixed_inputs("dev"))
    values["hub"]["image"]["tag"] = 4.2
    values["singleuser"]["storagee"] = {}
    errors = z2jh_validation_errors(values)
    assert any("hub.image.tag" in e for e in errors)
    assert any("storagee" in e for e in errors)


def test_profiles_are_accepted_by_kubespawner(
    recording: Recording, stack: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    # kubernetes_asyncio reads $KUBECONFIG once, at import, and KubeSpawner loads the config
    # once per process (lru_cache): point both at this file, whatever ran before.
    from kubernetes_asyncio.config import kube_config
    from kubespawner import KubeSpawner
    from kubespawner.clients import load_config

    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    load_config.cache_clear()

    profiles = _values(recording)["singleuser"]["profileList"]
    config = effective_config(stack)
    expected = {
        "eodh": config["eodh-jupyterhub:notebookImage"],
        "python-3-12": config["eodh-jupyterhub:pythonNotebookImage"],
        "r-4-4": config["eodh-jupyterhub:rNotebookImage"],
    }
    assert [p["display_name"] for p in profiles] == ["EO DataHub", "Python 3.12", "R 4.4"]

    async def check() -> None:
        # KubeSpawner builds its Kubernetes client on the running loop.
        for slug, image in expected.items():
            spawner = KubeSpawner(_mock=True)
            initialized = spawner._get_initialized_profile_list(profiles)
            spawner.user_options = {"profile": slug}
            spawner._validate_user_options(initialized)
            spawner._load_profile(slug, initialized)
            assert spawner.image == image
        default = KubeSpawner(_mock=True)
        initialized = default._get_initialized_profile_list(profiles)
        assert default._get_profile(None, initialized)["slug"] == "eodh"

    asyncio.run(check())


def test_values_are_deterministic(stack: str) -> None:
    first = json.dumps(build_values(_fixed_inputs(stack)), sort_keys=True)
    second = json.dumps(build_values(_fixed_inputs(stack)), sort_keys=True)
    assert first == second


def test_hub_settings(recording: Recording, stack: str) -> None:
    hub = _values(recording)["hub"]
    config = effective_config(stack)
    image, tag = config["eodh-jupyterhub:hubImage"].rsplit(":", 1)
    assert hub["baseUrl"] == "/notebooks"
    assert hub["image"] == {"name": image, "tag": tag}
    assert hub["serviceAccount"] == {"create": True, "name": "hub"}
    assert hub["extraVolumeMounts"] == [
        {"name": "hub-templates", "mountPath": "/srv/jupyterhub/templates", "readOnly": True}
    ]
    assert hub["extraVolumes"] == [
        {"name": "hub-templates", "configMap": {"name": "hub-templates"}}
    ]
    env = hub["extraEnv"]
    assert env["PLATFORM_DOMAIN"] == config["eodh-jupyterhub:platformDomain"]
    assert env["WORKSPACES_DOMAIN"] == config["eodh-jupyterhub:workspacesDomain"]
    assert env["SINGLEUSER_AWS_REGION"] == "eu-west-2"
    assert env["SINGLEUSER_WORKSPACE_BUCKET"] == config["eodh-jupyterhub:workspaceBucket"]
    assert env["SINGLEUSER_AWS_ROLE_ARN"].startswith("arn:aws:iam::")
    for name in ("OAUTH_CLIENT_SECRET", "WORKSPACES_CLIENT_SECRET"):
        assert env[name] == {
            "valueFrom": {"secretKeyRef": {"name": "jupyterhub-oauth", "key": name}}
        }


def test_hub_environment_covers_what_the_extra_config_requires(recording: Recording) -> None:
    import re

    required: set[str] = set()
    for path in sorted((HUB_DIR / "extra_config").glob("*.py")):
        for call in re.findall(r"eodh_require_env\(([^)]*)\)", path.read_text()):
            required |= set(re.findall(r'"([A-Z][A-Z0-9_]+)"', call))
    assert required, "the extra config declares no required environment"
    assert required <= set(_values(recording)["hub"]["extraEnv"])


def test_extra_config_is_exactly_the_hub_files_in_order(recording: Recording) -> None:
    files = sorted((HUB_DIR / "extra_config").glob("*.py"))
    extra = _values(recording)["hub"]["extraConfig"]
    # The chart runs the entries sorted by key (Pulumi does not keep map order), so the
    # file names' numeric prefixes are the order.
    assert sorted(extra) == [p.stem for p in files]
    assert [extra[key] for key in sorted(extra)] == [p.read_text() for p in files]


def test_templates_configmap_holds_exactly_hub_templates(recording: Recording) -> None:
    configmap = recording.named("jupyterhub-templates").inputs
    assert configmap["metadata"]["name"] == "hub-templates"
    expected = {p.name: p.read_text() for p in sorted((HUB_DIR / "templates").iterdir())}
    assert configmap["data"] == expected
    assert "spawn.html" in expected
    annotations = _values(recording)["hub"]["annotations"]
    # A sha256 of the templates; that it rolls the hub on a template change and only then is
    # shown by test_only_a_template_change_rolls_the_hub.
    assert list(annotations) == ["checksum/hub-templates"]
    assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/hub-templates"])


def test_only_a_template_change_rolls_the_hub(stack: str) -> None:
    files = HubFiles.read(HUB_DIR)
    base = build_values(_fixed_inputs(stack, files))["hub"]["annotations"]
    changed_template = HubFiles(
        files.extra_config, {**files.templates, "spawn.html": files.templates["spawn.html"] + " "}
    )
    changed_config = HubFiles(
        {**files.extra_config, "1_configure_jupyterhub": "# other\n"}, files.templates
    )
    assert build_values(_fixed_inputs(stack, changed_template))["hub"]["annotations"] != base
    assert build_values(_fixed_inputs(stack, changed_config))["hub"]["annotations"] == base


def test_singleuser_storage_and_scheduling(recording: Recording, stack: str) -> None:
    singleuser = _values(recording)["singleuser"]
    storage = singleuser["storage"]
    assert storage["dynamic"]["pvcNameTemplate"] == "pvc-{workspace}"
    assert storage["dynamic"]["storageClass"] == "file-storage"
    assert storage["homeMountPath"] == "/home/jovyan"
    config = effective_config(stack)
    image, tag = config["eodh-jupyterhub:notebookImage"].rsplit(":", 1)
    assert singleuser["image"] == {"name": image, "tag": tag}
    resources = config["eodh-jupyterhub:notebookResources"]
    assert singleuser["cpu"] == {
        "guarantee": resources["cpuGuarantee"],
        "limit": resources["cpuLimit"],
    }
    assert singleuser["memory"] == {
        "guarantee": resources["memoryGuarantee"],
        "limit": resources["memoryLimit"],
    }
    affinity = config["eodh-jupyterhub:notebookNodeAffinity"]
    assert singleuser["extraNodeAffinity"]["required"] == [
        {"matchExpressions": [{"key": k, "operator": "In", "values": v}]}
        for k, v in sorted(affinity.items())
    ]


def test_per_environment_differences() -> None:
    dev = _values(recording_for("dev", False))
    prod = _values(recording_for("prod", False))
    assert dev["debug"] == {"enabled": True} and prod["debug"] == {"enabled": False}
    # Users are told idle servers stop after one hour (eodh-userdocs notebooks-start.md).
    assert dev["cull"]["timeout"] == 1800 and prod["cull"]["timeout"] == 3600
    assert dev["singleuser"]["memory"]["limit"] == "2G"
    assert prod["singleuser"]["memory"]["limit"] == "16G"
    assert dev["hub"]["extraEnv"]["PLATFORM_DOMAIN"] == "dev.eodatahub.org.uk"
    assert prod["hub"]["extraEnv"]["PLATFORM_DOMAIN"] == "eodatahub.org.uk"
    assert dev["hub"]["image"]["tag"] == prod["hub"]["image"]["tag"] == "4.2.0-0.2.0"


def test_secret_values_are_pulumi_secrets_and_never_plaintext(recording: Recording) -> None:
    release = _release(recording)
    assert is_secret(release.inputs["values"])
    values = _values(recording)
    generated = {values["hub"]["cookieSecret"], values["proxy"]["secretToken"]}
    generated |= set(values["hub"]["config"]["CryptKeeper"]["keys"])
    assert generated <= recording.generated_secrets and len(generated) == 3
    for resource in recording.resources:
        for key, value in resource.inputs.items():
            if is_secret(value):
                continue
            text = json.dumps(value, default=repr)
            leaked = [s for s in recording.generated_secrets if s in text]
            assert not leaked, f"{resource.name}.{key} holds a generated secret in plaintext"


def _hub_hosts(stack: str) -> tuple[str, list[str]]:
    """The stack file's primary hub host and the hosts that redirect to it, read directly."""
    config = effective_config(stack)
    primary = config.get("eodh-jupyterhub:hubHost") or config["eodh-jupyterhub:workspacesDomain"]
    return primary, list(config.get("eodh-jupyterhub:hubExtraHosts") or [])


def _ingresses(recording: Recording) -> dict[str, dict]:
    return {
        reveal(i.inputs)["metadata"]["name"]: reveal(i.inputs)
        for i in recording.of_type("kubernetes:networking.k8s.io/v1:Ingress")
    }


def test_ingress(recording: Recording, stack: str) -> None:
    obj = _ingresses(recording)["jupyterhub"]
    kubernetes_validate.validate(obj, "1.31", strict=True)
    config = effective_config(stack)
    primary, _ = _hub_hosts(stack)
    spec = obj["spec"]
    assert spec["ingressClassName"] == "nginx"
    # The hub's one host only: the platform domain and the workspaces' own hosts are not it.
    assert [r["host"] for r in spec["rules"]] == [primary]
    for rule in spec["rules"]:
        (path,) = rule["http"]["paths"]
        assert path["path"] == "/notebooks" and path["pathType"] == "Prefix"
        assert path["backend"] == {"service": {"name": "proxy-public", "port": {"name": "http"}}}
    annotations = obj["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/enable-global-auth"] == "false"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "2g"
    # The header guard is a configuration snippet, proved in real nginx by
    # test_ingress_header_guard.py. `proxy-set-headers` is a controller ConfigMap key, not an
    # annotation ingress-nginx reads from an Ingress: it must not pose as a guard.
    assert annotations["nginx.ingress.kubernetes.io/configuration-snippet"].startswith(
        "more_clear_input_headers "
    )
    assert "nginx.ingress.kubernetes.io/proxy-set-headers" not in annotations
    tls_secret = config.get("eodh-jupyterhub:tlsSecretName") or None
    if tls_secret:
        assert spec["tls"] == [{"hosts": [primary], "secretName": tls_secret}]
    else:
        assert "tls" not in spec


def test_the_hub_url_output_and_the_hubs_own_host_follow_hub_host() -> None:
    # One setting moves the hub: the Ingress, HUB_HOST (callback, public URL) and hubUrl.
    config = pulumi_config("staging")
    config["eodh-jupyterhub:hubHost"] = "notebooks.example.org.uk"
    recording = run_with_config("staging", config)
    assert recording.outputs["hubUrl"] == "https://notebooks.example.org.uk/notebooks/"
    assert _values(recording)["hub"]["extraEnv"]["HUB_HOST"] == "notebooks.example.org.uk"
    hosts = [r["host"] for r in _ingresses(recording)["jupyterhub"]["spec"]["rules"]]
    assert hosts == ["notebooks.example.org.uk"]


def test_extra_hub_hosts_redirect_to_the_primary_host(recording: Recording, stack: str) -> None:
    primary, extra = _hub_hosts(stack)
    ingresses = _ingresses(recording)
    if not extra:
        assert set(ingresses) == {"jupyterhub", "jupyterhub-metrics-refusal"}
        return
    redirect = ingresses["jupyterhub-redirect"]
    kubernetes_validate.validate(redirect, "1.31", strict=True)
    assert [r["host"] for r in redirect["spec"]["rules"]] == extra
    annotations = redirect["metadata"]["annotations"]
    # nginx expands $request_uri: /notebooks/hub/spawn/u/s?workspace=w keeps path and query.
    assert annotations["nginx.ingress.kubernetes.io/permanent-redirect"] == (
        f"https://{primary}$request_uri"
    )
    assert annotations["nginx.ingress.kubernetes.io/permanent-redirect-code"] == "308"


def test_the_public_host_refuses_the_hub_metrics(recording: Recording, stack: str) -> None:
    """Only the path's Ingress is checked here; real nginx proves the refusal
    (test_ingress_header_guard.py)."""
    refusal = _ingresses(recording)["jupyterhub-metrics-refusal"]
    kubernetes_validate.validate(refusal, "1.31", strict=True)
    primary, _ = _hub_hosts(stack)
    (rule,) = refusal["spec"]["rules"]
    assert rule["host"] == primary
    # JupyterHub 5.3 serves the metrics on both (handlers/metrics.py).
    assert [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [
        ("/notebooks/hub/metrics", "Exact"),
        ("/notebooks/hub/api/metrics", "Exact"),
    ]
    annotations = refusal["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/configuration-snippet"] == "return 404;\n"
    assert annotations["nginx.ingress.kubernetes.io/enable-global-auth"] == "false"
    # The refusal must cover the hub's TLS host exactly as the hub's own Ingress does.
    assert refusal["spec"].get("tls") == _ingresses(recording)["jupyterhub"]["spec"].get("tls")


def test_render_writes_release_files_without_secrets(tmp_path: Path) -> None:
    from tools.render import render

    stack = "prod"
    render(stack, tmp_path)
    folder = tmp_path / stack / "helm" / "jupyterhub"
    release = json.loads((folder / "release.json").read_text())
    assert {k: release[k] for k in ("chart", "version", "repository", "namespace")} == {
        "chart": "jupyterhub",
        "version": "4.2.0",
        "repository": "https://hub.jupyter.org/helm-chart/",
        "namespace": "jupyter",
    }
    import yaml

    values = yaml.safe_load((folder / "values.yaml").read_text())
    assert values["hub"]["cookieSecret"] == "[secret]"
    assert values["proxy"]["secretToken"] == "[secret]"
    assert values["hub"]["config"]["CryptKeeper"]["keys"] == ["[secret]"]
    secrets = recording_for(stack, False).generated_secrets
    for path in (tmp_path / stack).rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not [s for s in secrets if s in text], f"{path} leaks a generated secret"


def test_render_is_byte_for_byte_deterministic(tmp_path: Path) -> None:
    from tools.render import render

    for stack in ("dev", "prod"):
        render(stack, tmp_path / "a")
        render(stack, tmp_path / "b")
        a = {
            p.relative_to(tmp_path / "a"): p.read_bytes()
            for p in (tmp_path / "a").rglob("*")
            if p.is_file()
        }
        b = {
            p.relative_to(tmp_path / "b"): p.read_bytes()
            for p in (tmp_path / "b").rglob("*")
            if p.is_file()
        }
        assert a == b and len(a) >= 10


def test_no_stack_has_per_user_hosts(recording: Recording) -> None:
    assert "jupyterhub-user-servers" not in _ingresses(recording)
    hub = _values(recording)["hub"]
    assert "subdomain_host" not in hub["config"]["JupyterHub"]
    assert "USER_SERVERS_DOMAIN" not in hub["extraEnv"]


def test_user_servers_domain_reaches_the_chart_and_the_hub_alike() -> None:
    recording = recording_with_user_servers("staging")
    values = _values(recording)
    # The chart's proxy routes by host only when it sees subdomain_host (templates/proxy/
    # deployment.yaml); file 1 reads the environment and refuses a disagreeing chart value.
    assert values["hub"]["config"]["JupyterHub"]["subdomain_host"] == (
        "https://users.staging.example.org.uk"
    )
    assert values["hub"]["extraEnv"]["USER_SERVERS_DOMAIN"] == "users.staging.example.org.uk"
    assert z2jh_validation_errors(values) == []
    # The hub itself stays where it was.
    assert values["hub"]["extraEnv"]["HUB_HOST"] == "staging.eodatahub-workspaces.org.uk"
    assert recording.outputs["hubUrl"] == "https://staging.eodatahub-workspaces.org.uk/notebooks/"


@pytest.mark.parametrize(
    ("own", "secret"),
    [(None, "eodhp-tls"), ("eodhp-users-tls", "eodhp-users-tls")],
    ids=["hub-certificate", "own-certificate"],
)
def test_user_servers_ingress_is_the_hubs_guard_on_the_wildcard_host(
    own: str | None, secret: str
) -> None:
    ingresses = _ingresses(recording_with_user_servers("staging", own))
    servers, hub = ingresses["jupyterhub-user-servers"], ingresses["jupyterhub"]
    kubernetes_validate.validate(servers, "1.31", strict=True)
    spec = servers["spec"]
    assert spec["ingressClassName"] == "nginx"
    (rule,) = spec["rules"]
    assert rule["host"] == "*.users.staging.example.org.uk"
    # The servers' prefix only: the hub's pages, API and metrics are not served there.
    assert rule["http"]["paths"] == [
        {
            "path": "/notebooks/user",
            "pathType": "Prefix",
            "backend": {"service": {"name": "proxy-public", "port": {"name": "http"}}},
        }
    ]
    # Same header guard, timeouts, body size and global-auth opt-out as the hub's host.
    assert servers["metadata"]["annotations"] == hub["metadata"]["annotations"]
    assert spec["tls"] == [{"hosts": ["*.users.staging.example.org.uk"], "secretName": secret}]
    # The hub's own host keeps its certificate.
    assert hub["spec"]["tls"] == [
        {"hosts": ["staging.eodatahub-workspaces.org.uk"], "secretName": "eodhp-tls"}
    ]


def test_the_policy_pack_refuses_the_wildcard_host_without_its_guard() -> None:
    from policy.eodh_policies import SNIPPET_ANNOTATION
    from tests.policy.adapter import declared, run_pack

    resources = [declared(r) for r in recording_with_user_servers("staging").resources]
    assert [v for v in run_pack(resources) if v.rule == "k8s-ingress-header-guard"] == []
    unguarded = []
    for item in resources:
        if item.props.get("metadata", {}).get("name") == "jupyterhub-user-servers":
            metadata = item.props["metadata"]
            annotations = {
                k: v for k, v in metadata["annotations"].items() if k != SNIPPET_ANNOTATION
            }
            props = item.props | {"metadata": metadata | {"annotations": annotations}}
            item = type(item)(**(vars(item) | {"props": props}))
        unguarded.append(item)
    (violation,) = [v for v in run_pack(unguarded) if v.rule == "k8s-ingress-header-guard"]
    assert "*.users.staging.example.org.uk" in violation.message
