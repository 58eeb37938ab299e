"""The program: wires the components from one Settings object and exports the stack outputs."""

from __future__ import annotations

import pulumi

from components.admission import HubAdmission, HubAdmissionArgs
from components.alarms import MarkerAlarms, MarkerAlarmsArgs
from components.external_secrets import (
    OAUTH_CLIENT_SECRET_KEY,
    WORKSPACES_CLIENT_SECRET_KEY,
    OAuthClientSecrets,
    OAuthClientSecretsArgs,
)
from components.helm_values import HubFiles
from components.hub_metrics import HubMetricsToken
from components.hub_secrets import GeneratedHubSecrets
from components.identity import (
    KeycloakIdentityProvider,
    KeycloakIdentityProviderArgs,
    NotebookRole,
    NotebookRoleArgs,
)
from components.jupyterhub import JupyterHub, JupyterHubArgs
from components.marker_function import MarkerFunction, MarkerFunctionArgs
from components.namespace import JupyterNamespace, JupyterNamespaceArgs
from components.rbac import HubRbac, HubRbacArgs
from components.workspace_bucket import WorkspaceBucket, WorkspaceBucketArgs

from .hub_inputs import hub_values_inputs
from .settings import Settings
from .stack_config import PROJECT_ROOT


def jupyterhub_program(settings: Settings) -> None:
    namespace = JupyterNamespace(
        "jupyter", JupyterNamespaceArgs(name=settings.namespace, protect=settings.protect_data)
    )
    rbac = HubRbac("hub-rbac", HubRbacArgs(namespace=namespace.name))
    # Declared beside the RBAC it narrows, before the hub that it constrains.
    admission = HubAdmission("hub-admission", HubAdmissionArgs(namespace=namespace.name))
    hub_secrets = GeneratedHubSecrets("hub-secrets")
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
            protect=settings.protect_keycloak_provider,
            account=settings.aws_account,
        ),
    )
    workspace_bucket = WorkspaceBucket(
        "workspaces",
        WorkspaceBucketArgs(
            bucket=settings.workspace_bucket,
            protect=settings.protect_data,
            access_logs_bucket=settings.access_logs_bucket,
            manage=settings.manage_workspace_bucket,
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

    metrics = HubMetricsToken("hub-metrics") if settings.metrics_scraper else None
    hub_files = HubFiles.read(PROJECT_ROOT / "hub")
    jupyterhub = JupyterHub(
        "jupyterhub",
        JupyterHubArgs(
            namespace=namespace.name,
            values=hub_values_inputs(
                settings,
                hub_files,
                release_namespace=namespace.name,
                oauth_secret_name=oauth_secrets.secret_name,
                oauth_client_secret_key=OAUTH_CLIENT_SECRET_KEY,
                workspaces_client_secret_key=WORKSPACES_CLIENT_SECRET_KEY,
                notebook_role_arn=notebook_role.arn,
                workspace_bucket=workspace_bucket.bucket,
                cookie_secret=hub_secrets.cookie_secret,
                proxy_secret_token=hub_secrets.proxy_secret_token,
                crypt_key=hub_secrets.crypt_key,
                metrics_token=metrics.token if metrics else None,
            ),
            templates=hub_files.templates,
            hub_host=settings.hub_host,
            hub_extra_hosts=settings.hub_extra_hosts,
            tls_secret_name=settings.tls_secret_name,
            user_servers_domain=settings.user_servers_domain,
            user_servers_tls_secret_name=settings.user_servers_tls_secret,
            protect=settings.protect_data,
            depends_on=[namespace, rbac, admission, hub_secrets, oauth_secrets],
        ),
    )
    markers = MarkerFunction(
        "s3keep",
        MarkerFunctionArgs(
            bucket=workspace_bucket.bucket,
            bucket_arn=workspace_bucket.arn,
            account=settings.aws_account,
            source_dir=PROJECT_ROOT / "lambda" / "s3keep",
            reserved_concurrency=settings.marker_reserved_concurrency,
            # A shared bucket's one notification configuration is not ours to write.
            trigger="bucket-notification" if workspace_bucket.managed else "eventbridge",
        ),
    )

    MarkerAlarms(
        "s3keep-alarms",
        MarkerAlarmsArgs(
            name_prefix=f"eodh-jupyterhub {settings.stack}:",
            function_name=markers.function_name,
            failure_queue_name=markers.failure_queue_name,
            topic_arn=settings.alarm_topic_arn,
        ),
    )

    pulumi.export("namespace", namespace.name)
    pulumi.export("helmRelease", jupyterhub.release_name)
    pulumi.export("hubUrl", f"{settings.hub_url}/")
    pulumi.export("keycloakIssuer", settings.keycloak_issuer)
    pulumi.export("externalSecretsRoleArn", oauth_secrets.role_arn)
    pulumi.export("oauthSecretName", oauth_secrets.secret_name)
    pulumi.export("keycloakProviderArn", keycloak.arn)
    pulumi.export("notebookRoleArn", notebook_role.arn)
    pulumi.export("workspaceBucketName", workspace_bucket.bucket)
    pulumi.export("workspaceBucketArn", workspace_bucket.arn)
    pulumi.export("markerFunctionArn", markers.function_arn)
    pulumi.export("markerFailureQueueUrl", markers.failure_queue_url)
