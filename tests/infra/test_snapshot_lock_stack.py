"""The stack with snapshot lock and a Recycle Bin rule configured: one more synthesis (with cdk-nag
and cfn-guard, as every synthesis), checked for the rule, the lock IAM, the warning, cfn-lint and
parliament. The default stack (the session fixture) must have neither."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from smart_vault.constants import TAG_MANAGED

from .cfn_values import policy_documents
from .conftest import ROOT
from .test_policy_lint import _acknowledgment, _findings

LOCK = {"mode": "governance", "days": 10}


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from app import build_app

    outdir = tmp_path_factory.mktemp("cdk.out.lock")
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = build_app(context={**context, "lock": LOCK, "recycle_bin_days": 7}, outdir=str(outdir))
    stack = app.synth().get_stack_by_name("SmartVault")
    return {
        "template": stack.template,
        "path": outdir / stack.template_file,
        "messages": [(m.level.value.lower(), str(m.entry.data)) for m in stack.messages],
    }


def _statements(template: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    return [
        statement
        for logical_id, _, document in policy_documents(template)
        if logical_id.startswith(role_prefix)
        for statement in document.get("Statement", [])
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def test_recycle_bin_rule_is_tag_scoped_to_this_deployment(locked):
    rule = locked["template"]["Resources"]["SnapshotRecycleBinRule"]  # pinned logical id
    assert rule["Type"] == "AWS::Rbin::Rule"
    props = rule["Properties"]
    assert props["ResourceType"] == "EBS_SNAPSHOT"
    assert props["RetentionPeriod"] == {"RetentionPeriodValue": 7, "RetentionPeriodUnit": "DAYS"}
    assert props["ResourceTags"] == [{"ResourceTagKey": TAG_MANAGED, "ResourceTagValue": "smart-vault"}]
    assert "LockConfiguration" not in props  # AWS cannot lock a tag-level rule


def test_no_recycle_bin_rule_and_no_lock_permission_unless_configured(synthesized):
    resources = synthesized["template"]["Resources"]
    assert not [k for k, v in resources.items() if v["Type"] == "AWS::Rbin::Rule"]
    granted = {a for s in _statements(synthesized["template"], "") for a in _actions(s)}
    assert "ec2:LockSnapshot" not in granted
    assert "ec2:DescribeLockedSnapshots" in granted  # prune always checks locks before deleting


def test_only_snapshot_check_and_prune_may_lock_and_only_their_own_snapshots_for_the_set_days(locked):
    # Snapshot locks at creation; Check locks what a throttled LockSnapshot left unlocked (a throttled
    # lock is carried to Check instead of a retry that would snapshot again); Prune adds a lock
    # that is missing (a LockSnapshot that failed on an earlier night): the same
    # conditions on all three.
    template = locked["template"]
    lockers = [
        (logical_id, statement)
        for logical_id, _, document in policy_documents(template)
        for statement in document.get("Statement", [])
        if "ec2:LockSnapshot" in _actions(statement)
    ]
    assert sorted(logical_id.split("Role")[0] for logical_id, _ in lockers) == ["Check", "Prune", "Snapshot"]
    for _, statement in lockers:
        assert statement["Condition"] == {
            "StringEquals": {f"aws:ResourceTag/{TAG_MANAGED}": "smart-vault"},
            "NumericLessThanEquals": {"ec2:SnapshotLockDuration": "10"},
        }
        assert json.dumps(statement["Resource"]).endswith('::snapshot/*"')
    granted = {a for s in _statements(template, "") for a in _actions(s)}
    assert "ec2:UnlockSnapshot" not in granted


def test_synth_warns_with_the_arithmetic_when_the_lock_outlives_retention(locked):
    warnings = [text for level, text in locked["messages"] if level == "warning" and "lock.days" in text]
    assert len(warnings) == 1
    assert "lock.days (10) is longer than retention_days (7)" in warnings[0]
    assert "10 - 7 = 3 days" in warnings[0]
    assert "(10 kept instead of 7)" in warnings[0]
    assert not [text for level, text in locked["messages"] if level == "error"]


def test_locked_stack_passes_cfn_lint_and_parliament(locked):
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(locked["path"])], capture_output=True, text=True)
    assert result.returncode & 3 == 0, result.stdout + result.stderr
    open_findings = [f for f in _findings(locked["template"]) if _acknowledgment(f[0], f[2], f[3]) is None]
    assert open_findings == []
