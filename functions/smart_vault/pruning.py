"""Prune: apply the retention rule to one instance's managed snapshots and record the outcome."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from smart_vault.aws import Ec2, Store
from smart_vault.constants import METRIC_DELETES_SKIPPED, METRIC_SNAPSHOTS_DELETED
from smart_vault.models import (
    DeletedSnapshot,
    InstanceJob,
    InstanceOutcome,
    RunContext,
    SkippedDelete,
    outcomes_prefix,
    run_prefix,
)
from smart_vault.observability import count, logger
from smart_vault.retention import RetentionPolicy, SnapshotRecord, plan_retention
from smart_vault.settings import Settings
from smart_vault.validation import format_time


def snapshot_record(raw: dict[str, Any]) -> SnapshotRecord:
    start = raw["StartTime"]
    if not isinstance(start, datetime):
        start = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
    return SnapshotRecord(
        snapshot_id=raw["SnapshotId"],
        volume_id=raw["VolumeId"],
        start_time=start,
        state=raw.get("State", ""),
        tags={t["Key"]: t["Value"] for t in raw.get("Tags") or ()},
    )


def _deleted(snap: SnapshotRecord) -> DeletedSnapshot:
    return DeletedSnapshot(
        snapshot_id=snap.snapshot_id,
        volume_id=snap.volume_id,
        start_time=format_time(snap.start_time),
    )


def prune_instance(job: InstanceJob, *, settings: Settings, ec2: Ec2) -> InstanceOutcome:
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
    )
    if backup.status == "skipped" and not run.dry_run:
        # Nothing was backed up (instance gone, nothing selected): prune nothing either.
        return replace(base, reason=backup.reason)

    # Every volume of this run must have a completed snapshot before anything of it goes.
    completed = {s.volume_id for s in backup.snapshots if s.state == "completed"}
    blocked = frozenset(set() if run.dry_run else {v.volume_id for v in target.volumes} - completed)
    policy = RetentionPolicy(
        retention_days=settings.retention_days,
        keep_min=settings.keep_min,
        max_delete_fraction=settings.max_delete_fraction,
        max_deletes_per_run=settings.max_deletes_per_run,
    )
    plan = plan_retention(
        [snapshot_record(s) for s in ec2.managed_snapshots(settings.deployment_id, target.instance_id)],
        policy=policy,
        now=run.run_datetime,
        deployment_id=settings.deployment_id,
        current_run_id=run.run_id,
        blocked_volume_ids=blocked,
    )
    if plan.breaker:
        logger.warning("circuit breaker: pruning stopped", extra={"breaker": plan.breaker})
    deleted: list[DeletedSnapshot] = []
    skipped: list[SkippedDelete] = []
    if not run.dry_run:
        for snap in plan.to_delete:
            reason = ec2.delete_snapshot(snap.snapshot_id)
            if reason is None:
                deleted.append(_deleted(snap))
            else:
                skipped.append(SkippedDelete(snapshot_id=snap.snapshot_id, volume_id=snap.volume_id, reason=reason))
    count(METRIC_SNAPSHOTS_DELETED, len(deleted))
    count(METRIC_DELETES_SKIPPED, len(skipped))
    logger.info(
        "pruned",
        extra={"deleted": len(deleted), "skipped": len(skipped), "dry_run": run.dry_run},
    )
    return replace(
        base,
        status="skipped" if run.dry_run else "backed_up",
        reason="dry run: nothing created or deleted" if run.dry_run else None,
        backup_gib=sum(v.size_gib for v in target.volumes if v.volume_id in completed),
        deleted=tuple(deleted),
        skipped_deletes=tuple(skipped),
        would_delete=tuple(_deleted(s) for s in plan.candidates) if run.dry_run else (),
        breaker=plan.breaker,
    )


def save_outcome(outcome: InstanceOutcome, run: RunContext, store: Store) -> None:
    """The record Notify aggregates (and the CLI reads) for one instance of one execution."""
    store.put_json(f"{outcomes_prefix(run_prefix(run))}{outcome.instance_id}.json", outcome.to_dict())
