"""IAM policy documents as plain dicts: pure, deterministic and testable without Pulumi.

Components turn them into JSON with `pulumi.Output.json_dumps` when they hold Outputs.
"""

from __future__ import annotations

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
