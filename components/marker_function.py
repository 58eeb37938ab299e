"""The `.s3keep` marker function: makes every directory in the workspace bucket visible.

Source: lambda/s3keep (standard library + the runtime's boto3), packaged as an archive.
S3 invokes it asynchronously for every created object; Lambda retries a failed event and
then hands it to an SQS queue, so no event is silently lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from .iam_documents import lambda_trust_policy, marker_function_policy

RUNTIME = "python3.13"
ARCHITECTURE = "arm64"
HANDLER = "handler.handler"


@dataclass(frozen=True)
class MarkerFunctionArgs:
    bucket: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    account: str
    source_dir: Path
    marker_name: str = ".s3keep"
    log_level: str = "INFO"
    # Bounds the S3 request rate a burst of uploads can cause, and keeps this function from
    # starving others in the account of concurrency.
    reserved_concurrency: int = 10
    timeout_seconds: int = 30
    memory_mb: int = 128
    log_retention_days: int = 30
    # Lambda's async retries for an event that still fails; then the failure queue.
    maximum_retry_attempts: int = 2
    maximum_event_age_seconds: int = 6 * 3600
    failure_retention_seconds: int = 14 * 24 * 3600

    def __post_init__(self) -> None:
        if not (self.source_dir / "handler.py").is_file():
            raise ValueError(f"no handler.py in {self.source_dir}")
        if not self.account.isdigit() or len(self.account) != 12:
            raise ValueError(f"account must be a 12-digit AWS account id, got {self.account!r}")
        if not 1 <= self.reserved_concurrency <= 1000:
            raise ValueError("reserved concurrency must be between 1 and 1000")
        if not 0 <= self.maximum_retry_attempts <= 2:
            raise ValueError("Lambda allows 0 to 2 async retry attempts")


class MarkerFunction(pulumi.ComponentResource):
    function_arn: pulumi.Output[str]
    failure_queue_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: MarkerFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("eodh:storage:MarkerFunction", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

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
                    marker_function_policy(arns[0], args.marker_name, arns[1], arns[2])
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
            code=pulumi.FileArchive(str(args.source_dir)),
            role=role.arn,
            timeout=args.timeout_seconds,
            memory_size=args.memory_mb,
            reserved_concurrent_executions=args.reserved_concurrency,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={"MARKER_NAME": args.marker_name, "LOG_LEVEL": args.log_level}
            ),
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
        self.function_arn = function.arn
        self.failure_queue_url = failures.url
        self.register_outputs(
            {"function_arn": self.function_arn, "failure_queue_url": self.failure_queue_url}
        )
