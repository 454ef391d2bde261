"""The restore drill through the real drill.asl.json, with the real handlers, IAM enforced: it
restores the latest recovery point, measures it, cleans up on success and on failure, alerts,
and rotates through the instances over several drills."""

from __future__ import annotations

import copy
from typing import Any

from smart_vault.constants import TAG_DRILL, TAG_VERIFIED_AT
from smart_vault_sim import fleet
from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import Simulation, simulate
from tests.workflow.conftest import BASE, instance

BACKUP_AT = "2026-11-26T03:00:00Z"
DRILL_AT = "2026-11-29T05:00:00Z"


def scenario(**parts: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["instances"] = [instance("web-1", volumes=2), instance("db-1")]
    data["settings"] = {**data["settings"], "drill": {"instances_per_drill": 2}}
    data["runs"] = [{"at": BACKUP_AT}, {"at": DRILL_AT, "workflow": "drill"}]
    data.update(parts)
    return data


def drill_volumes(region: str) -> list[str]:
    backend = fleet.ec2_backend(region)
    return [v for v in backend.volumes if TAG_DRILL in backend.tags.get(v, {})]


def test_a_drill_restores_measures_and_cleans_up():
    sim = Simulation(parse_scenario(scenario()))
    with sim.emulated():
        backup = sim.run_at(0, sim.scenario.runs[0])
        drill = sim.run_at(1, sim.scenario.runs[1])
        backend = fleet.ec2_backend(sim.scenario.region)
        verified = {s: backend.tags.get(s, {}).get(TAG_VERIFIED_AT) for s in drill["drill"]["verified_snapshots"]}
        left = drill_volumes(sim.scenario.region)
    created = {c["snapshot_id"] for c in backup["created"]}

    assert drill["execution"]["status"] == "SUCCEEDED"
    assert drill["iam_enforced"] and drill["iam_denied"] == []
    report = drill["drill"]
    assert report["status"] == "passed"
    rows = {r["name"]: r for r in report["instances"]}
    assert set(rows) == {"web-1", "db-1"}
    for name, row in rows.items():
        # The latest recovery point is the backup run's, restored whole (one volume per device).
        assert row["recovery_point"] == "20261126T030000Z"
        assert set(row["snapshots"]) <= created
        assert len(row["volumes"]) == len(row["snapshots"]) == (2 if name == "web-1" else 1)
        assert row["seconds_to_available"] > 0
        assert row["status"] == "passed" and row["cleaned_up"] is True
    # Every volume it made was deleted again; the snapshots that passed carry verified-at.
    assert left == [] and drill["volumes_left"] == []
    assert drill["api_calls"]["ec2:CreateVolume"] == 3 == drill["api_calls"]["ec2:DeleteVolume"]
    assert set(verified) == created and set(verified.values()) == {DRILL_AT}
    assert drill["metrics"]["DrillSucceeded"] == 1
    assert drill["metrics"]["TimeToRestoreSeconds"] == sum(r["seconds_to_available"] for r in rows.values())
    assert drill["alerts"] == []


def test_a_create_volume_failure_fails_the_drill_with_an_alert_and_leaves_no_volume():
    # EC2 refuses the restore of web-1 (VolumeLimitExceeded: the account's EBS storage quota is
    # reached); db-1's restore goes on.
    faults = [{"operation": "CreateVolume", "instance": "web-1", "error": "VolumeLimitExceeded"}]
    run = simulate(parse_scenario(scenario(faults=faults)))["runs"][1]

    assert run["execution"]["status"] == "FAILED"
    assert run["execution"]["error"] == "DrillFailed"
    assert run["faults_injected"] == {"CreateVolume:VolumeLimitExceeded": 1}
    report = run["drill"]
    assert report["status"] == "failed"
    rows = {r["name"]: r for r in report["instances"]}
    assert rows["web-1"]["status"] == "failed" and rows["web-1"]["step"] == "Restore"
    assert rows["web-1"]["aws_code"] == "VolumeLimitExceeded" and rows["web-1"]["cleaned_up"] is True
    assert rows["db-1"]["status"] == "passed" and rows["db-1"]["cleaned_up"] is True
    assert run["volumes_left"] == []
    # One alert naming the instance, the step and the AWS error.
    (alert,) = run["alerts"]
    assert "FAILED" in alert["subject"]
    assert "web-1" in alert["message"] and "step Restore" in alert["message"]
    assert "VolumeLimitExceeded" in alert["message"]
    assert run["metrics"]["DrillSucceeded"] == 0
    # Only what passed is verified.
    assert set(report["verified_snapshots"]) == set(rows["db-1"]["snapshots"])


def test_selection_rotates_through_every_instance():
    names = ["a-1", "b-1", "c-1", "d-1", "e-1"]
    data = scenario(
        instances=[instance(n) for n in names],
        runs=[
            {"at": BACKUP_AT},
            {"at": DRILL_AT, "workflow": "drill"},
            {"every": "7d", "count": 5, "workflow": "drill"},
        ],
    )
    data["settings"]["drill"] = {"instances_per_drill": 2}
    runs = simulate(parse_scenario(data))["runs"][1:]

    picked = [[r["name"] for r in run["drill"]["instances"]] for run in runs]
    assert all(run["drill"]["status"] == "passed" for run in runs)
    assert all(len(p) == 2 for p in picked)
    # Least recently drilled first: the first three drills cover all five instances, and no
    # instance is drilled a second time before every other one was drilled once.
    assert set(picked[0] + picked[1] + picked[2]) == set(names)
    counts = {n: sum(p.count(n) for p in picked) for n in names}
    assert max(counts.values()) - min(counts.values()) <= 1, counts


def test_a_drill_with_no_recovery_point_fails_and_says_why():
    run = simulate(parse_scenario(scenario(runs=[{"at": DRILL_AT, "workflow": "drill"}])))["runs"][0]

    assert run["execution"]["status"] == "FAILED"
    assert run["drill"]["status"] == "failed"
    # Both instances are in scope and named, neither with a snapshot yet.
    rows = {r["name"]: (r["status"], r["not_drilled_reason"]) for r in run["drill"]["instances"]}
    assert rows == {n: ("no_restorable_point", "no managed snapshot yet") for n in ("web-1", "db-1")}
    assert "no complete recovery point" in run["drill"]["reason"]
    (alert,) = run["alerts"]
    assert "nothing restored" in alert["subject"]


def test_a_restore_that_fails_half_way_deletes_the_volume_it_made():
    # Given web-1's backup, and EC2 refusing the CreateVolume of its root snapshot only: the
    # restore creates /dev/sdf's volume first (devices in order), then fails.
    sim = Simulation(parse_scenario(scenario()))
    with sim.emulated():
        backup = sim.run_at(0, sim.scenario.runs[0])
        root = next(
            c["snapshot_id"] for c in backup["created"] if c["instance"] == "web-1" and c["device"] == "/dev/xvda"
        )
        sim.tap.fail("CreateVolume", "InsufficientVolumeCapacity", targets=[root])
        run = sim.run_at(1, sim.scenario.runs[1])
        left = drill_volumes(sim.scenario.region)

    row = next(r for r in run["drill"]["instances"] if r["name"] == "web-1")
    assert row["status"] == "failed" and row["step"] == "Restore"
    assert row["aws_code"] == "InsufficientVolumeCapacity"
    # The volume made before the failure was found by its tags and deleted.
    assert run["api_calls"]["ec2:CreateVolume"] == 3  # web-1: 1 made + 1 refused; db-1: 1
    assert run["api_calls"]["ec2:DeleteVolume"] == 2  # web-1's one, db-1's one
    assert row["cleaned_up"] is True and left == [] and run["volumes_left"] == []


def test_the_drill_zone_is_a_healthy_availability_zone_not_a_local_or_wavelength_zone():
    # The emulated account opted in to a Local Zone and a Wavelength Zone, whose names sort
    # first (us-east-1-lz-1a < us-east-1a), and the Region's first Availability Zone is impaired.
    sim = Simulation(parse_scenario(scenario()))
    with sim.emulated():
        listed = {z.name: z for z in sim.zones}
        assert {z.zone_type for z in sim.zones} == {"availability-zone", "local-zone", "wavelength-zone"}
        first = sorted(n for n, z in listed.items() if z.zone_type == "availability-zone")
        listed[first[0]].state = "impaired"
        sim.run_at(0, sim.scenario.runs[0])
        drill = sim.run_at(1, sim.scenario.runs[1])

    assert drill["drill"]["status"] == "passed"
    assert drill["drill"]["availability_zone"] == first[1]
