"""The retention rule: pure Python, no AWS. Which managed snapshots may go, and why the rest stay.

Guarantees (property-tested in tests/unit/test_retention_properties.py):
- the newest ``keep_min`` completed managed snapshots of every volume are kept;
- a snapshot without this deployment's marker is never deleted;
- with ``retention_days``: nothing younger than it is deleted; with a GFS policy (``gfs``):
  every tier's picks are kept (the newest ``daily`` completed snapshots of a volume, and the
  first completed snapshot of each of the newest ``weekly`` ISO weeks, ``monthly`` calendar
  months and ``yearly`` calendar years that have snapshots, all in UTC);
- nothing of the current run is deleted;
- nothing of a volume whose backup in this run did not complete is deleted;
- a snapshot an AMI uses is never planned for deletion and does not count toward the breaker;
- a locked snapshot is never planned for deletion (kept as ``locked``) and never counts as a
  deletion toward the breaker; it still counts toward ``keep_min``, since it is a real backup;
- a volume over the circuit-breaker limits deletes nothing, unless an operator approved
  exactly the snapshots it would delete; other volumes are not affected by its breaker;
- archiving (``archive_after_days``) only ever moves a completed, standard-tier snapshot kept
  by nothing but monthly/yearly picks, older than ``archive_after_days``, with at least
  ``ARCHIVE_MIN_DAYS`` left before its expected deletion, never one an AMI uses, and never more
  than ``ARCHIVED_PER_VOLUME`` archived snapshots per volume. Archiving deletes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from smart_vault.constants import TAG_MANAGED, TAG_RUN_ID
from smart_vault.policy import GFS_TIERS, Gfs


@dataclass(frozen=True, kw_only=True)
class SnapshotRecord:
    snapshot_id: str
    volume_id: str
    start_time: datetime
    state: str
    tags: Mapping[str, str]
    storage_tier: str = "standard"  # DescribeSnapshots StorageTier: standard | archive
    completion_time: datetime | None = None  # DescribeSnapshots CompletionTime, when EC2 gives it


# Tiers whose picks are long-lived enough to archive (the EBS User Guide recommends archiving
# "monthly, quarterly, or yearly" snapshots; archiving dailies costs more than it saves).
ARCHIVE_TIERS = frozenset({"monthly", "yearly"})
# EBS User Guide, "Considerations and limitations for archiving Amazon EBS snapshots": "The
# minimum archive period is 90 days"; deleting earlier bills the remaining days anyway.
ARCHIVE_MIN_DAYS = 90
# EBS User Guide, "Quotas for Amazon EBS": "Archived snapshots per volume", default 25.
ARCHIVED_PER_VOLUME = 25


@dataclass(frozen=True, kw_only=True)
class RetentionPolicy:
    retention_days: int
    keep_min: int
    max_delete_fraction: float
    max_deletes_per_run: int
    gfs: Gfs | None = None  # when set, replaces retention_days
    archive_after_days: int | None = None  # archive monthly/yearly-only picks (needs gfs)


@dataclass(frozen=True, kw_only=True)
class Decision:
    snapshot: SnapshotRecord
    delete: bool
    reason: str
    tiers: tuple[str, ...] = ()  # the GFS tiers that picked it (any reason)
    archive: bool = False  # kept, and to be moved to the archive tier now


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
    # Snapshots inside the configured lock that EC2 held no lock on, locked by this run -> expiry.
    locks_added: Mapping[str, datetime] = field(default_factory=dict)
    # Tripped volume -> (approved run id, approved ids): an approval this plan no longer matches.
    unmatched_approvals: Mapping[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)

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

    @property
    def to_archive(self) -> list[SnapshotRecord]:
        return [d.snapshot for d in self.decisions if d.archive]


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
    volume_policies: Mapping[str, RetentionPolicy] | None = None,
    held: Mapping[str, str] | None = None,
) -> RetentionPlan:
    """Decide every snapshot; trip the breaker per volume.

    ``volume_policies`` replaces ``policy``'s retention rule (days or GFS, keep_min, archive)
    for the volumes it names (per-instance overrides); the breaker limits stay ``policy``'s.

    ``pinned`` maps snapshot id -> the AMI that uses it: kept, and left out of ``keep_min`` and
    of the breaker's fraction. ``approved`` maps volume id -> the exact snapshot ids an operator
    released: a tripped volume whose candidates are exactly those ids is not stopped.
    ``locked`` maps snapshot id -> lock expiry: a snapshot the rule would delete is kept as
    ``locked`` instead (and counts toward keep_min), so the first run after its lock expires
    deletes it. ``held`` maps snapshot id -> why it must stay although expired (its off-site
    copies are not done): kept, still counted toward ``keep_min`` and the breaker like any
    snapshot of its volume.
    """
    pinned = pinned or {}
    locked = locked or {}
    held = held or {}
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

    volume_policies = volume_policies or {}
    breakers: list[VolumeBreaker] = []
    released: list[str] = []
    total_deletes = 0
    for volume_id in sorted(by_volume):
        volume_snaps = sorted(by_volume[volume_id], key=lambda s: s.start_time, reverse=True)
        volume_decisions = _volume_decisions(
            volume_snaps,
            rule=volume_policies.get(volume_id, policy),
            now=now,
            current_run_id=current_run_id,
            blocked=volume_id in blocked_volume_ids,
            locked=locked,
            held=held,
        )
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


def _volume_decisions(
    volume_snaps: Sequence[SnapshotRecord],
    *,
    rule: RetentionPolicy,
    now: datetime,
    current_run_id: str,
    blocked: bool,
    locked: Mapping[str, datetime],
    held: Mapping[str, str],
) -> list[Decision]:
    """Decide one volume's managed snapshots (newest first) by its rule, before its breaker: a
    snapshot with a reason to stay is kept with that reason, else a locked or held one is kept
    as such, and only the rest are deleted (``expired``)."""
    cutoff = None if rule.gfs else now - timedelta(days=rule.retention_days)
    completed = [s for s in volume_snaps if s.state == "completed"]
    protected = {s.snapshot_id for s in completed[: rule.keep_min]}
    picks = gfs_picks(completed, rule.gfs) if rule.gfs else {}
    decisions = [
        Decision(
            snapshot=snap,
            delete=reason is None,
            reason=reason or "expired",
            tiers=picks.get(snap.snapshot_id, ()),
        )
        for snap in volume_snaps
        for reason in [
            _keep_reason(snap, protected, cutoff, picks, current_run_id, blocked)
            or (LOCKED_REASON if snap.snapshot_id in locked else None)
            or held.get(snap.snapshot_id)
        ]
    ]
    return _with_archives(decisions, rule, now)


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


def _period(tier: str, moment: datetime) -> tuple[int, ...]:
    """The UTC calendar period of ``moment`` for a GFS tier (ISO week, month, year)."""
    utc = moment.astimezone(UTC)
    if tier == "weekly":
        iso = utc.isocalendar()
        return (iso.year, iso.week)
    if tier == "monthly":
        return (utc.year, utc.month)
    return (utc.year,)


def gfs_picks(completed: Sequence[SnapshotRecord], gfs: Gfs) -> dict[str, tuple[str, ...]]:
    """Snapshot id -> the tiers that pick it, from one volume's completed snapshots (newest first).

    Selected from what exists, not from labels given at creation: a missed Sunday only moves
    that week's pick to its first snapshot that does exist."""
    picks: dict[str, list[str]] = defaultdict(list)
    for snap in completed[: gfs.daily]:
        picks[snap.snapshot_id].append("daily")
    for tier in GFS_TIERS[1:]:
        first: dict[tuple[int, ...], SnapshotRecord] = {}
        for snap in completed:  # newest first: the last one written per period is its first
            first[_period(tier, snap.start_time)] = snap
        for period in sorted(first, reverse=True)[: getattr(gfs, tier)]:
            picks[first[period].snapshot_id].append(tier)
    return {k: tuple(v) for k, v in picks.items()}


def expected_deletion(snap: SnapshotRecord, tiers: Iterable[str], gfs: Gfs) -> datetime | None:
    """The earliest moment a monthly/yearly pick can lose its last tier, assuming every later
    period gets snapshots: its month (year) falls out once ``monthly`` (``yearly``) newer ones
    exist. None for a snapshot kept by any other tier (its deletion is not foreseeable)."""
    utc = snap.start_time.astimezone(UTC)
    ends = []
    for tier in tiers:
        if tier == "monthly":
            months = utc.year * 12 + utc.month - 1 + gfs.monthly
            ends.append(datetime(months // 12, months % 12 + 1, 1, tzinfo=UTC))
        elif tier == "yearly":
            ends.append(datetime(min(utc.year + gfs.yearly, 9999), 1, 1, tzinfo=UTC))
        else:
            return None
    return max(ends, default=None)


def _with_archives(decisions: list[Decision], policy: RetentionPolicy, now: datetime) -> list[Decision]:
    """Mark the kept snapshots that move to the archive tier now (one volume, newest first)."""
    if policy.archive_after_days is None or policy.gfs is None:
        return decisions
    archived = sum(1 for d in decisions if d.snapshot.storage_tier == "archive")
    marked = []
    for d in reversed(decisions):  # oldest first: they have the least to gain in the standard tier
        snap = d.snapshot
        end = expected_deletion(snap, d.tiers, policy.gfs) if d.tiers else None
        if (
            archived < ARCHIVED_PER_VOLUME
            and not d.delete
            and d.reason == "+".join(d.tiers)  # kept by GFS picks alone (not keep_min, current run...)
            and set(d.tiers) <= ARCHIVE_TIERS
            and snap.state == "completed"
            and snap.storage_tier == "standard"
            and snap.start_time <= now - timedelta(days=policy.archive_after_days)
            and end is not None
            and end - now >= timedelta(days=ARCHIVE_MIN_DAYS)
        ):
            d = replace(d, archive=True)
            archived += 1
        marked.append(d)
    return marked[::-1]


def _keep_reason(
    snap: SnapshotRecord,
    protected: set[str],
    cutoff: datetime | None,
    picks: Mapping[str, tuple[str, ...]],
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
    if cutoff is None:
        return "+".join(picks.get(snap.snapshot_id, ())) or None
    if snap.start_time >= cutoff:  # "older than" is strict
        return "within_retention"
    return None


def archive_age_limit_days(gfs: Gfs) -> int:
    """The oldest age (days) at which any monthly/yearly pick of ``gfs`` can still be archived: a
    pick lives at most ``monthly`` months (31 days each) or ``yearly`` years (366 days each) and
    is archived only with ``ARCHIVE_MIN_DAYS`` left (``_with_archives``). An upper bound: an
    ``archive_after_days`` above it can never archive anything."""
    return max(31 * gfs.monthly, 366 * gfs.yearly) - ARCHIVE_MIN_DAYS
