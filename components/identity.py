"""Keycloak's trust in IAM, and the role notebook pods assume with a workspace-scoped token.

Flow (DESIGN.md "IAM and S3"): the hub exchanges the user's token at Keycloak for one issued
to the dedicated workspaces client, carrying `https://aws.amazon.com/tags` with
`principal_tags.workspace`. The notebook calls `AssumeRoleWithWebIdentity` with it; IAM checks
the token against the Keycloak provider, the trust policy checks the audience and the session
tag, and the role's one inline policy confines the session to `<bucket>/<workspace>/`.

The audience is the workspaces client id: that client requests the workspace-scoped token
(token exchange), so it is the token's `azp` (and `aud`), and IAM's `<issuer>:aud` key reads
`azp` when a token carries one. The hub's own login client never gets a token this role
accepts, nor does any other client of the realm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .iam_documents import (
    account_of,
    notebook_permissions_policy,
    notebook_trust_policy,
    oidc_condition_prefix,
    oidc_provider_path,
)
from .marker_function import PLATFORM_PREFIXES

# IAM's own bounds for a role's maximum session duration, in seconds.
MIN_SESSION_SECONDS = 3600
MAX_SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class KeycloakIdentityProviderArgs:
    issuer: str
    """The realm URL, the tokens' `iss`: https://<platform domain>/keycloak/realms/eodhp."""
    client_ids: tuple[str, ...]
    """Audiences IAM accepts from this provider (when this stack creates it)."""
    existing_provider_arn: str | None = None
    """Set: reference that provider (shared by environments); unset: create one here."""
    protect: bool = True
    """Protect and retain the provider a stack creates (production data safety)."""
    account: str | None = None
    """The account the stack deploys into: IAM trusts only providers of the role's account."""

    def __post_init__(self) -> None:
        if not self.client_ids:
            raise ValueError("the Keycloak identity provider needs at least one client id")
        path = oidc_condition_prefix(self.issuer)
        existing = self.existing_provider_arn
        if existing and oidc_provider_path(existing) != path:
            raise ValueError(
                f"keycloakProviderArn {existing!r} is not the provider of the issuer "
                f"{self.issuer!r} (expected an ARN ending in oidc-provider/{path})"
            )
        if existing and self.account and account_of(existing) != self.account:
            raise ValueError(
                f"keycloakProviderArn {existing!r} is in account {account_of(existing)}, not "
                f"{self.account} where this stack deploys; a role can only trust an identity "
                "provider of its own account"
            )


class KeycloakIdentityProvider(pulumi.ComponentResource):
    """The IAM OIDC provider for the Keycloak realm, created here or referenced by ARN."""

    arn: pulumi.Output[str]
    created: bool

    def __init__(
        self,
        name: str,
        args: KeycloakIdentityProviderArgs,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("eodh:identity:KeycloakIdentityProvider", name, None, opts)
        self.created = args.existing_provider_arn is None
        if args.existing_provider_arn is not None:
            # Another stack owns it; its ARN is all the trust policy needs. No lookup invoke:
            # the ARN was validated against the issuer in the args.
            self.arn = pulumi.Output.from_input(args.existing_provider_arn)
        else:
            provider = aws.iam.OpenIdConnectProvider(
                f"{name}-oidc-provider",
                url=args.issuer,
                client_id_lists=list(args.client_ids),
                # No thumbprints: IAM fetches and tracks the issuer's certificate chain itself.
                opts=pulumi.ResourceOptions(
                    parent=self, protect=args.protect, retain_on_delete=args.protect
                ),
            )
            self.arn = provider.arn
        self.register_outputs({"arn": self.arn})


@dataclass(frozen=True)
class NotebookRoleArgs:
    provider_arn: pulumi.Input[str]
    """The Keycloak provider the trust policy names as its only principal."""
    issuer: str
    """The provider's issuer URL: its condition keys are `<issuer without https://>:aud`."""
    audience: str
    """The one client id whose workspace-scoped tokens may assume the role."""
    bucket: pulumi.Input[str]
    """The workspace bucket's name."""
    max_session_duration: int = MIN_SESSION_SECONDS
    """Seconds; botocore re-assumes with a fresh token 15 minutes before expiry."""
    platform_prefixes: tuple[str, ...] = PLATFORM_PREFIXES
    """Top-level prefixes of the bucket that are the platform's, denied whatever the tag."""

    def __post_init__(self) -> None:
        oidc_condition_prefix(self.issuer)
        if not self.audience:
            raise ValueError("the notebook role needs an audience (a Keycloak client id)")
        if not MIN_SESSION_SECONDS <= self.max_session_duration <= MAX_SESSION_SECONDS:
            raise ValueError(
                f"max_session_duration must be {MIN_SESSION_SECONDS} to {MAX_SESSION_SECONDS} "
                f"seconds; got {self.max_session_duration}"
            )


class NotebookRole(pulumi.ComponentResource):
    """The role single-user pods assume: their own workspace's prefix of the bucket, no more."""

    arn: pulumi.Output[str]
    name: pulumi.Output[str]

    def __init__(
        self, name: str, args: NotebookRoleArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("eodh:identity:NotebookRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-role",
            description="Notebook pods: their workspace's prefix of the workspace bucket",
            assume_role_policy=pulumi.Output.from_input(args.provider_arn).apply(
                lambda provider_arn: json.dumps(
                    notebook_trust_policy(provider_arn, args.issuer, args.audience)
                )
            ),
            max_session_duration=args.max_session_duration,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-workspace-access",
            role=role.id,
            policy=pulumi.Output.from_input(args.bucket).apply(
                lambda bucket: json.dumps(
                    notebook_permissions_policy(bucket, args.platform_prefixes)
                )
            ),
            opts=child,
        )
        self.arn = role.arn
        self.name = role.name
        self.register_outputs({"arn": self.arn, "name": self.name})
