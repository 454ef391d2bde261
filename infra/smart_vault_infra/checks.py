"""Acknowledging findings of the synth-time gates (cdk-nag AwsSolutions and cfn-guard's Control
Tower rules) on the construct they concern, with the reason they are acceptable there."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

# Acknowledgment ids of cdk-validator-cfnguard findings are prefixed with the plugin's name.
GUARD = "cdk-validator-cfnguard::"


def acknowledge(scope: IConstruct, rule: str, reason: str, *findings: str) -> None:
    """Acknowledge a finding on one construct (and its children); findings narrow an IAM5 rule."""
    ids = [f"{rule}[{finding}]" for finding in findings] or [rule]
    for finding_id in ids:
        Validations.of(scope).acknowledge(Acknowledgment(id=finding_id, reason=reason))


def acknowledge_log_retention(log_group: IConstruct, days: int) -> None:
    if days < 365:
        acknowledge(
            log_group,
            GUARD + "cloudwatch_log_group_retention_period_check",
            f"CT.CLOUDWATCH.PR.2: operational logs are kept log_retention_days ({days}), the "
            "operator's choice; every run's audit record is kept in S3 for audit_retention_days.",
        )
