"""Eventual consistency (issue 19 item 4, backup side and drill): with the emulator's lag on
(``emulator.eventual_consistency``, smart_vault_sim.snapshot_lag), a new snapshot, copy or drill
volume is missing from its first Describe. A retry right after a create, a completion check and
the next turn of the copy loop must not take "not listed yet" for "not there": no second
snapshot set, no second copy, no failed check, no volume left behind."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

from smart_vault.constants import TAG_SOURCE_SNAPSHOT
from smart_vault_sim import fleet
from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import Simulation
from tests.workflow.conftest import BASE, by_name, instance
from tests.workflow.test_drill import BACKUP_AT, DRILL_AT, drill_volumes

LAG = {"eventual_consistency": True}
DR = {"region": "us-west-2", "kms_key": "alias/smart-vault-dr", "retention_days": 10, "keep_min": 2}
COMPLIANCE = {"mode": "compliance", "days": 3, "cool_off_hours": 24}


def scenario(**parts: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["emulator"] = dict(LAG)
    data.update(parts)
    return data


def sets_per_volume(run: dict[str, Any]) -> Counter[str]:
    return Counter(s["volume_id"] for s in run["created"])


def test_a_lock_throttled_after_create_snapshots_leaves_exactly_one_locked_set():
    # Given a compliance lock, web-1's LockSnapshot throttled once right after CreateSnapshots
    # succeeded, and new snapshots missing from their first DescribeSnapshots
    sim = Simulation(
        parse_scenario(
            scenario(
                settings={"retention_days": 7, "keep_min": 2, "lock": COMPLIANCE},
                instances=[instance("web-1", volumes=2), instance("web-2")],
                faults=[{"operation": "LockSnapshot", "instance": "web-1", "error": "RequestLimitExceeded", "count": 1}],
            )
        )
    )
    with sim.emulated():
        run = sim.run_at(0, sim.scenario.runs[0])
        final = sim.final_snapshots()
    rows = by_name(run)
    assert run["faults_injected"] == {"LockSnapshot:RequestLimitExceeded": 1}
    assert sim.lag is not None and sim.lag.misses["snapshot"] > 0  # the lag was met
    # Then exactly one snapshot per volume was made (a compliance-locked duplicate could never go)
    assert run["api_calls"]["ec2:CreateSnapshots"] == 2
    assert sets_per_volume(run) == Counter({v: 1 for v in sets_per_volume(run)}) and len(run["created"]) == 3
    # And every one of them is locked, and both instances are backed up
    assert rows["web-1"]["status"] == "backed_up" and rows["web-2"]["status"] == "backed_up"
    assert len(final) == 3 and all(s["locked_until"] == "2026-11-29T03:00:00Z" for s in final)
    assert run["execution"]["status"] == "SUCCEEDED"


def test_a_snapshot_missing_from_the_first_check_is_pending_not_failed():
    sim = Simulation(parse_scenario(scenario(instances=[instance("web-1", volumes=2)])))
    with sim.emulated():
        run = sim.run_at(0, sim.scenario.runs[0])
    assert sim.lag is not None and sim.lag.misses["snapshot"] == 2  # the check's first answer
    assert by_name(run)["web-1"]["status"] == "backed_up"
    assert len(run["created"]) == 2 and run["execution"]["status"] == "SUCCEEDED"


def _copy_scenario(**settings: Any) -> Simulation:
    data = scenario(instances=[instance("web-1", volumes=2)])
    data["settings"] = {"retention_days": 7, "keep_min": 2, "copy_regions": [DR], **settings}
    return Simulation(parse_scenario(data))


def _copies(region: str) -> list[str]:
    backend = fleet.ec2_backend(region)
    return [sid for sid in backend.snapshots if TAG_SOURCE_SNAPSHOT in backend.tags.get(sid, {})]


def _one_copy_per_source(run: dict[str, Any]) -> None:
    sources = Counter(c["source_snapshot_id"] for c in run["copies"])
    assert len(sources) == 2 and set(sources.values()) == {1}, run["copies"]
    assert {c["source_snapshot_id"] for c in run["copies"]} == {s["snapshot_id"] for s in run["created"]}


def test_a_copy_step_retried_after_copy_snapshot_succeeded_makes_exactly_one_copy():
    # Given web-1's two snapshots copied to us-west-2: the first CopySnapshot succeeds, the second
    # fails with a server error, so the Copy step raises and Step Functions retries it
    sim = _copy_scenario()
    with sim.emulated():
        backend = fleet.ec2_backend(sim.scenario.region)
        second_volume = sorted(v for v, (name, _) in sim.account.volumes.items() if name == "web-1")[1]
        sim.tap.fail(
            "CopySnapshot",
            "InternalError",
            count=1,
            more_targets=lambda: [s for s, snap in backend.snapshots.items() if snap.volume.id == second_volume],
        )
        run = sim.run_at(0, sim.scenario.runs[0])
        copies = _copies("us-west-2")
    assert run["faults_injected"] == {"CopySnapshot:InternalError": 1}
    assert sim.lag is not None and sim.lag.misses["snapshot"] > 0
    # Then each snapshot has exactly one copy, and the instance is backed up
    _one_copy_per_source(run)
    assert len(copies) == 2 and run["api_calls"]["ec2:CopySnapshot"] == 3  # 2 copies + the refused one
    assert by_name(run)["web-1"]["status"] == "backed_up" and run["execution"]["status"] == "SUCCEEDED"


def test_a_lock_throttled_after_copy_snapshot_leaves_exactly_one_locked_copy():
    # Given locked copies, and the first LockSnapshot of a new copy throttled
    sim = _copy_scenario(lock={"mode": "governance", "days": 10})
    with sim.emulated():
        sim.tap.fail("LockSnapshot", "RequestLimitExceeded", count=1, more_targets=lambda: _copies("us-west-2"))
        run = sim.run_at(0, sim.scenario.runs[0])
        copies = _copies("us-west-2")
        locked = {c: sim.locks.locked_until(c) for c in copies}
    assert run["faults_injected"] == {"LockSnapshot:RequestLimitExceeded": 1}
    _one_copy_per_source(run)
    assert len(copies) == 2 and all(locked.values()), locked
    assert by_name(run)["web-1"]["status"] == "backed_up" and run["execution"]["status"] == "SUCCEEDED"


def test_a_drill_survives_volumes_missing_from_their_first_describe():
    data = scenario(instances=[instance("web-1", volumes=2), instance("db-1")])
    data["settings"] = {**data["settings"], "drill": {"instances_per_drill": 2}}
    data["runs"] = [{"at": BACKUP_AT}, {"at": DRILL_AT, "workflow": "drill"}]
    sim = Simulation(parse_scenario(data))
    assert sim.lag is not None
    sim.lag.volumes = True  # the drill's volumes lag too (snapshot_lag's volume hook)
    with sim.emulated():
        backup = sim.run_at(0, sim.scenario.runs[0])
        drill = sim.run_at(1, sim.scenario.runs[1])
        left = drill_volumes(sim.scenario.region)
    assert backup["execution"]["status"] == "SUCCEEDED" and len(backup["created"]) == 3
    assert sim.lag.misses["volume"] > 0
    assert drill["execution"]["status"] == "SUCCEEDED", drill["drill"]
    assert drill["drill"]["status"] == "passed"
    # One volume per device, no second one on a retry, every one deleted again
    assert drill["api_calls"]["ec2:CreateVolume"] == 3 == drill["api_calls"]["ec2:DeleteVolume"]
    assert left == [] and drill["volumes_left"] == []
