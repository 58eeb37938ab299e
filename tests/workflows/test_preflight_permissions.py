"""The preflight permissions in docs/operations.md are exactly what `make preflight` reads.

Each request below is one tools/preflight.py makes, for every stack's settings:
`check_tls_secret` (a GET of the stack's TLS Secret, metadata only), `check_user_servers_origin`
(a GET of the user servers' Ingress, metadata only), `check_ingress_controller`
(a GET of the controller's ConfigMap), `check_bucket` (HeadBucket, authorised as s3:ListBucket;
GetBucketNotificationConfiguration, as s3:GetBucketNotification), `check_oidc_provider`
(GetOpenIDConnectProvider on the referenced or to-be-created provider) and
`check_lambda_concurrency` (GetAccountSettings, no resource). `/version` and API discovery need
no rule (Kubernetes' default discovery bindings). The YAML is decided with the same RBAC
matcher as the preview role's (tests/workflows/test_preview_role.py) and validated with
kubernetes-validate --strict; the JSON is linted with parliament and decided with
@cloud-copilot/iam-simulate.
"""

from __future__ import annotations

import json
import re

import kubernetes_validate
import pytest
import yaml

from eodh_jupyterhub.offline import MOCK_ACCOUNT
from eodh_jupyterhub.settings import Settings, load_settings
from tests.aws.support import Request, simulate
from tests.support.stacks import pulumi_config, stack_names
from tests.workflows.test_preview_role import (
    KUBERNETES_VERSION,
    OPERATIONS,
    Attributes,
    authorized,
    fenced,
    findings,
)
from tools import preflight

GROUP = "eodh-jupyterhub-preflight"
OPERATOR = f"arn:aws:sts::{MOCK_ACCOUNT}:assumed-role/operator/alice"


def section() -> str:
    text = OPERATIONS.read_text()
    start = text.index("\n## The preflight permissions\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def objects() -> list[dict]:
    (block,) = fenced(section(), "yaml")
    return [d for d in yaml.safe_load_all(block) if d]


def policy() -> dict:
    (block,) = fenced(section(), "json")
    return json.loads(block)


def all_settings() -> list[Settings]:
    return [load_settings(pulumi_config(stack), stack) for stack in stack_names()]


def kubernetes_reads(settings: Settings) -> list[Attributes]:
    namespace, name = preflight.DEFAULT_INGRESS_CONFIGMAP.split("/")
    reads = [Attributes("get", "", "configmaps", namespace, name)]
    for secret in (settings.tls_secret_name, settings.user_servers_tls_secret_name):
        if secret:
            reads.append(Attributes("get", "", "secrets", settings.namespace, secret))
    # check_user_servers_origin, whenever a stack sets userServersDomain (none does yet).
    from components.jupyterhub import USER_SERVERS_INGRESS

    reads.append(
        Attributes(
            "get", "networking.k8s.io", "ingresses", settings.namespace, USER_SERVERS_INGRESS
        )
    )
    return reads


def provider_arn(settings: Settings) -> str:
    path = settings.keycloak_issuer.split("://", 1)[-1]
    return settings.keycloak_provider_arn or (
        f"arn:aws:iam::{settings.aws_account}:oidc-provider/{path}"
    )


def aws_reads(settings: Settings) -> list[Request]:
    bucket = f"arn:aws:s3:::{settings.workspace_bucket}"
    return [
        Request(f"{settings.stack} head bucket", "s3:ListBucket", bucket, principal=OPERATOR),
        Request(
            f"{settings.stack} bucket notification",
            "s3:GetBucketNotification",
            bucket,
            principal=OPERATOR,
        ),
        Request(
            f"{settings.stack} provider",
            "iam:GetOpenIDConnectProvider",
            provider_arn(settings),
            principal=OPERATOR,
        ),
        Request(f"{settings.stack} lambda", "lambda:GetAccountSettings", "*", principal=OPERATOR),
    ]


def aws_writes_and_other_reads(settings: Settings) -> list[Request]:
    bucket = f"arn:aws:s3:::{settings.workspace_bucket}"
    return [
        Request(f"{settings.stack} object", "s3:GetObject", f"{bucket}/ws1/f", principal=OPERATOR),
        Request(f"{settings.stack} notify", "s3:PutBucketNotification", bucket, principal=OPERATOR),
        Request(
            f"{settings.stack} add audience",
            "iam:AddClientIDToOpenIDConnectProvider",
            provider_arn(settings),
            principal=OPERATOR,
        ),
        Request(
            f"{settings.stack} eks provider",
            "iam:GetOpenIDConnectProvider",
            settings.eks_oidc_provider_arn,
            principal=OPERATOR,
        ),
        Request(
            f"{settings.stack} reserve", "lambda:PutFunctionConcurrency", "*", principal=OPERATOR
        ),
    ]


def test_the_rbac_yaml_is_valid_kubernetes_1_31() -> None:
    for obj in objects():
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_rbac_allows_every_read_preflight_makes() -> None:
    reads = {a for s in all_settings() for a in kubernetes_reads(s)}
    assert any(a.resource == "secrets" for a in reads)  # staging and prod name a TLS Secret
    assert [a for a in reads if not authorized(objects(), a, group=GROUP)] == []


@pytest.mark.parametrize(
    "request_",
    [
        Attributes("list", "", "secrets", "jupyter", ""),
        Attributes("get", "", "secrets", "jupyter", "hub"),  # the hub's generated secrets
        Attributes("get", "", "secrets", "jupyter", "jupyterhub-oauth"),
        Attributes("get", "", "configmaps", "jupyter", "hub"),
        Attributes("patch", "", "configmaps", "ingress-nginx", "ingress-nginx-controller"),
        Attributes("get", "", "secrets", "ingress-nginx", "eodhp-tls"),
    ],
)
def test_the_rbac_grants_nothing_else(request_: Attributes) -> None:
    assert not authorized(objects(), request_, group=GROUP)


def test_parliament_has_no_findings_on_the_policy() -> None:
    assert findings(policy()) == []


def test_the_policy_allows_exactly_preflights_reads() -> None:
    reads = [r for s in all_settings() for r in aws_reads(s)]
    others = [r for s in all_settings() for r in aws_writes_and_other_reads(s)]
    decided = simulate(reads + others, identity_policies={"preflight": policy()})
    assert {r.name: decided[r.name] for r in reads} == {r.name: "Allowed" for r in reads}
    assert {r.name: decided[r.name] for r in others} == {r.name: "ImplicitlyDenied" for r in others}


def test_the_documented_bucket_pattern_is_the_stacks_buckets() -> None:
    (bucket_statement,) = [s for s in policy()["Statement"] if s["Sid"] == "WorkspaceBucket"]
    pattern = re.escape(bucket_statement["Resource"]).replace(r"\*", ".*")
    assert all(re.fullmatch(pattern, f"arn:aws:s3:::{s.workspace_bucket}") for s in all_settings())
