"""Shared pieces of the IAM and S3 tests: the rendered documents and the independent simulator."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.iam_documents import declared_policy_documents
from eodh_jupyterhub.offline import MOCK_ACCOUNT, Recording

SIMULATOR = Path(__file__).with_name("simulate.mjs")
NODE = shutil.which("node") or "/usr/bin/node"

# Resource names the program gives the IAM and S3 documents (see eodh_jupyterhub/program.py).
NOTEBOOK_TRUST = "notebook-role"
NOTEBOOK_PERMISSIONS = "notebook-workspace-access"
SECRETS_TRUST = "oauth-client-secrets-role"
SECRETS_PERMISSIONS = "oauth-client-secrets-read-secrets"
BUCKET_POLICY = "workspaces-tls-only-policy"
# The inline (permission) policies: what parliament and moto's put_role_policy check.
PERMISSION_POLICIES = (NOTEBOOK_PERMISSIONS, SECRETS_PERMISSIONS)


def documents(recording: Recording) -> dict[str, Any]:
    return declared_policy_documents(recording.resources)


def permission_documents(recording: Recording) -> dict[str, Any]:
    """Every declared document except role trust policies."""
    trust = {r.name for r in recording.of_type("aws:iam/role:Role")}
    return {n: d for n, d in documents(recording).items() if n not in trust}


@dataclass(frozen=True)
class Request:
    """One row of a decision table: who asks for what, in which context."""

    name: str
    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)
    principal: str = f"arn:aws:sts::{MOCK_ACCOUNT}:assumed-role/notebook-role/jupyter-alice"
    account: str = MOCK_ACCOUNT
    """The account owning the resource (S3 ARNs do not name one)."""


def simulate(
    requests: list[Request],
    identity_policies: dict[str, Any] | None = None,
    resource_policy: dict[str, Any] | None = None,
    trust_policy: dict[str, Any] | None = None,
    dropped_keys_allowed: frozenset[str] = frozenset(),
) -> dict[str, str]:
    """Decide every request with @cloud-copilot/iam-simulate; name -> decision.

    The validated engine decides, unless the only context keys it dropped are in
    `dropped_keys_allowed` (a private OIDC issuer's keys, absent from its action catalogue):
    then the same engine without that filter decides. Anything else it drops, or any
    validation error, fails the test: a silently dropped key would make a deny meaningless.
    """
    cases = [
        {
            "name": r.name,
            "principal": r.principal,
            "action": r.action,
            "resource": r.resource,
            "accountId": r.account,
            "context": r.context,
            "identityPolicies": [
                {"name": name, "policy": policy}
                for name, policy in (identity_policies or {}).items()
            ],
            **({"resourcePolicy": resource_policy} if resource_policy else {}),
            **({"trustPolicy": trust_policy} if trust_policy else {}),
        }
        for r in requests
    ]
    completed = subprocess.run(
        [NODE, str(SIMULATOR)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    decisions: dict[str, str] = {}
    for result in json.loads(completed.stdout):
        checked = result["checked"]
        assert not checked.get("errors"), f"{result['name']}: {checked['errors']}"
        dropped = set(checked["ignoredContextKeys"])
        assert dropped <= dropped_keys_allowed, f"{result['name']}: simulator dropped {dropped}"
        if dropped:
            decisions[result["name"]] = result["unchecked"]
        else:
            # With nothing dropped both engines see the same request and must agree.
            assert result["unchecked"] == checked["decision"], result
            decisions[result["name"]] = checked["decision"]
    return decisions


def web_identity_context(issuer: str, claims: dict[str, Any]) -> dict[str, Any]:
    """The request context IAM builds from a web-identity token's claims, for a trust policy.

    `<issuer>:aud` is the token's `azp` when it carries one, else its `aud`; the raw `aud`
    is `<issuer>:oaud` (AWS IAM User Guide, "IAM and AWS STS condition context keys",
    web identity / OIDC federation keys: `aud`, `oaud`, `sub`). The claim
    `https://aws.amazon.com/tags` becomes session tags: each `principal_tags` entry (a list
    of one string) is `aws:RequestTag/<key>`, and the keys are `aws:TagKeys`.
    A token without `azp` and with several audiences is not modelled: IAM's choice there
    is not documented, and none of this platform's tokens has that shape.
    """
    context: dict[str, Any] = {}
    audience = claims.get("aud")
    if "azp" in claims:
        context[f"{issuer}:aud"] = claims["azp"]
    elif isinstance(audience, list):
        if len(audience) != 1:
            raise ValueError(f"not modelled: several audiences and no azp: {audience}")
        context[f"{issuer}:aud"] = audience[0]
    elif audience is not None:
        context[f"{issuer}:aud"] = audience
    if audience is not None:
        context[f"{issuer}:oaud"] = audience
    if "sub" in claims:
        context[f"{issuer}:sub"] = claims["sub"]
    tags = claims.get("https://aws.amazon.com/tags", {}).get("principal_tags", {})
    for key, values in tags.items():
        (value,) = values
        context[f"aws:RequestTag/{key}"] = value
    if tags:
        context["aws:TagKeys"] = sorted(tags)
    return context
