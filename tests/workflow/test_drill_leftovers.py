"""Issue 20 items 6 and 7: what a restore drill could not do is said, not silent — an instance
it cannot drill, a drill volume it could not delete (swept by the next drill) — and a
DeleteVolume fault scoped to an instance fires on that instance's drill volumes."""

from __future__ import annotations

from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import simulate
from tests.workflow.conftest import instance
from tests.workflow.test_drill import scenario


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
