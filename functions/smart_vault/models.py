"""Typed contracts between the states of the workflow.

Every handler parses its input with ``from_dict`` (which names the first bad field) and returns
``to_dict()``; the ASL file only moves these objects between states.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from smart_vault.constants import RUNS_PREFIX
from smart_vault.errors import InvalidInputError
from smart_vault.instance_spec import InstanceSpec
from smart_vault.validation import (
    parse_time,
    read_aws_id,
    read_bool,
    read_int,
    read_list,
    read_str,
    require_mapping,
)


@dataclass(frozen=True, kw_only=True)
class RunContext:
    """Who and when. The run id comes from the scheduled time, so every re-run of that slot
    (a second delivery, a manual "New execution" with the same input) shares it."""

    run_id: str
    run_time: str
    execution_arn: str
    execution_name: str
    dry_run: bool
    # Copies are configured: the child copies its completed snapshots before pruning.
    copies: bool = False
    # Each instance waits at least this long between completion checks, so the fleet's
    # DescribeSnapshots stay within check_rate_per_second (Discover: instances / rate).
    min_check_interval_seconds: int = 0
    # Destination Region -> why its copy key cannot be used (Discover's check): the copies to
    # that Region fail, the local backups are still taken (docs/decisions.md, a destination's key).
    unusable_copy_keys: Mapping[str, str] = field(default_factory=dict)

    @staticmethod
    def run_id_for(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    @property
    def run_datetime(self) -> datetime:
        return parse_time(self.run_time, "run.run_time")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, path: str = "run.") -> RunContext:
        data = require_mapping(data, path.rstrip("."))
        run_time = read_str(data, "run_time", path=path)
        moment = parse_time(run_time, f"{path}run_time")
        run_id = read_str(data, "run_id", path=path)
        if run_id != cls.run_id_for(moment):
            raise InvalidInputError(f"{path}run_id", f"does not match run_time {run_time!r}")
        return cls(
            run_id=run_id,
            run_time=run_time,
            execution_arn=read_str(data, "execution_arn", path=path),
            execution_name=read_str(data, "execution_name", path=path),
            dry_run=read_bool(data, "dry_run", path=path),
            copies=read_bool(data, "copies", path=path, default=False),
            min_check_interval_seconds=read_int(
                data, "min_check_interval_seconds", path=path, default=0, minimum=0, maximum=7 * 24 * 3600
            ),
            unusable_copy_keys=_read_str_map(data, "unusable_copy_keys", path=path),
        )


def _read_str_map(data: Mapping[str, Any], key: str, *, path: str) -> dict[str, str]:
    raw = require_mapping(data.get(key) or {}, f"{path}{key}")
    return {str(k): read_str(raw, str(k), path=f"{path}{key}.") for k in raw}


@dataclass(frozen=True, kw_only=True)
class RunRequest:
    """The execution input: an EventBridge scheduled event, or a manual run with overrides."""

    time: datetime
    dry_run: bool | None = None
    instance_ids: tuple[str, ...] | None = None

    @classmethod
    def from_event(cls, event: Any) -> RunRequest:
        event = require_mapping(event, "event")
        ids = None
        if event.get("instance_ids") is not None:
            raw = read_list(event, "instance_ids", path="event.")
            ids = tuple(read_aws_id({"instance_ids": v}, "instance_ids", "instance", path="event.") for v in raw)
        dry_run = None
        if event.get("dry_run") is not None:
            dry_run = read_bool(event, "dry_run", path="event.")
        return cls(
            time=parse_time(read_str(event, "time", path="event."), "event.time"),
            dry_run=dry_run,
            instance_ids=ids,
        )


@dataclass(frozen=True, kw_only=True)
class VolumeTarget:
    volume_id: str
    device: str
    root: bool
    size_gib: int

    @classmethod
    def from_dict(cls, data: Any, path: str) -> VolumeTarget:
        data = require_mapping(data, path.rstrip("."))
        return cls(
            volume_id=read_aws_id(data, "volume_id", "volume", path=path),
            device=read_str(data, "device", path=path),
            root=read_bool(data, "root", path=path),
            size_gib=read_int(data, "size_gib", path=path, default=0, minimum=0),
        )


@dataclass(frozen=True, kw_only=True)
class InstanceTarget:
    """One inventory item: what to snapshot for an instance, as discovered."""

    instance_id: str
    name: str
    availability_zone: str
    state: str
    volumes: tuple[VolumeTarget, ...]
    excluded_volume_ids: tuple[str, ...] = ()
    copied_tags: dict[str, str] = field(default_factory=dict)
    # The instance's retention override tags (smart_vault.retention.overrides), as found: validated by Prune.
    retention_tags: dict[str, str] = field(default_factory=dict)
    start_delay_seconds: int = 0
    # Set when a re-run names an instance that cannot be backed up (gone, terminated, untagged):
    # the child records it as skipped with this reason instead of calling EC2.
    skip_reason: str | None = None
    # What restoring as an AMI needs of the instance (smart_vault.instance_spec), tagged on its
    # snapshots and copies; None for items written before it was recorded.
    spec: InstanceSpec | None = None
    # The instance's application-consistency tags (smart_vault.consistency), as found: validated
    # by the Freeze step; ``consistency`` is what the workflow branches on (crash: no SSM at all).
    consistency: str = "crash"
    consistency_tags: dict[str, str] = field(default_factory=dict)

    @property
    def included_volume_ids(self) -> set[str]:
        return {v.volume_id for v in self.volumes}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, path: str = "instance.") -> InstanceTarget:
        data = require_mapping(data, path.rstrip("."))
        volumes = tuple(
            VolumeTarget.from_dict(v, f"{path}volumes[{i}].")
            for i, v in enumerate(read_list(data, "volumes", path=path))
        )
        tags = require_mapping(data.get("copied_tags") or {}, f"{path}copied_tags")
        overrides = require_mapping(data.get("retention_tags") or {}, f"{path}retention_tags")
        consistency = require_mapping(data.get("consistency_tags") or {}, f"{path}consistency_tags")
        return cls(
            instance_id=read_aws_id(data, "instance_id", "instance", path=path),
            name=str(data.get("name") or ""),
            availability_zone=str(data.get("availability_zone") or ""),
            state=str(data.get("state") or ""),
            volumes=volumes,
            excluded_volume_ids=tuple(read_list(data, "excluded_volume_ids", path=path, default=[])),
            copied_tags={str(k): str(v) for k, v in tags.items()},
            retention_tags={str(k): str(v) for k, v in overrides.items()},
            start_delay_seconds=read_int(data, "start_delay_seconds", path=path, default=0, minimum=0),
            skip_reason=read_str(data, "skip_reason", path=path, default=None),
            spec=InstanceSpec.from_dict(require_mapping(data["spec"], f"{path}spec")) if data.get("spec") else None,
            consistency="application" if data.get("consistency") == "application" else "crash",
            consistency_tags={str(k): str(v) for k, v in consistency.items()},
        )

    @property
    def label(self) -> str:
        return f"{self.name} ({self.instance_id})" if self.name else self.instance_id


@dataclass(frozen=True, kw_only=True)
class SnapshotRef:
    snapshot_id: str
    volume_id: str
    device: str
    state: str = "pending"
    progress: int = 0

    @classmethod
    def from_dict(cls, data: Any, path: str) -> SnapshotRef:
        data = require_mapping(data, path.rstrip("."))
        return cls(
            snapshot_id=read_aws_id(data, "snapshot_id", "snapshot", path=path),
            volume_id=read_aws_id(data, "volume_id", "volume", path=path),
            device=str(data.get("device") or ""),
            state=read_str(data, "state", path=path, default="pending"),
            progress=read_int(data, "progress", path=path, default=0, minimum=0, maximum=100),
        )


# freeze: an opted-in instance's first Snapshot step, which snapshots nothing and sends the
# child to its freeze (smart_vault.consistency) through the SnapshotsComplete Choice.
BackupStatus = Literal["pending", "completed", "skipped", "freeze"]


@dataclass(frozen=True, kw_only=True)
class BackupState:
    """Where an instance's backup stands: written by snapshot, advanced by check."""

    status: BackupStatus
    snapshots: tuple[SnapshotRef, ...] = ()
    created: bool = False
    reason: str | None = None
    wait_seconds: int = 0
    waited_seconds: int = 0
    checks: int = 0
    progress: int = 0
    # New snapshots whose LockSnapshot was throttled: the Check step locks them (a retried
    # Snapshot step could miss them in its tag lookup, eventual consistency, and snapshot again).
    unlocked: tuple[str, ...] = ()
    # A dry run: the snapshots the real run would create now (one per selected volume).
    would_create: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, path: str = "backup.") -> BackupState:
        data = require_mapping(data, path.rstrip("."))
        status = _read_progress_status(data, path, ("pending", "completed", "skipped", "freeze"))
        return cls(
            status=status,
            snapshots=tuple(
                SnapshotRef.from_dict(s, f"{path}snapshots[{i}].")
                for i, s in enumerate(read_list(data, "snapshots", path=path, default=[]))
            ),
            created=read_bool(data, "created", path=path, default=False),
            reason=data.get("reason"),
            wait_seconds=read_int(data, "wait_seconds", path=path, default=0, minimum=0),
            waited_seconds=read_int(data, "waited_seconds", path=path, default=0, minimum=0),
            checks=read_int(data, "checks", path=path, default=0, minimum=0),
            progress=read_int(data, "progress", path=path, default=0, minimum=0, maximum=100),
            unlocked=_snapshot_ids(data, "unlocked", path),
            would_create=read_int(data, "would_create", path=path, default=0, minimum=0),
        )


def _snapshot_ids(data: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    return tuple(read_aws_id({key: s}, key, "snapshot", path=path) for s in read_list(data, key, path=path, default=[]))


def _read_progress_status(
    data: Mapping[str, Any], path: str, statuses: tuple[str, ...] = ("pending", "completed", "skipped")
) -> Any:
    """The status of a backup (which may also be freeze) or of its copies: pending, completed or skipped."""
    status = read_str(data, "status", path=path)
    if status not in statuses:
        raise InvalidInputError(f"{path}status", f"must be one of {', '.join(statuses)}, got {status!r}")
    return status


@dataclass(frozen=True, kw_only=True)
class CopyRef:
    """One copy of one source snapshot in one destination Region (``snapshot_id`` None: not
    started yet, waiting for a free slot)."""

    source_snapshot_id: str
    source_volume_id: str
    region: str
    snapshot_id: str | None = None
    state: str = "waiting"
    progress: int = 0
    unlocked: bool = False  # its LockSnapshot was throttled: the next Copy turn locks it

    @classmethod
    def from_dict(cls, data: Any, path: str) -> CopyRef:
        data = require_mapping(data, path.rstrip("."))
        copy_id = data.get("snapshot_id")
        return cls(
            source_snapshot_id=read_aws_id(data, "source_snapshot_id", "snapshot", path=path),
            source_volume_id=read_aws_id(data, "source_volume_id", "volume", path=path),
            region=read_str(data, "region", path=path),
            snapshot_id=read_aws_id(data, "snapshot_id", "snapshot", path=path) if copy_id is not None else None,
            state=read_str(data, "state", path=path, default="waiting"),
            progress=read_int(data, "progress", path=path, default=0, minimum=0, maximum=100),
            unlocked=read_bool(data, "unlocked", path=path, default=False),
        )


CopyStatus = Literal["pending", "completed", "skipped"]


@dataclass(frozen=True, kw_only=True)
class CopyState:
    """Where an instance's off-site copies stand: advanced by each Copy invocation."""

    status: CopyStatus
    copies: tuple[CopyRef, ...] = ()
    reason: str | None = None
    wait_seconds: int = 0
    waited_seconds: int = 0
    checks: int = 0
    slot_waits: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, path: str = "copies.") -> CopyState:
        data = require_mapping(data, path.rstrip("."))
        status = _read_progress_status(data, path)
        return cls(
            status=status,
            copies=tuple(
                CopyRef.from_dict(c, f"{path}copies[{i}].")
                for i, c in enumerate(read_list(data, "copies", path=path, default=[]))
            ),
            reason=data.get("reason"),
            wait_seconds=read_int(data, "wait_seconds", path=path, default=0, minimum=0),
            waited_seconds=read_int(data, "waited_seconds", path=path, default=0, minimum=0),
            checks=read_int(data, "checks", path=path, default=0, minimum=0),
            slot_waits=read_int(data, "slot_waits", path=path, default=0, minimum=0),
        )


@dataclass(frozen=True, kw_only=True)
class InstanceJob:
    """The input of every per-instance state: the inventory item, the run and the progress."""

    instance: InstanceTarget
    run: RunContext
    backup: BackupState | None = None
    copies: CopyState | None = None

    @classmethod
    def from_dict(cls, data: Any, *, need_backup: bool = False) -> InstanceJob:
        data = require_mapping(data, "input")
        if need_backup and data.get("backup") is None:
            raise InvalidInputError("backup", "is required")
        backup = data.get("backup")
        copies = data.get("copies")
        return cls(
            instance=InstanceTarget.from_dict(data.get("instance"), "instance."),
            run=RunContext.from_dict(data.get("run"), "run."),
            backup=BackupState.from_dict(backup) if backup is not None else None,
            copies=CopyState.from_dict(copies) if copies is not None else None,
        )


@dataclass(frozen=True, kw_only=True)
class ErrorInfo:
    """A failure as the alert shows it: the class Step Functions saw, its message, the AWS code."""

    type: str
    message: str
    aws_code: str | None = None

    @classmethod
    def from_catch(cls, caught: Any) -> ErrorInfo:
        """Build from a Catch result ``{"Error": ..., "Cause": ...}``; Cause is Lambda's JSON."""
        caught = require_mapping(caught, "failure.error")
        error = str(caught.get("Error") or "Unknown")
        cause = caught.get("Cause") or ""
        message = str(cause)
        try:
            parsed = json.loads(cause) if isinstance(cause, str) and cause.startswith("{") else None
        except ValueError:
            parsed = None
        if isinstance(parsed, Mapping):
            message = str(parsed.get("errorMessage") or message)
            error = str(parsed.get("errorType") or error)
        match = re.match(r"^\S+ failed: ([A-Za-z0-9.]+): ", message)
        # Kept whole (a Cause is at most 32,768 characters) for the audit record: an encoded
        # authorization message is only useful complete; alerts shorten it themselves.
        return cls(type=error, message=message, aws_code=match.group(1) if match else None)


OutcomeStatus = Literal["backed_up", "failed", "skipped"]


@dataclass(frozen=True, kw_only=True)
class DeletedSnapshot:
    snapshot_id: str
    volume_id: str
    start_time: str


@dataclass(frozen=True, kw_only=True)
class SkippedDelete:
    snapshot_id: str
    volume_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class TrippedVolume:
    """A volume whose pruning the circuit breaker stopped; released by ``smart-vault approve``."""

    volume_id: str
    would_delete: tuple[str, ...]
    reason: str
    # An operator's approval for this volume in this Region that no longer matches the plan
    # (the plan grew or changed since): the run that was approved and the ids it released.
    approved_run_id: str | None = None
    approved_snapshot_ids: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrippedVolume:
        return cls(
            volume_id=data["volume_id"],
            would_delete=tuple(data["would_delete"]),
            reason=data["reason"],
            approved_run_id=data.get("approved_run_id"),
            approved_snapshot_ids=tuple(data.get("approved_snapshot_ids") or ()),
        )


@dataclass(frozen=True, kw_only=True)
class PinnedSnapshot:
    """A snapshot an AMI of this account uses: kept, never counted as a deletion."""

    snapshot_id: str
    volume_id: str
    image_id: str


@dataclass(frozen=True, kw_only=True)
class LockedSnapshot:
    """A snapshot retention would delete but its snapshot lock keeps, until ``locked_until``."""

    snapshot_id: str
    volume_id: str
    locked_until: str  # ISO-8601 UTC; 9999-... while its lock waits for the snapshot to complete


@dataclass(frozen=True, kw_only=True)
class KeptSnapshot:
    """A snapshot pruning kept, why (``daily+weekly``, ``keep_min``, ``within_retention``...),
    its storage tier, and whether this run moves it to the archive tier."""

    snapshot_id: str
    volume_id: str
    start_time: str
    reason: str
    storage_tier: str = "standard"
    archive: bool = False


@dataclass(frozen=True, kw_only=True)
class InstanceOutcome:
    """The per-instance record in S3 that Notify aggregates, and the child execution's output."""

    instance_id: str
    name: str
    status: OutcomeStatus
    run_id: str
    execution_name: str
    step: str | None = None
    error: ErrorInfo | None = None
    reason: str | None = None
    snapshots: tuple[SnapshotRef, ...] = ()
    created: bool = False
    backup_gib: int = 0
    deleted: tuple[DeletedSnapshot, ...] = ()
    skipped_deletes: tuple[SkippedDelete, ...] = ()
    would_delete: tuple[DeletedSnapshot, ...] = ()
    breaker: str | None = None
    breakers: tuple[TrippedVolume, ...] = ()
    kept_by_ami: tuple[PinnedSnapshot, ...] = ()
    kept_locked: tuple[LockedSnapshot, ...] = ()
    approved_volumes: tuple[str, ...] = ()
    kept: tuple[KeptSnapshot, ...] = ()
    archived: tuple[str, ...] = ()  # ModifySnapshotTier accepted (a dry run: would archive)
    archive_skipped: tuple[SkippedDelete, ...] = ()  # archive refused by EC2, with its code
    # An invalid retention override tag: pruning (and archiving) of this instance skipped.
    retention_error: str | None = None
    dry_run: bool = False
    copies: tuple[CopyRef, ...] = ()
    copy_pruning: tuple[RegionPruning, ...] = ()
    # Deletions that still failed (throttled, AWS server errors) after their retries: left for the
    # next run, which plans them again; the backup itself is not failed for them.
    deferred_deletes: tuple[SkippedDelete, ...] = ()
    # Snapshots inside the configured lock that EC2 held no lock on (a LockSnapshot that failed
    # on an earlier run), locked by this run.
    locks_added: tuple[LockedSnapshot, ...] = ()
    # A dry run: snapshots the real run would create of this instance (0: it would skip it).
    would_create: int = 0
    # What its snapshots are (application: taken while the pre script held the freeze; crash:
    # the default, or a fallback after a failed freeze), and the seconds from the end of the
    # freeze to the end of the thaw as SSM timed them (None: no freeze, or no confirmed thaw).
    consistency: str = "crash"
    frozen_seconds: float | None = None
    # An opted-in instance that fell back to crash-consistent: why its freeze failed.
    consistency_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InstanceOutcome:
        error = data.get("error")
        return cls(
            instance_id=data["instance_id"],
            name=data.get("name") or "",
            status=data["status"],
            run_id=data["run_id"],
            execution_name=data["execution_name"],
            step=data.get("step"),
            error=ErrorInfo(**error) if error else None,
            reason=data.get("reason"),
            snapshots=tuple(SnapshotRef(**s) for s in data.get("snapshots") or ()),
            created=bool(data.get("created")),
            backup_gib=int(data.get("backup_gib") or 0),
            deleted=tuple(DeletedSnapshot(**d) for d in data.get("deleted") or ()),
            skipped_deletes=tuple(SkippedDelete(**d) for d in data.get("skipped_deletes") or ()),
            would_delete=tuple(DeletedSnapshot(**d) for d in data.get("would_delete") or ()),
            breaker=data.get("breaker"),
            breakers=tuple(TrippedVolume.from_dict(b) for b in data.get("breakers") or ()),
            kept_by_ami=tuple(PinnedSnapshot(**p) for p in data.get("kept_by_ami") or ()),
            kept_locked=tuple(LockedSnapshot(**p) for p in data.get("kept_locked") or ()),
            approved_volumes=tuple(data.get("approved_volumes") or ()),
            kept=tuple(KeptSnapshot(**k) for k in data.get("kept") or ()),
            archived=tuple(data.get("archived") or ()),
            archive_skipped=tuple(SkippedDelete(**d) for d in data.get("archive_skipped") or ()),
            retention_error=data.get("retention_error"),
            dry_run=bool(data.get("dry_run")),
            copies=tuple(CopyRef(**c) for c in data.get("copies") or ()),
            copy_pruning=tuple(RegionPruning.from_dict(r) for r in data.get("copy_pruning") or ()),
            deferred_deletes=tuple(SkippedDelete(**d) for d in data.get("deferred_deletes") or ()),
            locks_added=tuple(LockedSnapshot(**p) for p in data.get("locks_added") or ()),
            would_create=int(data.get("would_create") or 0),
            consistency=str(data.get("consistency") or "crash"),
            frozen_seconds=data.get("frozen_seconds"),
            consistency_error=data.get("consistency_error"),
        )


@dataclass(frozen=True, kw_only=True)
class RegionPruning:
    """Retention of one instance's copies in one destination Region."""

    region: str
    deleted: tuple[DeletedSnapshot, ...] = ()
    skipped_deletes: tuple[SkippedDelete, ...] = ()
    would_delete: tuple[DeletedSnapshot, ...] = ()
    breakers: tuple[TrippedVolume, ...] = ()
    kept_by_ami: tuple[PinnedSnapshot, ...] = ()
    deferred_deletes: tuple[SkippedDelete, ...] = ()  # as InstanceOutcome.deferred_deletes
    locks_added: tuple[LockedSnapshot, ...] = ()  # copies locked late, as InstanceOutcome.locks_added

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegionPruning:
        return cls(
            region=data["region"],
            deleted=tuple(DeletedSnapshot(**d) for d in data.get("deleted") or ()),
            skipped_deletes=tuple(SkippedDelete(**d) for d in data.get("skipped_deletes") or ()),
            would_delete=tuple(DeletedSnapshot(**d) for d in data.get("would_delete") or ()),
            breakers=tuple(TrippedVolume.from_dict(b) for b in data.get("breakers") or ()),
            kept_by_ami=tuple(PinnedSnapshot(**p) for p in data.get("kept_by_ami") or ()),
            deferred_deletes=tuple(SkippedDelete(**d) for d in data.get("deferred_deletes") or ()),
            locks_added=tuple(LockedSnapshot(**p) for p in data.get("locks_added") or ()),
        )


def copy_journal_key(prefix: str, instance_id: str, region: str) -> str:
    """Deletion journal of one instance's copies in one destination (``run_prefix``); kept apart
    from ``journal_prefix`` because Notify confirms those against the source Region."""
    return f"{prefix}/copy-journal/{instance_id}@{region}.json"


def run_prefix(run: RunContext) -> str:
    """S3 prefix for one execution of one run: inventory, per-instance outcomes, audit."""
    return execution_prefix(run.run_id, run.execution_name)


def execution_prefix(run_id: str, execution_name: str) -> str:
    return f"{RUNS_PREFIX}/{run_id}/{execution_name}"


def outcomes_prefix(prefix: str) -> str:
    """Where the per-instance outcome records of one execution (``run_prefix``) live."""
    return f"{prefix}/instances/"


def skipped_key(prefix: str) -> str:
    """The instances Discover skipped in one execution (``run_prefix``), when there are any."""
    return f"{prefix}/skipped.json"


def journal_prefix(prefix: str) -> str:
    """Where one execution's deletion journals live: one per instance, one for orphans."""
    return f"{prefix}/journal/"


def orphans_key(prefix: str) -> str:
    """The orphan-pruning record of one execution."""
    return f"{prefix}/orphans.json"


__all__ = [
    "BackupState",
    "CopyRef",
    "CopyState",
    "DeletedSnapshot",
    "ErrorInfo",
    "InstanceJob",
    "InstanceOutcome",
    "InstanceTarget",
    "KeptSnapshot",
    "PinnedSnapshot",
    "RegionPruning",
    "RunContext",
    "RunRequest",
    "SkippedDelete",
    "SnapshotRef",
    "TrippedVolume",
    "VolumeTarget",
]
