"""The `.s3keep` marker function: makes every directory in the workspace bucket visible.

Source: lambda/s3keep (standard library + the runtime's boto3), packaged from an explicit
file list. S3 invokes it asynchronously for every created object, either through the
bucket's notification configuration (a bucket this stack owns) or through an EventBridge
rule on the bucket's "Object Created" events (a bucket shared with other services, whose
one notification configuration is not ours to write). Lambda retries a failed event and
then hands it to an SQS queue, so no event is silently lost.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pulumi
import pulumi_aws as aws

from .iam_documents import lambda_trust_policy, marker_function_policy

RUNTIME = "python3.13"
ARCHITECTURE = "arm64"
HANDLER = "handler.handler"
# Exactly what the function runs: the archive is built from these names, never from the
# directory, so caches and editor files left by a local run cannot reach the upload.
CODE_FILES = ("handler.py",)

Trigger = Literal["bucket-notification", "eventbridge"]

# Top-level prefixes of the platform's shared bucket that belong to its services, not to a
# workspace (the workflow harvester keeps its files under `workflow-harvester/`). A workspace
# is a top-level prefix `<name>/` that the platform's workspace controller creates for each
# workspace's object store (EO-DataHub/eodhp-workspace-manager internal/k8s/workspace.go
# `MapObjectStoresToS3Buckets`: Path "<name>/"; eodhp-workspace-controller internal/aws/s3.go
# `ReconcileS3Path`), named by the same rule as its namespace `ws-<name>`. A service's
# prefix looks just like one, so these are excluded by name: in the EventBridge rule, in the
# function and in its IAM policy; the hub refuses them as workspace names
# (hub/extra_config/2_configure_authenticator.py `EODH_RESERVED_WORKSPACE_NAMES`).
#
# A positive signal was looked for (docs/operations.md, "The marker function: which prefixes
# are workspaces"). The `<name>/` folder object the controller puts is no signal: members may
# delete it (s3-workspace-policy.json grants s3:DeleteObject on `<name>/*`, the key itself
# included) and it returns only at the controller's next reconcile. The access point
# `<cluster>-<name>-s3` (workspace-manager `MapObjectStoresToS3Buckets`) is one: members
# cannot delete it, it exists before their S3 policy does, and the platform's own billing
# lists workspaces by it (EO-DataHub/eodhp-accounting-s3-usage
# accounting_s3_usage/sampler/sample_requests.py). Not used yet: it needs the environment's
# access point prefix as a setting, an s3control GetAccessPoint per new prefix with its IAM
# grant, and it exists only in the shared bucket. No other top-level prefix of the workspace
# bucket appears in those sources (the members' policy names only `workflow-harvester/`).
PLATFORM_PREFIXES: tuple[str, ...] = ("workflow-harvester",)
_PREFIX_NAME = re.compile(r"[a-z](?:[a-z0-9-]*[a-z0-9])?")


def code_archive(source_dir: Path) -> tuple[pulumi.AssetArchive, str]:
    """The function's code as an archive of the named files, and the SHA-256 of its content.

    The digest covers each file's name and bytes in name order: the same sources give the
    same digest on any machine, whatever else lies in the directory.
    """
    digest = hashlib.sha256()
    assets: dict[str, pulumi.Asset | pulumi.Archive] = {}
    for name in sorted(CODE_FILES):
        path = source_dir / name
        data = path.read_bytes()
        digest.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
        assets[name] = pulumi.FileAsset(str(path))
    return pulumi.AssetArchive(assets), digest.hexdigest()


def object_created_pattern(
    bucket: str, platform_prefixes: tuple[str, ...] = PLATFORM_PREFIXES
) -> dict:
    """EventBridge pattern: this bucket's "Object Created" events, the platform's own
    prefixes left out (`anything-but` with a `wildcard` list, EventBridge user guide
    "Comparison operators"; `*` matches any run of characters, `/` included).

    Marker keys are kept: S3's EventBridge events carry the requester's account, not its
    principal, so the rule cannot tell the function's own markers (each then costs one
    refused request) from a `.s3keep` a user uploads into a new directory, whose parents
    still need markers.
    """
    detail: dict = {"bucket": {"name": [bucket]}}
    if platform_prefixes:
        excluded = [f"{prefix}/*" for prefix in platform_prefixes]
        detail["object"] = {"key": [{"anything-but": {"wildcard": excluded}}]}
    return {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": detail}


@dataclass(frozen=True)
class MarkerFunctionArgs:
    bucket: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    account: str
    source_dir: Path
    marker_name: str = ".s3keep"
    log_level: str = "INFO"
    trigger: Trigger = "bucket-notification"
    """`eventbridge` for a bucket this stack does not own: its notification configuration
    (one per bucket) stays untouched; the bucket must send events to EventBridge."""
    reserved_concurrency: int | None = None
    """None: the account's unreserved pool. A number bounds the S3 request rate a burst of
    uploads can cause (and takes that much from the account's pool)."""
    timeout_seconds: int = 30
    memory_mb: int = 128
    log_retention_days: int = 30
    # Lambda's async retries for an event that still fails; then the failure queue.
    maximum_retry_attempts: int = 2
    maximum_event_age_seconds: int = 6 * 3600
    failure_retention_seconds: int = 14 * 24 * 3600
    platform_prefixes: tuple[str, ...] = PLATFORM_PREFIXES
    """Top-level prefixes of the bucket that are not workspaces: never marked."""

    def __post_init__(self) -> None:
        if not self.account.isdigit() or len(self.account) != 12:
            raise ValueError(f"account must be a 12-digit AWS account id, got {self.account!r}")
        if self.reserved_concurrency is not None and not 1 <= self.reserved_concurrency <= 1000:
            raise ValueError("reserved concurrency must be between 1 and 1000, or None")
        if self.trigger not in ("bucket-notification", "eventbridge"):
            raise ValueError(f"trigger must be bucket-notification or eventbridge: {self.trigger}")
        missing = [n for n in CODE_FILES if not (self.source_dir / n).is_file()]
        if missing:
            raise ValueError(f"{', '.join(missing)} missing from {self.source_dir}")
        if not 0 <= self.maximum_retry_attempts <= 2:
            raise ValueError("Lambda allows 0 to 2 async retry attempts")
        for prefix in self.platform_prefixes:
            # Used in an S3 ARN and an EventBridge wildcard: no `*`, `?`, `/` or `\\`.
            if not _PREFIX_NAME.fullmatch(prefix):
                raise ValueError(
                    f"platform prefix must be a plain name like a workspace's: {prefix!r}"
                )


class MarkerFunction(pulumi.ComponentResource):
    function_arn: pulumi.Output[str]
    function_name: pulumi.Output[str]
    failure_queue_url: pulumi.Output[str]
    failure_queue_name: pulumi.Output[str]
    code_sha256: str
    """SHA-256 of the archive's content (names and bytes), known before deployment."""

    def __init__(
        self, name: str, args: MarkerFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("eodh:storage:MarkerFunction", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        archive, code_sha256 = code_archive(args.source_dir)
        failures = aws.sqs.Queue(
            f"{name}-failures",
            message_retention_seconds=args.failure_retention_seconds,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", retention_in_days=args.log_retention_days, opts=child
        )
        role = aws.iam.Role(
            f"{name}-role",
            description="The .s3keep marker function",
            assume_role_policy=json.dumps(lambda_trust_policy()),
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-permissions",
            role=role.id,
            policy=pulumi.Output.all(args.bucket_arn, log_group.arn, failures.arn).apply(
                lambda arns: json.dumps(
                    marker_function_policy(
                        arns[0], args.marker_name, arns[1], arns[2], args.platform_prefixes
                    )
                )
            ),
            opts=child,
        )
        function = aws.lambda_.Function(
            f"{name}-function",
            description="Creates the .s3keep markers that make S3 directories visible",
            runtime=RUNTIME,
            architectures=[ARCHITECTURE],
            handler=HANDLER,
            code=archive,
            role=role.arn,
            timeout=args.timeout_seconds,
            memory_size=args.memory_mb,
            # Left out (not -1) when unset, so the provider's own default applies.
            reserved_concurrent_executions=args.reserved_concurrency,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                # The function tells its own writes by its role session: the role's unique
                # id makes that exact (the session name is the function's name).
                variables={
                    "MARKER_NAME": args.marker_name,
                    "LOG_LEVEL": args.log_level,
                    "EXECUTION_ROLE_ID": role.unique_id,
                    "PLATFORM_PREFIXES": ",".join(args.platform_prefixes),
                    # Where a walk cut short records what it left unmarked (the handler).
                    "FAILURE_QUEUE_URL": failures.url,
                }
            ),
            tags={"eodh:code-sha256": code_sha256},
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="Text", log_group=log_group.name
            ),
            # The first invocation must already be allowed to log and report failures.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )
        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-async",
            function_name=function.name,
            maximum_retry_attempts=args.maximum_retry_attempts,
            maximum_event_age_in_seconds=args.maximum_event_age_seconds,
            destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                    destination=failures.arn
                )
            ),
            opts=child,
        )
        if args.trigger == "bucket-notification":
            permission = aws.lambda_.Permission(
                f"{name}-s3-invoke",
                action="lambda:InvokeFunction",
                function=function.name,
                principal="s3.amazonaws.com",
                # Both: a bucket ARN carries no account, and bucket names can be re-registered
                # by someone else after deletion.
                source_arn=args.bucket_arn,
                source_account=args.account,
                opts=child,
            )
            aws.s3.BucketNotification(
                f"{name}-notification",
                bucket=args.bucket,
                lambda_functions=[
                    aws.s3.BucketNotificationLambdaFunctionArgs(
                        lambda_function_arn=function.arn, events=["s3:ObjectCreated:*"]
                    )
                ],
                # S3 checks that it may invoke the function when the notification is saved.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
            )
        else:
            rule = aws.cloudwatch.EventRule(
                f"{name}-object-created",
                description="The workspace bucket's new objects, for the .s3keep function",
                event_pattern=pulumi.Output.from_input(args.bucket).apply(
                    lambda b: json.dumps(object_created_pattern(b, args.platform_prefixes))
                ),
                opts=child,
            )
            permission = aws.lambda_.Permission(
                f"{name}-events-invoke",
                action="lambda:InvokeFunction",
                function=function.name,
                principal="events.amazonaws.com",
                source_arn=rule.arn,
                source_account=args.account,
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-object-created-target",
                rule=rule.name,
                arn=function.arn,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
            )
        self.function_arn = function.arn
        self.function_name = function.name
        self.failure_queue_url = failures.url
        self.failure_queue_name = failures.name
        self.code_sha256 = code_sha256
        self.register_outputs(
            {
                "function_arn": self.function_arn,
                "failure_queue_url": self.failure_queue_url,
                "code_sha256": code_sha256,
            }
        )
