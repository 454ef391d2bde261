"""Prune: apply the retention rule to one instance's managed snapshots and record the outcome.

Order of work, so that no failure or retry can lose a deletion: plan (AMI-pinned snapshots
excluded, breaker per volume, approvals honoured), journal the intents in S3, delete, then
write the outcome, whose ``deleted`` is rebuilt from the journal and the account.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from smart_vault.aws import Ec2, Store
from smart_vault.constants import (
    METRIC_DELETES_DEFERRED,
    METRIC_DELETES_SKIPPED,
    METRIC_SNAPSHOTS_ARCHIVED,
    METRIC_SNAPSHOTS_DELETED,
    TAG_INSTANCE_ID,
    TAG_MANAGED,
    TAG_RUN_ID,
)
from smart_vault.models import (
    DeletedSnapshot,
    InstanceJob,
    InstanceOutcome,
    InstanceTarget,
    KeptSnapshot,
    LockedSnapshot,
    PinnedSnapshot,
    RunContext,
    SkippedDelete,
    TrippedVolume,
    outcomes_prefix,
    run_prefix,
)
from smart_vault.observability import count, logger
from smart_vault.retention.approvals import approvals_for
from smart_vault.retention.deferral import DEFERRED_PREFIX, delete_or_defer
from smart_vault.retention.journal import Intent, Journal, confirmed_deletions
from smart_vault.retention.locks import active_until, lock_missing, lock_window
from smart_vault.retention.overrides import OverrideError, with_override
from smart_vault.retention.rules import (
    AMI_REASON,
    LOCKED_REASON,
    RetentionPlan,
    RetentionPolicy,
    SnapshotRecord,
    plan_retention,
)
from smart_vault.settings import Settings
from smart_vault.validation import format_time

UPCOMING_PREFIX = "(new "  # would-be snapshots of a dry run or `plan`: never real ids


def snapshot_record(raw: dict[str, Any]) -> SnapshotRecord:
    start = _time(raw["StartTime"])
    assert start is not None  # DescribeSnapshots always gives StartTime
    return SnapshotRecord(
        snapshot_id=raw["SnapshotId"],
        volume_id=raw["VolumeId"],
        start_time=start,
        state=raw.get("State", ""),
        tags={t["Key"]: t["Value"] for t in raw.get("Tags") or ()},
        storage_tier=raw.get("StorageTier") or "standard",
        completion_time=_time(raw.get("CompletionTime")),
    )


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def retention_policy(settings: Settings, *, keep_min: int | None = None) -> RetentionPolicy:
    return RetentionPolicy(
        retention_days=settings.retention_days,
        keep_min=settings.keep_min if keep_min is None else keep_min,
        max_delete_fraction=settings.max_delete_fraction,
        max_deletes_per_run=settings.max_deletes_per_run,
        gfs=settings.retention,
        archive_after_days=settings.archive_after_days,
    )


def upcoming_snapshots(
    target: InstanceTarget, run_id: str, moment: datetime, deployment_id: str, existing: Iterable[SnapshotRecord]
) -> list[SnapshotRecord]:
    """The snapshots this run would create, for a preview (dry run, `plan`) to count toward
    ``keep_min`` exactly as the real run counts the ones it made."""
    have = {s.volume_id for s in existing if s.tags.get(TAG_RUN_ID) == run_id}
    return [
        SnapshotRecord(
            snapshot_id=f"{UPCOMING_PREFIX}{v.device})",
            volume_id=v.volume_id,
            start_time=moment,
            state="completed",
            tags={TAG_MANAGED: deployment_id, TAG_RUN_ID: run_id},
        )
        for v in target.volumes
        if v.volume_id not in have
    ]


def safe_plan(
    records: Sequence[SnapshotRecord],
    *,
    policy: RetentionPolicy,
    now: datetime,
    settings: Settings,
    run_id: str,
    ec2: Ec2,
    store: Store | None,
    blocked: frozenset[str] = frozenset(),
    volume_policies: Mapping[str, RetentionPolicy] | None = None,
    held: Mapping[str, str] | None = None,
    add_missing_locks: bool = False,
) -> RetentionPlan:
    """The retention plan with locked and AMI-pinned snapshots kept and operator approvals applied.

    Nothing inside the configured lock (``lock.days`` since it was taken) is deleted, whether or
    not EC2 holds a lock on it. Locks are read first (DescribeLockedSnapshots, 200 ids a call)
    over the candidates and, with ``add_missing_locks`` (a real run, not a preview), over the
    snapshots inside the configured lock, which are locked now when EC2 shows no lock (a
    LockSnapshot that failed on an earlier night); then AMIs (DescribeImages) over what would be
    deleted or archived (EC2 refuses both for a snapshot an enabled AMI uses)."""

    def plan(**extra: Any) -> RetentionPlan:
        return plan_retention(
            records,
            policy=policy,
            now=now,
            deployment_id=settings.deployment_id,
            current_run_id=run_id,
            blocked_volume_ids=blocked,
            volume_policies=volume_policies,
            held=held,
            **extra,
        )

    def candidates(result: RetentionPlan) -> list[str]:
        return [s.snapshot_id for s in result.candidates if not s.snapshot_id.startswith(UPCOMING_PREFIX)]

    def touched(result: RetentionPlan) -> list[str]:
        archived = [s.snapshot_id for s in result.to_archive if not s.snapshot_id.startswith(UPCOMING_PREFIX)]
        return candidates(result) + archived

    result = plan()
    real = {r.snapshot_id: r for r in records if not r.snapshot_id.startswith(UPCOMING_PREFIX)}
    window = lock_window(real.values(), settings.lock, now, deployment_id=settings.deployment_id, run_id=run_id)
    relock = bool(window) and add_missing_locks and settings.lock is not None
    if not touched(result) and not relock:
        return result
    asked = set(candidates(result)) | (set(window) if relock else set())
    described = ec2.locked_snapshots(asked) if asked else {}
    added: dict[str, datetime] = {}
    if relock and settings.lock is not None:
        new = lock_missing(ec2, real, window, described, settings.lock, now)
        added = {sid: until or datetime.max.replace(tzinfo=now.tzinfo) for sid, until in new.items()}
    locked = dict(window)
    for sid, until in {**active_until(described, now), **added}.items():
        locked[sid] = max(until, locked.get(sid, until))
    if locked:
        result = plan(locked=locked)
        if not touched(result):
            return replace(result, lock_expiry=locked, locks_added=added)
    pinned = ec2.ami_snapshots(touched(result))
    if pinned:
        result = plan(pinned=pinned, locked=locked)
    if result.breakers and store is not None:
        approvals = approvals_for(store, result.tripped_volumes, ec2.region_name(), set(real))
        if approvals:
            approved = {v: frozenset(a.snapshot_ids) for v, a in approvals.items()}
            result = plan(pinned=pinned, locked=locked, approved=approved)
            # Still tripped although approved: the plan changed since; the alert says so.
            unmatched = {v: (a.run_id, a.snapshot_ids) for v, a in approvals.items() if v in result.tripped_volumes}
            result = replace(result, unmatched_approvals=unmatched)
    return replace(result, lock_expiry=locked, locks_added=added)


def tripped(plan: RetentionPlan) -> tuple[TrippedVolume, ...]:
    stale = plan.unmatched_approvals
    return tuple(
        TrippedVolume(
            volume_id=b.volume_id,
            would_delete=b.would_delete,
            reason=b.reason,
            approved_run_id=stale[b.volume_id][0] if b.volume_id in stale else None,
            approved_snapshot_ids=stale[b.volume_id][1] if b.volume_id in stale else (),
        )
        for b in plan.breakers
    )


def pinned_snapshots(plan: RetentionPlan) -> tuple[PinnedSnapshot, ...]:
    return tuple(
        PinnedSnapshot(
            snapshot_id=d.snapshot.snapshot_id,
            volume_id=d.snapshot.volume_id,
            image_id=d.reason.removeprefix(AMI_REASON),
        )
        for d in plan.pinned
    )


def locked_snapshots(plan: RetentionPlan) -> tuple[LockedSnapshot, ...]:
    return tuple(
        LockedSnapshot(
            snapshot_id=d.snapshot.snapshot_id,
            volume_id=d.snapshot.volume_id,
            locked_until=format_time(plan.lock_expiry[d.snapshot.snapshot_id]),
        )
        for d in plan.locked
    )


def locks_added(plan: RetentionPlan) -> tuple[LockedSnapshot, ...]:
    volumes = {d.snapshot.snapshot_id: d.snapshot.volume_id for d in plan.decisions}
    return tuple(
        LockedSnapshot(snapshot_id=sid, volume_id=volumes.get(sid, ""), locked_until=format_time(until))
        for sid, until in sorted(plan.locks_added.items())
    )


def kept_snapshots(plan: RetentionPlan, *, tripped_too: bool = True) -> tuple[KeptSnapshot, ...]:
    """Every snapshot the plan keeps, with the reason (the GFS tiers that picked it, keep_min...)."""
    tripped = plan.tripped_volumes
    return tuple(
        KeptSnapshot(
            snapshot_id=d.snapshot.snapshot_id,
            volume_id=d.snapshot.volume_id,
            start_time=format_time(d.snapshot.start_time),
            reason=d.reason if not d.delete else "circuit_breaker",
            storage_tier=d.snapshot.storage_tier,
            archive=d.archive,
        )
        for d in plan.decisions
        if (not d.delete or (tripped_too and d.snapshot.volume_id in tripped))
        and not d.snapshot.snapshot_id.startswith(UPCOMING_PREFIX)
    )


@dataclass(frozen=True, kw_only=True)
class Archives:
    archived: tuple[str, ...]
    skipped: tuple[SkippedDelete, ...]


def archive_planned(plan: RetentionPlan, *, ec2: Ec2, dry_run: bool) -> Archives:
    """Move the plan's archive picks to the archive tier (a dry run only lists them). Snapshots
    whose tiering is already under way are left alone, not asked again."""
    tripped = plan.tripped_volumes  # a stopped volume changes nothing until its plan is released
    wanted = [
        s for s in plan.to_archive if not s.snapshot_id.startswith(UPCOMING_PREFIX) and s.volume_id not in tripped
    ]
    if not wanted:
        return Archives(archived=(), skipped=())
    busy = ec2.tiering_in_progress(s.snapshot_id for s in wanted)
    wanted = [s for s in wanted if s.snapshot_id not in busy]
    if dry_run:
        return Archives(archived=tuple(s.snapshot_id for s in wanted), skipped=())
    archived: list[str] = []
    skipped: list[SkippedDelete] = []
    for snap in wanted:
        refused = ec2.archive_snapshot(snap.snapshot_id)
        if refused is None:
            archived.append(snap.snapshot_id)
        else:
            skipped.append(SkippedDelete(snapshot_id=snap.snapshot_id, volume_id=snap.volume_id, reason=refused))
    count(METRIC_SNAPSHOTS_ARCHIVED, len(archived))
    return Archives(archived=tuple(archived), skipped=tuple(skipped))


def intent(snap: SnapshotRecord, instance_id: str = "") -> Intent:
    return Intent(
        snapshot_id=snap.snapshot_id,
        volume_id=snap.volume_id,
        start_time=format_time(snap.start_time),
        instance_id=instance_id or snap.tags.get(TAG_INSTANCE_ID, ""),
    )


@dataclass(frozen=True, kw_only=True)
class Deletions:
    deleted: tuple[DeletedSnapshot, ...]
    skipped: tuple[SkippedDelete, ...]
    deferred: tuple[SkippedDelete, ...] = ()  # left for the next run (reason deferred:<code>)
    locked: tuple[LockedSnapshot, ...] = ()  # refused, and locked on re-check: kept


def delete_journaled(
    snaps: Sequence[SnapshotRecord],
    *,
    journal: Journal,
    earlier: Iterable[str],
    ec2: Ec2,
    instance_id: str = "",
    now: datetime | None = None,
) -> Deletions:
    """Journal every intent, then delete (deferral.py: bounded retries, then the rest of the run's
    deletions deferred). ``earlier``: ids journaled by an earlier attempt."""
    journal.record(intent(s, instance_id) for s in snaps)
    earlier = set(earlier)
    moment = now or datetime.now(UTC)
    deleted: list[DeletedSnapshot] = []
    skipped: list[SkippedDelete] = []
    deferred: list[SkippedDelete] = []
    locked: list[LockedSnapshot] = []
    for snap in snaps:
        if deferred:  # throttled past its retries: the rest waits for the next run as well
            deferred.append(replace(deferred[0], snapshot_id=snap.snapshot_id, volume_id=snap.volume_id))
            continue
        done = delete_or_defer(ec2, snap.snapshot_id, now=moment)
        if done.result == "deleted" or (done.result == "already_deleted" and snap.snapshot_id in earlier):
            # Gone after our own earlier attempt (DescribeSnapshots lagging behind): ours.
            deleted.append(intent(snap).deleted())
        elif done.result == "deferred":
            reason = f"{DEFERRED_PREFIX}{done.code}"
            deferred.append(SkippedDelete(snapshot_id=snap.snapshot_id, volume_id=snap.volume_id, reason=reason))
        elif done.result == "locked" and done.locked_until is not None:
            until = format_time(done.locked_until)
            locked.append(LockedSnapshot(snapshot_id=snap.snapshot_id, volume_id=snap.volume_id, locked_until=until))
        else:
            skipped.append(SkippedDelete(snapshot_id=snap.snapshot_id, volume_id=snap.volume_id, reason=done.result))
    count(METRIC_SNAPSHOTS_DELETED, len(deleted))
    count(METRIC_DELETES_SKIPPED, len(skipped))
    count(METRIC_DELETES_DEFERRED, len(deferred))
    if deferred:
        logger.warning("deletions deferred to the next run", extra={"deferred": len(deferred)})
    return Deletions(deleted=tuple(deleted), skipped=tuple(skipped), deferred=tuple(deferred), locked=tuple(locked))


def locked_as_skipped(locked: Iterable[LockedSnapshot]) -> list[SkippedDelete]:
    """Refused for a lock that appeared after the plan (copies, orphans): kept, listed as locked."""
    return [SkippedDelete(snapshot_id=k.snapshot_id, volume_id=k.volume_id, reason=LOCKED_REASON) for k in locked]


def prune_instance(
    job: InstanceJob,
    *,
    settings: Settings,
    ec2: Ec2,
    store: Store,
    hold: Callable[[Sequence[SnapshotRecord]], Mapping[str, str]] | None = None,
) -> InstanceOutcome:
    """``hold``: which of the listed snapshots must stay although expired, and why
    (prune-after-copy, see copies.py)."""
    backup, target, run = job.backup, job.instance, job.run
    assert backup is not None
    base = InstanceOutcome(
        instance_id=target.instance_id,
        name=target.name,
        status="skipped",
        run_id=run.run_id,
        execution_name=run.execution_name,
        snapshots=backup.snapshots,
        created=backup.created,
        dry_run=run.dry_run,
        would_create=backup.would_create,
    )
    if backup.status == "skipped" and not (run.dry_run and backup.would_create):
        # Nothing was backed up (instance gone, nothing selected): prune nothing either; a dry
        # run predicts the same skip, with the real run's reason.
        return replace(base, reason=backup.reason)

    journal = None if run.dry_run else Journal(store, run, target.instance_id)
    earlier = journal.intents() if journal else {}
    # Snapshots of this instance's other volumes (opted out, detached) are orphans: their own
    # rules and breaker, in the orphan step, so a backlog there never stops these volumes.
    listed = [snapshot_record(s) for s in ec2.managed_snapshots(settings.deployment_id, target.instance_id)]
    records = [s for s in listed if s.volume_id in target.included_volume_ids]
    # Every volume of this run must have a completed snapshot before anything of it goes.
    completed = {s.volume_id for s in backup.snapshots if s.state == "completed"}
    blocked = frozenset() if run.dry_run else frozenset(target.included_volume_ids - completed)
    if run.dry_run:
        records += upcoming_snapshots(target, run.run_id, run.run_datetime, settings.deployment_id, records)
    try:
        policy = with_override(retention_policy(settings), target.retention_tags)
    except OverrideError as error:
        # Never a guess: this instance keeps everything until its tag is fixed, and the alert says so.
        logger.warning("invalid retention override: pruning skipped", extra={"problem": str(error)})
        return replace(_backed_up(base, job, completed), retention_error=str(error))
    plan = safe_plan(
        records,
        policy=policy,
        now=run.run_datetime,
        settings=settings,
        run_id=run.run_id,
        ec2=ec2,
        store=store,
        blocked=blocked,
        held=hold(records) if hold is not None and not run.dry_run else None,
        add_missing_locks=not run.dry_run,
    )
    if plan.breakers:
        logger.warning("circuit breaker: pruning stopped", extra={"breaker": plan.breaker})
    done = Deletions(deleted=(), skipped=())
    if journal is not None:
        done = delete_journaled(
            plan.to_delete,
            journal=journal,
            earlier=earlier,
            ec2=ec2,
            instance_id=target.instance_id,
            now=run.run_datetime,
        )
    tiered = archive_planned(plan, ec2=ec2, dry_run=run.dry_run)
    # Deletions of earlier attempts of this step: journaled, and no longer in the account.
    before = [i.deleted() for i in confirmed_deletions(earlier, (s.snapshot_id for s in listed))]
    logger.info(
        "pruned",
        extra={
            "deleted": len(done.deleted),
            "earlier": len(before),
            "skipped": len(done.skipped),
            "deferred": len(done.deferred),
        },
    )
    return replace(
        _backed_up(base, job, completed),
        deleted=tuple(before) + done.deleted,
        skipped_deletes=done.skipped,
        would_delete=tuple(intent(s).deleted() for s in plan.to_delete) if run.dry_run else (),
        breaker=plan.breaker,
        breakers=tripped(plan),
        kept_by_ami=pinned_snapshots(plan),
        kept_locked=locked_snapshots(plan) + done.locked,
        approved_volumes=plan.approved_volumes,
        kept=kept_snapshots(plan),
        archived=tiered.archived,
        archive_skipped=tiered.skipped,
        deferred_deletes=done.deferred,
        locks_added=locks_added(plan),
    )


def _backed_up(base: InstanceOutcome, job: InstanceJob, completed: set[str]) -> InstanceOutcome:
    """The outcome of an instance this run backed up (a dry run: previewed), with the size of
    its volumes that have a completed snapshot."""
    dry_run = job.run.dry_run
    return replace(
        base,
        status="skipped" if dry_run else "backed_up",
        reason="dry run: nothing created or deleted" if dry_run else None,
        backup_gib=sum(v.size_gib for v in job.instance.volumes if v.volume_id in completed),
    )


def save_outcome(outcome: InstanceOutcome, run: RunContext, store: Store) -> None:
    """The record Notify aggregates (and the CLI reads) for one instance of one execution."""
    store.put_json(f"{outcomes_prefix(run_prefix(run))}{outcome.instance_id}.json", outcome.to_dict())
