"""The chart inputs the program derives from Settings: notebook profiles and values inputs."""

from __future__ import annotations

import pulumi

from components.helm_values import HubFiles, HubValuesInputs, Profile, content_checksum
from components.jupyterhub import RELEASE_NAME

from .settings import Settings


def notebook_profiles(settings: Settings) -> tuple[Profile, ...]:
    return (
        Profile(
            slug="eodh",
            display_name="EO DataHub",
            description="Python 3.12 with the EO DataHub tools (pyeodh, geopandas, shapely)",
            image=settings.notebook_image,
            default=True,
        ),
        Profile(
            slug="python-3-12",
            display_name="Python 3.12",
            description="The plain Jupyter base notebook",
            image=settings.python_notebook_image,
        ),
        Profile(
            slug="r-4-4",
            display_name="R 4.4",
            description="R 4.4 with the Jupyter R kernel",
            image=settings.r_notebook_image,
        ),
    )


def hub_values_inputs(
    settings: Settings,
    files: HubFiles,
    *,
    release_namespace: pulumi.Input[str],
    oauth_secret_name: pulumi.Input[str],
    oauth_client_secret_key: str,
    workspaces_client_secret_key: str,
    notebook_role_arn: pulumi.Input[str],
    workspace_bucket: pulumi.Input[str],
    cookie_secret: pulumi.Input[str],
    proxy_secret_token: pulumi.Input[str],
    crypt_key: pulumi.Input[str],
    metrics_token: pulumi.Input[str] | None = None,
) -> HubValuesInputs:
    return HubValuesInputs(
        hub_image=settings.hub_image,
        notebook_image=settings.notebook_image,
        profiles=notebook_profiles(settings),
        extra_config=files.extra_config,
        templates_checksum=content_checksum(files.templates),
        release_name=RELEASE_NAME,
        # The caller passes the namespace the release itself is installed in, so the hub
        # URL the servers get names the namespace the hub really runs in.
        release_namespace=release_namespace,
        platform_domain=settings.platform_domain,
        workspaces_domain=settings.workspaces_domain,
        hub_host=settings.hub_host,
        user_servers_domain=settings.user_servers_domain,
        keycloak_issuer=settings.keycloak_issuer,
        hub_client_id=settings.hub_client_id,
        workspaces_client_id=settings.workspaces_client_id,
        oauth_secret_name=oauth_secret_name,
        oauth_client_secret_key=oauth_client_secret_key,
        workspaces_client_secret_key=workspaces_client_secret_key,
        aws_region=settings.aws_region,
        notebook_role_arn=notebook_role_arn,
        workspace_bucket=workspace_bucket,
        cookie_secret=cookie_secret,
        proxy_secret_token=proxy_secret_token,
        crypt_key=crypt_key,
        debug=settings.debug,
        resources=settings.notebook_resources,
        node_affinity=settings.notebook_node_affinity,
        storage_class=settings.notebook_storage_class,
        storage_capacity=settings.notebook_storage_capacity,
        cull_timeout_seconds=settings.cull_timeout_seconds,
        metrics_scraper=settings.metrics_scraper,
        metrics_token=metrics_token,
    )
