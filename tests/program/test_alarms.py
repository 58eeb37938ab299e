"""The marker function's alarms, for every stack: what they watch, whom they tell, and that
CloudWatch (moto's) takes their definitions and finds them for the metrics Lambda and SQS
publish."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest
from moto import mock_aws

from components.alarms import ALARMS, anchor
from eodh_jupyterhub.offline import Recording, run_with_config
from eodh_jupyterhub.settings import SettingsError
from eodh_jupyterhub.stack_config import PROJECT_ROOT
from tests.images.doubles import REGION, TEST_KEYS
from tests.support.stacks import pulumi_config

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC_KEY = "eodh-jupyterhub:alarmTopicArn"
TOPIC = f"arn:aws:sns:{REGION}:123456789012:eodhp-alerts"


def alarms(recording: Recording) -> dict[str, dict[str, Any]]:
    return {a.name: a.plain_inputs for a in recording.of_type(ALARM)}


def test_every_stack_alarms_on_the_function_and_its_failure_queue(recording: Recording, stack):
    function = recording.named("s3keep-function").outputs["name"]
    queue = recording.named("s3keep-failures").outputs["name"]
    found = alarms(recording)
    watched = {(a["namespace"], a["metricName"]): a["dimensions"] for a in found.values()}
    assert watched == {
        ("AWS/Lambda", "Errors"): {"FunctionName": function},
        ("AWS/Lambda", "Throttles"): {"FunctionName": function},
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"): {"QueueName": queue},
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"): {"QueueName": queue},
    }
    for alarm in found.values():
        # Alarm names are unique per account and region: each stack's carry its name.
        assert alarm["name"].startswith(f"eodh-jupyterhub {stack}: ")
        assert alarm["treatMissingData"] == "notBreaching"
        # No topic configured in the stack files: the alarms notify nobody (yet).
        assert alarm["alarmActions"] == [] and alarm["okActions"] == []


def test_each_alarm_points_to_its_troubleshooting_section() -> None:
    doc = (PROJECT_ROOT / "docs" / "troubleshooting.md").read_text()
    headings = {anchor(h) for h in re.findall(r"^## (.+)$", doc, re.M)}
    recording = run_with_config("dev", pulumi_config("dev"))
    for spec in ALARMS:
        assert anchor(spec.section) in headings, spec.section
    for alarm in alarms(recording).values():
        link = re.search(r"docs/troubleshooting\.md(#[a-z0-9-]+)", alarm["alarmDescription"])
        assert link and link.group(1) in headings, alarm["alarmDescription"]


def test_a_topic_receives_alarm_and_recovery() -> None:
    recording = run_with_config("dev", {**pulumi_config("dev"), TOPIC_KEY: TOPIC})
    for alarm in alarms(recording).values():
        assert alarm["alarmActions"] == [TOPIC] and alarm["okActions"] == [TOPIC]


@pytest.mark.parametrize(
    "value",
    [
        "arn:aws:sns:us-east-1:123456789012:eodhp-alerts",  # another region
        "arn:aws:sqs:eu-west-2:123456789012:eodhp-alerts",
        "eodhp-alerts",
    ],
)
def test_a_topic_elsewhere_is_refused_by_name(value: str) -> None:
    with pytest.raises(
        SettingsError,
        match=r"(?s)Pulumi\.dev\.yaml.*alarmTopicArn: expected an SNS topic ARN in eu-west-2",
    ):
        run_with_config("dev", {**pulumi_config("dev"), TOPIC_KEY: value})


def put_metric_alarm_args(inputs: dict[str, Any]) -> dict[str, Any]:
    """The provider's PutMetricAlarm call for these inputs (terraform-provider-aws
    internal/service/cloudwatch/metric_alarm.go expandPutMetricAlarmInput)."""
    return {
        "AlarmName": inputs["name"],
        "AlarmDescription": inputs["alarmDescription"],
        "Namespace": inputs["namespace"],
        "MetricName": inputs["metricName"],
        "Dimensions": [{"Name": k, "Value": v} for k, v in inputs["dimensions"].items()],
        "Statistic": inputs["statistic"],
        "Period": int(inputs["period"]),
        "EvaluationPeriods": int(inputs["evaluationPeriods"]),
        "Threshold": float(inputs["threshold"]),
        "ComparisonOperator": inputs["comparisonOperator"],
        "TreatMissingData": inputs["treatMissingData"],
        "AlarmActions": inputs["alarmActions"],
        "OKActions": inputs["okActions"],
        "ActionsEnabled": True,
    }


def test_cloudwatch_takes_the_alarms_and_finds_them_by_the_published_metrics() -> None:
    with mock_aws():
        session = boto3.Session(region_name=REGION, **TEST_KEYS)
        topic = session.client("sns").create_topic(Name="eodhp-alerts")["TopicArn"]
        recording = run_with_config("staging", {**pulumi_config("staging"), TOPIC_KEY: topic})
        cloudwatch = session.client("cloudwatch")
        for inputs in alarms(recording).values():
            cloudwatch.put_metric_alarm(**put_metric_alarm_args(inputs))
        described = cloudwatch.describe_alarms(AlarmNamePrefix="eodh-jupyterhub staging: ")
        assert len(described["MetricAlarms"]) == len(ALARMS)
        assert all(a["AlarmActions"] == [topic] for a in described["MetricAlarms"])
        # The dimension Lambda publishes its metrics under is the function's name.
        function = recording.named("s3keep-function").outputs["name"]
        for metric, action in (("Errors", "read its log"), ("Throttles", "raise")):
            (found,) = cloudwatch.describe_alarms_for_metric(
                MetricName=metric,
                Namespace="AWS/Lambda",
                Dimensions=[{"Name": "FunctionName", "Value": function}],
            )["MetricAlarms"]
            assert action in found["AlarmName"]
