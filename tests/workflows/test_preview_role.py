"""The PR preview role in docs/operations.md is exactly what `pulumi preview` of every stack uses.

Kubernetes. pulumi-kubernetes 4.x (enableServerSideApply on by default, provider/pkg/provider/
provider.go Configure) previews a changed object with `get` then a server-side apply with
dryRun=All (`patch`; provider/pkg/await/await.go Update/ssaUpdate), and an added one with a
dry-run `create` (await.go Creation). The API server authorises dry runs like real requests,
and its RBAC storage checks escalation on ClusterRole writes (`escalate`, kubernetes
pkg/registry/rbac/escalation_check.go RoleEscalationAuthorized) and `bind` on the role a
binding references. A plain preview of the helm.v3.Release touches no cluster object
(provider/pkg/provider/helm_release.go: Check renders ClientOnly, Create/Update skip Helm in
preview); only its Read (refresh) lists Helm's release Secrets. The YAML is decided here with
RBAC's own matching rules (kubernetes pkg/apis/rbac/v1/evaluation_helpers.go: a rule with
resourceNames never matches a create, whose request carries no name) and validated with
kubernetes-validate --strict.

AWS. The two IAM policies are linted with parliament and decided with @cloud-copilot/iam-simulate
against every AWS resource each stack declares, with the read calls the AWS provider makes to
refresh it (terraform-provider-aws internal/service/<service>/<resource>.go read functions,
which pulumi-aws 7 bridges).
"""

from __future__ import annotations

import copy
import functools
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from eodh_jupyterhub import yaml_loader
from eodh_jupyterhub.offline import MOCK_ACCOUNT, RecordedResource, Recording
from tests.aws.support import Request, simulate
from tests.support.bucket_modes import recording_in_mode
from tests.support.recordings import recording_for
from tests.support.stacks import effective_config, stack_names

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"
KUBERNETES_VERSION = "1.31"
REGION = "eu-west-2"
GROUP = "eodh-jupyterhub-preview"
# Pulumi's autonaming: the logical name, a hyphen and seven random characters.
SUFFIX = "-1a2b3c4"

# --- what the document says ----------------------------------------------------------------


def preview_section() -> str:
    text = OPERATIONS.read_text()
    start = text.index("\n## The PR preview role\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def fenced(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def kubernetes_objects() -> list[dict[str, Any]]:
    (block,) = fenced(preview_section(), "yaml")
    return [d for d in yaml.safe_load_all(block) if d]


def iam_policies() -> dict[str, dict[str, Any]]:
    """The preview role's policy and the refresh policy, in the order the document shows."""
    preview, refresh = (json.loads(b) for b in fenced(preview_section(), "json"))
    return {"preview": preview, "refresh": refresh}


# --- RBAC, decided the way the API server's authorizer does ------------------------------


@dataclass(frozen=True)
class Attributes:
    verb: str
    group: str
    resource: str
    namespace: str  # "" for cluster-scoped objects
    name: str  # "" for create (the request has no name yet)


def rule_allows(rule: dict[str, Any], a: Attributes) -> bool:
    def matches(values: list[str], wanted: str, wildcard: str = "*") -> bool:
        return wildcard in values or wanted in values

    names = rule.get("resourceNames") or []
    return (
        matches(rule.get("verbs", []), a.verb)
        and matches(rule.get("apiGroups", []), a.group)
        and matches(rule.get("resources", []), a.resource)
        and (not names or a.name in names)
    )


def authorized(objects: list[dict[str, Any]], a: Attributes, group: str = GROUP) -> bool:
    roles = {
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objects
    }
    for binding in objects:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        if not any(s["kind"] == "Group" and s["name"] == group for s in binding["subjects"]):
            continue
        ref = binding["roleRef"]
        where = binding["metadata"].get("namespace", "")
        role = roles.get((ref["kind"], "" if ref["kind"] == "ClusterRole" else where, ref["name"]))
        if role is None:
            continue
        # A RoleBinding grants only inside its namespace, whatever it references.
        if binding["kind"] == "RoleBinding" and a.namespace != where:
            continue
        if any(rule_allows(rule, a) for rule in role.get("rules", [])):
            return True
    return False


# apiVersion/kind -> (API group, resource, namespaced). CRD kinds are read from the vendored
# External Secrets CRDs so their plural is the CRD's own.
BUILTIN = {
    ("v1", "Namespace"): ("", "namespaces", False),
    ("v1", "ConfigMap"): ("", "configmaps", True),
    ("v1", "ServiceAccount"): ("", "serviceaccounts", True),
    ("networking.k8s.io/v1", "Ingress"): ("networking.k8s.io", "ingresses", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): (
        "rbac.authorization.k8s.io",
        "clusterroles",
        False,
    ),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): (
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        False,
    ),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"): (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
        False,
    ),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"): (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
        False,
    ),
}


@functools.cache
def crd_resources() -> dict[tuple[str, str], tuple[str, str, bool]]:
    table = {}
    for path in sorted((ROOT / "vendor").glob("external-secrets-*/*.yaml")):
        crd = yaml_loader.safe_load(path.read_text())  # the SecretStore CRD is 0.7 MB
        spec = crd["spec"]
        for version in spec["versions"]:
            key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
            table[key] = (spec["group"], spec["names"]["plural"], spec["scope"] == "Namespaced")
    return table


def needed_requests(recording: Recording) -> list[Attributes]:
    """Every request a preview of this stack may make, and why."""
    kinds = {**crd_resources(), **BUILTIN}
    needed = []
    for obj in recording.kubernetes_objects():
        inputs = obj.inputs
        key = (inputs["apiVersion"], inputs["kind"])
        assert key in kinds, f"{key}: add its API group and resource to this test"
        group, resource, namespaced = kinds[key]
        metadata = inputs["metadata"]
        namespace = metadata.get("namespace", "default") if namespaced else ""
        name = metadata["name"]
        needed += [
            Attributes("get", group, resource, namespace, name),
            Attributes("patch", group, resource, namespace, name),
            Attributes("create", group, resource, namespace, ""),
        ]
        if inputs["kind"] == "ClusterRole":
            needed.append(Attributes("escalate", group, "clusterroles", "", name))
        if inputs["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            ref = inputs["roleRef"]
            plural = "clusterroles" if ref["kind"] == "ClusterRole" else "roles"
            ref_namespace = "" if ref["kind"] == "ClusterRole" else namespace
            needed.append(
                Attributes("bind", "rbac.authorization.k8s.io", plural, ref_namespace, ref["name"])
            )
    return needed


STACKS = stack_names()


@pytest.fixture(scope="module")
def recordings() -> dict[str, Recording]:
    return {stack: recording_for(stack) for stack in STACKS}


@pytest.fixture(scope="module")
def needed(recordings) -> set[Attributes]:
    return {a for r in recordings.values() for a in needed_requests(r)}


# --- Kubernetes ----------------------------------------------------------------------------


def test_the_rbac_yaml_is_valid_kubernetes_1_31():
    objects = kubernetes_objects()
    assert sorted(o["kind"] for o in objects) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ]
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_strict_validation_catches_a_misspelt_rule():
    role = copy.deepcopy(next(o for o in kubernetes_objects() if o["kind"] == "Role"))
    role["rules"][0]["resourceName"] = role["rules"][0].pop("resourceNames")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(role, KUBERNETES_VERSION, strict=True)


def test_the_role_allows_every_dry_run_the_preview_makes(up_recording):
    objects = kubernetes_objects()
    missing = [a for a in needed_requests(up_recording) if not authorized(objects, a)]
    assert missing == []


def test_the_role_grants_nothing_a_preview_does_not_use(needed):
    """Every name in the YAML is an object some stack manages, and no rule is broader than
    get/patch/create/escalate/bind on named kinds (no wildcard, no delete, no Secrets)."""
    objects = kubernetes_objects()
    for obj in objects:
        for rule in obj.get("rules", []):
            assert "*" not in json.dumps(rule), rule
            assert set(rule["verbs"]) <= {"get", "patch", "create", "escalate", "bind"}, rule
            assert "secrets" not in rule["resources"], rule
            namespace = obj["metadata"].get("namespace", "")
            for verb in rule["verbs"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for name in rule.get("resourceNames") or [""]:
                            wanted = [
                                a
                                for a in needed
                                if (a.verb, a.group, a.resource, a.name)
                                == (verb, group, resource, name)
                                and (obj["kind"] == "ClusterRole" or a.namespace == namespace)
                            ]
                            assert wanted, f"{obj['kind']} grants unused {verb} {resource} {name}"


def test_previews_never_read_helm_release_secrets():
    """A refresh lists Secrets in jupyter (Helm's storage): the role must not allow it."""
    objects = kubernetes_objects()
    for verb in ("get", "list", "watch"):
        for name in ("", "sh.helm.release.v1.jupyterhub.v1", "hub", "jupyterhub-oauth"):
            assert not authorized(objects, Attributes(verb, "", "secrets", "jupyter", name))
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pull-request.yml").read_text())
    (step,) = [
        s
        for s in workflow["jobs"]["preview"]["steps"]
        if str(s.get("uses", "")).startswith("pulumi/actions@")
    ]
    assert str(step["with"].get("refresh", "false")).lower() == "false"


def test_the_decider_refuses_what_rbac_refuses():
    rules = [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["get"]}
    ]
    role = {"kind": "Role", "metadata": {"name": "r", "namespace": "jupyter"}, "rules": rules}
    binding = {
        "kind": "RoleBinding",
        "metadata": {"name": "b", "namespace": "jupyter"},
        "roleRef": {"kind": "Role", "name": "r"},
        "subjects": [{"kind": "Group", "name": GROUP}],
    }
    objects = [role, binding]
    assert authorized(objects, Attributes("get", "", "configmaps", "jupyter", "a"))
    assert not authorized(objects, Attributes("get", "", "configmaps", "jupyter", "b"))
    assert not authorized(objects, Attributes("get", "", "configmaps", "other", "a"))
    # A create carries no name, so a rule limited by resourceNames never allows it.
    rules[0]["verbs"].append("create")
    assert not authorized(objects, Attributes("create", "", "configmaps", "jupyter", ""))
    assert not authorized(
        objects, Attributes("get", "", "configmaps", "jupyter", "a"), group="someone-else"
    )


def test_the_cluster_maps_the_preview_role_to_the_bound_group():
    objects = kubernetes_objects()
    subjects = {
        (s["kind"], s["name"])
        for o in objects
        if o["kind"].endswith("Binding")
        for s in o["subjects"]
    }
    assert subjects == {("Group", GROUP)}
    assert f"--kubernetes-groups {GROUP}" in preview_section()


# --- AWS -----------------------------------------------------------------------------------

# What the AWS provider calls to refresh each resource type (its read function).
REFRESH_ACTIONS: dict[str, list[str]] = {
    "aws:iam/role:Role": [
        "iam:GetRole",
        "iam:ListRolePolicies",
        "iam:GetRolePolicy",
        "iam:ListAttachedRolePolicies",
    ],
    "aws:iam/rolePolicy:RolePolicy": ["iam:GetRolePolicy"],
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": ["iam:GetOpenIDConnectProvider"],
    "aws:s3/bucket:Bucket": [
        "s3:ListBucket",  # HeadBucket
        "s3:GetAccelerateConfiguration",
        "s3:GetBucketAcl",
        "s3:GetBucketCORS",
        "s3:GetBucketLocation",
        "s3:GetBucketLogging",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetBucketPolicy",
        "s3:GetBucketRequestPayment",
        "s3:GetBucketTagging",
        "s3:GetBucketVersioning",
        "s3:GetBucketWebsite",
        "s3:GetEncryptionConfiguration",
        "s3:GetLifecycleConfiguration",
        "s3:GetReplicationConfiguration",
    ],
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": [
        "s3:GetLifecycleConfiguration"
    ],
    "aws:s3/bucketLogging:BucketLogging": ["s3:GetBucketLogging"],
    "aws:s3/bucketNotification:BucketNotification": ["s3:GetBucketNotification"],
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": ["s3:GetBucketOwnershipControls"],
    "aws:s3/bucketPolicy:BucketPolicy": ["s3:GetBucketPolicy"],
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": ["s3:GetBucketPublicAccessBlock"],
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": [
        "s3:GetEncryptionConfiguration"
    ],
    "aws:s3/bucketVersioning:BucketVersioning": ["s3:GetBucketVersioning"],
    "aws:lambda/function:Function": [
        "lambda:GetFunction",
        "lambda:ListVersionsByFunction",
        "lambda:GetFunctionCodeSigningConfig",
    ],
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": [
        "lambda:GetFunctionEventInvokeConfig"
    ],
    "aws:lambda/permission:Permission": ["lambda:GetPolicy"],
    "aws:sqs/queue:Queue": ["sqs:GetQueueAttributes", "sqs:ListQueueTags"],
    "aws:cloudwatch/logGroup:LogGroup": ["logs:DescribeLogGroups", "logs:ListTagsForResource"],
    "aws:cloudwatch/eventRule:EventRule": ["events:DescribeRule", "events:ListTagsForResource"],
    "aws:cloudwatch/eventTarget:EventTarget": ["events:ListTargetsByRule"],
    # metric_alarm.go findMetricAlarmByName (DescribeAlarms) and its transparent tags.
    "aws:cloudwatch/metricAlarm:MetricAlarm": [
        "cloudwatch:DescribeAlarms",
        "cloudwatch:ListTagsForResource",
    ],
}
# Data sources (invokes) run in every preview, refresh or not: they belong in the preview
# policy. One added without its actions here fails the test.
INVOKE_ACTIONS: dict[str, list[str]] = {
    "aws:s3/getBucket:getBucket": ["s3:ListBucket"],  # HeadBucket
}


def autonamed(resource: RecordedResource) -> str:
    return str(resource.inputs.get("name") or resource.name + SUFFIX)


def arns(recording: Recording, resource: RecordedResource) -> list[str]:
    """The ARN(s) the refresh of this resource reads."""
    kind = resource.type
    account = MOCK_ACCOUNT
    if kind in ("aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"):
        roles = recording.of_type("aws:iam/role:Role")
        if kind == "aws:iam/role:Role":
            roles = [resource]
        return [f"arn:aws:iam::{account}:role/{autonamed(r)}" for r in roles]
    if kind == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        host = str(resource.inputs["url"]).removeprefix("https://")
        return [f"arn:aws:iam::{account}:oidc-provider/{host}"]
    if kind.startswith("aws:s3/"):
        (bucket,) = recording.of_type("aws:s3/bucket:Bucket")
        return [f"arn:aws:s3:::{bucket.inputs['bucket']}"]
    if kind.startswith("aws:lambda/"):
        (function,) = recording.of_type("aws:lambda/function:Function")
        return [f"arn:aws:lambda:{REGION}:{account}:function:{autonamed(function)}"]
    if kind == "aws:sqs/queue:Queue":
        return [f"arn:aws:sqs:{REGION}:{account}:{autonamed(resource)}"]
    if kind == "aws:cloudwatch/logGroup:LogGroup":
        return [f"arn:aws:logs:{REGION}:{account}:log-group:{autonamed(resource)}"]
    if kind in ("aws:cloudwatch/eventRule:EventRule", "aws:cloudwatch/eventTarget:EventTarget"):
        (rule,) = recording.of_type("aws:cloudwatch/eventRule:EventRule")
        return [f"arn:aws:events:{REGION}:{account}:rule/{autonamed(rule)}"]
    if kind == "aws:cloudwatch/metricAlarm:MetricAlarm":
        return [f"arn:aws:cloudwatch:{REGION}:{account}:alarm:{resource.inputs['name']}"]
    raise AssertionError(f"{kind}: add the ARN its refresh reads to this test")


# Actions IAM scopes only to "*" (listings): the request's resource is "*".
STAR_ONLY = {"logs:DescribeLogGroups"}


def refresh_requests(recording: Recording) -> list[Request]:
    requests = []
    for resource in recording.resources:
        if not resource.custom or not resource.type.startswith("aws:"):
            continue
        assert resource.type in REFRESH_ACTIONS, f"{resource.type}: add its read calls here"
        for action in REFRESH_ACTIONS[resource.type]:
            targets = ["*"] if action in STAR_ONLY else arns(recording, resource)
            for arn in targets:
                requests.append(
                    Request(
                        name=f"{recording.stack} {resource.name} {action} {arn}",
                        action=action,
                        resource=arn,
                        principal=f"arn:aws:sts::{MOCK_ACCOUNT}:assumed-role/deploy/ci",
                    )
                )
    return requests


@pytest.fixture(scope="module")
def decisions() -> dict[str, dict[str, str]]:
    """Every stack's refresh reads, decided once under each documented policy (one simulator
    run per policy keeps this file cheap)."""
    # Both bucket modes: every stack file shares the platform's bucket today, and a managed
    # bucket's reads (its configuration resources) would otherwise never be decided.
    requests = {
        r.name: r
        for stack in STACKS
        for manage_bucket in (True, False)
        for r in refresh_requests(recording_in_mode(stack, manage_bucket))
    }
    return {
        which: simulate(list(requests.values()), identity_policies={which: policy})
        for which, policy in iam_policies().items()
    }


def findings(policy: dict[str, Any]) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from parliament import analyze_policy_string

    analyzed = analyze_policy_string(json.dumps(policy), include_community_auditors=True)
    return [f"{f.issue}: {f.detail}" for f in analyzed.findings]


@pytest.mark.parametrize("which", ["preview", "refresh"])
def test_parliament_has_no_findings_on_the_documented_policies(which):
    assert findings(iam_policies()[which]) == []


def test_parliament_would_catch_a_misspelt_action():
    policy = copy.deepcopy(iam_policies()["refresh"])
    policy["Statement"][0]["Action"][0] = "iam:GetRoles"
    assert findings(policy)


def test_the_refresh_policy_allows_every_read_of_the_stack(stack, decisions):
    assert effective_config(stack).get("aws:region", REGION) == REGION
    mine = {n: d for n, d in decisions["refresh"].items() if n.startswith(f"{stack} ")}
    assert len(mine) > 20
    # The managed mode's bucket reads are among them (see `decisions`).
    assert any(" workspaces-versioning s3:GetBucketVersioning " in n for n in mine), sorted(mine)
    assert {n: d for n, d in mine.items() if d != "Allowed"} == {}


def test_the_refresh_policy_reads_metadata_only():
    probes = [
        Request("object", "s3:GetObject", "arn:aws:s3:::workspaces-eodhp-dev/ws1/a.txt"),
        Request("put", "s3:PutBucketPolicy", "arn:aws:s3:::workspaces-eodhp-dev"),
        Request("other bucket", "s3:GetBucketPolicy", "arn:aws:s3:::someone-elses-bucket"),
        Request("pass", "iam:PassRole", f"arn:aws:iam::{MOCK_ACCOUNT}:role/notebook-role-1"),
        Request("other role", "iam:GetRole", f"arn:aws:iam::{MOCK_ACCOUNT}:role/OrganizationAdmin"),
        Request(
            "invoke",
            "lambda:InvokeFunction",
            f"arn:aws:lambda:{REGION}:{MOCK_ACCOUNT}:function:s3keep-function-1",
        ),
        Request(
            "messages",
            "sqs:ReceiveMessage",
            f"arn:aws:sqs:{REGION}:{MOCK_ACCOUNT}:s3keep-failures-1",
        ),
    ]
    decisions = simulate(probes, identity_policies={"refresh": iam_policies()["refresh"]})
    assert set(decisions.values()) == {"ImplicitlyDenied"}, decisions


def test_the_preview_policy_covers_the_preview_and_nothing_of_the_refresh(decisions):
    invoked = [
        token
        for stack in STACKS
        for token, _ in recording_for(stack).invokes
        if token.startswith("aws:")
    ]
    for token in invoked:
        assert token in INVOKE_ACTIONS, f"{token}: add its read calls and the preview policy"
    kubeconfig = [
        Request(
            stack, "eks:DescribeCluster", f"arn:aws:eks:{REGION}:{MOCK_ACCOUNT}:cluster/{stack}"
        )
        for stack in STACKS
    ]
    lookups = [
        Request(f"{stack} {token} {action}", action, f"arn:aws:s3:::{args['bucket']}")
        for stack in STACKS
        for token, args in recording_for(stack).invokes
        if token == "aws:s3/getBucket:getBucket"
        for action in INVOKE_ACTIONS[token]
    ]
    preview = {"preview": iam_policies()["preview"]}
    decided = simulate(kubeconfig + lookups, identity_policies=preview)
    assert set(decided.values()) == {"Allowed"}, decided
    if not invoked:
        assert set(decisions["preview"].values()) == {"ImplicitlyDenied"}
