"""IAM policy documents as plain dicts: pure, deterministic and testable without Pulumi.

Components turn them into JSON with `pulumi.Output.json_dumps` when they hold Outputs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

PolicyDocument = dict[str, Any]


def account_of(arn: str) -> str:
    """The account id field of an ARN (`arn:aws:iam::123456789012:...`)."""
    parts = arn.split(":")
    if len(parts) < 6 or not parts[4].isdigit():
        raise ValueError(f"not an ARN with an account id: {arn!r}")
    return parts[4]


def secrets_manager_secret_arn(region: str, account: str, name: str) -> str:
    # Secrets Manager appends "-" and six random characters to every secret's ARN; matching
    # exactly six keeps `name` from also matching `name-other`.
    return f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-??????"


def service_account_trust_policy(
    provider_arn: str, issuer_host: str, namespace: str, service_account: str
) -> PolicyDocument:
    """Trust for one Kubernetes service account through the EKS cluster's OIDC provider."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ServiceAccountWebIdentity",
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer_host}:sub": (
                            f"system:serviceaccount:{namespace}:{service_account}"
                        ),
                        f"{issuer_host}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ],
    }


def read_secrets_policy(secret_arns: list[str]) -> PolicyDocument:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadOAuthClientSecrets",
                "Effect": "Allow",
                "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
                "Resource": sorted(secret_arns),
            }
        ],
    }


# --- The workspace-scoped notebook role and the workspace bucket (DESIGN.md "IAM and S3") ---

WORKSPACE_TAG = "workspace"
# The policy variable IAM replaces with the session's `workspace` tag. A session without the
# tag leaves the variable unresolved, the statement does not match, and access is denied.
WORKSPACE_VARIABLE = "${aws:PrincipalTag/" + WORKSPACE_TAG + "}"
# Object actions the S3 drive needs: read (GetObject, also HeadObject and the copy source of a
# rename), write (PutObject, also the parts of a multipart upload) and delete. Nothing else:
# abandoned multipart uploads are cleaned by the bucket's lifecycle rule instead.
WORKSPACE_OBJECT_ACTIONS = ("s3:DeleteObject", "s3:GetObject", "s3:PutObject")


def bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def oidc_condition_prefix(issuer: str) -> str:
    """How IAM names an OIDC provider in condition keys: the issuer without its scheme.

    `https://dev.eodatahub.org.uk/keycloak/realms/eodhp` gives
    `dev.eodatahub.org.uk/keycloak/realms/eodhp` (so `...:aud`, `...:sub`).
    """
    if not issuer.startswith("https://"):
        raise ValueError(f"an OIDC issuer is an https URL: {issuer!r}")
    return issuer[len("https://") :].rstrip("/")


def oidc_provider_path(provider_arn: str) -> str:
    """The host and path an IAM OIDC provider's ARN names (its issuer without the scheme)."""
    prefix, _, path = provider_arn.partition(":oidc-provider/")
    if not prefix.startswith("arn:") or not path:
        raise ValueError(f"not an IAM OIDC provider ARN: {provider_arn!r}")
    return path


def notebook_trust_policy(provider_arn: str, issuer: str, audience: str) -> PolicyDocument:
    """Who may assume the notebook role: a workspace-scoped Keycloak token, and nothing else.

    - only the Keycloak provider (`Principal.Federated`), through web identity;
    - only tokens issued to the dedicated client: IAM fills `<issuer>:aud` from the token's
      `azp` when it carries one, else from `aud` (whose raw value is `<issuer>:oaud`; AWS IAM
      User Guide, "IAM and AWS STS condition context keys", OIDC federation keys). Keycloak's
      token exchange issues the workspace token to the workspaces client, so its `azp` is
      that client; the hub's login token lists the workspaces client in `aud` (so that the
      exchange is allowed) but its `azp` is the hub's client, and IAM refuses it;
    - `sts:TagSession` is allowed because the token's `https://aws.amazon.com/tags` claim turns
      into session tags, but only the `workspace` key, and it must be present and non-empty:
      `ForAllValues` alone is also true for a request with no tags at all.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WorkspaceScopedWebIdentity",
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
                "Condition": {
                    "StringEquals": {f"{oidc_condition_prefix(issuer)}:aud": audience},
                    "StringLike": {f"aws:RequestTag/{WORKSPACE_TAG}": "?*"},
                    "ForAllValues:StringEquals": {"aws:TagKeys": [WORKSPACE_TAG]},
                },
            }
        ],
    }


def notebook_permissions_policy(
    bucket: str, platform_prefixes: tuple[str, ...] = ()
) -> PolicyDocument:
    """What a notebook session may do: its own workspace's prefix of the bucket, nothing else.

    The trailing `/` after the variable matters: without it `ws1` would also reach `ws10/`.
    `s3:prefix` exists only on ListBucket; on object actions the key is absent and a condition
    on it would silently deny, so objects are scoped by their ARN instead.

    The platform's own prefixes of a shared bucket (components/marker_function.py
    `PLATFORM_PREFIXES`) look like workspaces: a Keycloak token tagged with one of those names
    and taken straight to STS (the hub refuses the name, STS does not) would reach the
    service's files. An explicit Deny wins over the Allow whatever the tag says.
    """
    platform_objects = [f"{bucket_arn(bucket)}/{prefix}/*" for prefix in platform_prefixes]
    platform_deny = [
        {
            "Sid": "NoPlatformPrefixObjects",
            "Effect": "Deny",
            "Action": list(WORKSPACE_OBJECT_ACTIONS),
            "Resource": platform_objects,
        },
        {
            "Sid": "NoPlatformPrefixListing",
            "Effect": "Deny",
            "Action": "s3:ListBucket",
            "Resource": bucket_arn(bucket),
            # `prefix` itself too: a listing of `workflow-harvester` without its `/` shows
            # the same keys.
            "Condition": {
                "StringLike": {
                    "s3:prefix": sorted(
                        {f"{prefix}/*" for prefix in platform_prefixes} | set(platform_prefixes)
                    )
                }
            },
        },
    ]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListOwnWorkspacePrefix",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn(bucket),
                "Condition": {"StringLike": {"s3:prefix": f"{WORKSPACE_VARIABLE}/*"}},
            },
            {
                "Sid": "ReadWriteOwnWorkspaceObjects",
                "Effect": "Allow",
                "Action": list(WORKSPACE_OBJECT_ACTIONS),
                "Resource": f"{bucket_arn(bucket)}/{WORKSPACE_VARIABLE}/*",
            },
            *(platform_deny if platform_prefixes else []),
        ],
    }


def bucket_tls_only_policy(bucket: str) -> PolicyDocument:
    """The workspace bucket's policy: refuse every request that does not arrive over TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn(bucket), f"{bucket_arn(bucket)}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


# Where each resource type carries its policy document (as JSON text) among its inputs.
POLICY_DOCUMENT_INPUTS = {
    "aws:iam/role:Role": "assumeRolePolicy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
}


def declared_policy_documents(resources: Iterable[Any]) -> dict[str, PolicyDocument]:
    """Every IAM policy document among recorded resources, by resource name.

    Takes anything with `type`, `name` and `inputs` (the offline recording's resources).
    Documents still unknown (a preview before their inputs resolve) are left out.
    """
    documents: dict[str, PolicyDocument] = {}
    for resource in resources:
        key = POLICY_DOCUMENT_INPUTS.get(resource.type)
        text = resource.inputs.get(key) if key else None
        if isinstance(text, str) and text:
            documents[resource.name] = json.loads(text)
    return dict(sorted(documents.items()))


def lambda_trust_policy() -> PolicyDocument:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "LambdaService",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def marker_function_policy(
    bucket_arn: str,
    marker_name: str,
    log_group_arn: str,
    failure_queue_arn: str,
    platform_prefixes: tuple[str, ...] = (),
) -> PolicyDocument:
    """Exactly what the marker function does: create marker objects, log, report failures.

    In an S3 ARN `*` matches any run of characters, `/` and the empty run included, and `?`
    exactly one. `<bucket>/?*/?*/<marker>` therefore asks for a non-empty workspace and at
    least one non-empty directory inside it: not the workspace's own marker (s3contents
    writes that one), not one at the bucket root, not `//<marker>` or `/x/<marker>` (both of
    which `*/*/` allows). A wildcard cannot say "no empty segment" in the middle, so
    keys starting with `/` or holding `//` anywhere are denied outright: the function never
    writes them (it stops climbing at an empty segment). The platform's own prefixes of a
    shared bucket are no workspaces: nothing may be written there (components/
    marker_function.py `PLATFORM_PREFIXES`).
    """
    platform_deny = [
        {
            "Sid": "NotIntoPlatformPrefixes",
            "Effect": "Deny",
            "Action": "s3:PutObject",
            "Resource": [f"{bucket_arn}/{prefix}/*" for prefix in platform_prefixes],
        }
    ]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CreateDirectoryMarkers",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/?*/?*/{marker_name}",
            },
            {
                "Sid": "NoEmptyPathSegments",
                "Effect": "Deny",
                "Action": "s3:PutObject",
                "Resource": [f"{bucket_arn}//*", f"{bucket_arn}/*//*"],
            },
            *(platform_deny if platform_prefixes else []),
            {
                "Sid": "WriteOwnLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"{log_group_arn}:*",
            },
            {
                "Sid": "ReportFailedEvents",
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": failure_queue_arn,
            },
        ],
    }
