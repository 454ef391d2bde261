"""The vault side: find the snapshots the source shared with the vault account, copy each with
the vault's own key, and keep the copies by the vault's own retention and lock.

The vault sees a shared snapshot without the source's tags (tags belong to the account that set
them), so what a copy records of its source comes from what DescribeSnapshots shows any account
that may use the snapshot: its id, VolumeId, StartTime and Description (Smart Vault's
``Smart Vault <run time> <name> (<instance id>)``). A copy's own VolumeId is a placeholder
("Snapshots copies have an arbitrary source volume ID"), so it is grouped by its source-volume tag.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from smart_vault.aws import Ec2
from smart_vault.constants import (
    TAG_INSTANCE_ID,
    TAG_MANAGED,
    TAG_RUN_TIME,
    TAG_SOURCE_SNAPSHOT,
    TAG_SOURCE_VOLUME,
)
from smart_vault.errors import SmartVaultError, ThrottledError
from smart_vault.observability import logger
from smart_vault.policy import LockSettings
from smart_vault.retention.locks import active_locks, lock_snapshots
from smart_vault.retention.rules import RetentionPolicy, SnapshotRecord, plan_retention
from smart_vault.settings import MAX_COPIES_IN_FLIGHT, VaultSettings
from smart_vault.validation import format_time, parse_time

TAG_SOURCE_ACCOUNT = "smart-vault:source-account"
# What the source's CreateSnapshots description ends with: "<name> (<instance id>)" or the id.
_INSTANCE = re.compile(r"(i-[0-9a-f]{8,17})\)?$")
_RUN_TIME = re.compile(r"^Smart Vault (\S+) ")
# The vault's own circuit breaker: a copy run never deletes more than half of a volume's copies.
VAULT_MAX_DELETE_FRACTION = 0.5
VAULT_MAX_DELETES_PER_RUN = 50


@dataclass(frozen=True, kw_only=True)
class VaultRun:
    """What one vault run did (``runs[].vault`` in a simulation report)."""

    copies_made: tuple[str, ...] = ()  # new copy ids
    pruned: tuple[str, ...] = ()  # copy ids deleted by the vault's retention
    completed: tuple[str, ...] = ()  # source snapshot ids whose copy is complete: the share may go
    failed: tuple[str, ...] = ()  # source snapshot ids whose copy ended in error (deleted, tried again)
    waiting: int = 0  # shared snapshots not copied yet: no copy slot in the vault's Region
    locked: tuple[str, ...] = ()  # copy ids locked by this run

    def receipt(self, source_account: str) -> dict[str, Any]:
        """What the vault publishes for the source: which of its snapshots the vault holds."""
        return {"source_account": source_account, "completed": list(self.completed)}


def backup_time(shared: Mapping[str, Any]) -> datetime:
    """When the source's run took it: the run time its description names, else its StartTime."""
    found = _RUN_TIME.match(str(shared.get("Description") or ""))
    if found:
        try:
            return parse_time(found.group(1), "Description")
        except SmartVaultError:
            pass
    return (
        datetime.fromisoformat(str(shared["StartTime"]))
        if isinstance(shared["StartTime"], str)
        else shared["StartTime"]
    )


def copy_tags(shared: Mapping[str, Any], *, source_account: str, deployment_id: str) -> list[dict[str, str]]:
    """The copy's tags from creation on: the vault deployment's marker and what it came from."""
    description = str(shared.get("Description") or "")
    tags = {
        TAG_MANAGED: deployment_id,
        TAG_SOURCE_ACCOUNT: source_account,
        TAG_SOURCE_SNAPSHOT: str(shared["SnapshotId"]),
        TAG_SOURCE_VOLUME: str(shared["VolumeId"]),
        TAG_RUN_TIME: format_time(backup_time(shared)),
    }
    instance = _INSTANCE.search(description)
    if instance:
        tags[TAG_INSTANCE_ID] = instance.group(1)
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _tags(raw: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in raw.get("Tags") or ()}


def pull(
    ec2: Ec2,
    *,
    vault: VaultSettings,
    source_account: str,
    deployment_id: str,
    now: datetime,
    max_in_flight: int = MAX_COPIES_IN_FLIGHT,
) -> VaultRun:
    """One vault run: copy what is shared and not held yet, lock, prune. Idempotent: a copy is
    found again by its source-snapshot tag, so a re-run or redrive never copies twice."""
    held = [
        raw for raw in ec2.all_managed_snapshots(deployment_id) if _tags(raw).get(TAG_SOURCE_ACCOUNT) == source_account
    ]
    failed = _drop_failed(ec2, held)
    held = [raw for raw in held if raw.get("State") != "error"]
    made, waiting = _copy_new(
        ec2,
        _not_held(ec2.shared_snapshots(source_account), held),
        vault=vault,
        tags=lambda s: copy_tags(s, source_account=source_account, deployment_id=deployment_id),
        slots=max_in_flight - ec2.copies_in_flight(),
    )
    completed = [raw for raw in held if raw.get("State") == "completed"]
    locked = _lock_new(ec2, [str(r["SnapshotId"]) for r in completed], vault.lock) if vault.lock else {}
    pruned = _prune(ec2, completed, vault=vault, deployment_id=deployment_id, now=now)
    run = VaultRun(
        copies_made=tuple(made),
        pruned=tuple(pruned),
        completed=tuple(sorted(_tags(r)[TAG_SOURCE_SNAPSHOT] for r in completed)),
        failed=tuple(failed),
        waiting=waiting,
        locked=tuple(sorted(locked)),
    )
    logger.info(
        "vault run",
        extra={"made": len(made), "pruned": len(pruned), "completed": len(completed), "waiting": waiting},
    )
    return run


def _not_held(shared: Sequence[Mapping[str, Any]], held: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Shared snapshots to copy: not copied yet, and not older than the newest copy held of their
    volume. A share the source never withdrew (the source is down) stays visible after the
    vault's retention pruned its copy; copying it again would bring back what retention let go."""
    known = {_tags(raw).get(TAG_SOURCE_SNAPSHOT) for raw in held}
    newest: dict[str, datetime] = {}
    for record in (_record(raw) for raw in held):
        newest[record.volume_id] = max(record.start_time, newest.get(record.volume_id, record.start_time))
    return [
        s
        for s in shared
        if s["SnapshotId"] not in known and backup_time(s) >= newest.get(str(s["VolumeId"]), backup_time(s))
    ]


def _lock_new(ec2: Ec2, copy_ids: Sequence[str], lock: LockSettings) -> dict[str, datetime | None]:
    """Lock each completed copy once: a copy whose lock expired is not locked again (the lock
    protects a copy for ``lock.days``; the vault's retention decides after that)."""
    ever = ec2.locked_snapshots(copy_ids)
    return lock_snapshots(ec2, [i for i in copy_ids if i not in ever], lock, fresh=True)


def _drop_failed(ec2: Ec2, held: Sequence[Mapping[str, Any]]) -> list[str]:
    """Delete copies that ended in error (they hold nothing), so the next copy is a new one."""
    failed = []
    for raw in held:
        if raw.get("State") == "error":
            ec2.delete_snapshot(str(raw["SnapshotId"]))
            failed.append(_tags(raw).get(TAG_SOURCE_SNAPSHOT, ""))
            logger.warning("vault copy failed", extra={"copy": raw["SnapshotId"], "why": raw.get("StateMessage")})
    return sorted(failed)


def _copy_new(
    ec2: Ec2, shared: Sequence[Mapping[str, Any]], *, vault: VaultSettings, tags: Any, slots: int
) -> tuple[list[str], int]:
    """Start copies, oldest first, while the vault's Region has a copy slot (20 in flight per
    destination Region, counted for every copy into it); the rest wait for the next run."""
    made: list[str] = []
    ordered = sorted(shared, key=lambda s: (s["StartTime"], s["SnapshotId"]))
    for index, snap in enumerate(ordered):
        if slots <= 0:
            return made, len(ordered) - index
        try:
            made.append(
                ec2.copy_snapshot(
                    source_region=vault.region,
                    source_snapshot_id=str(snap["SnapshotId"]),
                    kms_key=vault.kms_key,
                    tags=tags(snap),
                    description=f"Vault copy of {snap['SnapshotId']}: {snap.get('Description') or ''}",
                )
            )
        except SmartVaultError as error:
            if isinstance(error, ThrottledError) or error.aws_code == "ResourceLimitExceeded":
                return made, len(ordered) - index
            raise
        slots -= 1
    return made, 0


def _record(raw: Mapping[str, Any]) -> SnapshotRecord:
    tags = _tags(raw)
    return SnapshotRecord(
        snapshot_id=str(raw["SnapshotId"]),
        volume_id=tags.get(TAG_SOURCE_VOLUME, str(raw.get("VolumeId"))),
        # Age is the backup's, not the copy's: the run time the source recorded.
        start_time=parse_time(tags[TAG_RUN_TIME], TAG_RUN_TIME) if TAG_RUN_TIME in tags else raw["StartTime"],
        state=str(raw.get("State")),
        tags=tags,
    )


def _prune(
    ec2: Ec2, completed: Sequence[Mapping[str, Any]], *, vault: VaultSettings, deployment_id: str, now: datetime
) -> list[str]:
    """The vault's own retention over its completed copies: never the newest ``keep_min`` of a
    source volume, never a locked copy, never more than the breaker allows."""
    records = [_record(r) for r in completed]
    if not records:
        return []
    plan = plan_retention(
        records,
        policy=RetentionPolicy(
            retention_days=vault.retention_days,
            keep_min=vault.keep_min,
            gfs=vault.retention,
            max_delete_fraction=VAULT_MAX_DELETE_FRACTION,
            max_deletes_per_run=VAULT_MAX_DELETES_PER_RUN,
        ),
        now=now,
        deployment_id=deployment_id,
        current_run_id="",
        locked=active_locks(ec2, [r.snapshot_id for r in records], now),
    )
    pruned = []
    for snap in plan.to_delete:
        if ec2.delete_snapshot(snap.snapshot_id) in (None, "already_deleted"):
            pruned.append(snap.snapshot_id)
    return pruned
