"""Orphans: this deployment's snapshots of volumes no run backs up any more.

An instance that was terminated, deleted or untagged, a volume that was detached or opted out:
their snapshots would stay forever. After the Map, one paginated DescribeSnapshots over the
managed marker finds every snapshot whose volume is not in this run's inventory; they are pruned
by the same rules (retention age, breaker per volume, AMI pins, journal) down to the newest
``orphan_keep`` completed snapshots per volume, as Amazon DLM keeps the last one. With off-site
copies they are held like a live volume's (prune-after-copy, copies.copy_holds): a snapshot
goes only once every destination holds a completed copy of its volume at least as new.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from smart_vault.aws import Ec2, Store
from smart_vault.constants import COPY_HELD_REASON, TAG_INSTANCE_ID, TAG_INSTANCE_NAME
from smart_vault.models import (
    DeletedSnapshot,
    InstanceTarget,
    PinnedSnapshot,
    RunContext,
    SkippedDelete,
    TrippedVolume,
    orphans_key,
    run_prefix,
)
from smart_vault.observability import logger
from smart_vault.retention.journal import ORPHANS_SUBJECT, Journal, confirmed_deletions
from smart_vault.retention.overrides import OverrideError, with_override
from smart_vault.retention.pruning import (
    delete_journaled,
    locked_as_skipped,
    pinned_snapshots,
    retention_policy,
    safe_plan,
    snapshot_record,
    tripped,
)
from smart_vault.retention.rules import RetentionPlan, RetentionPolicy, SnapshotRecord
from smart_vault.settings import Settings


@dataclass(frozen=True, kw_only=True)
class HeldSnapshot:
    """A snapshot retention would delete, kept until these destinations hold a completed copy
    of its volume at least as new (prune-after-copy)."""

    snapshot_id: str
    volume_id: str
    regions: tuple[str, ...]


Hold = Callable[[Sequence[SnapshotRecord]], Mapping[str, str]]


@dataclass(frozen=True, kw_only=True)
class OrphanVolume:
    volume_id: str
    instance_id: str
    name: str
    deleted: tuple[DeletedSnapshot, ...] = ()
    kept: tuple[str, ...] = ()
    would_delete: tuple[str, ...] = ()
    skipped_deletes: tuple[SkippedDelete, ...] = ()
    breaker: TrippedVolume | None = None
    kept_by_ami: tuple[PinnedSnapshot, ...] = ()
    approved: bool = False
    retention_error: str | None = None  # invalid recorded override: nothing of it pruned
    region: str | None = None  # a copy destination; None: the source Region
    held_for_copies: tuple[HeldSnapshot, ...] = ()


@dataclass(frozen=True, kw_only=True)
class OrphanReport:
    """What orphan pruning did in one execution (``status``: pruned, dry_run or skipped)."""

    run_id: str
    status: str
    reason: str | None = None
    volumes: tuple[OrphanVolume, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> OrphanReport:
        volumes = []
        for v in data.get("volumes") or ():
            breaker = v.get("breaker")
            volumes.append(
                OrphanVolume(
                    volume_id=v["volume_id"],
                    instance_id=v.get("instance_id") or "",
                    name=v.get("name") or "",
                    deleted=tuple(DeletedSnapshot(**d) for d in v.get("deleted") or ()),
                    kept=tuple(v.get("kept") or ()),
                    would_delete=tuple(v.get("would_delete") or ()),
                    skipped_deletes=tuple(SkippedDelete(**d) for d in v.get("skipped_deletes") or ()),
                    breaker=TrippedVolume.from_dict(breaker) if breaker else None,
                    kept_by_ami=tuple(PinnedSnapshot(**p) for p in v.get("kept_by_ami") or ()),
                    approved=bool(v.get("approved")),
                    retention_error=v.get("retention_error"),
                    region=v.get("region"),
                    held_for_copies=tuple(
                        HeldSnapshot(
                            snapshot_id=h["snapshot_id"], volume_id=h["volume_id"], regions=tuple(h["regions"])
                        )
                        for h in v.get("held_for_copies") or ()
                    ),
                )
            )
        return cls(run_id=data["run_id"], status=data["status"], reason=data.get("reason"), volumes=tuple(volumes))


def orphan_snapshots(managed: Iterable[dict[str, Any]], targets: Sequence[InstanceTarget]) -> list[dict[str, Any]]:
    """Managed snapshots whose volume is not one this run backs up."""
    live = {v.volume_id for t in targets for v in t.volumes}
    return [s for s in managed if s["VolumeId"] not in live]


def skip_reason(targets: Sequence[InstanceTarget], *, scoped: bool) -> str | None:
    """Why orphan pruning must not run now (None: it may)."""
    if scoped:
        return "this run backs up only the instances it was given: other volumes are not orphans"
    if not targets:
        # Most likely a misconfiguration (tag key or value changed): never treat the whole
        # fleet's history as orphaned because of it.
        return "no instance is selected for backup: orphan pruning waits for a run that selects some"
    return None


def orphan_policies(
    records: Sequence[SnapshotRecord], base: RetentionPolicy
) -> tuple[dict[str, RetentionPolicy], dict[str, str]]:
    """Per orphaned volume: the retention override its instance had when the volume's newest
    snapshot was taken (recorded on it at creation), with ``orphan_keep`` as the floor; or,
    when that recorded override is invalid, the problem (the volume is then left untouched)."""
    newest: dict[str, SnapshotRecord] = {}
    for r in sorted(records, key=lambda r: (r.start_time, r.snapshot_id)):
        newest[r.volume_id] = r
    policies: dict[str, RetentionPolicy] = {}
    problems: dict[str, str] = {}
    for volume_id, snap in newest.items():
        try:
            policy = with_override(base, snap.tags)
        except OverrideError as error:
            problems[volume_id] = str(error)
            continue
        if policy != base:
            policies[volume_id] = policy
    return policies, problems


def plan_orphans(
    orphans: Sequence[dict[str, Any]],
    *,
    settings: Settings,
    run_id: str,
    now: datetime,
    ec2: Ec2,
    store: Store | None,
    add_missing_locks: bool = False,
    hold: Hold | None = None,
) -> tuple[list[SnapshotRecord], RetentionPlan, dict[str, str]]:
    """The orphans, their plan, and volume id -> problem for volumes left alone (bad override).
    ``add_missing_locks``: a real run locks orphans inside the configured lock that have none.
    ``hold``: which of them must stay although expired, and why (prune-after-copy)."""
    records = [snapshot_record(s) for s in orphans]
    base = retention_policy(settings, keep_min=settings.orphan_keep)
    policies, problems = orphan_policies(records, base)
    plan = safe_plan(
        [r for r in records if r.volume_id not in problems],
        policy=base,
        now=now,
        settings=settings,
        run_id=run_id,
        ec2=ec2,
        store=store,
        volume_policies=policies,
        add_missing_locks=add_missing_locks,
        held=hold(records) if hold is not None else None,
    )
    return records, plan, problems


def prune_orphans(
    run: RunContext,
    targets: Sequence[InstanceTarget],
    *,
    scoped: bool,
    settings: Settings,
    ec2: Ec2,
    store: Store,
    hold: Hold | None = None,
) -> OrphanReport:
    reason = skip_reason(targets, scoped=scoped)
    if reason is not None:
        report = OrphanReport(run_id=run.run_id, status="skipped", reason=reason)
        store.put_json(orphans_key(run_prefix(run)), report.to_dict())
        return report
    journal = None if run.dry_run else Journal(store, run, ORPHANS_SUBJECT)
    earlier = journal.intents() if journal else {}
    orphans = orphan_snapshots(ec2.all_managed_snapshots(settings.deployment_id), targets)
    records, plan, problems = plan_orphans(
        orphans,
        settings=settings,
        run_id=run.run_id,
        now=run.run_datetime,
        ec2=ec2,
        store=store,
        add_missing_locks=not run.dry_run,
        hold=hold,
    )
    deleted: list[DeletedSnapshot] = [
        i.deleted() for i in confirmed_deletions(earlier, (r.snapshot_id for r in records))
    ]
    skipped: list[SkippedDelete] = []
    if journal is not None:
        done = delete_journaled(plan.to_delete, journal=journal, earlier=earlier, ec2=ec2, now=run.run_datetime)
        deleted += done.deleted
        # Locked on re-check, or deferred (reason deferred:<code>): kept, listed as skipped.
        skipped += [*done.skipped, *locked_as_skipped(done.locked), *done.deferred]
    owners = {i.volume_id: i.instance_id for i in earlier.values()}
    owners.update({r.volume_id: r.tags.get(TAG_INSTANCE_ID, "") for r in records})
    names = {r.volume_id: r.tags.get(TAG_INSTANCE_NAME, "") for r in records}
    report = OrphanReport(
        run_id=run.run_id,
        status="dry_run" if run.dry_run else "pruned",
        volumes=by_volume(records, plan, deleted, skipped, owners, names, problems, preview=run.dry_run),
    )
    if any(v.held_for_copies for v in report.volumes):
        logger.warning("orphan pruning held for off-site copies", extra={"volumes": len(report.volumes)})
    store.put_json(orphans_key(run_prefix(run)), report.to_dict())
    logger.info(
        "orphans pruned",
        extra={"volumes": len(report.volumes), "deleted": len(deleted), "breakers": len(plan.breakers)},
    )
    return report


def by_volume(
    records: Sequence[SnapshotRecord],
    plan: RetentionPlan,
    deleted: Sequence[DeletedSnapshot],
    skipped: Sequence[SkippedDelete],
    owners: dict[str, str],
    names: dict[str, str],
    problems: dict[str, str],
    *,
    preview: bool,
) -> tuple[OrphanVolume, ...]:
    gone = {d.snapshot_id for d in deleted}
    per_volume: dict[str, list[str]] = defaultdict(list)
    for r in sorted(records, key=lambda r: r.start_time):
        if r.snapshot_id not in gone:
            per_volume[r.volume_id].append(r.snapshot_id)
    volume_ids = sorted(set(per_volume) | {d.volume_id for d in deleted})
    breakers = {b.volume_id: b for b in tripped(plan)}
    pins = pinned_snapshots(plan)
    held = held_for_copies(plan)
    would = plan.to_delete if preview else []
    return tuple(
        OrphanVolume(
            volume_id=vid,
            instance_id=owners.get(vid, ""),
            name=names.get(vid, ""),
            deleted=tuple(d for d in deleted if d.volume_id == vid),
            kept=tuple(per_volume.get(vid, ())),
            would_delete=tuple(s.snapshot_id for s in would if s.volume_id == vid),
            skipped_deletes=tuple(s for s in skipped if s.volume_id == vid),
            breaker=breakers.get(vid),
            kept_by_ami=tuple(p for p in pins if p.volume_id == vid),
            approved=vid in plan.approved_volumes,
            retention_error=problems.get(vid),
            held_for_copies=tuple(h for h in held if h.volume_id == vid),
        )
        for vid in volume_ids
    )


def held_for_copies(plan: RetentionPlan) -> tuple[HeldSnapshot, ...]:
    """The snapshots the plan keeps only because their copies are not done (``held`` reasons
    are ``<reason>:<region>,<region>``, see copies.copy_holds)."""
    held = []
    for d in plan.decisions:
        name, sep, regions = d.reason.partition(":")
        if sep and name == COPY_HELD_REASON:
            held.append(
                HeldSnapshot(
                    snapshot_id=d.snapshot.snapshot_id,
                    volume_id=d.snapshot.volume_id,
                    regions=tuple(regions.split(",")),
                )
            )
    return tuple(held)
