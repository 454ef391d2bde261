"""A scenario's ``deny`` (what an SCP or permission boundary would do) becomes an explicit Deny on
that role, and its ``alert_subscriptions`` model a subscription nobody confirmed."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from smart_vault_sim.scenario import ScenarioError, parse_scenario
from smart_vault_sim.simulator import Simulation

BASE: dict[str, Any] = {
    "settings": {"keep_min": 1},
    "instances": [{"name": "web-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]}],
    "existing_snapshots": [{"label": "old", "instance": "web-1", "age_days": 30}],
    "runs": [{"at": "2026-11-26T03:00:00Z"}],
}


def test_a_denied_action_fails_for_that_role_only_with_an_explicit_deny():
    sim = Simulation(parse_scenario({**BASE, "deny": [{"role": "prune", "action": "ec2:DeleteSnapshot"}]}))
    with sim.emulated():
        [sid] = list(sim.account.labels)
        sim.tap.activate(True, "prune")
        try:
            with pytest.raises(ClientError) as raised:
                boto3.client("ec2").delete_snapshot(SnapshotId=sid, DryRun=True)
        finally:
            sim.tap.activate(False)
    assert raised.value.response["Error"]["Code"] == "UnauthorizedOperation"
    assert "with an explicit deny" in raised.value.response["Error"]["Message"]


def test_a_deny_can_be_narrowed_to_a_resource_pattern():
    deny = {"role": "prune", "action": "ec2:DeleteSnapshot", "resource": "arn:aws:ec2:us-west-2::snapshot/*"}
    sim = Simulation(parse_scenario({**BASE, "deny": [deny]}))
    with sim.emulated():
        [sid] = list(sim.account.labels)
        sim.tap.activate(True, "prune")
        try:
            with pytest.raises(ClientError) as raised:
                boto3.client("ec2").delete_snapshot(SnapshotId=sid, DryRun=True)
        finally:
            sim.tap.activate(False)
    assert raised.value.response["Error"]["Code"] == "DryRunOperation"  # another Region's snapshots only


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"role": "pruner", "action": "ec2:DeleteSnapshot"}, "deny[0].role"),
        ({"role": "prune", "action": "ec2:DeleteSnapshots"}, "deny[0].action"),
        ({"role": "prune", "action": "ec2:DeleteSnapshot", "resource": "snap-1"}, "deny[0].resource"),
        ({"role": "prune", "action": "ec2:DeleteSnapshot", "effect": "Deny"}, "deny[0].effect"),
    ],
)
def test_an_unknown_role_action_or_field_is_an_error_naming_it(entry: dict[str, Any], field: str):
    with pytest.raises(ScenarioError) as raised:
        parse_scenario({**BASE, "deny": [entry]})
    assert raised.value.field == field


def test_a_pending_subscription_is_listed_as_pending_confirmation():
    subscriptions = [{"endpoint": "ops@example.com"}, {"endpoint": "oncall@example.com", "status": "pending"}]
    sim = Simulation(parse_scenario({**BASE, "alert_subscriptions": subscriptions}))
    with sim.emulated():
        listed = boto3.client("sns").list_subscriptions_by_topic(TopicArn=sim.account.topic_arn)["Subscriptions"]
    arns = {s["Endpoint"]: s["SubscriptionArn"] for s in listed}
    assert arns["oncall@example.com"] == "PendingConfirmation"
    assert arns["ops@example.com"].startswith(sim.account.topic_arn + ":")
