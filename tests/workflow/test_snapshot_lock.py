"""Snapshot lock through the simulator: the real ASL and handlers, the emulator's lock model on
the virtual clock (moto has no LockSnapshot / DescribeLockedSnapshots)."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import pytest

from smart_vault.validation import parse_time as _parse_time
from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import Simulation
from tests.workflow.conftest import BASE, by_name, instance

LOCK_DAYS, RETENTION_DAYS, KEEP_MIN = 10, 7, 2


def parse_time(text: str) -> datetime:
    return _parse_time(text, "time")


def scenario(**parts: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(parts)
    return data


def test_locked_snapshots_are_never_deleted_and_none_outlives_its_lock_over_30_runs():
    # Given governance locks of 10 days, 7 days of retention and 30 daily runs
    sim = Simulation(
        parse_scenario(
            scenario(
                settings={
                    "retention_days": RETENTION_DAYS,
                    "keep_min": KEEP_MIN,
                    "lock": {"mode": "governance", "days": LOCK_DAYS},
                },
                instances=[instance("web-1", volumes=2)],
                runs=[{"at": "2026-11-01T03:00:00Z"}, {"every": "1d", "count": 29}],
            )
        )
    )
    created: dict[str, datetime] = {}
    with sim.emulated():
        for index, at in enumerate(sim.scenario.runs):
            run = sim.run_at(index, at)
            assert run["execution"]["status"] == "SUCCEEDED"
            assert run["api_calls"]["ec2:LockSnapshot"] == 2  # each new snapshot, once
            assert run["iam_enforced"] and run["iam_denied"] == []  # the stack's own IAM allows it
            for row in run["created"]:
                created[row["snapshot_id"]] = at
            # Then no snapshot younger than its lock is ever deleted, and none while locked
            for row in run["deleted"]:
                age = at - created[row["snapshot_id"]]
                assert age >= timedelta(days=LOCK_DAYS), (at, row, age)
                assert sim.locks.locks[row["snapshot_id"]].expires <= at
            # And none is kept longer than needed: whatever is older than the retention (and not
            # one of the newest keep_min) is still locked at this run
            alive = sorted((t, sid) for sid, t in created.items() if sid in sim._snapshot_ids())
            by_volume: dict[str, list[str]] = {}
            for _, sid in alive:
                by_volume.setdefault(sim.locks._snapshot(sid).volume.id, []).append(sid)
            for snaps in by_volume.values():
                for sid in snaps[:-KEEP_MIN]:
                    if at - created[sid] > timedelta(days=RETENTION_DAYS):
                        assert sim.locks.locked_until(sid) is not None, (at, sid)
            # And the locked ones are reported as kept, with their expiry
            kept = by_name(run)["web-1"]["kept_locked"]
            expected = [sid for snaps in by_volume.values() for sid in snaps if at - created[sid] > timedelta(days=7)]
            assert sorted(k["snapshot_id"] for k in kept) == sorted(expected)
            for k in kept:
                assert parse_time(k["locked_until"]) == created[k["snapshot_id"]] + timedelta(days=LOCK_DAYS)
        final = sim.final_snapshots()
    # Steady state: the 10 newest per volume (the lock, not the retention, decides), and the
    # breaker never tripped over locked snapshots
    assert len(final) == 2 * LOCK_DAYS
    last = sim.scenario.runs[-1]
    for row in final:
        assert parse_time(row["locked_until"]) == parse_time(row["start_time"]) + timedelta(days=LOCK_DAYS)
        assert parse_time(row["locked_until"]) > last


def test_a_failed_lock_fails_the_instance_visibly_and_the_retry_locks_what_was_made():
    # Given LockSnapshot failing once with an AWS server error for web-1
    sim = Simulation(
        parse_scenario(
            scenario(
                settings={"lock": {"mode": "compliance", "days": 3, "cool_off_hours": 24}},
                instances=[instance("web-1"), instance("web-2")],
                faults=[{"operation": "LockSnapshot", "instance": "web-1", "error": "InternalError", "count": 1}],
            )
        )
    )
    with sim.emulated():
        run = sim.run_at(0, sim.scenario.runs[0])
        final = sim.final_snapshots()
    rows = by_name(run)
    # Then the step's retry finds this run's snapshot and locks it: both end backed up and locked
    assert run["faults_injected"] == {"LockSnapshot:InternalError": 1}
    assert rows["web-1"]["status"] == "backed_up" and rows["web-2"]["status"] == "backed_up"
    assert len(final) == 2 and all(s["locked_until"] == "2026-11-29T03:00:00Z" for s in final)
    assert run["api_calls"]["ec2:DescribeLockedSnapshots"] == 1  # only the retry asks


def test_a_lock_that_keeps_failing_reaches_the_alert_with_instance_step_and_aws_error():
    report_sim = Simulation(
        parse_scenario(
            scenario(
                settings={"lock": {"mode": "governance", "days": 3}},
                instances=[instance("web-1"), instance("web-2")],
                faults=[{"operation": "LockSnapshot", "instance": "web-1", "error": "UnauthorizedOperation"}],
            )
        )
    )
    report = report_sim.run()
    run = report["runs"][0]
    rows = by_name(run)
    assert rows["web-1"]["status"] == "failed" and rows["web-1"]["aws_code"] == "UnauthorizedOperation"
    assert rows["web-1"]["step"] == "Snapshot"
    assert rows["web-2"]["status"] == "backed_up"  # one instance's failure stops no other
    text = " ".join(a["message"] for a in run["alerts"])
    assert "web-1" in text and "UnauthorizedOperation" in text and "LockSnapshot" in text


@pytest.mark.parametrize(
    ("lock", "field"),
    [
        ({"mode": "compliance", "days": 10}, "settings.lock.cool_off_hours"),
        ({"mode": "compliance", "days": 10, "cool_off_hours": 73}, "settings.lock.cool_off_hours"),
        ({"mode": "governance", "days": 10, "cool_off_hours": 1}, "settings.lock.cool_off_hours"),
        ({"mode": "legal-hold", "days": 10}, "settings.lock.mode"),
        ({"mode": "governance", "days": 36501}, "settings.lock.days"),
        ({"mode": "governance"}, "settings.lock.days"),
        ({"mode": "governance", "days": 1, "until": "2027"}, "settings.lock.until"),
    ],
)
def test_an_invalid_lock_is_refused_naming_the_field(lock, field):
    from smart_vault.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=field.replace(".", r"\.")):
        parse_scenario(scenario(settings={"lock": lock}))
