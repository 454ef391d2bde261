"""The fleet-size targets, measured by counting what AWS bills and throttles (no timers)."""

import pytest

from smart_vault_sim.bench import fleet_scenario
from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import simulate


@pytest.mark.slow
def test_300_instances_with_two_volumes_each():
    report = simulate(parse_scenario(fleet_scenario(300)))
    run = report["runs"][0]
    execution, calls = run["execution"], run["api_calls"]
    assert execution["status"] == "SUCCEEDED"
    assert execution["child_executions"] == 300
    assert len(run["created"]) == 600
    assert execution["state_transitions"] <= 8 * 300
    assert calls["ec2:CreateSnapshots"] == 300
    # Three per instance (find this run's, check, prune) and one paginated scan for orphans.
    assert calls["ec2:DescribeSnapshots"] <= 3 * 300 + 1
    # Nothing expired, so nothing is journaled, no AMI lookup and no approval read.
    assert "ec2:DescribeImages" not in calls
    # Each Prune reads its journal (absent: a retry or redrive may have deleted before), Notify
    # each outcome record (from its thread pool, counted since the tap sees every thread); the
    # orphan step and Notify read the inventory, Notify the orphan report.
    assert calls["s3:GetObject"] <= 2 * 300 + 4
    # The parent's history does not grow with the fleet; each child's is short.
    assert execution["history_events"] < 100
    assert execution["max_child_history_events"] < 100
    assert execution["largest_payload_bytes"] < 16 * 1024
