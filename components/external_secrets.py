"""The OAuth client secrets, pulled from AWS Secrets Manager by the External Secrets operator.

Pipeline: IAM role (web identity of one service account) -> ServiceAccount annotated with it
-> SecretStore using that service account's token -> ExternalSecret refreshing every minute
-> Kubernetes Secret the hub reads as environment variables. Secret values never pass
through Pulumi: only the names of the Secrets Manager entries do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from .iam_documents import (
    account_of,
    read_secrets_policy,
    secrets_manager_secret_arn,
    service_account_trust_policy,
)
from .labels import standard_labels

API_VERSION = "external-secrets.io/v1"
# Secret keys the hub's extra config reads from its environment.
OAUTH_CLIENT_SECRET_KEY = "OAUTH_CLIENT_SECRET"
WORKSPACES_CLIENT_SECRET_KEY = "WORKSPACES_CLIENT_SECRET"
WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"
WAIT_FOR_SYNCED = "condition=Ready"


@dataclass(frozen=True)
class OAuthClientSecretsArgs:
    namespace: pulumi.Input[str]
    region: str
    eks_oidc_provider_arn: str
    eks_oidc_issuer_host: str
    oauth_client_secret_name: str
    workspaces_client_secret_name: str
    refresh_interval: str = "1m"
    service_account: str = "jupyterhub-secrets"
    secret_store_name: str = "aws-secrets-manager"
    target_secret_name: str = "jupyterhub-oauth"

    def __post_init__(self) -> None:
        if self.oauth_client_secret_name == self.workspaces_client_secret_name:
            raise ValueError(
                "the two OAuth client secrets must be different Secrets Manager entries"
            )
        account_of(self.eks_oidc_provider_arn)


class OAuthClientSecrets(pulumi.ComponentResource):
    role_arn: pulumi.Output[str]
    secret_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: OAuthClientSecretsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("eodh:secrets:OAuthClientSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = standard_labels("oauth-client-secrets")
        account = account_of(args.eks_oidc_provider_arn)
        secret_arns = [
            secrets_manager_secret_arn(args.region, account, secret)
            for secret in (args.oauth_client_secret_name, args.workspaces_client_secret_name)
        ]

        role = aws.iam.Role(
            f"{name}-role",
            description="External Secrets: reads the JupyterHub OAuth client secrets",
            assume_role_policy=pulumi.Output.from_input(args.namespace).apply(
                lambda namespace: json.dumps(
                    service_account_trust_policy(
                        args.eks_oidc_provider_arn,
                        args.eks_oidc_issuer_host,
                        namespace,
                        args.service_account,
                    )
                )
            ),
            max_session_duration=3600,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-read-secrets",
            role=role.id,
            policy=json.dumps(read_secrets_policy(secret_arns)),
            opts=child,
        )
        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.service_account,
                namespace=args.namespace,
                labels=labels,
                annotations={"eks.amazonaws.com/role-arn": role.arn},
            ),
            # Only the operator needs this account's token; nothing mounts it.
            automount_service_account_token=False,
            opts=child,
        )
        store = k8s.apiextensions.CustomResource(
            f"{name}-secret-store",
            api_version=API_VERSION,
            kind="SecretStore",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.secret_store_name, namespace=args.namespace, labels=labels
            ),
            spec={
                "provider": {
                    "aws": {
                        "service": "SecretsManager",
                        "region": args.region,
                        "auth": {
                            "jwt": {
                                "serviceAccountRef": {
                                    "name": service_account.metadata.apply(
                                        lambda m: m.name or args.service_account
                                    )
                                }
                            }
                        },
                    }
                }
            },
            opts=child,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-external-secret",
            api_version=API_VERSION,
            kind="ExternalSecret",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.target_secret_name,
                namespace=args.namespace,
                labels=labels,
                # Pulumi waits for custom resources only when told what "ready" means
                # (pulumi-kubernetes provider/pkg/metadata/overrides.go, ReadyCondition):
                # the operator sets the Ready condition True once the Secret is written
                # (ExternalSecret CRD status.conditions). Everything depending on this
                # component, the hub release included, then starts only after that.
                annotations={WAIT_FOR_ANNOTATION: WAIT_FOR_SYNCED},
            ),
            spec={
                "refreshInterval": args.refresh_interval,
                "secretStoreRef": {
                    "kind": "SecretStore",
                    "name": args.secret_store_name,
                },
                "target": {
                    "name": args.target_secret_name,
                    # The operator owns the Secret: it is removed with the ExternalSecret.
                    "creationPolicy": "Owner",
                    # If a Secrets Manager entry is deleted or renamed, keep the Secret the
                    # hub runs on (Delete would remove it, and the hub could not restart).
                    "deletionPolicy": "Retain",
                },
                "data": [
                    {
                        "secretKey": OAUTH_CLIENT_SECRET_KEY,
                        "remoteRef": {"key": args.oauth_client_secret_name},
                    },
                    {
                        "secretKey": WORKSPACES_CLIENT_SECRET_KEY,
                        "remoteRef": {"key": args.workspaces_client_secret_name},
                    },
                ],
            },
            # The store is referenced by name; the operator needs it to exist first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[store]),
        )
        # Known in every preview; consumers depend on this component, so on the object too.
        self.secret_name = pulumi.Output.from_input(args.target_secret_name)
        self.role_arn = role.arn
        self.register_outputs({"role_arn": self.role_arn, "secret_name": self.secret_name})
