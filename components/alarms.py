"""CloudWatch alarms on the marker function: it fails, it is throttled, failed events wait.

S3 and EventBridge invoke the function asynchronously; an event that still fails after
Lambda's retries lands in the failure queue and nobody sees it unless an alarm says so. Each
alarm is named after what the operator does next, and that is a section of
docs/troubleshooting.md. Notifications go to one SNS topic per stack (`alarmTopicArn`), or
nowhere (the alarm still changes state in the console).

Metrics: AWS/Lambda `Errors` and `Throttles` by `FunctionName` (Lambda developer guide,
"Types of metrics for Lambda functions"); AWS/SQS `ApproximateNumberOfMessagesVisible` and
`ApproximateAgeOfOldestMessage` by `QueueName` (SQS developer guide, "Available CloudWatch
metrics for Amazon SQS").
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

TROUBLESHOOTING = "docs/troubleshooting.md"
# A failed event waits at most the queue's retention (14 days); a day is enough warning.
OLDEST_FAILURE_SECONDS = 24 * 3600
PERIOD_SECONDS = 300


@dataclass(frozen=True)
class AlarmSpec:
    role: str
    """The child resource's suffix: `<component>-<role>`."""
    action: str
    """What the operator does next: the alarm's name after its prefix."""
    section: str
    """The docs/troubleshooting.md section that says how."""
    namespace: str
    metric: str
    dimension: str
    """`FunctionName` or `QueueName`: which of the two names the metric is kept by."""
    statistic: str
    threshold: float


ALARMS = (
    AlarmSpec(
        "errors",
        "marker function failing: read its log",
        "Marker function failing",
        "AWS/Lambda",
        "Errors",
        "FunctionName",
        "Sum",
        1,
    ),
    AlarmSpec(
        "throttles",
        "marker function throttled: raise markerReservedConcurrency",
        "Marker function throttled",
        "AWS/Lambda",
        "Throttles",
        "FunctionName",
        "Sum",
        1,
    ),
    AlarmSpec(
        "failures-queued",
        "failed marker events queued: fix the cause, then replay them (tools.replay_markers)",
        "Marker function failing",
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        "Maximum",
        1,
    ),
    AlarmSpec(
        "failures-old",
        "marker events failed a day ago: replay them (tools.replay_markers) before they expire",
        "Marker function failing",
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        "QueueName",
        "Maximum",
        OLDEST_FAILURE_SECONDS,
    ),
)


def anchor(section: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return "#" + "".join(c for c in section.lower().replace(" ", "-") if c.isalnum() or c == "-")


@dataclass(frozen=True)
class MarkerAlarmsArgs:
    name_prefix: str
    """Starts every alarm's name: alarm names are unique per account and region."""
    function_name: pulumi.Input[str]
    failure_queue_name: pulumi.Input[str]
    topic_arn: str | None = None

    def __post_init__(self) -> None:
        if not self.name_prefix.strip():
            raise ValueError("name_prefix must name the stack (alarm names are account-wide)")
        if self.topic_arn is not None and not self.topic_arn.startswith("arn:aws:sns:"):
            raise ValueError(f"topic_arn must be an SNS topic ARN, got {self.topic_arn!r}")


class MarkerAlarms(pulumi.ComponentResource):
    alarm_names: list[pulumi.Output[str]]

    def __init__(
        self, name: str, args: MarkerAlarmsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("eodh:monitoring:MarkerAlarms", name, None, opts)
        actions = [args.topic_arn] if args.topic_arn else []
        names = {"FunctionName": args.function_name, "QueueName": args.failure_queue_name}
        self.alarm_names = []
        for spec in ALARMS:
            alarm = aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.role}",
                name=f"{args.name_prefix} {spec.action}",
                alarm_description=(
                    f"{spec.action}. How: {TROUBLESHOOTING}{anchor(spec.section)} "
                    f'("{spec.section}").'
                ),
                namespace=spec.namespace,
                metric_name=spec.metric,
                dimensions={spec.dimension: names[spec.dimension]},
                statistic=spec.statistic,
                period=PERIOD_SECONDS,
                evaluation_periods=1,
                threshold=spec.threshold,
                comparison_operator="GreaterThanOrEqualToThreshold",
                # No data means no invocations or an empty queue: nothing is wrong.
                treat_missing_data="notBreaching",
                alarm_actions=actions,
                ok_actions=actions,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.alarm_names.append(alarm.name)
        self.register_outputs({"alarm_names": self.alarm_names})
