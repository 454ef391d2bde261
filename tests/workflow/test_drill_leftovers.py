"""What a restore drill could not do is said, not silent — an instance
it cannot drill, a drill volume it could not delete (swept by the next drill) — and a
DeleteVolume fault scoped to an instance fires on that instance's drill volumes."""

from __future__ import annotations

from typing import Any

from smart_vault.constants import TAG_DRILL, TAG_DRILL_EXECUTION
from smart_vault_sim import fleet
from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import DEPLOYMENT_ID, Simulation, simulate
from tests.workflow.conftest import instance
from tests.workflow.test_drill import drill_volumes, scenario

NEXT_DRILL_AT = "2026-12-06T05:00:00Z"


def rows(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in run["drill"]["instances"]}


def test_a_delete_volume_fault_scoped_to_an_instance_fails_that_instances_drill_cleanup():
    # EC2 refuses every DeleteVolume of web-1's drill volumes; db-1's cleanup goes on.
    faults = [{"operation": "DeleteVolume", "instance": "web-1", "error": "UnauthorizedOperation"}]
    run = simulate(parse_scenario(scenario(faults=faults)))["runs"][1]

    assert run["faults_injected"] == {"DeleteVolume:UnauthorizedOperation": 1}
    rows = {r["name"]: r for r in run["drill"]["instances"]}
    assert rows["web-1"]["status"] == "failed" and rows["web-1"]["step"] == "Cleanup"
    assert rows["web-1"]["cleaned_up"] is False and rows["web-1"]["aws_code"] == "UnauthorizedOperation"
    assert rows["db-1"]["status"] == "passed" and rows["db-1"]["cleaned_up"] is True
    assert len(run["volumes_left"]) == 2  # web-1's two devices
    (alert,) = run["alerts"]
    assert "web-1" in alert["message"] and "volumes may be left behind" in alert["message"]


def test_an_instance_in_scope_without_a_restorable_point_is_reported_not_skipped():
    # web-1's snapshots all end in error (no complete point); new-1 is tagged for backup but its
    # CreateSnapshots is refused, so it has no snapshot at all; db-1 backs up and restores.
    data = scenario(
        instances=[
            {**instance("web-1", volumes=2), "snapshot_error": True},
            instance("db-1"),
            instance("new-1"),
        ],
        faults=[{"operation": "CreateSnapshots", "instance": "new-1", "error": "UnauthorizedOperation"}],
    )
    run = simulate(parse_scenario(data))["runs"][1]

    report = run["drill"]
    rows = {r["name"]: r for r in report["instances"]}
    assert rows["db-1"]["status"] == "passed"
    assert rows["web-1"]["status"] == "no_restorable_point"
    assert rows["web-1"]["not_drilled_reason"] == "no completed snapshot of every device"
    assert rows["new-1"]["status"] == "no_restorable_point"
    assert rows["new-1"]["not_drilled_reason"] == "no managed snapshot yet"
    assert rows["new-1"]["recovery_point"] is None and rows["new-1"]["volumes"] == []
    # Not "all passed": a WARNING naming both, though what it restored passed.
    assert report["status"] == "warning" and run["execution"]["status"] == "SUCCEEDED"
    assert run["metrics"]["DrillSucceeded"] == 1
    (alert,) = run["alerts"]
    assert "WARNING" in alert["subject"] and "2 instance(s) without a restorable point" in alert["subject"]
    assert "web-1" in alert["message"] and "no completed snapshot of every device" in alert["message"]
    assert "new-1" in alert["message"] and "no managed snapshot yet" in alert["message"]
    assert run["iam_denied"] == []


def test_the_next_drill_sweeps_the_volumes_a_failed_cleanup_left_and_reports_them():
    # The first drill's cleanup of web-1 is refused once (its two volumes stay); the next week's
    # drill, with no fault, deletes them and says so.
    faults = [{"operation": "DeleteVolume", "instance": "web-1", "error": "UnauthorizedOperation", "count": 1}]
    data = scenario(faults=faults)
    data["runs"].append({"at": NEXT_DRILL_AT, "workflow": "drill"})
    sim = Simulation(parse_scenario(data))
    with sim.emulated():
        sim.run_at(0, sim.scenario.runs[0])
        first = sim.run_at(1, sim.scenario.runs[1])
        backend = fleet.ec2_backend(sim.scenario.region)
        executions = {backend.tags[v][TAG_DRILL_EXECUTION] for v in first["volumes_left"]}
        second = sim.run_at(2, sim.scenario.runs[2])
        left = drill_volumes(sim.scenario.region)

    leftover = sorted(first["volumes_left"])
    assert len(leftover) == 2 and len(executions) == 1
    (execution,) = executions
    assert left == []
    report = second["drill"]
    assert sorted(v["volume_id"] for v in report["leftovers"]) == leftover
    assert {(v["status"], v["instance_id"], v["execution"]) for v in report["leftovers"]} == {
        ("swept", rows(first)["web-1"]["instance_id"], execution)
    }
    # Its own restores passed: a WARNING naming the swept volumes, the execution succeeds.
    assert all(r["status"] == "passed" for r in report["instances"])
    assert report["status"] == "warning" and second["execution"]["status"] == "SUCCEEDED"
    (alert,) = second["alerts"]
    assert "WARNING" in alert["subject"] and "2 leftover drill volume(s) swept" in alert["subject"]
    assert all(f"{v} left by {execution}" in alert["message"] for v in leftover)
    assert second["iam_denied"] == []


def test_the_sweep_leaves_another_deployments_and_attached_drill_volumes_alone():
    sim = Simulation(parse_scenario(scenario()))
    with sim.emulated():
        sim.run_at(0, sim.scenario.runs[0])
        backend = fleet.ec2_backend(sim.scenario.region)
        zone = next(iter(backend.volumes.values())).zone.name
        # Another deployment's leftover drill volume, and one of ours someone attached since.
        theirs = backend.create_volume(size=8, zone_name=zone).id
        backend.create_tags([theirs], {TAG_DRILL: "another-deployment", TAG_DRILL_EXECUTION: "sv-drill-x"})
        ours = backend.create_volume(size=8, zone_name=zone).id
        backend.create_tags([ours], {TAG_DRILL: DEPLOYMENT_ID, TAG_DRILL_EXECUTION: "sv-drill-old"})
        web = sim.account.instance_ids["web-1"]
        backend.attach_volume(ours, web, "/dev/sdz")
        fleet_volumes = {v for v in backend.volumes if TAG_DRILL not in backend.tags.get(v, {})}
        run = sim.run_at(1, sim.scenario.runs[1])
        remaining = set(backend.volumes)

    assert {theirs, ours} | fleet_volumes <= remaining
    (row,) = run["drill"]["leftovers"]  # never another deployment's
    assert row["volume_id"] == ours and row["status"] == "present" and row["state"] == "in-use"
    assert web in row["reason"] and "not touched" in row["reason"]
    assert run["api_calls"]["ec2:DeleteVolume"] == 3  # the drill's own three volumes only
    assert run["iam_denied"] == []
    assert run["drill"]["status"] == "warning"
    (alert,) = run["alerts"]
    assert ours in alert["message"] and "still present" in alert["message"] and theirs not in alert["message"]
