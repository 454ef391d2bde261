"""The retention rule: pure Python, no AWS. Which managed snapshots may go, and why the rest stay.

Guarantees (property-tested in tests/unit/test_retention_properties.py):
- the newest ``keep_min`` completed managed snapshots of every volume are kept;
- a snapshot without this deployment's marker is never deleted;
- nothing younger than ``retention_days`` and nothing of the current run is deleted;
- nothing of a volume whose backup in this run did not complete is deleted;
- a snapshot an AMI uses is never planned for deletion and does not count toward the breaker;
- a locked snapshot is never planned for deletion (kept as ``locked``) and never counts as a
  deletion toward the breaker; it still counts toward ``keep_min``, since it is a real backup;
- a volume over the circuit-breaker limits deletes nothing, unless an operator approved
  exactly the snapshots it would delete; other volumes are not affected by its breaker.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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
class VolumeBreaker:
    """One volume whose plan stopped: what it would delete and why."""

    volume_id: str
    would_delete: tuple[str, ...]
    reason: str


@dataclass(frozen=True, kw_only=True)
class RetentionPlan:
    decisions: tuple[Decision, ...]
    breakers: tuple[VolumeBreaker, ...] = ()
    approved_volumes: tuple[str, ...] = ()
    lock_expiry: Mapping[str, datetime] = field(default_factory=dict)  # locked id -> lock expiry

    @property
    def tripped_volumes(self) -> frozenset[str]:
        return frozenset(b.volume_id for b in self.breakers)

    @property
    def to_delete(self) -> list[SnapshotRecord]:
        tripped = self.tripped_volumes
        return [d.snapshot for d in self.decisions if d.delete and d.snapshot.volume_id not in tripped]

    @property
    def candidates(self) -> list[SnapshotRecord]:
        """What the policy would delete were no circuit breaker tripped."""
        return [d.snapshot for d in self.decisions if d.delete]

    @property
    def breaker(self) -> str | None:
        """All breaker reasons in one line (None when no volume tripped)."""
        return "; ".join(b.reason for b in self.breakers) or None

    @property
    def locked(self) -> list[Decision]:
        return [d for d in self.decisions if d.reason == LOCKED_REASON]

    @property
    def pinned(self) -> list[Decision]:
        return [d for d in self.decisions if d.reason.startswith(AMI_REASON)]


AMI_REASON = "used_by_ami:"
LOCKED_REASON = "locked"


def plan_retention(
    snapshots: Iterable[SnapshotRecord],
    *,
    policy: RetentionPolicy,
    now: datetime,
    deployment_id: str,
    current_run_id: str,
    blocked_volume_ids: frozenset[str] = frozenset(),
    pinned: Mapping[str, str] | None = None,
    approved: Mapping[str, frozenset[str]] | None = None,
    locked: Mapping[str, datetime] | None = None,
) -> RetentionPlan:
    """Decide every snapshot; trip the breaker per volume.

    ``pinned`` maps snapshot id -> the AMI that uses it: kept, and left out of ``keep_min`` and
    of the breaker's fraction. ``approved`` maps volume id -> the exact snapshot ids an operator
    released: a tripped volume whose candidates are exactly those ids is not stopped.
    ``locked`` maps snapshot id -> lock expiry: a snapshot the rule would delete is kept as
    ``locked`` instead (and counts toward keep_min), so the first run after its lock expires
    deletes it.
    """
    pinned = pinned or {}
    locked = locked or {}
    approved = approved or {}
    by_volume: dict[str, list[SnapshotRecord]] = defaultdict(list)
    decisions: list[Decision] = []
    for snap in snapshots:
        if snap.tags.get(TAG_MANAGED) != deployment_id:
            decisions.append(Decision(snapshot=snap, delete=False, reason="not_managed"))
        elif snap.snapshot_id in pinned:
            decisions.append(Decision(snapshot=snap, delete=False, reason=f"{AMI_REASON}{pinned[snap.snapshot_id]}"))
        else:
            by_volume[snap.volume_id].append(snap)

    cutoff = now - timedelta(days=policy.retention_days)
    breakers: list[VolumeBreaker] = []
    released: list[str] = []
    total_deletes = 0
    for volume_id in sorted(by_volume):
        volume_snaps = sorted(by_volume[volume_id], key=lambda s: s.start_time, reverse=True)
        protected = {s.snapshot_id for s in [s for s in volume_snaps if s.state == "completed"][: policy.keep_min]}
        volume_decisions = [
            Decision(snapshot=snap, delete=reason is None, reason=reason or "expired")
            for snap in volume_snaps
            for reason in [
                _keep_reason(snap, protected, cutoff, current_run_id, volume_id in blocked_volume_ids)
                or (LOCKED_REASON if snap.snapshot_id in locked else None)
            ]
        ]
        decisions.extend(volume_decisions)
        doomed = tuple(d.snapshot.snapshot_id for d in volume_decisions if d.delete)
        if not doomed:
            continue
        reason = _breaker_reason(volume_id, len(doomed), len(volume_snaps), total_deletes, policy)
        if reason is None:
            total_deletes += len(doomed)
        elif approved.get(volume_id) == frozenset(doomed):
            released.append(volume_id)  # the operator released exactly this plan
        else:
            breakers.append(VolumeBreaker(volume_id=volume_id, would_delete=doomed, reason=reason))
    return RetentionPlan(decisions=tuple(decisions), breakers=tuple(breakers), approved_volumes=tuple(released))


def _breaker_reason(volume_id: str, deletes: int, total: int, earlier: int, policy: RetentionPolicy) -> str | None:
    fraction = deletes / total
    if fraction > policy.max_delete_fraction:
        return (
            f"would delete {deletes} of {total} managed snapshots of {volume_id} ({fraction:.0%}), "
            f"above max_delete_fraction {policy.max_delete_fraction:.0%}"
        )
    if earlier + deletes > policy.max_deletes_per_run:
        return (
            f"would delete {deletes} snapshots of {volume_id} after {earlier} already planned, "
            f"above max_deletes_per_run {policy.max_deletes_per_run}"
        )
    return None


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
