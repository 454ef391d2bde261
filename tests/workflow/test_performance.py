"""The fleet-size targets, measured by counting what AWS bills and throttles (no timers)."""

import pytest

from smart_vault_sim import bench
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


def test_the_bench_reports_its_figures_and_judges_each_target(tmp_path):
    # Given a small fleet measured as `make bench` measures its cases
    m = bench.measure(12, snapshot_seconds=bench.QUICK_SNAPSHOT_SECONDS)
    assert m["status"] == "SUCCEEDED"
    assert m["throttled_by_action"] == {}
    # Six states per child (Pace, Snapshot, Wait, Check, Choice, Prune) and the parent's share
    assert 6 <= m["transitions_per_instance"] <= 7
    assert m["describe_snapshots_per_instance"] <= 3 + 1 / 12  # + the orphan scan
    # When the figures are judged as a 10,000-instance case, every target gets a verdict
    verdicts = {name: met for name, _, met in bench.targets([{**m, "instances": 10000}])}
    assert verdicts["10,000 instances, 30-second snapshots: <= 7 state transitions per instance"]
    assert verdicts["10,000 instances, 30-second snapshots: Describe calls within their buckets"]
    # And the page and the plot are written
    assert bench.write_docs([m], tmp_path) == tmp_path / "benchmarks.md"
    page = (tmp_path / "benchmarks.md").read_text()
    assert "| 12 instances, 30-second snapshots |" in page
    assert (tmp_path / "benchmarks.png").stat().st_size > 0
