"""The retention rule: pure Python, no AWS. Which managed snapshots may go, and why the rest stay.

Guarantees (property-tested in tests/unit/test_retention_properties.py):
- the newest ``keep_min`` completed managed snapshots of every volume are kept;
- a snapshot without this deployment's marker is never deleted;
- nothing younger than ``retention_days`` and nothing of the current run is deleted;
- nothing of a volume whose backup in this run did not complete is deleted;
- a plan over the circuit-breaker limits deletes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from smart_vault.constants import TAG_MANAGED, TAG_RUN_ID


@dataclass(frozen=True, kw_only=True)
class SnapshotRecord:
    snapshot_id: str
    volume_id: str
    start_time: datetime
    state: str
    tags: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class RetentionPolicy:
    retention_days: int
    keep_min: int
    max_delete_fraction: float
    max_deletes_per_run: int


@dataclass(frozen=True, kw_only=True)
class Decision:
    snapshot: SnapshotRecord
    delete: bool
    reason: str


@dataclass(frozen=True, kw_only=True)
class RetentionPlan:
    decisions: tuple[Decision, ...]
    breaker: str | None = None

    @property
    def to_delete(self) -> list[SnapshotRecord]:
        if self.breaker:
            return []
        return [d.snapshot for d in self.decisions if d.delete]

    @property
    def candidates(self) -> list[SnapshotRecord]:
        """What the policy would delete were the circuit breaker not tripped."""
        return [d.snapshot for d in self.decisions if d.delete]


def plan_retention(
    snapshots: Iterable[SnapshotRecord],
    *,
    policy: RetentionPolicy,
    now: datetime,
    deployment_id: str,
    current_run_id: str,
    blocked_volume_ids: frozenset[str] = frozenset(),
) -> RetentionPlan:
    by_volume: dict[str, list[SnapshotRecord]] = defaultdict(list)
    decisions: list[Decision] = []
    for snap in snapshots:
        if snap.tags.get(TAG_MANAGED) != deployment_id:
            decisions.append(Decision(snapshot=snap, delete=False, reason="not_managed"))
        else:
            by_volume[snap.volume_id].append(snap)

    cutoff = now - timedelta(days=policy.retention_days)
    breaker: str | None = None
    total_deletes = 0
    for volume_id in sorted(by_volume):
        volume_snaps = sorted(by_volume[volume_id], key=lambda s: s.start_time, reverse=True)
        newest_completed = {s.snapshot_id for s in volume_snaps if s.state == "completed"}
        protected = set([s.snapshot_id for s in volume_snaps if s.snapshot_id in newest_completed][: policy.keep_min])
        volume_deletes = 0
        for snap in volume_snaps:
            reason = _keep_reason(snap, protected, cutoff, current_run_id, volume_id in blocked_volume_ids)
            delete = reason is None
            volume_deletes += delete
            decisions.append(Decision(snapshot=snap, delete=delete, reason=reason or "expired"))
        total_deletes += volume_deletes
        fraction = volume_deletes / len(volume_snaps)
        if breaker is None and fraction > policy.max_delete_fraction:
            breaker = (
                f"would delete {volume_deletes} of {len(volume_snaps)} managed snapshots of "
                f"{volume_id} ({fraction:.0%}), above max_delete_fraction "
                f"{policy.max_delete_fraction:.0%}"
            )
    if breaker is None and total_deletes > policy.max_deletes_per_run:
        breaker = f"would delete {total_deletes} snapshots, above max_deletes_per_run {policy.max_deletes_per_run}"
    return RetentionPlan(decisions=tuple(decisions), breaker=breaker)


def _keep_reason(
    snap: SnapshotRecord,
    protected: set[str],
    cutoff: datetime,
    current_run_id: str,
    volume_blocked: bool,
) -> str | None:
    """Why this managed snapshot must stay, or None when it may be deleted."""
    if snap.tags.get(TAG_RUN_ID) == current_run_id:
        return "current_run"
    if volume_blocked:
        return "backup_not_completed"
    if snap.snapshot_id in protected:
        return "keep_min"
    if snap.state not in ("completed", "error"):
        return "in_progress"
    if snap.start_time >= cutoff:  # "older than" is strict
        return "within_retention"
    return None
