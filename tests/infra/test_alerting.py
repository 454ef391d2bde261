"""Alerting, the stack parts: every alert path can reach the topic, and what cannot be
delivered lands in an alarmed dead-letter queue. Each test names the AWS document it follows."""

from __future__ import annotations

import json
import re

from smart_vault.constants import (
    METRIC_DIMENSION_STEP,
    METRIC_NAMESPACE,
    METRIC_STEP_FAILED,
    SERVICE_NAME,
    SUBSTITUTION_TOPIC,
)

ALARM_ARNS = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":cloudwatch:",
            {"Ref": "AWS::Region"},
            ":",
            {"Ref": "AWS::AccountId"},
            ":alarm:smart-vault-*",
        ],
    ]
}


def only(synthesized, kind):
    """The one resource of this kind, or of the backup's when the drill has its own (state
    machine, schedule: their logical ids start with Drill)."""
    [(logical_id, resource)] = [
        (k, v)
        for k, v in synthesized["template"]["Resources"].items()
        if v["Type"] == kind and not k.startswith(("Drill", "Preflight"))
    ]
    return logical_id, resource["Properties"]


def of_kind(synthesized, kind):
    return {k: v["Properties"] for k, v in synthesized["template"]["Resources"].items() if v["Type"] == kind}


def by_principal(document, service):
    return [s for s in document["Statement"] if s.get("Principal") == {"Service": service}]


def role_statements(synthesized, role_prefix):
    for policy in of_kind(synthesized, "AWS::IAM::Policy").values():
        if policy["Roles"][0]["Ref"].startswith(role_prefix):
            yield from policy["PolicyDocument"]["Statement"]


def actions(statement):
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def test_cloudwatch_alarms_may_publish_to_the_topic(synthesized):
    # The topic policy CDK writes (enforce_ssl + the EventBridge target) replaces SNS's default
    # policy, so without this statement every alarm action is refused.
    topic_id, _ = only(synthesized, "AWS::SNS::Topic")
    _, policy = only(synthesized, "AWS::SNS::TopicPolicy")
    [statement] = by_principal(policy["PolicyDocument"], "cloudwatch.amazonaws.com")
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sns:Publish"
    assert statement["Resource"] == {"Ref": topic_id}
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {"aws:SourceArn": ALARM_ARNS},
    }
    assert by_principal(policy["PolicyDocument"], "events.amazonaws.com"), "EventBridge still publishes"


def test_every_alarm_is_covered_by_the_source_arn_pattern(synthesized):
    alarms = of_kind(synthesized, "AWS::CloudWatch::Alarm").values()
    topic_id, _ = only(synthesized, "AWS::SNS::Topic")
    for alarm in alarms:
        assert re.fullmatch(r"smart-vault-[A-Za-z]+", alarm["AlarmName"]), alarm["AlarmName"]
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_key_policy_lets_alarms_and_eventbridge_use_the_topic_key(synthesized):
    _, key = only(synthesized, "AWS::KMS::Key")
    document = key["KeyPolicy"]
    [alarms] = by_principal(document, "cloudwatch.amazonaws.com")
    assert set(alarms["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert alarms["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {"aws:SourceArn": ALARM_ARNS},
    }
    [eventbridge] = by_principal(document, "events.amazonaws.com")
    assert set(eventbridge["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    # SNS developer guide, "Key management": aws:SourceAccount/SourceArn/SourceOrgID in a key
    # policy "is not supported for EventBridge-to-encrypted topics" -- a condition drops alerts.
    assert "Condition" not in eventbridge


def test_key_grants_only_for_aws_resources(synthesized):
    # Control Tower CT.KMS.PR.3, fixed rather than acknowledged.
    _, key = only(synthesized, "AWS::KMS::Key")
    [deny] = [s for s in key["KeyPolicy"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Action"] == "kms:CreateGrant"
    assert deny["Condition"] == {
        "BoolIfExists": {"kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false"}
    }


def test_fallback_alert_can_publish_to_the_encrypted_topic(synthesized):
    # The ASL's fallback alert is an sns:publish Task with "TopicArn": "${AlertTopicArn}".
    topic_id, _ = only(synthesized, "AWS::SNS::Topic")
    key_id, _ = only(synthesized, "AWS::KMS::Key")
    _, machine = only(synthesized, "AWS::StepFunctions::StateMachine")
    assert machine["DefinitionSubstitutions"][SUBSTITUTION_TOPIC] == {"Ref": topic_id}
    granted = {(a, str(s["Resource"])) for s in role_statements(synthesized, "StateMachineRole") for a in actions(s)}
    assert ("sns:Publish", str({"Ref": topic_id})) in granted
    key_arn = str({"Fn::GetAtt": [key_id, "Arn"]})
    assert {("kms:GenerateDataKey", key_arn), ("kms:Decrypt", key_arn)} <= granted


def test_schedule_and_rule_target_have_an_encrypted_tls_only_dead_letter_queue(synthesized):
    queue_id, queue = only(synthesized, "AWS::SQS::Queue")
    key_id, _ = only(synthesized, "AWS::KMS::Key")
    queue_arn = {"Fn::GetAtt": [queue_id, "Arn"]}
    assert queue["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    _, schedule = only(synthesized, "AWS::Scheduler::Schedule")
    assert schedule["Target"]["DeadLetterConfig"] == {"Arn": queue_arn}
    _, rule = only(synthesized, "AWS::Events::Rule")
    [target] = rule["Targets"]
    assert target["DeadLetterConfig"] == {"Arn": queue_arn}
    _, policy = only(synthesized, "AWS::SQS::QueuePolicy")
    statements = policy["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    # EventBridge sends dead letters under the queue policy, only for this rule.
    [events] = by_principal(policy["PolicyDocument"], "events.amazonaws.com")
    assert events["Action"] == "sqs:SendMessage"
    assert list(events["Condition"]["ArnEquals"].values()) == [
        {"Fn::GetAtt": [next(iter(of_kind(synthesized, "AWS::Events::Rule"))), "Arn"]}
    ]
    # Scheduler sends them with its execution role ("Configuring a dead-letter queue").
    granted = {(a, str(s["Resource"])) for s in role_statements(synthesized, "ScheduleRole") for a in actions(s)}
    assert ("sqs:SendMessage", str(queue_arn)) in granted
    # The drill's schedule shares the queue.
    drill = of_kind(synthesized, "AWS::Scheduler::Schedule")["DrillSchedule"]
    assert drill["Target"]["DeadLetterConfig"] == {"Arn": queue_arn}
    # So does the weekly preflight's, which starts the backup machine with {"preflight": true}.
    preflight = of_kind(synthesized, "AWS::Scheduler::Schedule")["PreflightSchedule"]
    assert preflight["Target"]["DeadLetterConfig"] == {"Arn": queue_arn}
    assert json.loads(preflight["Target"]["Input"]) == {"preflight": True}
    granted = {(a, str(s["Resource"])) for s in role_statements(synthesized, "DrillScheduleRole") for a in actions(s)}
    assert ("sqs:SendMessage", str(queue_arn)) in granted
    assert ("kms:GenerateDataKey", str({"Fn::GetAtt": [key_id, "Arn"]})) in granted


def test_dead_letters_raise_an_alarm(synthesized):
    queue_id, _ = only(synthesized, "AWS::SQS::Queue")
    [alarm] = [a for a in of_kind(synthesized, "AWS::CloudWatch::Alarm").values() if a.get("Namespace") == "AWS/SQS"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] == 0


def test_scheduler_role_trusts_only_this_accounts_default_schedule_group(synthesized):
    # EventBridge Scheduler, "Confused deputy prevention": aws:SourceArn is the schedule group.
    [role] = [r for k, r in of_kind(synthesized, "AWS::IAM::Role").items() if k.startswith("ScheduleRole")]
    [statement] = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    group = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":scheduler:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":schedule-group/default",
            ],
        ]
    }
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}, "aws:SourceArn": group}
    }


def test_failed_steps_are_alarmed_summed_over_every_step(synthesized):
    [alarm] = [
        a for a in of_kind(synthesized, "AWS::CloudWatch::Alarm").values() if a["AlarmName"].endswith("StepsFailed")
    ]
    [query] = alarm["Metrics"]
    assert query["Expression"] == (
        f"SELECT SUM({METRIC_STEP_FAILED}) FROM SCHEMA({METRIC_NAMESPACE}, {METRIC_DIMENSION_STEP}, service) "
        f"WHERE service = '{SERVICE_NAME}'"
    )
    assert query["ReturnData"] is True
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
