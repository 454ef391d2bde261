"""Recycle Bin: an optional retention rule that keeps this deployment's deleted snapshots
recoverable for ``recycle_bin_days``.

The rule is tag-level (ResourceTags = the managed marker), so it never holds another team's
snapshots. AWS facts (Amazon EBS User Guide, "Recycle Bin" and "Lock a Recycle Bin retention
rule"; Recycle Bin API Reference, CreateRule and LockRule): retention 1-365 days; only
Region-level rules can be locked ("You can't lock tag-level retention rules"), so this rule can be
changed or deleted by anyone with rbin:UpdateRule / rbin:DeleteRule; snapshots in the Recycle Bin
are billed at the same rate as regular snapshots for as long as they stay there.
"""

from __future__ import annotations

from aws_cdk import aws_rbin as rbin
from constructs import Construct

from smart_vault.constants import TAG_MANAGED
from smart_vault_infra.config import DeploymentConfig

RULE_ID = "SnapshotRecycleBinRule"  # logical id: pinned by tests/infra/test_logical_ids.py


def recycle_bin_rule(scope: Construct, *, config: DeploymentConfig) -> rbin.CfnRule | None:
    days = config.settings.recycle_bin_days
    if days is None:
        return None
    return rbin.CfnRule(
        scope,
        RULE_ID,
        resource_type="EBS_SNAPSHOT",
        description=f"Smart Vault {config.deployment_id}: deleted snapshots stay recoverable for {days} days",
        retention_period=rbin.CfnRule.RetentionPeriodProperty(
            retention_period_value=days, retention_period_unit="DAYS"
        ),
        resource_tags=[
            rbin.CfnRule.ResourceTagProperty(resource_tag_key=TAG_MANAGED, resource_tag_value=config.deployment_id)
        ],
    )
