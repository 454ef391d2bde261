"""Snapshot lock (EBS snapshot lock): the setting, and locking right after creation.

AWS facts this module relies on (Amazon EBS User Guide, "Lock an Amazon EBS snapshot" and
"Considerations for Amazon EBS snapshot lock"; EC2 API Reference, LockSnapshot):
- a snapshot can be locked in the ``pending`` or ``completed`` state; a lock with a duration
  starts counting only when the snapshot completes, and is cancelled if the snapshot fails;
- ``LockDuration`` (1-36,500 days) and ``ExpirationDate`` are mutually exclusive;
- ``CoolOffPeriod`` (1-72 hours) is for compliance mode only (omit it in governance mode);
  after it, a compliance lock cannot be unlocked, shortened or changed, only extended;
- a locked snapshot cannot be deleted (governance: until it expires or is unlocked).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from smart_vault.constants import TAG_MANAGED, TAG_RUN_ID
from smart_vault.observability import logger
from smart_vault.policy import LockSettings
from smart_vault.retention.rules import SnapshotRecord

# DescribeLockedSnapshots lock states; "expired" is no longer a lock.
ACTIVE_LOCK_STATES = frozenset({"governance", "compliance", "compliance-cooloff"})


def lock_snapshots(
    ec2: Any, snapshot_ids: Iterable[str], lock: LockSettings | None, *, fresh: bool = False
) -> dict[str, datetime | None]:
    """Lock each snapshot not locked yet; snapshot id -> lock expiry (None while pending).

    Safe to repeat: snapshots a previous attempt locked are left as they are, so a retried step
    never re-sends a compliance lock (AWS refuses a CoolOffPeriod once it has passed, and a
    shorter duration). ``fresh``: the snapshots were just created, so none can be locked yet and
    DescribeLockedSnapshots is skipped. The ``copies`` feature calls this for its copies."""
    ids = sorted(set(snapshot_ids))
    if lock is None or not ids:
        return {}
    described = {} if fresh else ec2.locked_snapshots(ids)
    already = {sid: info for sid, info in described.items() if info.get("LockState") in ACTIVE_LOCK_STATES}
    expiry: dict[str, datetime | None] = {sid: info.get("LockExpiresOn") for sid, info in already.items()}
    for sid in ids:
        if sid in already:
            continue
        response = ec2.lock_snapshot(lock.request(sid))
        expiry[sid] = response.get("LockExpiresOn")
    logger.info("snapshots locked", extra={"locked": len(ids) - len(already), "already": len(already)})
    return expiry


def active_locks(ec2: Any, snapshot_ids: Iterable[str], now: datetime) -> dict[str, datetime]:
    """Snapshot id -> when its lock expires, for the snapshots that are locked at ``now``.

    A lock of a pending snapshot has no expiry yet (it starts at completion): it is reported as
    locked until ``datetime.max``, which is what it is for deleting."""
    return active_until(ec2.locked_snapshots(snapshot_ids), now)


DAY = timedelta(days=1)


def lock_window(
    records: Iterable[SnapshotRecord], lock: LockSettings | None, now: datetime, *, deployment_id: str, run_id: str
) -> dict[str, datetime]:
    """This deployment's snapshots still inside the configured lock at ``now``: snapshot id ->
    when that lock ends (``lock.days`` after the snapshot completed, or started when EC2 does not
    say). Prune never deletes them, whether or not EC2 holds a lock (a LockSnapshot that failed
    must not cost the backup); failed snapshots and this run's own (locked at creation) are left
    out. ``records``: real snapshots only (a preview's would-be ones are left out by the caller)."""
    if lock is None:
        return {}
    window: dict[str, datetime] = {}
    for snap in records:
        if (
            snap.tags.get(TAG_MANAGED) != deployment_id
            or snap.tags.get(TAG_RUN_ID) == run_id
            or snap.state not in ("pending", "completed")
        ):
            continue
        until = (snap.completion_time or snap.start_time) + timedelta(days=lock.days)
        if until > now:
            window[snap.snapshot_id] = until
    return window


def catch_up_request(lock: LockSettings, snap: SnapshotRecord, until: datetime, now: datetime) -> dict[str, Any]:
    """LockSnapshot for a snapshot whose lock is missing: a pending one gets the full duration (it
    starts at completion, as at creation); a completed one the whole days left until ``until``,
    rounded up, so it is never unlocked earlier than the lock it should have had (at most a day
    later). LockDuration rather than ExpirationDate: the IAM condition ec2:SnapshotLockDuration
    bounds it, and its range (1-36,500 days) is documented."""
    params = lock.request(snap.snapshot_id)
    if snap.state == "completed":
        params["LockDuration"] = max(1, min(lock.days, math.ceil((until - now) / DAY)))
    return params


def lock_missing(
    ec2: Any,
    records: Mapping[str, SnapshotRecord],
    window: Mapping[str, datetime],
    described: Mapping[str, Mapping[str, Any]],
    lock: LockSettings,
    now: datetime,
) -> dict[str, datetime | None]:
    """Lock every snapshot of ``window`` that DescribeLockedSnapshots (``described``) shows without
    an active lock; snapshot id -> its new lock's expiry (None while pending). A refused lock
    raises: the step fails visibly (throttling is retried) and nothing of the instance is deleted."""
    locked: dict[str, datetime | None] = {}
    for sid in sorted(window):
        if (described.get(sid) or {}).get("LockState") in ACTIVE_LOCK_STATES:
            continue
        response = ec2.lock_snapshot(catch_up_request(lock, records[sid], window[sid], now))
        locked[sid] = response.get("LockExpiresOn")
    if locked:
        logger.warning("missing snapshot locks added", extra={"snapshot_ids": sorted(locked)})
    return locked


def active_until(described: Mapping[str, Mapping[str, Any]], now: datetime) -> dict[str, datetime]:
    """Snapshot id -> lock expiry, for the DescribeLockedSnapshots records locked at ``now``."""
    locked: dict[str, datetime] = {}
    for sid, info in described.items():
        if info.get("LockState") not in ACTIVE_LOCK_STATES:
            continue
        expires = info.get("LockExpiresOn")
        if expires is None:
            locked[sid] = datetime.max.replace(tzinfo=now.tzinfo)
        elif expires > now:
            locked[sid] = expires
    return locked
