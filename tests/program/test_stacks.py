"""Every stack, normally and as a preview: the Kubernetes core of the program."""

from __future__ import annotations

import json

import jsonschema
import kubernetes_validate
import pytest

from eodh_jupyterhub.offline import Recording
from eodh_jupyterhub.schemas import EXTERNAL_SECRETS_CRDS, external_secrets_schema
from tests.support.stacks import stack_names

KUBERNETES_VERSION = "1.31"
CRD_KINDS = set(EXTERNAL_SECRETS_CRDS)


def test_every_stack_file_is_exercised() -> None:
    assert stack_names() == ["dev", "dev3", "prod", "staging", "test"]


def test_program_declares_the_core_components(recording: Recording) -> None:
    component_types = {r.type for r in recording.resources if not r.custom}
    assert {
        "eodh:kubernetes:JupyterNamespace",
        "eodh:kubernetes:HubRbac",
        "eodh:secrets:GeneratedHubSecrets",
        "eodh:secrets:OAuthClientSecrets",
    } <= component_types
    for resource in recording.resources:
        if resource.custom:
            assert resource.parent_name, f"{resource.name} is not inside a component"


def test_namespace_is_meshed_by_linkerd(recording: Recording) -> None:
    (namespace,) = recording.of_type("kubernetes:core/v1:Namespace")
    metadata = namespace.inputs["metadata"]
    assert metadata["name"] == "jupyter"
    assert metadata["annotations"] == {"linkerd.io/inject": "enabled"}
    assert metadata["labels"]["app.kubernetes.io/part-of"] == "eodh-jupyterhub"


def test_namespace_and_release_survive_a_destroy_where_data_is_protected(
    recording: Recording, stack: str
) -> None:
    # Deleting the namespace deletes the hub database claim in it, whatever Helm's `keep`
    # says; a deleted release uninstalls the hub. Literal list: the stack files' protectData.
    protected = stack in {"prod", "staging"}
    (namespace,) = recording.of_type("kubernetes:core/v1:Namespace")
    (release,) = recording.of_type("kubernetes:helm.sh/v3:Release")
    for resource in (namespace, release):
        assert (resource.protect, resource.retain_on_delete) == (protected, protected)


def test_hub_cluster_role_has_exactly_the_spawner_rules(recording: Recording) -> None:
    # Why each verb: components/rbac.py; proved against KubeSpawner in test_hub_rbac.py.
    (role,) = recording.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")
    assert role.inputs["metadata"]["name"] == "hub"
    assert role.inputs["rules"] == [
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete", "list", "watch"]},
        {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["create", "get"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["list", "watch"]},
    ]


def test_hub_cluster_role_is_bound_to_the_hub_service_account(recording: Recording) -> None:
    (binding,) = recording.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
    assert binding.inputs["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "hub",
    }
    assert binding.inputs["subjects"] == [
        {"kind": "ServiceAccount", "name": "hub", "namespace": "jupyter"}
    ]


def test_external_secret_pulls_both_client_secrets_every_minute(
    recording: Recording, stack: str
) -> None:
    from tests.support.stacks import effective_config

    config = effective_config(stack)
    (external_secret,) = recording.of_type("kubernetes:external-secrets.io/v1:ExternalSecret")
    spec = external_secret.inputs["spec"]
    assert external_secret.inputs["apiVersion"] == "external-secrets.io/v1"
    assert spec["refreshInterval"] == "1m"
    assert spec["secretStoreRef"] == {"kind": "SecretStore", "name": "aws-secrets-manager"}
    assert {d["secretKey"]: d["remoteRef"]["key"] for d in spec["data"]} == {
        "OAUTH_CLIENT_SECRET": config["eodh-jupyterhub:oauthClientSecretName"],
        "WORKSPACES_CLIENT_SECRET": config["eodh-jupyterhub:workspacesClientSecretName"],
    }
    (store,) = recording.of_type("kubernetes:external-secrets.io/v1:SecretStore")
    aws = store.inputs["spec"]["provider"]["aws"]
    assert aws["service"] == "SecretsManager"
    assert aws["region"] == config["aws:region"]
    assert aws["auth"] == {"jwt": {"serviceAccountRef": {"name": "jupyterhub-secrets"}}}


def test_external_secret_target_survives_a_missing_remote_entry(recording: Recording) -> None:
    (external_secret,) = recording.of_type("kubernetes:external-secrets.io/v1:ExternalSecret")
    target = external_secret.inputs["spec"]["target"]
    # Retain (the CRD's enum: Delete, Merge, Retain): a deleted or renamed Secrets Manager
    # entry must not remove the Secret the hub needs to start.
    assert target == {
        "name": "jupyterhub-oauth",
        "creationPolicy": "Owner",
        "deletionPolicy": "Retain",
    }


def test_secrets_service_account_token_is_not_mounted(recording: Recording) -> None:
    # The operator asks the API server for this account's token (TokenRequest) when the
    # SecretStore's jwt auth names it; no pod runs as it, so nothing should mount its token.
    sa = recording.named("oauth-client-secrets-service-account").inputs
    assert sa["metadata"]["name"] == "jupyterhub-secrets"
    assert sa["automountServiceAccountToken"] is False


def _ready_conditions(annotation: str, condition_types: list[str]) -> list[tuple[str, str]]:
    """Parse `pulumi.com/waitFor` as pulumi-kubernetes does, refusing what it refuses.

    provider/pkg/metadata/overrides.go (ReadyCondition): a JSON array of expressions or one
    expression; each needs a "jsonpath=" or "condition=" prefix. await/condition/custom.go
    (NewCustom): "condition=<Type>" or "condition=<Type>=<Status>", status defaulting to
    "True". A condition type the CRD's status never reports would wait until the timeout.
    """
    try:
        expressions = json.loads(annotation)
    except json.JSONDecodeError:
        expressions = [annotation]
    if not isinstance(expressions, list) or not expressions:
        raise ValueError(f"at least one condition must be specified: {annotation!r}")
    parsed = []
    for expression in expressions:
        if not expression.startswith("condition="):
            raise ValueError(f'expected a "condition=" prefix here, got {expression!r}')
        kind, _, status = expression.removeprefix("condition=").partition("=")
        if kind not in condition_types:
            raise ValueError(f"the CRD reports no condition {kind!r}: {condition_types}")
        parsed.append((kind, status or "True"))
    return parsed


def test_external_secret_is_awaited_until_ready(recording: Recording) -> None:
    (external_secret,) = recording.of_type("kubernetes:external-secrets.io/v1:ExternalSecret")
    annotations = external_secret.inputs["metadata"]["annotations"]
    conditions = external_secrets_schema("ExternalSecret")["properties"]["status"]["properties"][
        "conditions"
    ]
    types = conditions["items"]["properties"]["type"]["enum"]
    assert _ready_conditions(annotations["pulumi.com/waitFor"], types) == [("Ready", "True")]
    # The parser refuses what pulumi-kubernetes or the CRD would never satisfy.
    for wrong in ("Ready", "condition=Synced", "[]"):
        with pytest.raises(ValueError):
            _ready_conditions(wrong, types)
    assert _ready_conditions("condition=Ready=False", types) == [("Ready", "False")]


def test_external_secrets_objects_match_the_crd_schemas(recording: Recording) -> None:
    crd_objects = [r for r in recording.kubernetes_objects() if r.inputs["kind"] in CRD_KINDS]
    assert {r.inputs["kind"] for r in crd_objects} == {"ExternalSecret", "SecretStore"}
    for resource in crd_objects:
        obj = resource.plain_inputs
        schema = external_secrets_schema(obj["kind"], obj["apiVersion"].split("/")[1])
        jsonschema.Draft7Validator(schema).validate(obj)


def test_crd_schema_check_rejects_unknown_fields() -> None:
    schema = external_secrets_schema("ExternalSecret")
    typo = {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": "x"},
        "spec": {
            "refreshInterval": "1m",
            "secretStoreRef": {"name": "s"},
            "refreshIntervall": "1m",
        },
    }
    with pytest.raises(jsonschema.ValidationError, match="refreshIntervall"):
        jsonschema.Draft7Validator(schema).validate(typo)


def test_kubernetes_objects_pass_strict_schema_validation(recording: Recording) -> None:
    objects = [r for r in recording.kubernetes_objects() if r.inputs["kind"] not in CRD_KINDS]
    assert len(objects) >= 4
    for resource in objects:
        kubernetes_validate.validate(resource.plain_inputs, KUBERNETES_VERSION, strict=True)


def test_strict_validation_catches_a_misspelt_field() -> None:
    bad = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "jupyter", "anotations": {}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


def test_external_secrets_role_trusts_only_the_secrets_service_account(
    up_recording: Recording, stack: str
) -> None:
    import json

    from tests.support.stacks import effective_config

    provider_arn = effective_config(stack)["eodh-jupyterhub:eksOidcProviderArn"]
    issuer = provider_arn.split("oidc-provider/", 1)[1]
    role = up_recording.named("oauth-client-secrets-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"] == [
        {
            "Sid": "ServiceAccountWebIdentity",
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{issuer}:sub": "system:serviceaccount:jupyter:jupyterhub-secrets",
                    f"{issuer}:aud": "sts.amazonaws.com",
                }
            },
        }
    ]
    policy = json.loads(up_recording.named("oauth-client-secrets-read-secrets").inputs["policy"])
    (statement,) = policy["Statement"]
    assert statement["Action"] == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    assert len(statement["Resource"]) == 2
    assert all(arn.endswith("-??????") for arn in statement["Resource"])
    account = provider_arn.split(":")[4]
    sa = up_recording.named("oauth-client-secrets-service-account")
    assert sa.inputs["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith(
        "arn:aws:iam::"
    )
    assert all(f":{account}:secret:" in arn for arn in statement["Resource"])
