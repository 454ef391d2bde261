"""The archive tier is opt-in: only a stack with archive_after_days lets Prune call
ModifySnapshotTier, on this deployment's snapshots only, and that stack is cdk-nag (synth) and
parliament clean too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .cfn_values import policy_documents
from .test_policy_lint import _acknowledgment, _findings

ROOT = Path(__file__).resolve().parents[2]


def _prune_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for logical_id, what, document in policy_documents(template)
        if logical_id.startswith("PruneRoleDefaultPolicy")
        for statement in document.get("Statement", ())
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else list(actions)


@pytest.fixture(scope="module")
def archive_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from app import build_app

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context.update(retention={"daily": 7, "weekly": 4, "monthly": 12, "yearly": 1}, archive_after_days=30)
    app = build_app(context=context, outdir=str(tmp_path_factory.mktemp("cdk.out")))
    return dict(app.synth().get_stack_by_name("SmartVault").template)  # cdk-nag runs in synth


def test_only_an_archiving_stack_may_modify_snapshot_tiers(synthesized, archive_template):
    assert not any("ec2:ModifySnapshotTier" in _actions(s) for s in _prune_statements(synthesized["template"]))
    (modify,) = [s for s in _prune_statements(archive_template) if "ec2:ModifySnapshotTier" in _actions(s)]
    assert _actions(modify) == ["ec2:ModifySnapshotTier"]
    # Only snapshots carrying this deployment's marker (aws:ResourceTag), never "*"
    assert modify["Condition"] == {"StringEquals": {"aws:ResourceTag/smart-vault:managed-by": "smart-vault"}}
    assert modify["Resource"].endswith("::snapshot/*")
    (status,) = [s for s in _prune_statements(archive_template) if "ec2:DescribeSnapshotTierStatus" in _actions(s)]
    assert status["Resource"] == "*"  # Describe*: no resource-level permissions


def test_the_archiving_stack_is_parliament_clean(archive_template):
    unacknowledged = [f for f in _findings(archive_template) if _acknowledgment(f[0], f[2], f[3]) is None]
    assert unacknowledged == []
