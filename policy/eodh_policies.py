"""The eodh-jupyterhub policy pack's rules, as pure functions over resources.

Two ways in, one set of rules:

- `pulumi preview --policy-pack policy` runs `policy/__main__.py`, which wraps every rule here in
  a pulumi_policy `ResourceValidationPolicy` or `StackValidationPolicy` (see `policies()`).
- The test suite and `make check` call `run_rules` / `check_resources` over the resources the
  offline runner recorded, so CI enforces the same rules without the Pulumi CLI.

Every rule sees a `Resource`: type token, name, URN, plain props (camelCase, as the engine sends
them), the `protect` option, and which resources it depends on. A value the engine does not
know yet (a preview before its dependency exists) becomes `UNKNOWN`; rules treat it as "cannot
tell yet", never as a violation: Pulumi runs the pack again on `up`, with every value known.

Stack identity: the protection rule needs the stack name, which a policy pack cannot read from
stack config. It takes it from the resource URN (`urn:pulumi:<stack>::...`), or from the
`stack` argument of `check_resources`, and protects the stacks listed in the policy config
`protectedStacks` (default: prod and staging, the stacks whose `protectData` is true).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy.proxy import UnknownValueError
from pulumi_policy.secret import Secret

PACK_NAME = "eodh-jupyterhub"


class _Unknown:
    """A value the engine will only know after apply."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN: Any = _Unknown()


def plain(value: Any) -> Any:
    """`value` as plain dicts/lists/scalars: engine proxies unwrapped, unknowns as UNKNOWN.

    The engine hands props through proxies that raise `UnknownValueError` on reading an
    unknown value and wrap secrets; rules work on the plain copy this returns.
    """
    if isinstance(value, _Unknown):
        return value
    if isinstance(value, Secret):
        return plain(value.value)
    if isinstance(value, Mapping):
        result = {}
        for key in value:
            try:
                result[key] = plain(value[key])
            except UnknownValueError:
                result[key] = UNKNOWN
        return result
    if isinstance(value, (list, tuple)) or (
        isinstance(value, Sequence) and not isinstance(value, (str, bytes))
    ):
        items = []
        for index in range(len(value)):
            try:
                items.append(plain(value[index]))
            except UnknownValueError:
                items.append(UNKNOWN)
        return items
    return value


def lookup(value: Any, *path: str | int) -> Any:
    """`value[path[0]][path[1]]...`, or None where a step is missing; UNKNOWN stays UNKNOWN."""
    for key in path:
        if isinstance(value, _Unknown):
            return value
        if isinstance(value, Mapping) and isinstance(key, str):
            value = value.get(key)
        elif isinstance(value, list) and isinstance(key, int):
            value = value[key] if -len(value) <= key < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


def _strings(value: Any) -> set[str]:
    """Every string inside `value` (a prop may nest its reference: lambdaFunctions[].arn)."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, Mapping):
        return {s for v in value.values() for s in _strings(v)}
    if isinstance(value, list):
        return {s for v in value for s in _strings(v)}
    return set()


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Resource:
    """One resource as every rule sees it, whichever way it arrived."""

    type: str
    name: str
    urn: str = ""
    props: Mapping[str, Any] = field(default_factory=dict)
    protect: bool = False
    dependencies: tuple[str, ...] = ()
    """URNs this resource depends on (any property or `depends_on`)."""
    property_dependencies: Mapping[str, tuple[str, ...]] | None = None
    """URNs each property depends on, where the engine says (stack policies only)."""
    aliases: tuple[str, ...] = ()
    """Further strings that name this resource (offline files without dependencies)."""

    @property
    def stack(self) -> str | None:
        match = re.match(r"^urn:pulumi:([^:]+)::", self.urn)
        return match.group(1) if match else None

    def identities(self) -> set[str]:
        """The strings another resource may hold to refer to this one (name, id, ARN)."""
        values = {self.props.get(key) for key in ("id", "name", "bucket", "arn", "functionName")}
        return {v for v in values if isinstance(v, str) and v} | set(self.aliases)

    def named_by(self, value: str) -> bool:
        """Whether `value` names this resource: an identity, or (offline) an ARN of an alias."""
        if value in self.identities():
            return True
        return value.startswith("arn:") and any(
            value.endswith((f":{alias}", f"/{alias}")) for alias in self.aliases
        )

    def refers_to(self, prop: str, target: Resource) -> bool:
        """Whether this resource's `prop` names `target` (a sub-resource's `bucket`, a
        policy's `role`): by the engine's property dependencies, else by the value itself,
        else, where nothing says what `prop` depends on, by any dependency on `target`."""
        deps = (self.property_dependencies or {}).get(prop)
        if deps is not None and target.urn in deps:
            return True
        if any(target.named_by(value) for value in _strings(self.props.get(prop))):
            return True
        return deps is None and bool(target.urn) and target.urn in self.dependencies


@dataclass(frozen=True)
class Violation:
    rule: str
    resource: str
    """The offending resource's name; empty for a stack-wide finding."""
    message: str
    urn: str = ""

    def __str__(self) -> str:
        where = f" {self.resource}" if self.resource else ""
        return f"[{self.rule}]{where}: {self.message}"


ResourceCheck = Callable[[Resource, Mapping[str, Any]], Iterable[str]]
StackCheck = Callable[
    [Sequence[Resource], Mapping[str, Any]], Iterable[tuple[Resource | None, str]]
]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    types: frozenset[str] = frozenset()
    """Resource rules: the type tokens the rule applies to."""
    check_resource: ResourceCheck | None = None
    check_stack: StackCheck | None = None
    config_schema: Mapping[str, Mapping[str, Any]] | None = None
    """JSON schema of the rule's policy config properties (with defaults)."""

    def defaults(self) -> dict[str, Any]:
        return {
            key: schema["default"]
            for key, schema in (self.config_schema or {}).items()
            if "default" in schema
        }


# --- resource types -------------------------------------------------------------------------

BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
OIDC_PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
LAMBDA_FUNCTION = "aws:lambda/function:Function"
LAMBDA_PERMISSION = "aws:lambda/permission:Permission"
LAMBDA_INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
K8S_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
NAMESPACE = "kubernetes:core/v1:Namespace"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"

# Where each type carries IAM policy documents (JSON text): (prop, list key or None).
POLICY_DOCUMENTS: dict[str, tuple[str, ...]] = {
    ROLE: ("assumeRolePolicy",),
    ROLE_POLICY: ("policy",),
    "aws:iam/policy:Policy": ("policy",),
    "aws:iam/userPolicy:UserPolicy": ("policy",),
    "aws:iam/groupPolicy:GroupPolicy": ("policy",),
    BUCKET_POLICY: ("policy",),
    "aws:sqs/queuePolicy:QueuePolicy": ("policy",),
    "aws:sns/topicPolicy:TopicPolicy": ("policy",),
}


def policy_documents(resource: Resource) -> list[tuple[str, Any]]:
    """(where, parsed document or UNKNOWN) for every policy document the resource carries."""
    found: list[tuple[str, Any]] = []
    texts: list[tuple[str, Any]] = [
        (prop, resource.props.get(prop)) for prop in POLICY_DOCUMENTS.get(resource.type, ())
    ]
    if resource.type == ROLE:
        for index, inline in enumerate(as_list(resource.props.get("inlinePolicies"))):
            texts.append((f"inlinePolicies[{index}]", lookup(inline, "policy")))
    for where, text in texts:
        if isinstance(text, _Unknown):
            found.append((where, UNKNOWN))
        elif isinstance(text, str) and text:
            found.append((where, json.loads(text)))
        elif isinstance(text, Mapping):
            found.append((where, text))
    return found


def statements(document: Any) -> list[Mapping[str, Any]]:
    if not isinstance(document, Mapping):
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, Mapping)]


def _action_matches(pattern: Any, action: str) -> bool:
    return isinstance(pattern, str) and fnmatch.fnmatchcase(action.lower(), pattern.lower())


def allows_action(statement: Mapping[str, Any], action: str) -> bool:
    return statement.get("Effect") == "Allow" and any(
        _action_matches(p, action) for p in as_list(statement.get("Action"))
    )


def _is_wildcard(value: Any) -> bool:
    return isinstance(value, str) and ("*" in value or "?" in value)


# --- S3: every bucket encrypted, public access blocked, versioned, TLS only -----------------

SSE_ALGORITHMS = {"AES256", "aws:kms", "aws:kms:dsse"}
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)


def _bucket_parts(
    resources: Sequence[Resource], bucket: Resource, part_type: str
) -> list[Resource]:
    return [r for r in resources if r.type == part_type and r.refers_to("bucket", bucket)]


def _buckets(resources: Sequence[Resource]) -> list[Resource]:
    return [r for r in resources if r.type == BUCKET]


def check_bucket_encrypted(resources, config):
    for bucket in _buckets(resources):
        algorithms = [
            lookup(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
            for part in _bucket_parts(resources, bucket, ENCRYPTION)
            for rule in as_list(part.props.get("rules"))
        ]
        inline = lookup(
            bucket.props,
            "serverSideEncryptionConfiguration",
            "rule",
            "applyServerSideEncryptionByDefault",
            "sseAlgorithm",
        )
        algorithms.append(inline)
        if not any(a in SSE_ALGORITHMS or isinstance(a, _Unknown) for a in algorithms):
            yield (
                bucket,
                (
                    "has no server-side encryption configuration with a default algorithm "
                    f"(one of {sorted(SSE_ALGORITHMS)})"
                ),
            )


def check_bucket_public_access_blocked(resources, config):
    for bucket in _buckets(resources):
        blocks = _bucket_parts(resources, bucket, PUBLIC_ACCESS_BLOCK)
        if not blocks:
            yield bucket, "has no public access block"
            continue
        for block in blocks:
            values = {flag: block.props.get(flag) for flag in PUBLIC_ACCESS_FLAGS}
            off = [
                flag
                for flag, value in values.items()
                if value is not True and not isinstance(value, _Unknown)
            ]
            if off:
                yield bucket, f"public access block {block.name} does not set {', '.join(off)}"


def check_bucket_versioned(resources, config):
    for bucket in _buckets(resources):
        statuses = [
            lookup(part.props, "versioningConfiguration", "status")
            for part in _bucket_parts(resources, bucket, VERSIONING)
        ]
        inline = lookup(bucket.props, "versioning", "enabled")
        if not (any(s == "Enabled" or isinstance(s, _Unknown) for s in statuses) or inline is True):
            yield bucket, "is not versioned (no BucketVersioning with status Enabled)"


def _denies_insecure_transport(statement: Mapping[str, Any], bucket_name: Any) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    principal = statement.get("Principal")
    if not (principal == "*" or (isinstance(principal, Mapping) and principal.get("AWS") == "*")):
        return False
    if not any(a in ("*", "s3:*") for a in as_list(statement.get("Action"))):
        return False
    secure = lookup(statement, "Condition", "Bool", "aws:SecureTransport")
    if str(secure).lower() != "false":
        return False
    if isinstance(bucket_name, str):
        covered = {str(r) for r in as_list(statement.get("Resource"))}
        arn = f"arn:aws:s3:::{bucket_name}"
        return {arn, f"{arn}/*"} <= covered
    return True


def check_bucket_tls_only(resources, config):
    for bucket in _buckets(resources):
        name = bucket.props.get("bucket")
        documents = [
            document
            for part in _bucket_parts(resources, bucket, BUCKET_POLICY)
            for _, document in policy_documents(part)
        ]
        if any(isinstance(d, _Unknown) for d in documents):
            continue
        if not any(_denies_insecure_transport(s, name) for d in documents for s in statements(d)):
            yield (
                bucket,
                (
                    "has no bucket policy denying s3:* to every principal when "
                    "aws:SecureTransport is false, on the bucket and its objects"
                ),
            )


# --- IAM -------------------------------------------------------------------------------------

DOCUMENTED_WILDCARD_EXCEPTIONS: dict[str, str] = {}
"""Statement Sid -> why that Allow statement may use a wildcard. Empty: nothing in this
program needs one. Deny statements are always exempt: a wildcard there widens a refusal
(the buckets' `DenyInsecureTransport` denies `s3:*` to `*`), never a grant."""


def _wildcard_resource(resource: Any) -> bool:
    """`*`, or an ARN that wildcards its partition, service, region, account or whole
    resource part. A wildcard inside the resource path (`bucket/${tag}/*`, a secret's
    `-??????` suffix) scopes a grant and is allowed."""
    if not isinstance(resource, str):
        return False
    if resource == "*":
        return True
    parts = resource.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return _is_wildcard(resource)
    return any(_is_wildcard(p) for p in parts[1:5]) or parts[5] in ("*", "*/*")


def _wildcard_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any(v == "*" for values in principal.values() for v in as_list(values))
    return False


def check_iam_no_wildcards(resource, config):
    for where, document in policy_documents(resource):
        for index, statement in enumerate(statements(document)):
            if statement.get("Effect") != "Allow":
                continue
            sid = statement.get("Sid") or f"#{index}"
            if sid in DOCUMENTED_WILDCARD_EXCEPTIONS:
                continue
            label = f"{where} statement {sid}"
            if "NotAction" in statement:
                yield f"{label} allows NotAction (every other action)"
            if "NotResource" in statement:
                yield f"{label} allows NotResource (every other resource)"
            wild_actions = [a for a in as_list(statement.get("Action")) if _is_wildcard(a)]
            if wild_actions:
                yield f"{label} allows wildcard action(s) {wild_actions}"
            wild_resources = [
                r for r in as_list(statement.get("Resource")) if _wildcard_resource(r)
            ]
            if wild_resources:
                yield f"{label} allows wildcard resource(s) {wild_resources}"
            if _wildcard_principal(statement.get("Principal")):
                yield f"{label} allows any principal (*)"


def oidc_provider_path(arn: str) -> str | None:
    prefix, sep, path = arn.partition(":oidc-provider/")
    return path if sep and prefix.startswith("arn:") and path else None


def check_web_identity_trust_pinned(resource, config):
    for where, document in policy_documents(resource):
        if where != "assumeRolePolicy" or isinstance(document, _Unknown):
            continue
        for index, statement in enumerate(statements(document)):
            if not allows_action(statement, "sts:AssumeRoleWithWebIdentity"):
                continue
            label = f"trust statement {statement.get('Sid') or f'#{index}'}"
            principal = statement.get("Principal")
            federated = principal.get("Federated") if isinstance(principal, Mapping) else None
            if isinstance(federated, _Unknown):
                continue
            if not isinstance(federated, str) or not federated or _is_wildcard(federated):
                yield (
                    f"{label} does not name exactly one identity provider "
                    f"(Principal.Federated is {federated!r})"
                )
                continue
            equals = lookup(statement, "Condition", "StringEquals") or {}
            audiences = {k: v for k, v in equals.items() if str(k).endswith(":aud")}
            if not audiences:
                yield f"{label} does not pin the audience (no StringEquals on <provider>:aud)"
                continue
            for key, value in audiences.items():
                values = as_list(value)
                exact = all(isinstance(v, str) and v and not _is_wildcard(v) for v in values)
                if not values or not exact:
                    yield f"{label} pins {key} to {value!r}, not to exact client ids"
            path = oidc_provider_path(federated)
            if path is not None and f"{path}:aud" not in audiences:
                yield (
                    f"{label} checks {sorted(audiences)} but its provider {federated} is "
                    f"checked by {path}:aud"
                )


PRINCIPAL_TAG = re.compile(r"\$\{aws:PrincipalTag/([^}]+)\}")


def _session_tags_used(resources: Sequence[Resource], role: Resource) -> set[str]:
    """Session tags the role's permission policies depend on (`${aws:PrincipalTag/<key>}`)."""
    texts: list[str] = [
        str(lookup(inline, "policy") or "") for inline in as_list(role.props.get("inlinePolicies"))
    ]
    texts += [
        str(r.props.get("policy") or "")
        for r in resources
        if r.type == ROLE_POLICY and r.refers_to("role", role)
    ]
    return {tag for text in texts for tag in PRINCIPAL_TAG.findall(text)}


def _tag_conditions_problems(statement: Mapping[str, Any], tags: set[str]) -> list[str]:
    condition = statement.get("Condition") or {}
    problems = []
    for tag in sorted(tags):
        key = f"aws:RequestTag/{tag}"
        values = [
            value
            for operator in ("StringLike", "StringEquals")
            for value in as_list(lookup(condition, operator, key))
        ]
        if not values or any(v in ("*", "") for v in values):
            problems.append(f"does not require a non-empty session tag {tag!r} ({key})")
    allowed = lookup(condition, "ForAllValues:StringEquals", "aws:TagKeys")
    allowed_keys = as_list(allowed)
    if not allowed_keys or any(_is_wildcard(k) for k in allowed_keys):
        problems.append(
            "does not restrict the session tag keys (ForAllValues:StringEquals aws:TagKeys)"
        )
    elif tags and not set(allowed_keys) <= tags:
        problems.append(f"allows session tag keys {sorted(set(allowed_keys) - tags)} nothing uses")
    return problems


def check_session_tag_rules(resources, config):
    for role in (r for r in resources if r.type == ROLE):
        trust = dict(policy_documents(role)).get("assumeRolePolicy")
        if trust is None or isinstance(trust, _Unknown):
            continue
        tags = _session_tags_used(resources, role)
        tagging = [s for s in statements(trust) if allows_action(s, "sts:TagSession")]
        if tags and not tagging:
            yield (
                role,
                (
                    f"permissions depend on session tag(s) {sorted(tags)} but the trust policy "
                    "does not allow sts:TagSession with conditions on them"
                ),
            )
        for statement in tagging:
            label = f"trust statement {statement.get('Sid') or '(no Sid)'}"
            for problem in _tag_conditions_problems(statement, tags or {"workspace"}):
                yield role, f"{label} allows sts:TagSession but {problem}"


# --- Lambda ----------------------------------------------------------------------------------


def _present(value: Any) -> bool:
    return isinstance(value, _Unknown) or (value is not None and value != "")


def check_lambda_permission_source(resource, config):
    for prop in ("sourceArn", "sourceAccount"):
        if not _present(resource.props.get(prop)):
            yield (
                f"grants {resource.props.get('principal')!r} lambda:InvokeFunction without "
                f"{prop}: any {prop.removeprefix('source').lower()} could invoke it"
            )


def check_lambda_reserved_concurrency(resource, config):
    value = resource.props.get("reservedConcurrentExecutions")
    if isinstance(value, _Unknown):
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 1:
        yield (
            f"reservedConcurrentExecutions is {value!r}: set a positive limit so a burst of "
            "S3 events cannot take the account's whole Lambda concurrency"
        )


def _on_failure_destination(config_resource: Resource) -> Any:
    return lookup(config_resource.props, "destinationConfig", "onFailure", "destination")


def check_lambda_on_failure_destination(resources, config):
    configs = [r for r in resources if r.type == LAMBDA_INVOKE_CONFIG]
    for function in (r for r in resources if r.type == LAMBDA_FUNCTION):
        mine = [c for c in configs if c.refers_to("functionName", function)]
        if not mine:
            yield function, "has no FunctionEventInvokeConfig (no on-failure destination)"
        elif not any(_present(_on_failure_destination(c)) for c in mine):
            yield (
                function,
                (
                    f"event invoke config {', '.join(c.name for c in mine)} has no "
                    "destinationConfig.onFailure.destination: failed events would be dropped"
                ),
            )
    functions = [r for r in resources if r.type == LAMBDA_FUNCTION]
    for orphan in configs:
        if not _present(_on_failure_destination(orphan)) and not any(
            orphan.refers_to("functionName", f) for f in functions
        ):
            yield orphan, "has no destinationConfig.onFailure.destination"


METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SQS_QUEUE = "aws:sqs/queue:Queue"
# Services that invoke a function asynchronously (Lambda developer guide, "Invoking a Lambda
# function asynchronously"): their failed events only reach the on-failure destination.
ASYNC_INVOKERS = {"s3.amazonaws.com", "events.amazonaws.com", "sns.amazonaws.com"}
# The metrics an alarm on a failure queue can watch to see failed events wait.
QUEUE_FAILURE_METRICS = {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"}


def _alarms_on(resources: Sequence[Resource], target: Resource, namespace: str, metrics) -> bool:
    return any(
        alarm.props.get("namespace") == namespace
        and alarm.props.get("metricName") in metrics
        and alarm.refers_to("dimensions", target)
        for alarm in resources
        if alarm.type == METRIC_ALARM
    )


def check_async_failures_alarmed(resources, config):
    """A function invoked asynchronously (it has an event invoke config, or S3, EventBridge
    or SNS may invoke it) fails silently unless something watches: an alarm on its `Errors`,
    and one on the depth or age of the queue its failed events go to."""
    configs = [r for r in resources if r.type == LAMBDA_INVOKE_CONFIG]
    permissions = [
        r
        for r in resources
        if r.type == LAMBDA_PERMISSION and r.props.get("principal") in ASYNC_INVOKERS
    ]
    queues = [r for r in resources if r.type == SQS_QUEUE]
    for function in (r for r in resources if r.type == LAMBDA_FUNCTION):
        mine = [c for c in configs if c.refers_to("functionName", function)]
        if not mine and not any(p.refers_to("function", function) for p in permissions):
            continue
        if not _alarms_on(resources, function, "AWS/Lambda", {"Errors"}):
            yield function, "is invoked asynchronously but no alarm watches its AWS/Lambda Errors"
        for queue in queues:
            if any(c.refers_to("destinationConfig", queue) for c in mine) and not _alarms_on(
                resources, queue, "AWS/SQS", QUEUE_FAILURE_METRICS
            ):
                yield (
                    queue,
                    f"receives {function.name}'s failed events but no alarm watches its "
                    "ApproximateNumberOfMessagesVisible or ApproximateAgeOfOldestMessage",
                )


BUCKET_NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"


def _object_created_buckets(rule: Resource) -> list[str] | None:
    """The buckets whose S3 "Object Created" events an EventBridge rule selects, or None
    when it does not select exactly those (other sources, detail types, or any bucket)."""
    pattern = rule.props.get("eventPattern")
    if isinstance(pattern, _Unknown):
        return []
    try:
        pattern = json.loads(pattern) if isinstance(pattern, str) else pattern
    except ValueError:
        return None
    if not isinstance(pattern, Mapping):
        return None
    if pattern.get("source") != ["aws.s3"] or pattern.get("detail-type") != ["Object Created"]:
        return None
    names = lookup(pattern, "detail", "bucket", "name")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return None
    return names


def _eventbridge_triggered(resources: Sequence[Resource], function: Resource) -> list[Resource]:
    """Rules selecting a bucket's "Object Created" events whose target is `function` and
    from which EventBridge may invoke it."""
    rules = [r for r in resources if r.type == EVENT_RULE and _object_created_buckets(r)]
    targets = [r for r in resources if r.type == EVENT_TARGET and r.refers_to("arn", function)]
    permissions = [
        r
        for r in resources
        if r.type == LAMBDA_PERMISSION
        and r.props.get("principal") == "events.amazonaws.com"
        and r.refers_to("function", function)
    ]
    return [
        rule
        for rule in rules
        if any(t.refers_to("rule", rule) for t in targets)
        and any(p.refers_to("sourceArn", rule) for p in permissions)
    ]


def _marker_function_problems(function: Resource, configs: list[Resource], config) -> list[str]:
    problems = []
    if list(check_lambda_reserved_concurrency(function, config)):
        problems.append("marks directories but has no positive reserved concurrency")
    mine = [c for c in configs if c.refers_to("functionName", function)]
    if not any(_present(_on_failure_destination(c)) for c in mine):
        problems.append("marks directories but has no on-failure destination")
    return problems


def check_marker_function_present(resources, config):
    """Every bucket notifies a function of its new objects (the `.s3keep` marker); a stack
    that declares no bucket (a shared one, only looked up) has its function triggered by an
    EventBridge rule on that bucket's "Object Created" events. Either way the function has
    reserved concurrency and an on-failure destination."""
    functions = [r for r in resources if r.type == LAMBDA_FUNCTION]
    configs = [r for r in resources if r.type == LAMBDA_INVOKE_CONFIG]
    buckets = _buckets(resources)
    for bucket in buckets:
        notified = [
            function
            for notification in _bucket_parts(resources, bucket, BUCKET_NOTIFICATION)
            if any(
                any(str(e).startswith("s3:ObjectCreated:") for e in as_list(lookup(f, "events")))
                for f in as_list(notification.props.get("lambdaFunctions"))
            )
            for function in functions
            if notification.refers_to("lambdaFunctions", function)
        ]
        if not notified:
            yield (
                bucket,
                (
                    "notifies no Lambda function of s3:ObjectCreated events: the .s3keep marker "
                    "function is missing, so directories written out of band stay invisible"
                ),
            )
            continue
        for function in notified:
            for problem in _marker_function_problems(function, configs, config):
                yield function, problem
    if buckets:
        return
    for rule in (r for r in resources if r.type == EVENT_RULE):
        if _object_created_buckets(rule) is None:
            continue
        if not any(_eventbridge_triggered(resources, f) for f in functions):
            yield (
                rule,
                (
                    "selects a bucket's Object Created events but has no target function "
                    "that events.amazonaws.com may invoke from this rule"
                ),
            )
    triggered = [f for f in functions if _eventbridge_triggered(resources, f)]
    if functions and not triggered:
        yield (
            None,
            (
                "no bucket is declared and no EventBridge rule on a bucket's Object Created "
                "events triggers a function: the .s3keep marker function never runs"
            ),
        )
    for function in triggered:
        for problem in _marker_function_problems(function, configs, config):
            yield function, problem


# --- Kubernetes ------------------------------------------------------------------------------


def check_cluster_role_no_wildcards(resource, config):
    for index, rule in enumerate(as_list(resource.props.get("rules"))):
        for key in ("verbs", "resources"):
            wild = [v for v in as_list(lookup(rule, key)) if isinstance(v, str) and "*" in v]
            if wild:
                yield f"rules[{index}].{key} contains wildcard(s) {wild}"


def check_namespace_linkerd(resources, config):
    wanted = list(config.get("namespaces") or [])
    namespaces = {lookup(r.props, "metadata", "name"): r for r in resources if r.type == NAMESPACE}
    for name in wanted:
        namespace = namespaces.get(name)
        if namespace is None:
            yield None, f"the {name!r} namespace is not declared in this stack"
            continue
        inject = lookup(namespace.props, "metadata", "annotations", "linkerd.io/inject")
        if inject != "enabled" and not isinstance(inject, _Unknown):
            yield (
                namespace,
                (
                    f"namespace {name!r} has linkerd.io/inject={inject!r}; it must be 'enabled' "
                    "so hub, proxy and notebooks talk over mTLS"
                ),
            )


SNIPPET_ANNOTATION = "nginx.ingress.kubernetes.io/configuration-snippet"
REDIRECT_ANNOTATION = "nginx.ingress.kubernetes.io/permanent-redirect"
# The request headers through which the platform's auth layer names the user
# (components/jupyterhub.py IDENTITY_HEADERS; a test keeps the two equal).
GUARDED_HEADERS = (
    "Remote-User",
    "X-Forwarded-User",
    "X-Forwarded-Email",
    "X-Forwarded-Preferred-Username",
    "X-Forwarded-Groups",
    "X-Forwarded-Access-Token",
    "X-Auth-Request-*",
)


def _proxied_services(ingress: Resource) -> set[str]:
    spec = ingress.props.get("spec")
    services = {lookup(spec, "defaultBackend", "service", "name")}
    for rule in as_list(lookup(spec, "rules")):
        for path in as_list(lookup(rule, "http", "paths")):
            services.add(lookup(path, "backend", "service", "name"))
    return {s for s in services if isinstance(s, str)}


# A whole snippet that answers every request itself: `return <code>;` or `return <code> <text>;`.
# A `return` inside an `if` (or beside anything else) leaves the other requests proxied.
_SOLE_RETURN = re.compile(r"return\s+\d{3}(\s+[^;{}]*)?")


def _only_returns(lines: list[str]) -> bool:
    code = " ".join(line.split("#", 1)[0] for line in lines)
    statements = [s.strip() for s in code.split(";") if s.strip()]
    return len(statements) == 1 and bool(_SOLE_RETURN.fullmatch(statements[0]))


def check_ingress_header_guard(resource, config):
    """Every host that reaches the hub's proxy clears the identity headers first: a wildcard
    host for the user servers as much as the hub's own. An Ingress that answers by itself
    (a redirect, or a snippet whose one statement is `return`) proxies nothing and needs no
    guard."""
    services = set(config.get("services") or [])
    if not services & _proxied_services(resource):
        return
    annotations = lookup(resource.props, "metadata", "annotations")
    if isinstance(annotations, _Unknown) or lookup(annotations, REDIRECT_ANNOTATION):
        return
    snippet = lookup(annotations, SNIPPET_ANNOTATION)
    if isinstance(snippet, _Unknown):
        return
    lines = [line.strip() for line in str(snippet or "").splitlines()]
    if _only_returns(lines):
        return
    cleared = {
        name.lower()
        for line in lines
        if line.startswith("more_clear_input_headers ")
        for name in line.removeprefix("more_clear_input_headers ").rstrip(";").split()
    }
    missing = [h for h in config.get("headers") or [] if h.lower() not in cleared]
    if missing:
        hosts = [lookup(r, "host") for r in as_list(lookup(resource.props, "spec", "rules"))]
        yield (
            f"the Ingress for {hosts} proxies to {sorted(services)} without clearing "
            f"{missing} (configuration-snippet: more_clear_input_headers); a client could "
            "pose as any user to whatever trusts them"
        )


# --- Data protection -------------------------------------------------------------------------


def check_protected_data(resource, config):
    stack = config.get("stack") or resource.stack
    protected = list(config.get("protectedStacks") or [])
    if stack in protected and not resource.protect:
        yield (
            f"is not protected in stack {stack!r} (protectedStacks: {protected}); "
            "deleting or replacing it would lose data or break every workspace's trust"
        )


RULES: tuple[Rule, ...] = (
    Rule(
        "s3-bucket-encrypted",
        "S3 buckets have default server-side encryption.",
        check_stack=check_bucket_encrypted,
    ),
    Rule(
        "s3-bucket-public-access-blocked",
        "S3 buckets block public access with all four public-access-block flags.",
        check_stack=check_bucket_public_access_blocked,
    ),
    Rule(
        "s3-bucket-versioned",
        "S3 buckets are versioned.",
        check_stack=check_bucket_versioned,
    ),
    Rule(
        "s3-bucket-tls-only",
        "S3 buckets deny every request that does not use TLS (aws:SecureTransport).",
        check_stack=check_bucket_tls_only,
    ),
    Rule(
        "iam-no-wildcards",
        "IAM Allow statements name their actions, resources and principals: no wildcard "
        "action, no wildcard resource, no NotAction/NotResource, no '*' principal. Deny "
        "statements and the Sids in DOCUMENTED_WILDCARD_EXCEPTIONS are exempt.",
        types=frozenset(POLICY_DOCUMENTS),
        check_resource=check_iam_no_wildcards,
    ),
    Rule(
        "iam-web-identity-trust-pinned",
        "Every web-identity trust statement names one identity provider and pins the "
        "audience with StringEquals on that provider's :aud key.",
        types=frozenset({ROLE}),
        check_resource=check_web_identity_trust_pinned,
    ),
    Rule(
        "iam-session-tag-rules",
        "A role whose permissions use ${aws:PrincipalTag/...} (the notebook role), or whose "
        "trust allows sts:TagSession, requires those tags and allows no other tag keys.",
        check_stack=check_session_tag_rules,
    ),
    Rule(
        "lambda-permission-source",
        "Lambda permissions name the source ARN and the source account.",
        types=frozenset({LAMBDA_PERMISSION}),
        check_resource=check_lambda_permission_source,
    ),
    Rule(
        "lambda-reserved-concurrency",
        "Lambda functions (the .s3keep marker) have a positive reserved concurrency.",
        types=frozenset({LAMBDA_FUNCTION}),
        check_resource=check_lambda_reserved_concurrency,
    ),
    Rule(
        "lambda-on-failure-destination",
        "Lambda functions (the .s3keep marker) send failed asynchronous events to an "
        "on-failure destination.",
        check_stack=check_lambda_on_failure_destination,
    ),
    Rule(
        "lambda-failures-alarmed",
        "Every asynchronously invoked Lambda function has an alarm on its Errors, and its "
        "on-failure queue an alarm on its depth or oldest message's age.",
        check_stack=check_async_failures_alarmed,
    ),
    Rule(
        "lambda-marker-present",
        "Every bucket notifies the .s3keep marker function of created objects (a shared "
        "bucket, only looked up: an EventBridge rule on its Object Created events targets "
        "it), and that function has reserved concurrency and an on-failure destination.",
        check_stack=check_marker_function_present,
    ),
    Rule(
        "k8s-cluster-role-no-wildcards",
        "ClusterRoles and Roles grant no wildcard verbs or resources.",
        types=frozenset({CLUSTER_ROLE, K8S_ROLE}),
        check_resource=check_cluster_role_no_wildcards,
    ),
    Rule(
        "k8s-namespace-linkerd",
        "The jupyter namespace is declared and meshed by Linkerd (linkerd.io/inject: enabled).",
        check_stack=check_namespace_linkerd,
        config_schema={
            "namespaces": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["jupyter"],
            }
        },
    ),
    Rule(
        "k8s-ingress-header-guard",
        "Every Ingress that proxies to the hub's proxy (the hub's host, the user servers' "
        "wildcard host) clears the platform's identity headers in its configuration snippet.",
        types=frozenset({INGRESS}),
        check_resource=check_ingress_header_guard,
        config_schema={
            "services": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["proxy-public"],
            },
            "headers": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(GUARDED_HEADERS),
            },
        },
    ),
    Rule(
        "protected-data",
        "In protected stacks the workspace bucket, the Keycloak identity provider, the hub's "
        "namespace (its database claim) and the Helm release are protected (pulumi protect).",
        types=frozenset({BUCKET, OIDC_PROVIDER, NAMESPACE, HELM_RELEASE}),
        check_resource=check_protected_data,
        config_schema={
            "protectedStacks": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["prod", "staging"],
            }
        },
    ),
)

RULES_BY_NAME = {rule.name: rule for rule in RULES}


def rule_config(rule: Rule, config: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Any]:
    """The rule's config: schema defaults overlaid with `config[rule.name]`."""
    merged = rule.defaults()
    merged.update((config or {}).get(rule.name) or {})
    return merged


def run_resource_rule(rule: Rule, resource: Resource, config: Mapping[str, Any]) -> list[Violation]:
    if rule.check_resource is None or resource.type not in rule.types:
        return []
    return [
        Violation(rule.name, resource.name, message, resource.urn)
        for message in rule.check_resource(resource, config)
    ]


def run_stack_rule(
    rule: Rule, resources: Sequence[Resource], config: Mapping[str, Any]
) -> list[Violation]:
    if rule.check_stack is None:
        return []
    return [
        Violation(rule.name, r.name if r else "", message, r.urn if r else "")
        for r, message in rule.check_stack(resources, config)
    ]


def run_rules(
    resources: Sequence[Resource],
    config: Mapping[str, Mapping[str, Any]] | None = None,
    stack: str | None = None,
    rules: Iterable[Rule] = RULES,
) -> list[Violation]:
    """Every rule over one stack's resources. `config` is keyed by rule name, like a Pulumi
    policy config file; `stack` overrides the stack read from URNs."""
    violations: list[Violation] = []
    for rule in rules:
        merged = rule_config(rule, config)
        if stack is not None:
            merged.setdefault("stack", stack)
        violations += run_stack_rule(rule, resources, merged)
        for resource in resources:
            violations += run_resource_rule(rule, resource, merged)
    return violations


OFFLINE_ID_SUFFIX = "-id"
"""The offline runner's mocks give a role (and any AWS resource without a provider id format
modelled) the id `<name>-id` and echo names, so a rendered policy names its role as
`notebook-role-id` and its function as `s3keep-function`; a bucket's id is its name, as in
pulumi-aws, and a bucket's configuration resources name it by that."""


def resource_from_dict(data: Mapping[str, Any]) -> Resource:
    """A resource as `build/<stack>/resources.json` lists it.

    Keys: `type`, `name`, `inputs`, `protect`; optional `urn`, `id` and `dependencies` (URNs).
    Sub-resources are matched to their bucket, role or function by `dependencies` when the
    dict has that key. A file without it (rendered by the offline runner) is matched by the
    mocks' naming instead: the resource's name and `<name>-id` stand for it.
    """
    props = dict(plain(data.get("inputs") or {}))
    if data.get("id") and "id" not in props:
        props["id"] = data["id"]
    offline = "dependencies" not in data
    return Resource(
        type=data["type"],
        name=data["name"],
        urn=data.get("urn") or "",
        props=props,
        protect=bool(data.get("protect")),
        dependencies=tuple(data.get("dependencies") or ()),
        aliases=(data["name"], f"{data['name']}{OFFLINE_ID_SUFFIX}") if offline else (),
    )


def check_resources(
    resources: Sequence[Mapping[str, Any]],
    stack: str | None = None,
    config: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Violation]:
    """The whole pack over one stack's rendered resources (what `make check` calls)."""
    return run_rules([resource_from_dict(r) for r in resources], config=config, stack=stack)


# --- pulumi_policy wrappers --------------------------------------------------------------------


def resource_from_policy_args(args: Any) -> Resource:
    """From pulumi_policy's `ResourceValidationArgs`."""
    return Resource(
        type=args.resource_type,
        name=args.name,
        urn=args.urn,
        props=plain(args.props),
        protect=bool(getattr(args.opts, "protect", False)),
    )


def resource_from_policy_resource(resource: Any) -> Resource:
    """From pulumi_policy's `PolicyResource` (stack validation)."""
    return Resource(
        type=resource.resource_type,
        name=resource.name,
        urn=resource.urn,
        props=plain(resource.props),
        protect=bool(getattr(resource.opts, "protect", False)),
        dependencies=tuple(d.urn for d in resource.dependencies or ()),
        property_dependencies={
            key: tuple(d.urn for d in deps)
            for key, deps in (resource.property_dependencies or {}).items()
        },
    )


def _merged_config(rule: Rule, given: Mapping[str, Any] | None) -> dict[str, Any]:
    merged = rule.defaults()
    merged.update(given or {})
    return merged


def policies() -> list[Any]:
    """The rules as pulumi_policy policies, for `PolicyPack(policies=policies())`."""
    from pulumi_policy import (
        PolicyConfigSchema,
        ResourceValidationPolicy,
        StackValidationPolicy,
    )

    built: list[Any] = []
    for rule in RULES:
        schema = (
            PolicyConfigSchema({k: dict(v) for k, v in rule.config_schema.items()})
            if rule.config_schema
            else None
        )
        if rule.check_resource is not None:

            def validate(args, report_violation, rule=rule):
                if args.resource_type not in rule.types:
                    return
                resource = resource_from_policy_args(args)
                config = _merged_config(rule, args.get_config())
                for violation in run_resource_rule(rule, resource, config):
                    report_violation(str(violation), resource.urn or None)

            built.append(
                ResourceValidationPolicy(
                    name=rule.name,
                    description=rule.description,
                    validate=validate,
                    config_schema=schema,
                )
            )
        else:

            def validate_stack(args, report_violation, rule=rule):
                resources = [resource_from_policy_resource(r) for r in args.resources]
                config = _merged_config(rule, args.get_config())
                for violation in run_stack_rule(rule, resources, config):
                    report_violation(str(violation), violation.urn or None)

            built.append(
                StackValidationPolicy(
                    name=rule.name,
                    description=rule.description,
                    validate=validate_stack,
                    config_schema=schema,
                )
            )
    return built
