"""Off-site copies: each run's completed snapshots copied to every destination Region, the local
snapshots held until their copies are done, and the copies pruned there by their own retention.

EC2 facts this relies on (EC2 API Reference, CopySnapshot; Amazon EBS User Guide, "Copy an
Amazon EBS snapshot"):
- CopySnapshot is sent to the destination Region's endpoint; Step Functions' SDK integrations
  call only their own Region, so a Lambda with destination-Region clients makes the calls;
- a copy's VolumeId is an arbitrary placeholder, so copies carry the source volume in a tag;
- at most 20 copies may be in flight per destination Region (not adjustable); one more is
  refused with ResourceLimitExceeded. Both that and throttling mean "wait and retry";
- the KMS keys are checked asynchronously: a destination key, or a source snapshot's key, that
  the caller cannot use makes the copy end in state ``error`` (Snapshot.StateMessage: "Encrypted
  Amazon EBS snapshots are copied asynchronously. If a snapshot copy operation fails (for
  example, if the proper KMS permissions are not obtained) this field displays error state
  details"). Discover checks each destination key first: the copies to a Region whose key is
  unusable are not attempted and fail the instance's Copy step; the local backups are taken and
  stay held (prune-after-copy) until copies there complete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from smart_vault.aws import Ec2, Store
from smart_vault.backup.inventory import MAX_CREATION_TAGS, MAX_TAG_VALUE, run_tags
from smart_vault.backup.snapshots import lock_new, next_check_wait
from smart_vault.constants import (
    COPY_HELD_REASON,
    METRIC_COPIES_COMPLETED,
    METRIC_COPIES_DELETED,
    METRIC_COPIES_STARTED,
    METRIC_COPY_SLOT_WAITS,
    METRIC_DIMENSION_REGION,
    NEW_RESOURCE_VISIBILITY_SECONDS,
    TAG_DEVICE,
    TAG_INSTANCE_ID,
    TAG_INSTANCE_NAME,
    TAG_RUN_TIME,
    TAG_SOURCE_REGION,
    TAG_SOURCE_SNAPSHOT,
    TAG_SOURCE_VOLUME,
)
from smart_vault.errors import (
    CopyFailedError,
    CopyKeyError,
    CopyTimeoutError,
    SmartVaultError,
    ThrottledError,
)
from smart_vault.models import (
    CopyRef,
    CopyState,
    InstanceJob,
    InstanceTarget,
    RegionPruning,
    RunContext,
    SnapshotRef,
    copy_journal_key,
    run_prefix,
)
from smart_vault.observability import count, count_by, logger
from smart_vault.retention.journal import Journal, confirmed_deletions
from smart_vault.retention.locks import lock_snapshots
from smart_vault.retention.orphans import OrphanVolume, by_volume
from smart_vault.retention.pruning import (
    Deletions,
    delete_journaled,
    intent,
    locked_as_skipped,
    locks_added,
    pinned_snapshots,
    safe_plan,
    snapshot_record,
    tripped,
)
from smart_vault.retention.rules import RetentionPolicy, SnapshotRecord
from smart_vault.settings import CopyRegion, Settings
from smart_vault.validation import format_time

# Codes that mean "no slot now": EC2's concurrent-copy limit (EBS User Guide, "Copy an Amazon EBS
# snapshot": 20 per destination) and request throttling.
_NO_SLOT_CODES = frozenset({"ResourceLimitExceeded"})

Ec2For = Callable[[str], Ec2]


def copy_tags(job: InstanceJob, source: SnapshotRef, *, deployment_id: str, source_region: str) -> list[dict[str, str]]:
    """Tags a copy carries from creation on: the managed marker and run (so a re-run finds it and
    the destination's retention applies), and its source (the copy's VolumeId is a placeholder)."""
    tags = run_tags(job.instance, job.run, deployment_id)
    tags.update(
        {
            TAG_SOURCE_SNAPSHOT: source.snapshot_id,
            TAG_SOURCE_VOLUME: source.volume_id,
            TAG_SOURCE_REGION: source_region,
        }
    )
    if source.device:
        tags[TAG_DEVICE] = source.device[:MAX_TAG_VALUE]
    items = [{"Key": k, "Value": v} for k, v in tags.items()]
    return items[-MAX_CREATION_TAGS:]


def _tags(raw: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in raw.get("Tags") or ()}


def _progress(raw: Mapping[str, Any]) -> int:
    text = str(raw.get("Progress") or "").rstrip("%")
    return int(text) if text.isdigit() else (100 if raw.get("State") == "completed" else 0)


def _no_slot(error: SmartVaultError) -> bool:
    return isinstance(error, ThrottledError) or error.aws_code in _NO_SLOT_CODES


def advance_copies(job: InstanceJob, *, settings: Settings, source_region: str, ec2_for: Ec2For) -> CopyState:
    """One step of the copy loop: find this run's copies by tag in every destination, start the
    missing ones while slots are free, and say whether all are completed.

    Idempotent: whatever an earlier attempt or execution started is found first, so a retry or a
    re-run never starts a second copy of a snapshot that already has one (pending or completed).
    """
    backup, run, previous = job.backup, job.run, job.copies
    if backup is None or backup.status != "completed" or run.dry_run or not settings.copy_regions:
        return CopyState(status="skipped", reason="no completed snapshots to copy or no copy_regions")
    known = {c.snapshot_id for c in previous.copies if c.snapshot_id} if previous else set()
    waited = previous.waited_seconds + previous.wait_seconds if previous else 0
    sources = [s for s in backup.snapshots if s.state == "completed"]
    refs: list[CopyRef] = []
    slot_waits = previous.slot_waits if previous else 0
    waiting = False
    unusable = run.unusable_copy_keys
    for dest in settings.copy_regions:
        if dest.region in unusable:
            continue  # not attempted: it would end in state error (see the module docstring)
        copies, held_back = _copies_in(
            dest, ec2_for(dest.region), job, sources, known, waited, settings=settings, source_region=source_region
        )
        refs += copies + held_back
        waiting = waiting or bool(held_back)
    if waiting:
        slot_waits += 1
        count(METRIC_COPY_SLOT_WAITS, 1)
    checks = (previous.checks if previous else 0) + 1
    if all(r.state == "completed" for r in refs):
        _all_completed(refs, unusable, settings)
        return CopyState(
            status="completed", copies=tuple(refs), waited_seconds=waited, checks=checks, slot_waits=slot_waits
        )
    _fail_if_late(refs, waited, settings)
    return CopyState(
        status="pending",
        copies=tuple(refs),
        wait_seconds=next_check_wait(
            checks - 1,  # the first turn starts the copies: wait_initial_seconds before the next
            waited_seconds=waited,
            settings=settings,
            floor=job.run.min_check_interval_seconds,
            timeout_seconds=settings.copy_timeout_seconds,
        ),
        waited_seconds=waited,
        checks=checks,
        slot_waits=slot_waits,
    )


def _copies_in(
    dest: CopyRegion,
    ec2: Ec2,
    job: InstanceJob,
    sources: Sequence[SnapshotRef],
    known: set[str],
    waited: int,
    *,
    settings: Settings,
    source_region: str,
) -> tuple[list[CopyRef], list[CopyRef]]:
    """One destination's copies of ``sources``: those found or started now, and those held back
    for a free slot."""
    previous = job.copies
    found = _run_copies(ec2, settings.deployment_id, job, known, dest.region)
    if previous is None and found:
        # First turn of this execution finding copies (a re-run): lock those an earlier
        # execution left unlocked.
        lock_snapshots(ec2, [c.snapshot_id for c in found.values() if c.snapshot_id], settings.lock)
    found = {**_not_listed_yet(previous, dest.region, waited), **found}
    lock_snapshots(ec2, _unlocked(previous, dest.region), settings.lock)
    missing = [s for s in sources if s.snapshot_id not in found]
    started, held_back = _start(job, missing, dest, ec2, settings=settings, source_region=source_region)
    return [found[s.snapshot_id] for s in sources if s.snapshot_id in found] + started, held_back


def _all_completed(refs: Sequence[CopyRef], unusable: Mapping[str, str], settings: Settings) -> None:
    """Every copy attempted is completed: fail the instance for the destinations not attempted,
    or count the copies per destination."""
    if unusable:
        # The healthy destinations are done: now fail the instance for the others, so the
        # alert names each Region and key, and its local snapshots stay held for them.
        raise CopyKeyError(
            "copies not attempted (the local snapshots were taken and are kept until copies "
            f"there complete): {'; '.join(unusable[r] for r in sorted(unusable))}",
            operation="ec2:CopySnapshot",
        )
    for dest in settings.copy_regions:
        count_by(
            METRIC_COPIES_COMPLETED,
            {METRIC_DIMENSION_REGION: dest.region},
            sum(r.region == dest.region for r in refs),
        )


def _fail_if_late(refs: Sequence[CopyRef], waited: int, settings: Settings) -> None:
    """The copies still not completed after ``copy_timeout_seconds`` fail the instance."""
    if waited >= settings.copy_timeout_seconds:
        late = ", ".join(
            f"{r.source_snapshot_id}->{r.region} {r.state} {r.progress}%" for r in refs if r.state != "completed"
        )
        raise CopyTimeoutError(
            f"copies not completed after {waited} s (copy_timeout_seconds={settings.copy_timeout_seconds}): {late}"
        )


def _not_listed_yet(previous: CopyState | None, region: str, waited: int) -> dict[str, CopyRef]:
    """Copies an earlier turn started in ``region``, by source snapshot id: kept while EC2 may not
    list them yet (eventual consistency, NEW_RESOURCE_VISIBILITY_SECONDS), so that a tag lookup
    that misses a copy does not start a second one. After that a copy not listed is gone and is
    started again."""
    if previous is None or waited >= NEW_RESOURCE_VISIBILITY_SECONDS:
        return {}
    return {
        c.source_snapshot_id: replace(c, unlocked=False)
        for c in previous.copies
        if c.region == region and c.snapshot_id and c.state != "completed"
    }


def _unlocked(previous: CopyState | None, region: str) -> list[str]:
    """Copies an earlier turn started in ``region`` whose lock was throttled (lock_new)."""
    copies = previous.copies if previous else ()
    return [c.snapshot_id for c in copies if c.region == region and c.unlocked and c.snapshot_id]


def _run_copies(ec2: Ec2, deployment_id: str, job: InstanceJob, known: set[str], region: str) -> dict[str, CopyRef]:
    """This run's copies of the instance in one destination, by source snapshot id.

    A copy in state ``error`` that this execution started fails the instance (with the Region
    and EC2's message); one left by an earlier execution is ignored, so a re-run after fixing a
    key copies again instead of failing forever.
    """
    found: dict[str, CopyRef] = {}
    volumes = {s.snapshot_id: s.volume_id for s in job.backup.snapshots} if job.backup else {}
    for raw in sorted(
        ec2.managed_snapshots(deployment_id, job.instance.instance_id, job.run.run_id),
        key=lambda s: str(s.get("StartTime")),
    ):
        tags = _tags(raw)
        source = tags.get(TAG_SOURCE_SNAPSHOT)
        if not source or source not in volumes:
            continue  # not a copy of one of this run's snapshots
        if raw.get("State") == "error":
            if raw["SnapshotId"] in known:
                raise CopyFailedError(
                    f"ec2:CopySnapshot failed: CopyError: copy {raw['SnapshotId']} of {source} to {region} "
                    f"ended in state error: {raw.get('StateMessage') or 'no state message'}",
                    aws_code="CopyError",
                    operation="ec2:CopySnapshot",
                )
            continue
        found[source] = CopyRef(
            source_snapshot_id=source,
            source_volume_id=volumes.get(source) or tags.get(TAG_SOURCE_VOLUME, ""),
            region=region,
            snapshot_id=raw["SnapshotId"],
            state=str(raw.get("State", "pending")),
            progress=_progress(raw),
        )
    return found


def _start(
    job: InstanceJob,
    missing: Sequence[SnapshotRef],
    dest: CopyRegion,
    ec2: Ec2,
    *,
    settings: Settings,
    source_region: str,
) -> tuple[list[CopyRef], list[CopyRef]]:
    """Start copies of ``missing`` while the destination has free slots; the rest wait."""
    started: list[CopyRef] = []
    held_back: list[CopyRef] = []
    if not missing:
        return started, held_back
    room = settings.copy_max_in_flight - ec2.copies_in_flight()
    for source in missing:
        waiting = CopyRef(source_snapshot_id=source.snapshot_id, source_volume_id=source.volume_id, region=dest.region)
        if room <= 0:
            held_back.append(waiting)
            continue
        try:
            copy_id = ec2.copy_snapshot(
                source_region=source_region,
                source_snapshot_id=source.snapshot_id,
                kms_key=dest.kms_key,
                tags=copy_tags(job, source, deployment_id=settings.deployment_id, source_region=source_region),
                description=f"Smart Vault copy of {source.snapshot_id} ({job.instance.label}) from {source_region}",
            )
        except SmartVaultError as error:
            if _no_slot(error):
                logger.info("no copy slot now", extra={"region": dest.region, "error": str(error)})
                room = 0
                held_back.append(waiting)
                continue
            raise type(error)(
                f"{error} (copy of {source.snapshot_id} to {dest.region})",
                aws_code=error.aws_code,
                operation=error.operation,
            ) from error
        room -= 1
        count(METRIC_COPIES_STARTED, 1)
        started.append(
            CopyRef(
                source_snapshot_id=source.snapshot_id,
                source_volume_id=source.volume_id,
                region=dest.region,
                snapshot_id=copy_id,
                state="pending",
                # Locked while pending, as the snapshots are (the duration starts at completion);
                # a throttled lock is left to the next turn, as the Snapshot step leaves it to Check.
                unlocked=bool(lock_new(ec2, [copy_id], settings)),
            )
        )
    return started, held_back


# -- pruning ------------------------------------------------------------------------------
def _copy_record(raw: dict[str, Any]) -> SnapshotRecord:
    """A copy as the retention rule sees it: grouped by its source volume, not its placeholder."""
    record = snapshot_record(raw)
    volume = record.tags.get(TAG_SOURCE_VOLUME) or record.volume_id
    return SnapshotRecord(
        snapshot_id=record.snapshot_id,
        volume_id=volume,
        start_time=record.start_time,
        state=record.state,
        tags=record.tags,
        completion_time=record.completion_time,
    )


def destination_copies(settings: Settings, instance_id: str, ec2_for: Ec2For) -> dict[str, list[SnapshotRecord]]:
    """Region -> this deployment's copies of the instance there (one DescribeSnapshots each)."""
    return {
        dest.region: [
            _copy_record(s)
            for s in ec2_for(dest.region).managed_snapshots(settings.deployment_id, instance_id)
            if _tags(s).get(TAG_SOURCE_SNAPSHOT)
        ]
        for dest in settings.copy_regions
    }


def _moment(snap: SnapshotRecord) -> str:
    return snap.tags.get(TAG_RUN_TIME) or format_time(snap.start_time)


def copy_holds(local: Iterable[SnapshotRecord], copies: Mapping[str, Sequence[SnapshotRecord]]) -> dict[str, str]:
    """Prune-after-copy: a local snapshot may go only once every destination holds a completed
    copy of its volume at least as new as it (its own copy, or a later one that supersedes it).

    A copy still pending or failed therefore keeps the local snapshot, and so does a destination
    whose copies of that volume were never made (a failed Copy step leaves none)."""
    newest: dict[tuple[str, str], str] = {}
    for region, records in copies.items():
        for copy in records:
            if copy.state == "completed":
                key = (region, copy.volume_id)
                newest[key] = max(newest.get(key, ""), _moment(copy))
    held: dict[str, str] = {}
    for snap in local:
        missing = [r for r in copies if newest.get((r, snap.volume_id), "") < _moment(snap)]
        if missing:
            held[snap.snapshot_id] = f"{COPY_HELD_REASON}:{','.join(sorted(missing))}"
    return held


def prune_copies(
    job: InstanceJob,
    *,
    settings: Settings,
    copies: Mapping[str, Sequence[SnapshotRecord]],
    ec2_for: Ec2For,
    store: Store,
) -> tuple[RegionPruning, ...]:
    """Each destination's retention for this instance's copies: its own ``retention_days`` and
    ``keep_min``, the same breaker, AMI pins, approvals and deletion journal as the source.

    ``keep_min`` (at least 1) counts completed copies only, so the newest copy of a volume in a
    destination stays until a newer copy there has completed."""
    target, run = job.instance, job.run
    included = target.included_volume_ids
    done_this_run = {
        (c.region, c.source_volume_id) for c in (job.copies.copies if job.copies else ()) if c.state == "completed"
    }
    results: list[RegionPruning] = []
    for dest in settings.copy_regions:
        ec2 = ec2_for(dest.region)
        records = [c for c in copies.get(dest.region, ()) if c.volume_id in included]
        blocked = frozenset(v for v in included if (dest.region, v) not in done_this_run)
        plan = safe_plan(
            records,
            policy=destination_policy(dest.retention_days, dest.keep_min, settings),
            now=run.run_datetime,
            settings=settings,
            run_id=run.run_id,
            ec2=ec2,
            store=store,
            blocked=frozenset() if run.dry_run else blocked,
            add_missing_locks=not run.dry_run,
        )
        done = Deletions(deleted=(), skipped=())
        before: list[Any] = []
        if not run.dry_run:
            journal = Journal(
                store,
                run,
                target.instance_id,
                key=copy_journal_key(run_prefix(run), target.instance_id, dest.region),
            )
            earlier = journal.intents()
            done = delete_journaled(
                plan.to_delete,
                journal=journal,
                earlier=earlier,
                ec2=ec2,
                instance_id=target.instance_id,
                now=run.run_datetime,
            )
            before = [i.deleted() for i in confirmed_deletions(earlier, (r.snapshot_id for r in records))]
            count(METRIC_COPIES_DELETED, len(done.deleted))
        results.append(
            RegionPruning(
                region=dest.region,
                deleted=tuple(before) + done.deleted,
                skipped_deletes=done.skipped + tuple(locked_as_skipped(done.locked)),
                would_delete=tuple(intent(s).deleted() for s in plan.to_delete) if run.dry_run else (),
                breakers=tripped(plan),
                kept_by_ami=pinned_snapshots(plan),
                deferred_deletes=done.deferred,
                locks_added=locks_added(plan),
            )
        )
    return tuple(results)


def all_destination_copies(settings: Settings, ec2_for: Ec2For) -> dict[str, list[SnapshotRecord]]:
    """Region -> every copy of this deployment there, grouped by source volume (one paginated
    DescribeSnapshots per destination): the orphan step's holds and its pruning there."""
    return {
        dest.region: [
            r
            for r in (_copy_record(s) for s in ec2_for(dest.region).all_managed_snapshots(settings.deployment_id))
            if r.tags.get(TAG_SOURCE_SNAPSHOT)
        ]
        for dest in settings.copy_regions
    }


def prune_copy_orphans(
    run: RunContext,
    targets: Sequence[InstanceTarget],
    *,
    settings: Settings,
    ec2_for: Ec2For,
    store: Store,
    listed: Mapping[str, Sequence[SnapshotRecord]] | None = None,
) -> tuple[OrphanVolume, ...]:
    """The orphan rule in each destination: copies of volumes no run backs up any more are
    pruned by that destination's ``retention_days`` down to ``orphan_keep`` per volume, with the
    same breaker, AMI pins and journal as the source's orphans (called only when the source's
    orphan step ran, so never for a scoped re-run or an empty selection). ``listed``: the
    destinations' copies when the caller has them (all_destination_copies)."""
    live = {v.volume_id for t in targets for v in t.volumes}
    listed = all_destination_copies(settings, ec2_for) if listed is None else listed
    volumes: list[OrphanVolume] = []
    for dest in settings.copy_regions:
        ec2 = ec2_for(dest.region)
        records = [r for r in listed.get(dest.region, ()) if r.volume_id not in live]
        plan = safe_plan(
            records,
            policy=destination_policy(dest.retention_days, settings.orphan_keep, settings),
            now=run.run_datetime,
            settings=settings,
            run_id=run.run_id,
            ec2=ec2,
            store=store,
            add_missing_locks=not run.dry_run,
        )
        deleted: list[Any] = []
        skipped: list[Any] = []
        earlier = {}
        if not run.dry_run:
            journal = Journal(store, run, "orphans", key=copy_journal_key(run_prefix(run), "orphans", dest.region))
            earlier = journal.intents()
            deleted = [i.deleted() for i in confirmed_deletions(earlier, (r.snapshot_id for r in records))]
            done = delete_journaled(plan.to_delete, journal=journal, earlier=earlier, ec2=ec2, now=run.run_datetime)
            deleted += done.deleted
            skipped += [*done.skipped, *locked_as_skipped(done.locked), *done.deferred]
            count(METRIC_COPIES_DELETED, len(done.deleted))
        owners = {i.volume_id: i.instance_id for i in earlier.values()}
        owners.update({r.volume_id: r.tags.get(TAG_INSTANCE_ID, "") for r in records})
        names = {r.volume_id: r.tags.get(TAG_INSTANCE_NAME, "") for r in records}
        found = by_volume(records, plan, deleted, skipped, owners, names, {}, preview=run.dry_run)
        volumes += [replace(v, region=dest.region) for v in found]
    return tuple(volumes)


def destination_policy(retention_days: int, keep_min: int, settings: Settings) -> RetentionPolicy:
    """A destination's own retention, under the deployment's circuit-breaker limits."""
    return RetentionPolicy(
        retention_days=retention_days,
        keep_min=keep_min,
        max_delete_fraction=settings.max_delete_fraction,
        max_deletes_per_run=settings.max_deletes_per_run,
    )
