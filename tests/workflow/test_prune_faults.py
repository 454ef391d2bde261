"""Locks and deletions under faults, as an operator would script them: a lock refused once, and a
throttling storm on DeleteSnapshot. Real ASL and handlers, the emulator's locks and faults."""

from __future__ import annotations

import copy
from typing import Any

from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import Simulation, simulate
from tests.workflow.conftest import BASE, by_name, instance


def scenario(**parts: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(parts)
    return data


def test_a_lock_refused_once_is_added_by_the_next_run_and_the_backup_lives_its_whole_lock():
    # Given a 10-day governance lock, 2 days of retention, and LockSnapshot refused once on night 1
    sim = Simulation(
        parse_scenario(
            scenario(
                settings={"retention_days": 2, "keep_min": 1, "lock": {"mode": "governance", "days": 10}},
                instances=[instance("web-1")],
                faults=[
                    {"operation": "LockSnapshot", "instance": "web-1", "error": "UnauthorizedOperation", "count": 1}
                ],
                runs=[{"at": "2026-11-01T03:00:00Z"}, {"every": "1d", "count": 10}],
            )
        )
    )
    with sim.emulated():
        runs = [sim.run_at(i, at) for i, at in enumerate(sim.scenario.runs)]
    first = runs[0]
    (night_one,) = first["created"]
    sid = night_one["snapshot_id"]
    # Night 1: the instance fails at Snapshot, visibly, and the alert counts the snapshot it made
    assert by_name(first)["web-1"]["status"] == "failed" and by_name(first)["web-1"]["step"] == "Snapshot"
    text = first["alerts"][0]["message"]
    assert "Snapshots created: 1" in text and "LockSnapshot" in text
    # SnapshotsFailed counts snapshots that failed (none did: it completes), StepFailed the step
    assert first["metrics"].get("SnapshotsFailed", 0) == 0 and first["metrics"]["StepFailed"] == 1
    # Night 2: Prune finds it unlocked and locks it, for what is left of its 10 days
    second = runs[1]
    (added,) = by_name(second)["web-1"]["locks_added"]
    assert added["snapshot_id"] == sid and added["locked_until"] == "2026-11-11T03:00:00Z"
    assert any("Locks that were missing" in a["message"] for a in second["alerts"])
    # Nights 2-10: never deleted while inside its lock; night 11 (10 days on): deleted
    for run in runs[1:10]:
        assert sid not in {d["snapshot_id"] for d in run["deleted"]}, run["at"]
        assert all(r["status"] == "backed_up" for r in run["instances"])
    assert sid in {d["snapshot_id"] for d in runs[10]["deleted"]}
    # Only the one refused lock, and no other lock added later: each night locks its own snapshot
    assert [len(by_name(r)["web-1"]["locks_added"]) for r in runs] == [0, 1] + [0] * 9


def test_a_dry_run_never_plans_to_delete_a_snapshot_inside_the_configured_lock_even_unlocked():
    # Given a 5-day-old managed snapshot that EC2 holds no lock on (made before `lock` was set)
    report = simulate(
        parse_scenario(
            scenario(
                settings={
                    "retention_days": 2,
                    "keep_min": 1,
                    "dry_run": True,
                    "lock": {"mode": "governance", "days": 10},
                },
                instances=[instance("web-1")],
                existing_snapshots=[
                    {"label": "unlocked", "instance": "web-1", "age_days": 5},
                    {"label": "expired", "instance": "web-1", "age_days": 11},
                ],
            )
        )
    )
    (row,) = report["runs"][0]["instances"]
    labels = {s["snapshot_id"]: s["label"] for s in report["final_snapshots"]}
    # Then only the one past its lock would go; the other is kept as locked (no LockSnapshot: a preview)
    assert [labels[s] for s in row["would_prune"]] == ["expired"]
    assert [labels[k["snapshot_id"]] for k in row["kept_locked"]] == ["unlocked"]
    assert "ec2:LockSnapshot" not in report["runs"][0]["api_calls"]


def test_a_throttling_storm_on_delete_snapshot_defers_deletions_and_fails_no_backup():
    # Given three instances with one expired snapshot each, and DeleteSnapshot throttled through
    # every retry on night 1 (3 attempts each), then calm on night 2
    names = ("web-1", "web-2", "web-3")
    report = simulate(
        parse_scenario(
            scenario(
                settings={"retention_days": 7, "keep_min": 1},
                instances=[instance(n) for n in names],
                existing_snapshots=[{"label": f"old-{n}", "instance": n, "age_days": 10} for n in names],
                faults=[{"operation": "DeleteSnapshot", "error": "RequestLimitExceeded", "count": 9}],
                runs=[{"at": "2026-11-26T03:00:00Z"}, {"at": "2026-11-27T03:00:00Z"}],
            )
        )
    )
    night_one, night_two = report["runs"]
    rows = by_name(night_one)
    # Then every backup stands; each deletion is deferred, with the AWS code
    assert {r["status"] for r in rows.values()} == {"backed_up"}
    for name in names:
        (deferred,) = rows[name]["deferred_deletes"]
        assert deferred["reason"] == "deferred:RequestLimitExceeded"
    assert night_one["deleted"] == [] and night_one["faults_injected"] == {"DeleteSnapshot:RequestLimitExceeded": 9}
    # SnapshotsFailed counts failed snapshots (none), no step failed; the alert says what waits
    assert night_one["metrics"].get("SnapshotsFailed", 0) == 0 and "StepFailed" not in night_one["metrics"]
    assert night_one["metrics"]["DeletesDeferred"] == 3
    (alert,) = night_one["alerts"]
    assert "FAILED" not in alert["subject"] and "Deletions deferred to the next run" in alert["message"]
    # And the next run deletes them
    assert sorted(d["label"] for d in night_two["deleted"]) == [f"old-{n}" for n in names]
    assert all(not r["deferred_deletes"] for r in night_two["instances"])
