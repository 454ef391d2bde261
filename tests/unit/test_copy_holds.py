"""Prune-after-copy as a rule (copies.copy_holds): pure, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from smart_vault.constants import TAG_RUN_TIME
from smart_vault.copies.offsite import copy_holds
from smart_vault.retention.rules import SnapshotRecord
from smart_vault.validation import format_time

T0 = datetime(2026, 11, 1, 3, tzinfo=UTC)


def record(sid: str, day: int, state: str = "completed", volume: str = "vol-00000001") -> SnapshotRecord:
    moment = T0 + timedelta(days=day)
    return SnapshotRecord(
        snapshot_id=sid, volume_id=volume, start_time=moment, state=state, tags={TAG_RUN_TIME: format_time(moment)}
    )


def test_a_snapshot_whose_copy_is_pending_or_missing_is_held_and_one_superseded_is_not():
    local = [record("snap-00000001", 0), record("snap-00000002", 1), record("snap-00000003", 2)]
    copies = {
        "us-west-2": [record("snap-000000a1", 0), record("snap-000000a2", 1, state="pending")],
        "eu-west-1": [record("snap-000000b1", 1)],
    }
    held = copy_holds(local, copies)
    assert "snap-00000001" not in held  # copied to us-west-2, superseded by day 1 in eu-west-1
    assert held["snap-00000002"] == "copy_not_completed:us-west-2"  # its us-west-2 copy is pending
    assert held["snap-00000003"] == "copy_not_completed:eu-west-1,us-west-2"  # no copy anywhere yet


@given(st.lists(st.tuples(st.integers(0, 30), st.sampled_from(["completed", "pending", "error"])), max_size=12))
def test_a_released_snapshot_always_has_a_completed_copy_at_least_as_new_in_every_region(copy_days):
    local = [record(f"snap-{d:08x}", d) for d in range(31)]
    copies = {"us-west-2": [record(f"snap-{0xA0000000 + i:08x}", d, s) for i, (d, s) in enumerate(copy_days)]}
    held = copy_holds(local, copies)
    for snap in local:
        if snap.snapshot_id not in held:
            assert any(c.state == "completed" and c.start_time >= snap.start_time for c in copies["us-west-2"])
