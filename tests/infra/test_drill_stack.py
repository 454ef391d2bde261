"""The restore drill in the stack: its own state machine on its own weekly schedule, its alarms,
its definition's placeholders, and its configuration validated at synth."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from smart_vault.constants import DRILL_SUBSTITUTION_FUNCTION_ARNS, SUBSTITUTION_TOPIC
from smart_vault.errors import InvalidInputError
from smart_vault_infra.config import DEFAULT_DRILL_SCHEDULE, DeploymentConfig
from smart_vault_infra.paths import drill_definition_path


def _resources(synthesized: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in synthesized["template"]["Resources"].items() if v["Type"] == kind}


def test_the_drill_has_its_own_state_machine_and_weekly_schedule(synthesized):
    machines = {
        v["Properties"]["StateMachineName"]
        for v in _resources(synthesized, "AWS::StepFunctions::StateMachine").values()
    }
    assert machines == {"smart-vault-backup", "smart-vault-drill"}
    schedules = _resources(synthesized, "AWS::Scheduler::Schedule")
    drill = schedules["DrillSchedule"]["Properties"]
    assert drill["ScheduleExpression"] == DEFAULT_DRILL_SCHEDULE == "cron(0 5 ? * SUN *)"
    assert "DeadLetterConfig" in drill["Target"]
    assert json.loads(drill["Target"]["Input"])["time"] == "<aws.scheduler.scheduled-time>"


def test_drill_alarms_fire_on_a_failed_drill_and_on_two_intervals_without_a_passed_one(synthesized):
    alarms = {
        v["Properties"]["AlarmName"]: v["Properties"]
        for v in _resources(synthesized, "AWS::CloudWatch::Alarm").values()
    }
    failed = alarms["smart-vault-DrillFailed"]
    assert {m.get("Expression") for m in failed["Metrics"]} >= {"failed + timedout + aborted"}
    assert failed["Threshold"] == 0
    silent = alarms["smart-vault-NoSuccessfulDrill"]
    # Weekly: two intervals (336 h) exceed CloudWatch's 7-day evaluation range, so the alarm
    # watches the hours since the last drill that passed, which every drill reports.
    assert silent["MetricName"] == "HoursSinceSuccessfulDrill" and silent["Threshold"] == 336
    assert silent["Period"] * silent["EvaluationPeriods"] <= 7 * 24 * 3600


def test_a_short_drill_interval_alarms_on_silence_too():
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from smart_vault_infra.stack import SmartVaultStack

    config = DeploymentConfig.from_context({"drill_schedule": "rate(1 day)", "drill_interval_hours": 24})
    template = Template.from_stack(SmartVaultStack(App(), "DrillDaily", config=config))
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "smart-vault-NoSuccessfulDrill",
            "MetricName": "DrillSucceeded",
            "EvaluationPeriods": 48,
            "TreatMissingData": "breaching",
        },
    )


def test_every_drill_placeholder_has_a_substitution():
    text = drill_definition_path().read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    assert placeholders == set(DRILL_SUBSTITUTION_FUNCTION_ARNS) | {SUBSTITUTION_TOPIC}


def test_every_drill_task_failure_path_leads_to_cleanup_or_an_alert():
    definition = json.loads(drill_definition_path().read_text())
    item = definition["States"]["DrillInstances"]["ItemProcessor"]["States"]
    for name in ("Restore", "CheckVolumes"):
        (catch,) = item[name]["Catch"]
        assert item[catch["Next"]]["Next"] == "Cleanup", name
    assert item["Cleanup"]["Catch"][0]["Next"] == "CleanupFailed"
    assert item["WaitForVolumes"]["SecondsPath"] == "$.restore.wait_seconds"  # the virtual clock drives it
    assert definition["States"]["Report"]["Catch"][0]["Next"] == "SendFallbackAlert"


@pytest.mark.parametrize(
    ("context", "field"),
    [
        ({"drill_schedule": "weekly"}, "context drill_schedule"),
        ({"drill_interval_hours": 0}, "context drill_interval_hours"),
        ({"drill": {"instances_per_drill": 21}}, "context drill.instances_per_drill"),
        ({"drill": {"timeout_seconds": 10}}, "context drill.timeout_seconds"),
    ],
)
def test_drill_configuration_is_validated_at_synth(context, field):
    with pytest.raises(InvalidInputError) as caught:
        DeploymentConfig.from_context(context)
    assert caught.value.field == field
