"""Stateful resources keep their logical ids: a changed id makes CloudFormation replace the resource.

Pinned as they were before the stack became a composition of constructs. The key and the bucket
are retained (a new id orphans them and creates empty ones); the topic's subscriptions would need
confirming again; the log groups, the state machine and the dashboard have fixed names, so a
replacement would fail on the name already in use.
"""

from __future__ import annotations

import pytest

PINNED = {
    "Key961B73FD": "AWS::KMS::Key",
    "InventoryBucketA869B8CB": "AWS::S3::Bucket",
    "AlertTopic2720D535": "AWS::SNS::Topic",
    "AlertTopicopsexamplecom6DA82EC4": "AWS::SNS::Subscription",
    "DiscoverLogs15B23D6A": "AWS::Logs::LogGroup",
    "SnapshotLogs46F7B051": "AWS::Logs::LogGroup",
    "CheckLogs9B0D688B": "AWS::Logs::LogGroup",
    "PruneLogs46B63E14": "AWS::Logs::LogGroup",
    "NotifyLogsC0ABC89F": "AWS::Logs::LogGroup",
    # Added with the copy function, pinned from the start.
    "CopyLogs8205D979": "AWS::Logs::LogGroup",
    "StateMachineLogs3CB16D3C": "AWS::Logs::LogGroup",
    "StateMachine2E01A3A5": "AWS::StepFunctions::StateMachine",
    "Schedule": "AWS::Scheduler::Schedule",
    "Dashboard9E4231ED": "AWS::CloudWatch::Dashboard",
    # Added with the dead letters of the schedule and the status rule, pinned from the start.
    "DeadLetterQueue9F481546": "AWS::SQS::Queue",
    # Added with the restore drill, pinned from the start.
    "DrillLogs6301FA14": "AWS::Logs::LogGroup",
    "DrillCleanupLogs2024CA56": "AWS::Logs::LogGroup",
    "DrillReportLogs512D2E3F": "AWS::Logs::LogGroup",
    "DrillStateMachineLogs193E6A3A": "AWS::Logs::LogGroup",
    "DrillStateMachineAA8CD0AA": "AWS::StepFunctions::StateMachine",
    "DrillSchedule": "AWS::Scheduler::Schedule",
    # Added with the weekly preflight, pinned from the start.
    "PreflightSchedule": "AWS::Scheduler::Schedule",
    # Added with application consistency, pinned from the start.
    "ConsistencyLogs15182810": "AWS::Logs::LogGroup",
}
RETAINED = {"Key961B73FD", "InventoryBucketA869B8CB"}


@pytest.mark.parametrize(("logical_id", "kind"), sorted(PINNED.items()))
def test_stateful_resource_keeps_its_logical_id(synthesized, logical_id, kind):
    resources = synthesized["template"]["Resources"]
    assert logical_id in resources, f"{kind} {logical_id} would be replaced"
    assert resources[logical_id]["Type"] == kind


def test_retained_resources_are_still_retained(synthesized):
    resources = synthesized["template"]["Resources"]
    for logical_id in RETAINED:
        assert resources[logical_id]["DeletionPolicy"] == "Retain"
        assert resources[logical_id]["UpdateReplacePolicy"] == "Retain"


def test_every_stateful_resource_is_pinned(synthesized):
    # A new stateful resource must be added above, so a later refactor cannot rename it unnoticed.
    stateful = {
        "AWS::KMS::Key",
        "AWS::S3::Bucket",
        "AWS::SNS::Topic",
        "AWS::SNS::Subscription",
        "AWS::Logs::LogGroup",
        "AWS::StepFunctions::StateMachine",
        "AWS::Scheduler::Schedule",
        "AWS::CloudWatch::Dashboard",
        "AWS::SQS::Queue",
    }
    found = {k for k, v in synthesized["template"]["Resources"].items() if v["Type"] in stateful}
    assert found <= set(PINNED), sorted(found - set(PINNED))
