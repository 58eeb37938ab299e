"""The program: wires the components from one Settings object and exports the stack outputs."""

from __future__ import annotations

import pulumi

from .components.external_secrets import OAuthClientSecrets, OAuthClientSecretsArgs
from .components.hub_secrets import GeneratedHubSecrets
from .components.identity import (
    KeycloakIdentityProvider,
    KeycloakIdentityProviderArgs,
    NotebookRole,
    NotebookRoleArgs,
)
from .components.namespace import JupyterNamespace, JupyterNamespaceArgs
from .components.rbac import HubRbac, HubRbacArgs
from .components.workspace_bucket import WorkspaceBucket, WorkspaceBucketArgs
from .settings import Settings


def jupyterhub_program(settings: Settings) -> None:
    namespace = JupyterNamespace("jupyter", JupyterNamespaceArgs(name=settings.namespace))
    HubRbac("hub-rbac", HubRbacArgs(namespace=namespace.name))
    GeneratedHubSecrets("hub-secrets")
    oauth_secrets = OAuthClientSecrets(
        "oauth-client-secrets",
        OAuthClientSecretsArgs(
            namespace=namespace.name,
            region=settings.aws_region,
            eks_oidc_provider_arn=settings.eks_oidc_provider_arn,
            eks_oidc_issuer_host=settings.eks_oidc_issuer_host,
            oauth_client_secret_name=settings.oauth_client_secret_name,
            workspaces_client_secret_name=settings.workspaces_client_secret_name,
        ),
    )
    keycloak = KeycloakIdentityProvider(
        "keycloak",
        KeycloakIdentityProviderArgs(
            issuer=settings.keycloak_issuer,
            client_ids=(settings.workspaces_client_id,),
            existing_provider_arn=settings.keycloak_provider_arn,
            protect=settings.protect_data,
        ),
    )
    workspace_bucket = WorkspaceBucket(
        "workspaces",
        WorkspaceBucketArgs(
            bucket=settings.workspace_bucket,
            protect=settings.protect_data,
            access_logs_bucket=settings.access_logs_bucket,
        ),
    )
    notebook_role = NotebookRole(
        "notebook",
        NotebookRoleArgs(
            provider_arn=keycloak.arn,
            issuer=settings.keycloak_issuer,
            audience=settings.workspaces_client_id,
            bucket=workspace_bucket.bucket,
        ),
    )

    pulumi.export("namespace", namespace.name)
    pulumi.export("hubUrl", f"https://{settings.platform_domain}/notebooks/")
    pulumi.export("keycloakIssuer", settings.keycloak_issuer)
    pulumi.export("externalSecretsRoleArn", oauth_secrets.role_arn)
    pulumi.export("oauthSecretName", oauth_secrets.secret_name)
    pulumi.export("keycloakProviderArn", keycloak.arn)
    pulumi.export("notebookRoleArn", notebook_role.arn)
    pulumi.export("workspaceBucketName", workspace_bucket.bucket)
    pulumi.export("workspaceBucketArn", workspace_bucket.arn)
