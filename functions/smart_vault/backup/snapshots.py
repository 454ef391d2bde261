"""Snapshot and check: one crash-consistent CreateSnapshots per instance, then poll it."""

from __future__ import annotations

from typing import Any

from smart_vault.aws import Ec2
from smart_vault.backup.inventory import device_of, snapshot_tags
from smart_vault.constants import METRIC_BACKUP_GIB, METRIC_SNAPSHOTS_CREATED, NEW_RESOURCE_VISIBILITY_SECONDS
from smart_vault.errors import (
    InstanceVanishedError,
    SnapshotFailedError,
    SnapshotTimeoutError,
    ThrottledError,
    TransientAwsError,
)
from smart_vault.models import BackupState, InstanceJob, SnapshotRef
from smart_vault.observability import GIGABYTES, count, logger
from smart_vault.retention.locks import lock_snapshots
from smart_vault.settings import Settings


def _refs(job: InstanceJob, raw: list[dict[str, Any]]) -> tuple[SnapshotRef, ...]:
    return tuple(
        SnapshotRef(
            snapshot_id=s["SnapshotId"],
            volume_id=s["VolumeId"],
            device=device_of(job.instance, s["VolumeId"]),
            state=s.get("State", "pending"),
            progress=_progress(s),
        )
        for s in sorted(raw, key=lambda s: s["VolumeId"])
    )


def _progress(snapshot: dict[str, Any]) -> int:
    raw = str(snapshot.get("Progress") or "").rstrip("%")
    if raw.isdigit():
        return int(raw)
    return 100 if snapshot.get("State") == "completed" else 0


def start_backup(job: InstanceJob, *, settings: Settings, ec2: Ec2, consistency: str | None = None) -> BackupState:
    """Create this run's snapshots of the instance, or return them if a re-run finds them.
    ``consistency``: what the snapshots are tagged as (an opted-in instance; None: no tag)."""
    target, run = job.instance, job.run
    if target.skip_reason:
        return BackupState(status="skipped", reason=target.skip_reason)
    if not target.volumes:
        return BackupState(status="skipped", reason="no volumes selected for backup")
    existing = [
        s
        for s in ec2.managed_snapshots(settings.deployment_id, target.instance_id, run.run_id)
        if s.get("State") != "error"
    ]
    if existing:
        logger.info("snapshots of this run already exist", extra={"count": len(existing)})
        if not run.dry_run:
            # A retry after CreateSnapshots succeeded but a lock failed: lock what is not locked.
            lock_snapshots(ec2, (s["SnapshotId"] for s in existing), settings.lock)
        return BackupState(status="pending", snapshots=_refs(job, existing), wait_seconds=0)
    if run.dry_run:
        # What CreateSnapshots would return and the real run keep: one per selected volume.
        return BackupState(
            status="skipped", reason="dry run: no snapshot created", would_create=len(target.included_volume_ids)
        )

    root = [v for v in target.volumes if v.root]
    try:
        created = ec2.create_snapshots(
            instance_id=target.instance_id,
            exclude_boot=not root,
            exclude_data_volume_ids=list(target.excluded_volume_ids),
            tags=snapshot_tags(target, run, settings.deployment_id, consistency),
            description=f"Smart Vault {run.run_time} {target.label}",
        )
    except InstanceVanishedError as gone:
        logger.warning("instance vanished", extra={"error": str(gone)})
        return BackupState(status="skipped", reason=f"instance no longer exists ({gone.aws_code})")
    # CreateSnapshots covers every attached volume not excluded; keep only those we selected,
    # and say so if EC2 returned snapshots we did not ask for.
    wanted = target.included_volume_ids
    refs = tuple(r for r in _refs(job, created) if r.volume_id in wanted)
    if len(refs) != len(created):
        logger.warning(
            "EC2 snapshotted volumes outside the selection",
            extra={"returned": len(created), "selected": len(refs)},
        )
    # Counted before the lock: a refused LockSnapshot fails the step, but the snapshots exist.
    count(METRIC_SNAPSHOTS_CREATED, len(refs))
    count(METRIC_BACKUP_GIB, sum(v.size_gib for v in target.volumes), GIGABYTES)
    logger.info("snapshots created", extra={"snapshot_ids": [r.snapshot_id for r in refs]})
    return BackupState(
        status="pending",
        snapshots=refs,
        created=True,
        wait_seconds=max(settings.wait_initial_seconds, run.min_check_interval_seconds),
        unlocked=lock_new(ec2, [r.snapshot_id for r in refs], settings),
    )


def lock_new(ec2: Any, snapshot_ids: list[str], settings: Settings) -> tuple[str, ...]:
    """Lock snapshots just created; the ids left unlocked when the lock was throttled or failed
    server-side, for the next step to lock (None left: ``()``).

    Locked at once, while pending: AWS accepts a lock on a pending snapshot and starts its duration
    when the snapshot completes, so there is no window in which a finished backup is unlocked. A
    retryable failure is not raised: a retried step would look for its snapshots by tag, and EC2
    may not list them yet (eventual consistency), so it would create a second set, which a
    compliance lock would then make undeletable. A refusal (permissions, invalid duration) raises:
    the step fails visibly, and a later run's Prune adds the lock (locks.lock_missing)."""
    try:
        lock_snapshots(ec2, snapshot_ids, settings.lock, fresh=True)
    except (ThrottledError, TransientAwsError) as error:
        logger.warning("lock deferred to the next step", extra={"error": str(error), "snapshot_ids": snapshot_ids})
        return tuple(snapshot_ids)
    return ()


def next_check_wait(
    doublings: int, *, waited_seconds: int, settings: Settings, floor: int = 0, timeout_seconds: int | None = None
) -> int:
    """Seconds the Wait state sleeps before the next check of a pending backup.

    ``wait_initial_seconds`` doubled ``doublings`` times (once per check made), up to
    ``wait_max_seconds``: doubling keeps the checks of a long snapshot few (about
    log2(max/initial) to reach the cap, then one per ``wait_max_seconds``), which bounds the
    Lambda invocations, DescribeSnapshots calls and state transitions per instance; the cap bounds
    how late a completed snapshot is noticed. ``floor`` (the run's ``min_check_interval_seconds``)
    wins over both, so that a large fleet's checks stay within EC2's DescribeSnapshots rate;
    the doubling goes on underneath it, so a floor below the cap delays only the early checks.
    It never sleeps past the timeout (``snapshot_timeout_seconds`` unless given), so the timeout
    fires on time, and always at least 1 s so the Wait/Check loop cannot spin. The copy loop
    waits the same way.
    """
    timeout = settings.snapshot_timeout_seconds if timeout_seconds is None else timeout_seconds
    remaining = timeout - waited_seconds
    doubled: int = min(settings.wait_initial_seconds << min(doublings, 32), settings.wait_max_seconds)
    return max(1, min(max(doubled, floor), remaining))


def check_backup(job: InstanceJob, *, settings: Settings, ec2: Ec2) -> BackupState:
    """One DescribeSnapshots for the instance's snapshots; decide done, pending or failed."""
    backup = job.backup
    assert backup is not None  # parse_job(need_backup=True) guarantees it
    if backup.status == "freeze":
        return backup  # on its way to the freeze (SnapshotsComplete): nothing to check yet
    if backup.status == "skipped" or not backup.snapshots:
        return BackupState(
            status="skipped", reason=backup.reason or "nothing to check", would_create=backup.would_create
        )
    if backup.unlocked and not job.run.dry_run:
        lock_snapshots(ec2, backup.unlocked, settings.lock)
    ids = [s.snapshot_id for s in backup.snapshots]
    found = {s["SnapshotId"]: s for s in ec2.describe_snapshots(ids)}
    missing = [i for i in ids if i not in found]
    waited = backup.waited_seconds + backup.wait_seconds
    if missing and waited >= NEW_RESOURCE_VISIBILITY_SECONDS:
        raise SnapshotFailedError(f"snapshots disappeared before completing: {', '.join(missing)}")
    # Not listed yet, shortly after CreateSnapshots: EC2 is eventually consistent; still pending.
    unseen = tuple(s for s in backup.snapshots if s.snapshot_id in missing)
    refs = tuple(sorted(_refs(job, list(found.values())) + unseen, key=lambda r: r.volume_id))
    failed = [s for s in found.values() if s.get("State") == "error"]
    if failed:
        detail = "; ".join(
            f"{s['SnapshotId']} of {s['VolumeId']}: {s.get('StateMessage') or 'state error'}" for s in failed
        )
        raise SnapshotFailedError(f"snapshot ended in state error: {detail}")
    if all(r.state == "completed" for r in refs):
        return BackupState(
            status="completed",
            snapshots=refs,
            created=backup.created,
            waited_seconds=waited,
            checks=backup.checks + 1,
            progress=100,
        )
    if waited >= settings.snapshot_timeout_seconds:
        raise SnapshotTimeoutError(
            f"snapshots still pending after {waited} s (snapshot_timeout_seconds="
            f"{settings.snapshot_timeout_seconds}): "
            + ", ".join(f"{r.snapshot_id} {r.progress}%" for r in refs if r.state != "completed")
        )
    return BackupState(
        status="pending",
        snapshots=refs,
        created=backup.created,
        wait_seconds=next_check_wait(
            backup.checks + 1, waited_seconds=waited, settings=settings, floor=job.run.min_check_interval_seconds
        ),
        waited_seconds=waited,
        checks=backup.checks + 1,
        progress=min(r.progress for r in refs),
    )
