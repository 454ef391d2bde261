"""EC2's eventual consistency ("Eventual consistency in the Amazon EC2 API"), modelled by the
emulator (smart_vault_sim.snapshot_lag): a new snapshot, copy or volume is missing from its first
Describe. The backup, copy and drill steps survive it with no duplicate and no resource left."""

from __future__ import annotations

import copy
from typing import Any

from smart_vault_sim import fleet
from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import Simulation
from tests.workflow.conftest import BASE, instance
from tests.workflow.test_drill import drill_volumes
from tests.workflow.test_drill import scenario as drill_scenario

LOCK = {"mode": "governance", "days": 3}
DR = {"region": "us-west-2", "kms_key": "alias/smart-vault-dr", "retention_days": 10, "keep_min": 2}


def lagging(**parts: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["instances"] = [instance("web-1", volumes=2)]
    data["settings"] = {**data["settings"], "lock": LOCK}
    data["emulator"] = {"eventual_consistency": True}
    data.update(parts)
    return data


def copies_in(region: str) -> list[str]:
    return list(fleet.ec2_backend(region).snapshots)


def test_a_snapshot_step_retried_after_a_throttled_lock_makes_no_second_set():
    # Given LockSnapshot throttled once right after CreateSnapshots succeeded, and the new
    # snapshots missing from the retry's tag lookup (eventual consistency).
    sim = Simulation(
        parse_scenario(
            lagging(
                faults=[{"operation": "LockSnapshot", "instance": "web-1", "error": "RequestLimitExceeded", "count": 1}]
            )
        )
    )
    with sim.emulated():
        run = sim.run_at(0, sim.scenario.runs[0])
        locked = {sid for sid in (c["snapshot_id"] for c in run["created"]) if sim.locks.active(sid)}

    assert run["faults_injected"] == {"LockSnapshot:RequestLimitExceeded": 1}
    assert sim.lag is not None and sim.lag.missed["snapshot"] >= 2  # the lag did happen
    # One set of two snapshots, both locked, the backup completed.
    assert run["api_calls"]["ec2:CreateSnapshots"] == 1
    assert len(run["created"]) == 2 and locked == {c["snapshot_id"] for c in run["created"]}
    assert run["execution"]["status"] == "SUCCEEDED" and run["instances"][0]["status"] == "backed_up"


def test_a_copy_step_retried_after_a_throttled_lock_of_the_copy_makes_no_second_copy():
    # Given copies to us-west-2, locked, the copy's LockSnapshot throttled once, and new
    # copies missing from the next turn's tag lookup.
    data = lagging()
    data["settings"]["copy_regions"] = [DR]
    sim = Simulation(parse_scenario(data))
    with sim.emulated():
        sim.tap.fail("LockSnapshot", "RequestLimitExceeded", count=1, more_targets=lambda: copies_in(DR["region"]))
        run = sim.run_at(0, sim.scenario.runs[0])
        copies = copies_in(DR["region"])
        locked = [c for c in copies if sim.locks.active(c)]

    assert run["faults_injected"] == {"LockSnapshot:RequestLimitExceeded": 1}
    assert sim.lag is not None and sim.lag.missed["snapshot"] >= 1
    # One copy of each snapshot, each locked, all completed.
    assert run["api_calls"]["ec2:CopySnapshot"] == 2
    assert len(copies) == 2 and sorted(locked) == sorted(copies)
    assert {c["state"] for c in run["copies"]} == {"completed"}
    assert run["execution"]["status"] == "SUCCEEDED" and run["instances"][0]["status"] == "backed_up"


def test_a_drill_with_lag_passes_and_deletes_every_volume_it_made():
    sim = Simulation(parse_scenario({**drill_scenario(), "emulator": {"eventual_consistency": True}}))
    with sim.emulated():
        sim.run_at(0, sim.scenario.runs[0])
        drill = sim.run_at(1, sim.scenario.runs[1])
        left = drill_volumes(sim.scenario.region)

    assert sim.lag is not None and sim.lag.missed["volume"] >= 3
    assert drill["drill"]["status"] == "passed"
    assert left == [] and drill["api_calls"]["ec2:CreateVolume"] == 3 == drill["api_calls"]["ec2:DeleteVolume"]


def test_a_drill_restore_that_fails_half_way_with_lag_deletes_the_volume_it_made():
    # Given EC2 refusing web-1's root CreateVolume after its /dev/sdf volume was made, and that
    # volume missing from the Cleanup's first tag lookup.
    sim = Simulation(parse_scenario({**drill_scenario(), "emulator": {"eventual_consistency": True}}))
    with sim.emulated():
        backup = sim.run_at(0, sim.scenario.runs[0])
        root = next(
            c["snapshot_id"] for c in backup["created"] if c["instance"] == "web-1" and c["device"] == "/dev/xvda"
        )
        sim.tap.fail("CreateVolume", "InsufficientVolumeCapacity", targets=[root])
        drill = sim.run_at(1, sim.scenario.runs[1])
        left = drill_volumes(sim.scenario.region)

    row = next(r for r in drill["drill"]["instances"] if r["name"] == "web-1")
    assert row["status"] == "failed" and row["step"] == "Restore" and row["aws_code"] == "InsufficientVolumeCapacity"
    assert row["cleaned_up"] is True and left == [] and drill["volumes_left"] == []
