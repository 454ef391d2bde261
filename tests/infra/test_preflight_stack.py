"""The weekly preflight: its schedule setting and the PreflightFailed alarm."""

from __future__ import annotations

import pytest

from smart_vault.errors import InvalidInputError
from smart_vault_infra.config import DEFAULT_PREFLIGHT_SCHEDULE, DeploymentConfig


def test_the_preflight_runs_weekly_by_default_and_can_be_switched_off():
    assert DeploymentConfig.from_context({}).preflight_schedule == DEFAULT_PREFLIGHT_SCHEDULE
    assert DeploymentConfig.from_context({"preflight_schedule": "rate(1 day)"}).preflight_schedule == "rate(1 day)"
    assert DeploymentConfig.from_context({"preflight_schedule": "off"}).preflight_schedule is None


def test_a_bad_preflight_schedule_is_an_error_naming_it():
    with pytest.raises(InvalidInputError) as caught:
        DeploymentConfig.from_context({"preflight_schedule": "weekly"})
    assert caught.value.field == "context preflight_schedule"


def test_the_last_failed_preflight_raises_an_alarm(template):
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "PreflightFailed",
            "Statistic": "Maximum",
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
        },
    )
