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
    assert calls["ec2:DescribeSnapshots"] <= 3 * 300
    # The parent's history does not grow with the fleet; each child's is short.
    assert execution["history_events"] < 100
    assert execution["max_child_history_events"] < 100
    assert execution["largest_payload_bytes"] < 16 * 1024
