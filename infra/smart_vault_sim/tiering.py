"""The EBS archive tier on the virtual clock: moto archives a snapshot the moment it is asked and
refuses nothing; AWS takes time and refuses what it cannot archive.

- "Archive an Amazon EBS snapshot" (EBS User Guide): only a ``completed`` snapshot you own can be
  archived ("You can't archive snapshots that are in the pending or error states"), and one an
  AMI uses only after that AMI is disabled. While archiving, the snapshot stays usable and in
  the standard tier; DescribeSnapshotTierStatus shows ``archival-in-progress`` until
  ``archival-completed``, when StorageTier becomes ``archive``.
- ModifySnapshotTier (EC2 API Reference) takes only ``StorageTier=archive``.

The docs name no error codes for these refusals and give no archiving duration (only restores:
"up to 72 hours"). The emulator answers ``IncorrectState`` (EC2 "Error codes": "The resource is
in an incorrect state for the request") and completes an archive ``ARCHIVE_DURATION`` after it
started: long enough that the run that asked sees it in progress, short enough that the next
daily run sees it archived.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.elastic_block_store import EBSBackend

ARCHIVE_DURATION = timedelta(hours=24)
IN_PROGRESS = "archival-in-progress"


class IncorrectStateError(EC2ClientError):
    def __init__(self, message: str) -> None:
        super().__init__("IncorrectState", message)


def _archiving(backend: Any) -> set[str]:
    """Ids of the snapshots with an archive in progress (only ModifySnapshotTier starts one):
    settling looks at these, not at every snapshot of the region on every Describe."""
    ids: set[str] = backend.__dict__.setdefault("_sv_archiving", set())
    return ids


def _settle(backend: Any, now: datetime) -> None:
    """Complete every archive whose time has come."""
    archiving = _archiving(backend)
    for snapshot_id in list(archiving):
        snap = backend.snapshots.get(snapshot_id)
        if snap is None or snap.last_tiering_operation_status != IN_PROGRESS:
            archiving.discard(snapshot_id)
            continue
        started = snap.last_tiering_start_time
        if started and started + ARCHIVE_DURATION <= now:
            archiving.discard(snapshot_id)
            snap.storage_tier = "archive"
            snap.last_tiering_progress = 100
            snap.last_tiering_operation_status = "archival-completed"
            snap.last_tiering_operation_status_detail = "Archival completed successfully"
            snap.archival_complete_time = started + ARCHIVE_DURATION


def _refusal(backend: Any, snap: Any) -> str | None:
    if snap.status != "completed":
        return f"Snapshot {snap.id} is in state {snap.status}: only completed snapshots can be archived."
    if snap.storage_tier == "archive" or snap.last_tiering_operation_status == IN_PROGRESS:
        return f"Snapshot {snap.id} is already archived or being archived."
    if snap.from_ami and snap.from_ami in backend.amis:
        return f"Snapshot {snap.id} is used by {snap.from_ami}: disable the AMI before archiving the snapshot."
    return None


@contextlib.contextmanager
def patched(now: Callable[[], datetime]) -> Iterator[None]:
    original_modify = EBSBackend.modify_snapshot_tier
    original_describe = EBSBackend.describe_snapshots
    original_status = EBSBackend.describe_snapshot_tier_status

    def modify_snapshot_tier(self: Any, snapshot_id: str, storage_tier: str) -> Any:
        _settle(self, now())
        snap = self.get_snapshot(snapshot_id)  # InvalidSnapshot.NotFound as EC2
        if storage_tier != "archive":
            return original_modify(self, snapshot_id, storage_tier)  # InvalidParameterValue
        problem = _refusal(self, snap)
        if problem:
            raise IncorrectStateError(problem)
        snap.last_tiering_start_time = now()
        snap.last_tiering_progress = 0
        snap.last_tiering_operation_status = IN_PROGRESS
        snap.last_tiering_operation_status_detail = "Archival in progress"
        _archiving(self).add(snap.id)
        return snap

    def describe_snapshots(self: Any, *args: Any, **kwargs: Any) -> Any:
        _settle(self, now())
        return original_describe(self, *args, **kwargs)

    def describe_snapshot_tier_status(self: Any, *args: Any, **kwargs: Any) -> Any:
        _settle(self, now())
        return original_status(self, *args, **kwargs)

    EBSBackend.modify_snapshot_tier = modify_snapshot_tier  # type: ignore[method-assign]
    EBSBackend.describe_snapshots = describe_snapshots  # type: ignore[method-assign]
    EBSBackend.describe_snapshot_tier_status = describe_snapshot_tier_status  # type: ignore[method-assign]
    try:
        yield
    finally:
        EBSBackend.modify_snapshot_tier = original_modify  # type: ignore[method-assign]
        EBSBackend.describe_snapshots = original_describe  # type: ignore[method-assign]
        EBSBackend.describe_snapshot_tier_status = original_status  # type: ignore[method-assign]


def settle(backend: Any, now: datetime) -> None:
    """Bring the tiers up to ``now`` (the report's final snapshots)."""
    _settle(backend, now)
