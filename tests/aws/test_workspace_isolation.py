"""Workspace isolation, decided by an independent IAM simulator from the rendered policies.

The notebook role's inline policy and the bucket policy, exactly as each stack declares them,
go to @cloud-copilot/iam-simulate with a table of S3 requests from a session tagged
`workspace=ws1`. Only requests inside `ws1/` are allowed. The table is then run against the
two classic mistakes (DESIGN.md) to show it would catch them.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.iam_documents import bucket_tls_only_policy, notebook_permissions_policy
from components.marker_function import PLATFORM_PREFIXES
from eodh_jupyterhub.offline import Recording
from tests.aws.support import BUCKET_POLICY, NOTEBOOK_PERMISSIONS, Request, documents, simulate
from tests.support.bucket_modes import recording_in_mode
from tests.support.stacks import effective_config


@pytest.fixture
def up_recording(stack: str) -> Recording:
    # A managed bucket's documents (its TLS-only policy included); the notebook and marker
    # documents are the same for a shared bucket (tests/program/test_shared_bucket.py).
    return recording_in_mode(stack, manage=True)


ALLOWED = "Allowed"
DENIED = "ImplicitlyDenied"
REFUSED = "ExplicitlyDenied"
OWN = "ws1"


def s3_requests(bucket: str) -> list[tuple[Request, str]]:
    """(request, expected decision): a session of workspace `ws1`, over TLS unless stated."""
    tls = {"aws:SecureTransport": "true"}
    tagged = {**tls, "aws:PrincipalTag/workspace": OWN}
    bucket_arn = f"arn:aws:s3:::{bucket}"

    def listing(name: str, prefix: str | None, context: dict[str, Any] = tagged) -> Request:
        ctx = dict(context)
        if prefix is not None:
            ctx.update({"s3:prefix": prefix, "s3:delimiter": "/"})
        return Request(name, "s3:ListBucket", bucket_arn, ctx)

    def obj(name: str, action: str, key: str, context: dict[str, Any] = tagged) -> Request:
        return Request(name, action, f"{bucket_arn}/{key}", dict(context))

    return [
        (listing("list own prefix", "ws1/"), ALLOWED),
        (listing("list own folder", "ws1/data/"), ALLOWED),
        (listing("list bucket root (no prefix)", None), DENIED),
        (listing("list bucket root (empty prefix)", ""), DENIED),
        (listing("list own name without slash (also lists ws10/)", "ws1"), DENIED),
        (listing("list another workspace", "ws2/"), DENIED),
        (listing("list a workspace sharing the name prefix", "ws10/"), DENIED),
        (obj("get own object", "s3:GetObject", "ws1/analysis.ipynb"), ALLOWED),
        (obj("put own object", "s3:PutObject", "ws1/data/out.tif"), ALLOWED),
        (obj("delete own object", "s3:DeleteObject", "ws1/data/out.tif"), ALLOWED),
        (obj("get another workspace's object", "s3:GetObject", "ws2/analysis.ipynb"), DENIED),
        (obj("put another workspace's object", "s3:PutObject", "ws2/analysis.ipynb"), DENIED),
        (obj("delete another workspace's object", "s3:DeleteObject", "ws2/a.ipynb"), DENIED),
        (obj("get a name-prefix sibling's object", "s3:GetObject", "ws10/a.ipynb"), DENIED),
        (obj("put at the bucket root", "s3:PutObject", "ws1"), DENIED),
        (obj("get an old version of own object", "s3:GetObjectVersion", "ws1/a.ipynb"), DENIED),
        (obj("change own object's ACL", "s3:PutObjectAcl", "ws1/a.ipynb"), DENIED),
        (Request("delete the bucket", "s3:DeleteBucket", bucket_arn, tagged), DENIED),
        (Request("replace the bucket policy", "s3:PutBucketPolicy", bucket_arn, tagged), DENIED),
        (listing("untagged session lists ws1/", "ws1/", tls), DENIED),
        (obj("untagged session gets ws1/ object", "s3:GetObject", "ws1/a.ipynb", tls), DENIED),
        (obj("untagged session puts ws1/ object", "s3:PutObject", "ws1/a.ipynb", tls), DENIED),
        (
            obj(
                "untagged session names the variable literally",
                "s3:GetObject",
                "${aws:PrincipalTag/workspace}/a.ipynb",
                tls,
            ),
            DENIED,
        ),
        (
            obj(
                "own object over plain HTTP",
                "s3:GetObject",
                "ws1/a.ipynb",
                {"aws:SecureTransport": "false", "aws:PrincipalTag/workspace": OWN},
            ),
            REFUSED,
        ),
    ]


def decide(permissions: dict[str, Any], bucket_policy: dict[str, Any], bucket: str) -> dict:
    table = s3_requests(bucket)
    return simulate(
        [request for request, _ in table],
        identity_policies={NOTEBOOK_PERMISSIONS: permissions},
        resource_policy=bucket_policy,
    )


def expected(bucket: str) -> dict[str, str]:
    return {request.name: decision for request, decision in s3_requests(bucket)}


def test_only_own_workspace_requests_are_allowed(up_recording: Recording, stack: str) -> None:
    bucket = effective_config(stack)["eodh-jupyterhub:workspaceBucket"]
    docs = documents(up_recording)
    decisions = decide(docs[NOTEBOOK_PERMISSIONS], docs[BUCKET_POLICY], bucket)
    assert decisions == expected(bucket)


def platform_requests(bucket: str) -> list[tuple[Request, str]]:
    """A Keycloak token tagged with a platform service's prefix, taken straight to STS (the
    hub refuses the name as a workspace; STS does not know it): explicitly refused, every one."""
    found = []
    for prefix in PLATFORM_PREFIXES:
        tagged = {"aws:SecureTransport": "true", "aws:PrincipalTag/workspace": prefix}
        for listed in (f"{prefix}/", f"{prefix}/runs/", prefix):
            context = {**tagged, "s3:prefix": listed, "s3:delimiter": "/"}
            found.append(
                Request(f"list {listed!r}", "s3:ListBucket", f"arn:aws:s3:::{bucket}", context)
            )
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            key = f"{prefix}/runs/out.json"
            found.append(Request(f"{action} {key}", action, f"arn:aws:s3:::{bucket}/{key}", tagged))
    return [(request, REFUSED) for request in found]


def test_a_session_tagged_with_a_platform_prefix_is_refused(
    up_recording: Recording, stack: str
) -> None:
    bucket = effective_config(stack)["eodh-jupyterhub:workspaceBucket"]
    docs = documents(up_recording)
    table = platform_requests(bucket)
    decisions = simulate(
        [request for request, _ in table],
        identity_policies={NOTEBOOK_PERMISSIONS: docs[NOTEBOOK_PERMISSIONS]},
        resource_policy=docs[BUCKET_POLICY],
    )
    assert table and decisions == {request.name: decision for request, decision in table}


# The classic mistakes, each applied to the real builder's output. The same table must fail.
def _prefix_without_slash(policy: dict[str, Any]) -> None:
    listing, objects = policy["Statement"][:2]
    listing["Condition"]["StringLike"]["s3:prefix"] = "${aws:PrincipalTag/workspace}*"
    objects["Resource"] = objects["Resource"].replace("}/*", "}*")


def _s3_prefix_on_object_actions(policy: dict[str, Any]) -> None:
    listing, objects = policy["Statement"][:2]
    objects["Resource"] = listing["Resource"] + "/*"
    objects["Condition"] = copy.deepcopy(listing["Condition"])


def _whole_bucket_listing(policy: dict[str, Any]) -> None:
    del policy["Statement"][0]["Condition"]


def _no_variable(policy: dict[str, Any]) -> None:
    objects = policy["Statement"][1]
    objects["Resource"] = objects["Resource"].replace("${aws:PrincipalTag/workspace}/", "")


MISTAKES = {
    "prefix without its trailing slash (ws1 reaches ws10)": (
        _prefix_without_slash,
        {"list a workspace sharing the name prefix", "get a name-prefix sibling's object"},
    ),
    "s3:prefix condition on object actions (silently denies)": (
        _s3_prefix_on_object_actions,
        {"get own object", "put own object", "delete own object"},
    ),
    "listing without the prefix condition": (
        _whole_bucket_listing,
        {"list bucket root (no prefix)", "list another workspace", "untagged session lists ws1/"},
    ),
    "objects not scoped to the workspace": (
        _no_variable,
        {"get another workspace's object", "untagged session gets ws1/ object"},
    ),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_the_table_catches_a_classic_mistake(mistake: str) -> None:
    bucket = "workspaces-eodhp-dev"
    mutate, must_flip = MISTAKES[mistake]
    broken = notebook_permissions_policy(bucket, PLATFORM_PREFIXES)
    mutate(broken)
    decisions = decide(broken, bucket_tls_only_policy(bucket), bucket)
    wrong = {name for name, decision in decisions.items() if decision != expected(bucket)[name]}
    assert must_flip <= wrong, f"the table missed {mistake}: only {wrong} changed"
