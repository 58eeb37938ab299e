"""Each rule of the pack with one resource that passes and one that fails for the named reason.

Resources are written by hand, in the camelCase props the engine sends, and go through the
real pulumi_policy policy objects (tests/policy/adapter.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.jupyterhub import IDENTITY_HEADERS, header_guard_snippet
from policy import eodh_policies
from policy.eodh_policies import RULES_BY_NAME
from tests.policy.adapter import Declared, run_pack

BUCKET_NAME = "workspaces-unit"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET_NAME}"
ISSUER_PATH = "eodatahub.org.uk/keycloak/realms/eodhp"
PROVIDER_ARN = f"arn:aws:iam::123456789012:oidc-provider/{ISSUER_PATH}"


def urn(type_: str, name: str, stack: str = "unit") -> str:
    return f"urn:pulumi:{stack}::eodh-jupyterhub::{type_}::{name}"


def violations_of(rule: str, resources, config=None):
    found = [v for v in run_pack(resources, config) if v.rule == rule]
    for v in found:
        # What the engine prints names the rule, whichever resource it is about.
        assert f"[{rule}]" in v.message
    return found


def only_message(rule: str, resources, config=None) -> str:
    found = violations_of(rule, resources, config)
    assert len(found) == 1, found
    return found[0].message


# --- S3 ------------------------------------------------------------------------------------


def bucket_resources(**overrides) -> list[Declared]:
    """A bucket with every part the S3 rules want; `overrides` replaces or drops (None) parts."""
    bucket = Declared(eodh_policies.BUCKET, "b", {"bucket": BUCKET_NAME}, urn=urn("B", "b"))
    parts = {
        "encryption": Declared(
            eodh_policies.ENCRYPTION,
            "b-encryption",
            {
                "bucket": BUCKET_NAME,
                "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
            },
        ),
        "block": Declared(
            eodh_policies.PUBLIC_ACCESS_BLOCK,
            "b-block",
            {"bucket": BUCKET_NAME} | {flag: True for flag in eodh_policies.PUBLIC_ACCESS_FLAGS},
        ),
        "versioning": Declared(
            eodh_policies.VERSIONING,
            "b-versioning",
            {"bucket": BUCKET_NAME, "versioningConfiguration": {"status": "Enabled"}},
        ),
        "policy": Declared(
            eodh_policies.BUCKET_POLICY,
            "b-policy",
            {
                "bucket": BUCKET_NAME,
                "policy": json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "DenyInsecureTransport",
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "s3:*",
                                "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/*"],
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ],
                    }
                ),
            },
        ),
    }
    parts.update(overrides)
    return [bucket, *(p for p in parts.values() if p is not None)]


S3_RULES = [
    "s3-bucket-encrypted",
    "s3-bucket-public-access-blocked",
    "s3-bucket-versioned",
    "s3-bucket-tls-only",
]


@pytest.mark.parametrize("rule", S3_RULES)
def test_s3_rules_pass_a_complete_bucket(rule):
    assert violations_of(rule, bucket_resources()) == []


def test_unencrypted_bucket_fails():
    message = only_message("s3-bucket-encrypted", bucket_resources(encryption=None))
    assert "no server-side encryption" in message


def test_encryption_of_another_bucket_does_not_count():
    other = Declared(
        eodh_policies.ENCRYPTION,
        "other-encryption",
        {
            "bucket": "some-other-bucket",
            "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
        },
    )
    message = only_message("s3-bucket-encrypted", bucket_resources(encryption=other))
    assert "no server-side encryption" in message


def test_public_access_block_with_a_flag_off_fails():
    block = Declared(
        eodh_policies.PUBLIC_ACCESS_BLOCK,
        "b-block",
        {"bucket": BUCKET_NAME}
        | {flag: True for flag in eodh_policies.PUBLIC_ACCESS_FLAGS}
        | {"restrictPublicBuckets": False},
    )
    message = only_message("s3-bucket-public-access-blocked", bucket_resources(block=block))
    assert "does not set restrictPublicBuckets" in message


def test_bucket_without_public_access_block_fails():
    message = only_message("s3-bucket-public-access-blocked", bucket_resources(block=None))
    assert "has no public access block" in message


def test_suspended_versioning_fails():
    versioning = Declared(
        eodh_policies.VERSIONING,
        "b-versioning",
        {"bucket": BUCKET_NAME, "versioningConfiguration": {"status": "Suspended"}},
    )
    message = only_message("s3-bucket-versioned", bucket_resources(versioning=versioning))
    assert "is not versioned" in message


def test_bucket_policy_without_secure_transport_deny_fails():
    policy = Declared(
        eodh_policies.BUCKET_POLICY,
        "b-policy",
        {
            "bucket": BUCKET_NAME,
            "policy": json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            # Only the bucket, not its objects: plain-HTTP GETs still work.
                            "Resource": [BUCKET_ARN],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ]
                }
            ),
        },
    )
    message = only_message("s3-bucket-tls-only", bucket_resources(policy=policy))
    assert "aws:SecureTransport is false" in message


def test_sub_resources_match_their_bucket_by_dependency():
    """In a preview the `bucket` prop is unknown or an id; the dependency still ties them."""
    resources = bucket_resources()
    bucket_urn = resources[0].urn
    rewired = [resources[0]] + [
        Declared(r.type, r.name, dict(r.props) | {"bucket": "b-id"}, dependencies=(bucket_urn,))
        for r in resources[1:]
    ]
    assert [v for v in run_pack(rewired) if v.rule in S3_RULES] == []
    unlinked = [resources[0]] + [
        Declared(r.type, r.name, dict(r.props) | {"bucket": "b-id"}) for r in resources[1:]
    ]
    assert {v.rule for v in run_pack(unlinked)} >= set(S3_RULES)


# --- IAM -----------------------------------------------------------------------------------


def role_policy(statement: dict, name: str = "p") -> Declared:
    return Declared(
        eodh_policies.ROLE_POLICY,
        name,
        {"role": "r", "policy": json.dumps({"Version": "2012-10-17", "Statement": [statement]})},
    )


def test_scoped_statement_passes_no_wildcards():
    statement = {
        "Sid": "Objects",
        "Effect": "Allow",
        "Action": ["s3:GetObject"],
        "Resource": f"{BUCKET_ARN}/${{aws:PrincipalTag/workspace}}/*",
    }
    assert violations_of("iam-no-wildcards", [role_policy(statement)]) == []


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ({"Effect": "Allow", "Action": "s3:*", "Resource": BUCKET_ARN}, "wildcard action"),
        ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}, "wildcard resource"),
        (
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::*"},
            "wildcard resource",
        ),
        ({"Effect": "Allow", "NotAction": "iam:*", "Resource": BUCKET_ARN}, "NotAction"),
    ],
)
def test_wildcard_grants_fail(statement, reason):
    message = only_message("iam-no-wildcards", [role_policy(statement)])
    assert reason in message


def test_wildcards_in_deny_statements_are_exempt():
    statement = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}
    assert violations_of("iam-no-wildcards", [role_policy(statement)]) == []


def test_documented_exception_is_exempt(monkeypatch):
    statement = {"Sid": "Documented", "Effect": "Allow", "Action": "s3:*", "Resource": BUCKET_ARN}
    assert violations_of("iam-no-wildcards", [role_policy(statement)])
    monkeypatch.setitem(
        eodh_policies.DOCUMENTED_WILDCARD_EXCEPTIONS, "Documented", "the reason, written here"
    )
    assert violations_of("iam-no-wildcards", [role_policy(statement)]) == []


def trust_role(condition: dict, principal=None, actions=None, name: str = "r") -> Declared:
    statement = {
        "Sid": "WebIdentity",
        "Effect": "Allow",
        "Principal": principal if principal is not None else {"Federated": PROVIDER_ARN},
        "Action": actions or ["sts:AssumeRoleWithWebIdentity"],
        "Condition": condition,
    }
    return Declared(
        eodh_policies.ROLE,
        name,
        {"assumeRolePolicy": json.dumps({"Version": "2012-10-17", "Statement": [statement]})},
        urn=urn(eodh_policies.ROLE, name),
    )


PINNED = {"StringEquals": {f"{ISSUER_PATH}:aud": "eodh-workspaces"}}


def test_pinned_web_identity_trust_passes():
    assert violations_of("iam-web-identity-trust-pinned", [trust_role(PINNED)]) == []


@pytest.mark.parametrize(
    ("condition", "principal", "reason"),
    [
        ({}, None, "does not pin the audience"),
        ({"StringLike": {f"{ISSUER_PATH}:aud": "*"}}, None, "does not pin the audience"),
        ({"StringEquals": {f"{ISSUER_PATH}:aud": "eodh-*"}}, None, "not to exact client ids"),
        (
            {"StringEquals": {"other.example/realms/x:aud": "eodh-workspaces"}},
            None,
            "is checked by",
        ),
        (PINNED, {"Federated": "*"}, "does not name exactly one identity provider"),
    ],
)
def test_unpinned_web_identity_trust_fails(condition, principal, reason):
    message = only_message(
        "iam-web-identity-trust-pinned", [trust_role(condition, principal=principal)]
    )
    assert reason in message


SESSION_TAGGED = PINNED | {
    "StringLike": {"aws:RequestTag/workspace": "?*"},
    "ForAllValues:StringEquals": {"aws:TagKeys": ["workspace"]},
}


def notebook_role(condition: dict) -> list[Declared]:
    role = trust_role(
        condition, actions=["sts:AssumeRoleWithWebIdentity", "sts:TagSession"], name="notebook"
    )
    permissions = Declared(
        eodh_policies.ROLE_POLICY,
        "notebook-access",
        {
            "role": "notebook-id",
            "policy": json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "s3:GetObject",
                            "Resource": f"{BUCKET_ARN}/${{aws:PrincipalTag/workspace}}/*",
                        }
                    ]
                }
            ),
        },
        dependencies=(role.urn,),
    )
    return [role, permissions]


def test_notebook_role_with_session_tag_rules_passes():
    assert violations_of("iam-session-tag-rules", notebook_role(SESSION_TAGGED)) == []


@pytest.mark.parametrize(
    ("drop", "reason"),
    [
        ("ForAllValues:StringEquals", "does not restrict the session tag keys"),
        ("StringLike", "does not require a non-empty session tag 'workspace'"),
    ],
)
def test_notebook_role_missing_a_session_tag_rule_fails(drop, reason):
    condition = {k: v for k, v in SESSION_TAGGED.items() if k != drop}
    message = only_message("iam-session-tag-rules", notebook_role(condition))
    assert reason in message


def test_role_using_principal_tags_without_tag_session_fails():
    role, permissions = notebook_role(SESSION_TAGGED)
    no_tag_session = trust_role(SESSION_TAGGED, name="notebook")
    message = only_message("iam-session-tag-rules", [no_tag_session, permissions])
    assert "does not allow sts:TagSession" in message
    assert role.urn == no_tag_session.urn


# --- Lambda --------------------------------------------------------------------------------

FUNCTION_URN = urn(eodh_policies.LAMBDA_FUNCTION, "marker")


def permission(**props) -> Declared:
    base = {
        "action": "lambda:InvokeFunction",
        "function": "marker",
        "principal": "s3.amazonaws.com",
        "sourceArn": BUCKET_ARN,
        "sourceAccount": "123456789012",
    }
    return Declared(
        eodh_policies.LAMBDA_PERMISSION,
        "invoke",
        {k: v for k, v in (base | props).items() if v is not None},
    )


def test_permission_with_source_arn_and_account_passes():
    assert violations_of("lambda-permission-source", [permission()]) == []


@pytest.mark.parametrize("missing", ["sourceArn", "sourceAccount"])
def test_permission_without_source_fails(missing):
    message = only_message("lambda-permission-source", [permission(**{missing: None})])
    assert f"without {missing}" in message


def function(reserved=10) -> Declared:
    props = {"runtime": "python3.13", "handler": "handler.handler"}
    if reserved is not None:
        props["reservedConcurrentExecutions"] = reserved
    return Declared(eodh_policies.LAMBDA_FUNCTION, "marker", props, urn=FUNCTION_URN)


def test_function_with_reserved_concurrency_passes():
    assert violations_of("lambda-reserved-concurrency", [function(10)]) == []


@pytest.mark.parametrize("reserved", [None, 0, -1])
def test_function_without_reserved_concurrency_fails(reserved):
    message = only_message("lambda-reserved-concurrency", [function(reserved)])
    assert "reservedConcurrentExecutions is" in message


def invoke_config(destination="arn:aws:sqs:eu-west-2:123456789012:failures") -> Declared:
    props = {"functionName": "marker-id", "maximumRetryAttempts": 2}
    if destination is not None:
        props["destinationConfig"] = {"onFailure": {"destination": destination}}
    return Declared(
        eodh_policies.LAMBDA_INVOKE_CONFIG, "marker-async", props, dependencies=(FUNCTION_URN,)
    )


def test_function_with_on_failure_destination_passes():
    assert violations_of("lambda-on-failure-destination", [function(), invoke_config()]) == []


def test_function_without_on_failure_destination_fails():
    message = only_message(
        "lambda-on-failure-destination", [function(), invoke_config(destination=None)]
    )
    assert "no destinationConfig.onFailure.destination" in message


def test_function_without_invoke_config_fails():
    message = only_message("lambda-on-failure-destination", [function()])
    assert "has no FunctionEventInvokeConfig" in message


QUEUE_ARN = "arn:aws:sqs:eu-west-2:123456789012:failures"
QUEUE_URN = urn(eodh_policies.SQS_QUEUE, "failures")


def queue() -> Declared:
    return Declared(eodh_policies.SQS_QUEUE, "failures", {"name": "failures"}, urn=QUEUE_URN)


def alarm(name: str, namespace: str, metric: str, on: str) -> Declared:
    dimension = "FunctionName" if namespace == "AWS/Lambda" else "QueueName"
    return Declared(
        eodh_policies.METRIC_ALARM,
        name,
        {"namespace": namespace, "metricName": metric, "dimensions": {dimension: "x"}},
        dependencies=(on,),
    )


def alarmed_function(*, errors=True, queue_metric="ApproximateNumberOfMessagesVisible"):
    resources = [function(), invoke_config(QUEUE_ARN), queue()]
    resources[1] = Declared(**(vars(resources[1]) | {"dependencies": (FUNCTION_URN, QUEUE_URN)}))
    if errors:
        resources.append(alarm("errors", "AWS/Lambda", "Errors", FUNCTION_URN))
    if queue_metric:
        resources.append(alarm("queued", "AWS/SQS", queue_metric, QUEUE_URN))
    return resources


@pytest.mark.parametrize(
    "queue_metric", ["ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"]
)
def test_async_function_with_both_alarms_passes(queue_metric):
    resources = alarmed_function(queue_metric=queue_metric)
    assert violations_of("lambda-failures-alarmed", resources) == []


def test_async_function_without_an_errors_alarm_fails():
    message = only_message("lambda-failures-alarmed", alarmed_function(errors=False))
    assert "no alarm watches its AWS/Lambda Errors" in message


def test_an_alarm_on_another_function_does_not_count():
    other = urn(eodh_policies.LAMBDA_FUNCTION, "other")
    resources = [*alarmed_function(errors=False), alarm("e", "AWS/Lambda", "Errors", other)]
    assert "no alarm watches its AWS/Lambda Errors" in only_message(
        "lambda-failures-alarmed", resources
    )


@pytest.mark.parametrize("queue_metric", [None, "NumberOfMessagesSent"])
def test_failure_queue_without_a_depth_or_age_alarm_fails(queue_metric):
    message = only_message("lambda-failures-alarmed", alarmed_function(queue_metric=queue_metric))
    assert "receives marker's failed events but no alarm watches" in message


def test_function_invoked_by_s3_without_alarm_fails_and_a_synchronous_one_passes():
    invoked = [function(), Declared(**(vars(permission()) | {"dependencies": (FUNCTION_URN,)}))]
    assert "invoked asynchronously" in only_message("lambda-failures-alarmed", invoked)
    assert violations_of("lambda-failures-alarmed", [function()]) == []


def notification(events=("s3:ObjectCreated:*",)) -> Declared:
    return Declared(
        eodh_policies.BUCKET_NOTIFICATION,
        "notification",
        {
            "bucket": BUCKET_NAME,
            "lambdaFunctions": [
                {"lambdaFunctionArn": "arn:aws:lambda:::function:marker", "events": list(events)}
            ],
        },
        dependencies=(FUNCTION_URN,),
    )


def test_bucket_with_marker_function_passes():
    resources = [*bucket_resources(), function(), invoke_config(), notification()]
    assert violations_of("lambda-marker-present", resources) == []


def test_bucket_without_marker_function_fails():
    message = only_message("lambda-marker-present", bucket_resources())
    assert "the .s3keep marker function is missing" in message


def test_bucket_notifying_on_delete_only_fails():
    resources = [
        *bucket_resources(),
        function(),
        invoke_config(),
        notification(events=["s3:ObjectRemoved:*"]),
    ]
    message = only_message("lambda-marker-present", resources)
    assert "notifies no Lambda function of s3:ObjectCreated" in message


def test_marker_function_without_reserved_concurrency_fails_the_presence_rule():
    resources = [*bucket_resources(), function(None), invoke_config(), notification()]
    message = only_message("lambda-marker-present", resources)
    assert "no positive reserved concurrency" in message


# A shared bucket (only looked up): the marker function hangs off an EventBridge rule.
RULE_URN = urn(eodh_policies.EVENT_RULE, "object-created")
NAMED = {"name": [BUCKET_NAME]}


def object_created_rule(pattern=None) -> Declared:
    pattern = pattern or {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [BUCKET_NAME]}},
    }
    return Declared(
        eodh_policies.EVENT_RULE,
        "object-created",
        {"eventPattern": json.dumps(pattern)},
        urn=RULE_URN,
    )


def event_target() -> Declared:
    return Declared(
        eodh_policies.EVENT_TARGET,
        "object-created-target",
        {"rule": "object-created", "arn": "arn:aws:lambda:eu-west-2:1:function:marker"},
        dependencies=(RULE_URN, FUNCTION_URN),
    )


def events_permission(**props) -> Declared:
    base = {
        "action": "lambda:InvokeFunction",
        "function": "marker",
        "principal": "events.amazonaws.com",
        "sourceArn": "arn:aws:events:eu-west-2:1:rule/object-created",
        "sourceAccount": "123456789012",
    }
    return Declared(
        eodh_policies.LAMBDA_PERMISSION,
        "events-invoke",
        base | props,
        dependencies=(RULE_URN, FUNCTION_URN),
    )


def eventbridge_marker(**drop) -> list[Declared]:
    parts = {
        "rule": object_created_rule(),
        "target": event_target(),
        "permission": events_permission(),
        "function": function(),
        "invoke_config": invoke_config(),
    }
    return [r for name, r in parts.items() if not drop.get(name)]


def test_shared_bucket_with_eventbridge_marker_passes():
    assert violations_of("lambda-marker-present", eventbridge_marker()) == []


@pytest.mark.parametrize("missing", ["rule", "target", "permission"])
def test_shared_bucket_without_a_complete_eventbridge_trigger_fails(missing):
    found = violations_of("lambda-marker-present", eventbridge_marker(**{missing: True}))
    assert found, missing
    assert any("never runs" in v.message or "no target function" in v.message for v in found), found


@pytest.mark.parametrize(
    "pattern",
    [
        {"source": ["aws.s3"], "detail-type": ["Object Created"]},  # any bucket
        {
            "source": ["aws.s3"],
            "detail-type": ["Object Deleted"],
            "detail": {"bucket": {"name": ["b"]}},
        },
        {
            "source": ["my.app"],
            "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": ["b"]}},
        },
    ],
)
def test_eventbridge_rule_must_select_a_buckets_object_created_events(pattern):
    resources = [*eventbridge_marker(rule=True), object_created_rule(pattern)]
    message = only_message("lambda-marker-present", resources)
    assert "never runs" in message


def test_eventbridge_marker_without_reserved_concurrency_fails():
    resources = [*eventbridge_marker(function=True), function(None)]
    message = only_message("lambda-marker-present", resources)
    assert "no positive reserved concurrency" in message


# --- Kubernetes ----------------------------------------------------------------------------


def cluster_role(verbs, resources) -> Declared:
    return Declared(
        eodh_policies.CLUSTER_ROLE,
        "hub",
        {
            "metadata": {"name": "hub"},
            "rules": [{"apiGroups": [""], "resources": resources, "verbs": verbs}],
        },
    )


def test_cluster_role_with_named_verbs_and_resources_passes():
    role = cluster_role(["get", "list"], ["pods"])
    assert violations_of("k8s-cluster-role-no-wildcards", [role]) == []


@pytest.mark.parametrize(
    ("verbs", "resources", "reason"),
    [
        (["*"], ["pods"], "rules[0].verbs contains wildcard"),
        (["get"], ["*"], "rules[0].resources contains wildcard"),
        (["get"], ["pods/*"], "rules[0].resources contains wildcard"),
    ],
)
def test_cluster_role_with_wildcards_fails(verbs, resources, reason):
    message = only_message("k8s-cluster-role-no-wildcards", [cluster_role(verbs, resources)])
    assert reason in message


def namespace(name="jupyter", inject="enabled") -> Declared:
    annotations = {} if inject is None else {"linkerd.io/inject": inject}
    return Declared(
        eodh_policies.NAMESPACE,
        f"{name}-namespace",
        {"metadata": {"name": name, "annotations": annotations}},
    )


def test_meshed_jupyter_namespace_passes():
    assert violations_of("k8s-namespace-linkerd", [namespace()]) == []


@pytest.mark.parametrize("inject", ["disabled", None])
def test_unmeshed_jupyter_namespace_fails(inject):
    message = only_message("k8s-namespace-linkerd", [namespace(inject=inject)])
    assert "it must be 'enabled'" in message


def test_missing_jupyter_namespace_fails():
    message = only_message("k8s-namespace-linkerd", [namespace(name="other")])
    assert "'jupyter' namespace is not declared" in message


# --- Protection ----------------------------------------------------------------------------

PROTECTED_TYPES = [
    eodh_policies.BUCKET,
    eodh_policies.OIDC_PROVIDER,
    "kubernetes:core/v1:Namespace",
    "kubernetes:helm.sh/v3:Release",
]


@pytest.mark.parametrize("type_", PROTECTED_TYPES)
def test_protected_data_in_a_protected_stack_passes(type_):
    resource = Declared(type_, "data", {}, protect=True, urn=urn(type_, "data", stack="prod"))
    assert violations_of("protected-data", [resource]) == []


@pytest.mark.parametrize("type_", PROTECTED_TYPES)
def test_unprotected_data_in_a_protected_stack_fails(type_):
    resource = Declared(type_, "data", {}, protect=False, urn=urn(type_, "data", stack="staging"))
    message = only_message("protected-data", [resource])
    assert "is not protected in stack 'staging'" in message


def test_unprotected_data_in_a_throwaway_stack_passes():
    resource = Declared(eodh_policies.BUCKET, "data", {}, urn=urn("B", "data", stack="dev"))
    assert violations_of("protected-data", [resource]) == []


def test_protected_stacks_come_from_policy_config():
    resource = Declared(eodh_policies.BUCKET, "data", {}, urn=urn("B", "data", stack="dev"))
    config = {"protected-data": {"protectedStacks": ["dev"]}}
    message = only_message("protected-data", [resource], config)
    assert "is not protected in stack 'dev'" in message


# --- The pack as a whole --------------------------------------------------------------------


def test_every_rule_has_a_failing_case_here():
    """A new rule without a failing test in this file is a rule nobody has seen fire."""
    source = Path(__file__).read_text(encoding="utf-8")
    untested = [name for name in RULES_BY_NAME if f'"{name}"' not in source]
    assert untested == []


# --- Ingress ------------------------------------------------------------------------------


def ingress(host: str, snippet: str | None, service: str = "proxy-public", **extra) -> Declared:
    annotations = {"nginx.ingress.kubernetes.io/enable-global-auth": "false", **extra}
    if snippet is not None:
        annotations[eodh_policies.SNIPPET_ANNOTATION] = snippet
    backend = {"service": {"name": service, "port": {"name": "http"}}}
    return Declared(
        eodh_policies.INGRESS,
        f"ingress-{host}",
        {
            "metadata": {"name": "i", "namespace": "jupyter", "annotations": annotations},
            "spec": {
                "ingressClassName": "nginx",
                "rules": [
                    {
                        "host": host,
                        "http": {
                            "paths": [
                                {"path": "/notebooks", "pathType": "Prefix", "backend": backend}
                            ]
                        },
                    }
                ],
            },
        },
    )


GUARD = header_guard_snippet(IDENTITY_HEADERS)


def test_the_policys_headers_are_the_programs():
    assert eodh_policies.GUARDED_HEADERS == IDENTITY_HEADERS


@pytest.mark.parametrize(
    "resource",
    [
        ingress("eodatahub-workspaces.org.uk", GUARD),
        ingress("*.users.eodatahub-workspaces.org.uk", GUARD),
        # Answered by nginx itself: nothing proxied.
        ingress("eodatahub-workspaces.org.uk", "return 404;\n"),
        ingress("eodatahub-workspaces.org.uk", "# moved\nreturn 410 'gone';\n"),
        ingress(
            "prod.eodatahub-workspaces.org.uk",
            None,
            **{eodh_policies.REDIRECT_ANNOTATION: "https://eodatahub-workspaces.org.uk"},
        ),
        # Not the hub's proxy.
        ingress("other.example.org", None, service="something-else"),
    ],
    ids=["hub-host", "wildcard", "refusal", "refusal-with-text", "redirect", "other-service"],
)
def test_guarded_or_non_proxying_ingress_passes(resource):
    assert violations_of("k8s-ingress-header-guard", [resource]) == []


@pytest.mark.parametrize(
    ("snippet", "missing"),
    [
        (None, "'Remote-User'"),
        ("", "'Remote-User'"),
        # Only part of the list: the prefix rule is what catches oauth2-proxy's newer headers.
        ("more_clear_input_headers Remote-User X-Forwarded-User;\n", "'X-Auth-Request-*'"),
        ('proxy_set_header Remote-User "";\n', "'Remote-User'"),
        # A return that answers only some requests: the others are proxied unguarded.
        ('if ($request_uri !~ "^/notebooks/user/") {\n  return 404;\n}\n', "'Remote-User'"),
        ("return 404;\nproxy_set_header X-Other 1;\n", "'Remote-User'"),
    ],
    ids=["no-snippet", "empty", "partial", "proxy-set-header", "conditional-return", "not-alone"],
)
def test_a_wildcard_user_servers_ingress_without_the_guard_fails(snippet, missing):
    resource = ingress("*.users.eodatahub-workspaces.org.uk", snippet)
    message = only_message("k8s-ingress-header-guard", [resource])
    assert "['*.users.eodatahub-workspaces.org.uk']" in message
    assert missing in message
