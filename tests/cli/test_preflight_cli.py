"""`smart-vault preflight` against the emulated account: one table, exit 0 only when nothing was
denied, --json for pipelines, --notify for one test alert."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import deployed

SCENARIO = {
    "name": "preflight cli",
    "settings": {"keep_min": 1},
    "instances": [{"name": "web-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]}],
    "existing_snapshots": [{"label": "old", "instance": "web-1", "device": "/dev/xvda", "age_days": 3}],
    "runs": [{"at": "2026-11-26T03:00:00Z"}],
}


def test_a_clean_deployment_passes_and_exits_0(monkeypatch: pytest.MonkeyPatch):
    with deployed(SCENARIO, monkeypatch) as stack:
        before = stack.account.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        result = stack.cli("preflight")
        after = stack.account.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert result.exit_code == 0, result.output
    assert "Smart Vault preflight: passed" in result.output
    assert "ec2:CreateSnapshots" in result.output and "DryRunOperation" in result.output
    assert "record: s3://" in result.output
    assert len(after) == len(before)


def test_a_denied_action_exits_1_naming_role_action_and_resource(monkeypatch: pytest.MonkeyPatch):
    scenario = {**SCENARIO, "deny": [{"role": "prune", "action": "ec2:DeleteSnapshot"}]}
    with deployed(scenario, monkeypatch) as stack:
        result = stack.cli("preflight", "--stack", "SmartVault", "--region", "us-east-1", "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["status"] == "failed"
    [denied] = [c for c in report["checks"] if c["result"] == "denied"]
    assert (denied["role"], denied["action"]) == ("prune", "ec2:DeleteSnapshot")
    assert denied["resource"].startswith("arn:aws:ec2:us-east-1::snapshot/snap-")
    assert "aws sts decode-authorization-message --encoded-message" in denied["reason"]


def test_notify_sends_one_test_alert(monkeypatch: pytest.MonkeyPatch):
    with deployed(SCENARIO, monkeypatch) as stack:
        topic = stack.sim._topic()
        sent = len(topic.sent_notifications)
        result = stack.cli("preflight", "--notify", "--json")
        alerts = topic.sent_notifications[sent:]
    assert result.exit_code == 0, result.output
    assert len(alerts) == 1 and alerts[0][2].startswith("[TEST] Smart Vault preflight")
    report = json.loads(result.output)
    assert {"role": "notify", "action": "sns:Publish"}.items() <= next(
        c for c in report["checks"] if c["action"] == "sns:Publish"
    ).items()
