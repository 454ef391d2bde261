"""Preflight: prove a deployment against the real account before the first night.

Every function makes the mutating calls it makes at night, with its own role, on real targets:
EC2 ones with ``DryRun=True`` (an ``Ec2(dry_run=True)`` adds it to every mutating request, so
nothing in the account can change), which EC2 answers ``DryRunOperation`` when IAM allows the
request and ``UnauthorizedOperation`` when it does not (EC2 API Reference, "Common client error
codes"); calls with no DryRun are made for real where that is harmless (an S3 object under
``preflight/`` written, read and deleted; KMS DescribeKey). A call with no target yet (no managed
snapshot before the first night) is ``not_checked`` with the reason, never ``passed``.

The checks travel through the workflow as plain lists; PreflightReport (the notify function)
adds the account facts and writes the record (docs/decisions.md, "Preflight").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from smart_vault.aws import Ec2, Store
from smart_vault.constants import (
    PREFLIGHT_PREFIX,
    TAG_DEVICE,
    TAG_DRILL,
    TAG_INSTANCE_ID,
    TAG_RUN_ID,
    TAG_VERIFIED_AT,
)
from smart_vault.errors import DryRunAllowedError, PermissionDeniedError, SmartVaultError
from smart_vault.models import InstanceJob, InstanceTarget, RunContext, SnapshotRef
from smart_vault.validation import read_bool, read_list, read_str, require_mapping
from smart_vault.verification.blocks import Blocks

Result = Literal["passed", "denied", "not_checked", "failed"]
NO_SNAPSHOT = "no managed snapshot yet (the first night makes one)"
NO_COPY = "no copy there yet"
DRY_RUN_PASSED = "DryRunOperation: the request would have succeeded"


@dataclass(frozen=True, kw_only=True)
class Check:
    """One row of the preflight table: who (role), what (action), on what (resource), the answer."""

    role: str
    action: str
    resource: str
    result: Result
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, path: str = "check.") -> Check:
        data = require_mapping(data, path.rstrip("."))
        result = read_str(data, "result", path=path)
        if result not in get_args(Result):
            raise SmartVaultError(f"{path}result: unknown result {result!r}")
        return cls(
            role=read_str(data, "role", path=path),
            action=read_str(data, "action", path=path),
            resource=read_str(data, "resource", path=path, default=""),
            result=result,
            reason=str(data.get("reason") or ""),
        )


@dataclass(frozen=True, kw_only=True)
class Point:
    """The newest completed snapshot of this deployment: the target of every snapshot call."""

    snapshot_id: str
    volume_id: str
    device: str
    instance_id: str
    run_id: str


@dataclass(frozen=True, kw_only=True)
class PreflightContext:
    """What Discover found for the other functions to aim at (the Map item of the preflight)."""

    run: RunContext
    notify: bool
    instance: InstanceTarget | None = None
    point: Point | None = None
    # Destination Region -> a copy this deployment made there (None: none yet).
    copies: Mapping[str, str | None] = field(default_factory=dict)
    drill_volume: str | None = None  # a leftover drill volume of this deployment, if any
    fleet_volumes: int = 0  # volumes the night backs up (the quota check's steady state)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["run"] = self.run.to_dict()
        data["instance"] = self.instance.to_dict() if self.instance else None
        return data

    @classmethod
    def from_dict(cls, data: Any, path: str = "preflight.") -> PreflightContext:
        data = require_mapping(data, path.rstrip("."))
        point = data.get("point")
        instance = data.get("instance")
        return cls(
            run=RunContext.from_dict(data.get("run"), f"{path}run."),
            notify=read_bool(data, "notify", path=path, default=False),
            instance=InstanceTarget.from_dict(instance, f"{path}instance.") if instance else None,
            point=Point(**require_mapping(point, f"{path}point")) if point else None,
            copies={
                str(k): (str(v) if v else None) for k, v in require_mapping(data.get("copies") or {}, "copies").items()
            },
            drill_volume=str(data["drill_volume"]) if data.get("drill_volume") else None,
            fleet_volumes=int(data.get("fleet_volumes") or 0),
        )

    def job(self) -> InstanceJob | None:
        return InstanceJob(instance=self.instance, run=self.run) if self.instance else None


# -- probes --------------------------------------------------------------------------------
def dry(role: str, action: str, resource: str, attempt: Callable[[], object]) -> Check:
    """An EC2 call made with DryRun=True: passed only on DryRunOperation."""
    try:
        returned = attempt()
    except DryRunAllowedError:
        return Check(role=role, action=action, resource=resource, result="passed", reason=DRY_RUN_PASSED)
    except PermissionDeniedError as error:
        return Check(role=role, action=action, resource=resource, result="denied", reason=str(error))
    except SmartVaultError as error:
        return Check(role=role, action=action, resource=resource, result="failed", reason=str(error))
    return Check(
        role=role,
        action=action,
        resource=resource,
        result="failed",
        reason=f"EC2 did not answer DryRunOperation (the step returned {returned!r}): nothing was proved",
    )


def real(role: str, action: str, resource: str, attempt: Callable[[], object], *, reason: str = "") -> Check:
    """A call made for real because it is harmless (reads, the preflight/ probe object)."""
    try:
        attempt()
    except PermissionDeniedError as error:
        return Check(role=role, action=action, resource=resource, result="denied", reason=str(error))
    except SmartVaultError as error:
        return Check(role=role, action=action, resource=resource, result="failed", reason=str(error))
    return Check(role=role, action=action, resource=resource, result="passed", reason=reason)


def not_checked(role: str, action: str, resource: str, reason: str) -> Check:
    return Check(role=role, action=action, resource=resource, result="not_checked", reason=reason)


def snapshot_arn(region: str, snapshot_id: str) -> str:
    return f"arn:aws:ec2:{region}::snapshot/{snapshot_id}"


def store_checks(role: str, store: Store, run_id: str) -> list[Check]:
    """S3 PutObject, GetObject and DeleteObject of preflight/<run id>/<role>.json: the bucket's
    policy, its KMS key and any SCP on S3 answer exactly as they will at night."""
    key = f"{PREFLIGHT_PREFIX}/{run_id}/{role}.json"
    where = f"s3://{store.bucket}/{key}"
    put = real(role, "s3:PutObject", where, lambda: store.put_json(key, {"probe": role}))
    if put.result != "passed":
        return [put, not_checked(role, "s3:GetObject", where, "the probe object was not written")]
    return [
        put,
        real(role, "s3:GetObject", where, lambda: store.get_json(key)),
        real(role, "s3:DeleteObject", where, lambda: store.delete(key)),
    ]


def lock_check(
    role: str, ec2: Ec2, region: str, snapshot_id: str | None, lock: Any, *, missing: str = NO_SNAPSHOT
) -> list[Check]:
    """LockSnapshot with the configured mode and duration (the IAM condition
    ec2:SnapshotLockDuration sees the real value), when locking is configured."""
    if lock is None:
        return []
    if snapshot_id is None:
        return [not_checked(role, "ec2:LockSnapshot", snapshot_arn(region, "*"), missing)]
    resource = snapshot_arn(region, snapshot_id)
    return [dry(role, "ec2:LockSnapshot", resource, lambda: ec2.lock_snapshot(lock.request(snapshot_id)))]


# -- what each function checks ----------------------------------------------------------------
def newest_point(snapshots: Sequence[Mapping[str, Any]]) -> Point | None:
    """The newest completed snapshot with the tags a restore needs (instance and run)."""
    done = [s for s in snapshots if s.get("State") == "completed"]
    for snap in sorted(done, key=lambda s: str(s.get("StartTime") or ""), reverse=True):
        tags = {t["Key"]: t["Value"] for t in snap.get("Tags") or ()}
        if tags.get(TAG_INSTANCE_ID) and tags.get(TAG_RUN_ID):
            return Point(
                snapshot_id=snap["SnapshotId"],
                volume_id=str(snap.get("VolumeId") or ""),
                device=tags.get(TAG_DEVICE, ""),
                instance_id=tags[TAG_INSTANCE_ID],
                run_id=tags[TAG_RUN_ID],
            )
    return None


def newest_copy(snapshots: Sequence[Mapping[str, Any]]) -> str | None:
    done = sorted((s for s in snapshots if s.get("State") == "completed"), key=lambda s: str(s.get("StartTime") or ""))
    return str(done[-1]["SnapshotId"]) if done else None


def snapshot_checks(context: PreflightContext, *, settings: Any, ec2: Ec2, start: Callable[..., Any]) -> list[Check]:
    """CreateSnapshots of a tagged instance through the night's own code path (``start`` is
    snapshots.start_backup), then LockSnapshot when locking is on."""
    job = context.job()
    region = ec2.region_name()
    if job is None:
        checks = [not_checked("snapshot", "ec2:CreateSnapshots", "instance/*", "no instance is tagged for backup")]
    else:
        resource = f"instance/{job.instance.instance_id}"
        checks = [dry("snapshot", "ec2:CreateSnapshots", resource, lambda: start(job, settings=settings, ec2=ec2))]
    point = context.point.snapshot_id if context.point else None
    return checks + lock_check("snapshot", ec2, region, point, settings.lock)


def check_checks(context: PreflightContext, *, settings: Any, ec2: Ec2) -> list[Check]:
    """Check locks the snapshots whose lock the Snapshot step could not set."""
    point = context.point.snapshot_id if context.point else None
    checks = lock_check("check", ec2, ec2.region_name(), point, settings.lock)
    return checks or [not_checked("check", "ec2:LockSnapshot", "snapshot/*", "no lock configured: Check only reads")]


def copy_checks(
    context: PreflightContext,
    *,
    settings: Any,
    source_region: str,
    ec2_for: Callable[[str], Ec2],
    copy_tags: Callable[..., list[dict[str, str]]],
) -> list[Check]:
    """CopySnapshot into each destination with its key, then LockSnapshot of a copy there."""
    checks: list[Check] = []
    job, point = context.job(), context.point
    for dest in settings.copy_regions:
        ec2 = ec2_for(dest.region)
        where = f"{dest.region} with {dest.kms_key}"
        if job is None or point is None:
            checks.append(not_checked("copy", "ec2:CopySnapshot", where, NO_SNAPSHOT))
        else:
            source = SnapshotRef(snapshot_id=point.snapshot_id, volume_id=point.volume_id, device=point.device)
            tags = copy_tags(job, source, deployment_id=settings.deployment_id, source_region=source_region)
            checks.append(
                dry(
                    "copy",
                    "ec2:CopySnapshot",
                    f"{snapshot_arn(source_region, point.snapshot_id)} -> {where}",
                    lambda ec2=ec2, dest=dest, tags=tags: ec2.copy_snapshot(  # type: ignore[misc]
                        source_region=source_region,
                        source_snapshot_id=point.snapshot_id,
                        kms_key=dest.kms_key,
                        tags=tags,
                        description="Smart Vault preflight",
                    ),
                )
            )
        checks += lock_check("copy", ec2, dest.region, context.copies.get(dest.region), settings.lock, missing=NO_COPY)
    return checks or [not_checked("copy", "ec2:CopySnapshot", "-", "no copy_regions configured")]


def prune_checks(
    context: PreflightContext, *, settings: Any, ec2: Ec2, ec2_for: Callable[[str], Ec2], store: Store
) -> list[Check]:
    """DeleteSnapshot (and ModifySnapshotTier, LockSnapshot) of this deployment's newest snapshot,
    DeleteSnapshot of a copy in each destination, and the run records."""
    region = ec2.region_name()
    point = context.point.snapshot_id if context.point else None
    checks: list[Check] = []
    if point is None:
        checks.append(not_checked("prune", "ec2:DeleteSnapshot", snapshot_arn(region, "*"), NO_SNAPSHOT))
    else:
        resource = snapshot_arn(region, point)
        checks.append(dry("prune", "ec2:DeleteSnapshot", resource, lambda: ec2.delete_snapshot(point)))
        if settings.archive_after_days is not None:
            checks.append(dry("prune", "ec2:ModifySnapshotTier", resource, lambda: ec2.archive_snapshot(point)))
        if settings.vault is not None:  # the share with (and withdrawal from) the vault account
            vault = settings.vault.account
            checks.append(
                dry(
                    "prune", "ec2:ModifySnapshotAttribute", resource, lambda: ec2.share_snapshot(point, vault, add=True)
                )
            )
    checks += lock_check("prune", ec2, region, point, settings.lock)
    for dest in settings.copy_regions:
        copy, there = context.copies.get(dest.region), ec2_for(dest.region)
        if copy is None:
            checks.append(not_checked("prune", "ec2:DeleteSnapshot", snapshot_arn(dest.region, "*"), NO_COPY))
        else:
            checks.append(
                dry(
                    "prune",
                    "ec2:DeleteSnapshot",
                    snapshot_arn(dest.region, copy),
                    lambda there=there, copy=copy: there.delete_snapshot(copy),  # type: ignore[misc]
                )
            )
        checks += lock_check("prune", there, dest.region, copy, settings.lock, missing=NO_COPY)
    return checks + store_checks("prune", store, context.run.run_id)


def drill_checks(
    context: PreflightContext,
    *,
    settings: Any,
    ec2: Ec2,
    restore: Callable[[str, str, str, str], object],
    blocks: Blocks,
) -> list[Check]:
    """The drill's CreateVolume of the newest point, through its own code path (``restore``
    takes instance id, name, run id and snapshot id), then its Verify step's block reads."""
    point = context.point
    # CheckVolumes' DescribeVolumeStatus (time to initialized): a read, made for real.
    status = real(
        "drill",
        "ec2:DescribeVolumeStatus",
        "*",
        lambda: ec2.volume_initialization(()),
        reason="read the volumes' status",
    )
    if point is None:
        return [
            not_checked("drill", "ec2:CreateVolume", "volume/*", NO_SNAPSHOT),
            not_checked("drill", "ebs:ListSnapshotBlocks", snapshot_arn(ec2.region_name(), "*"), NO_SNAPSHOT),
            status,
        ]
    resource = f"volume/* from {snapshot_arn(ec2.region_name(), point.snapshot_id)}"
    attempt = lambda: restore(point.instance_id, "", point.run_id, point.snapshot_id)  # noqa: E731
    dry_run = dry("drill", "ec2:CreateVolume", resource, attempt)
    return [
        dry_run,
        status,
        *block_checks(snapshot_arn(ec2.region_name(), point.snapshot_id), point.snapshot_id, blocks),
    ]


def block_checks(resource: str, snapshot_id: str, blocks: Blocks) -> list[Check]:
    """The EBS direct APIs have no DryRun: one page of ListSnapshotBlocks and one GetSnapshotBlock
    of the snapshot, for real (reads; one block, billed as one of a thousand)."""
    listed: dict[str, Any] = {}
    page = real(
        "drill",
        "ebs:ListSnapshotBlocks",
        resource,
        lambda: listed.update(blocks.list_blocks(snapshot_id)),
        reason="listed one page of its blocks",
    )
    first = next(iter(listed.get("Blocks") or ()), None)
    if page.result != "passed" or first is None:
        why = "its blocks were not listed" if page.result != "passed" else "the snapshot has no written block"
        return [page, not_checked("drill", "ebs:GetSnapshotBlock", resource, why)]
    index, token = int(first["BlockIndex"]), str(first["BlockToken"])
    read = real(
        "drill",
        "ebs:GetSnapshotBlock",
        resource,
        lambda: blocks.get_block(snapshot_id, index, token),
        reason=f"read block {index}",
    )
    return [page, read]


def drill_cleanup_checks(context: PreflightContext, *, ec2: Ec2) -> list[Check]:
    """DeleteVolume needs a volume carrying the drill marker; the drill deletes its volumes, so
    there is usually none to aim at."""
    volume = context.drill_volume
    if volume is None:
        return [
            not_checked(
                "drill_cleanup", "ec2:DeleteVolume", "volume/*", f"no volume tagged {TAG_DRILL} exists to aim at"
            )
        ]
    return [dry("drill_cleanup", "ec2:DeleteVolume", f"volume/{volume}", lambda: ec2.delete_volume(volume))]


def drill_report_checks(context: PreflightContext, *, ec2: Ec2, store: Store, now: datetime) -> list[Check]:
    point = context.point
    if point is None:
        checks = [not_checked("drill_report", "ec2:CreateTags", "snapshot/*", NO_SNAPSHOT)]
    else:
        resource = snapshot_arn(ec2.region_name(), point.snapshot_id)
        stamp = {TAG_VERIFIED_AT: now.isoformat()}
        checks = [
            dry("drill_report", "ec2:CreateTags", resource, lambda: ec2.tag_resources([point.snapshot_id], stamp))
        ]
    return checks + store_checks("drill_report", store, context.run.run_id)


def read_checks(raw: Any, *, role: str, step: str) -> list[Check]:
    """A step's result: its list of checks, or the error a Catch put there (that step never ran)."""
    if isinstance(raw, Mapping) and "Error" in raw:
        reason = f"{step} did not run: {raw.get('Error')}: {str(raw.get('Cause') or '')[:500]}"
        return [Check(role="state_machine", action=f"{step}", resource=role, result="failed", reason=reason)]
    return [Check.from_dict(c, f"{step}[{i}].") for i, c in enumerate(read_list({"c": raw or []}, "c"))]


# SendCommand has no DryRun, and a real one runs the script: it is never made by preflight.
SEND_COMMAND_UNPROVED = (
    "SendCommand has no DryRun and a real one would freeze the instance: not sent. "
    "DescribeInstanceInformation proves the role reaches SSM and whether SSM manages the instance; "
    "it cannot prove that SendCommand is allowed on the documents, that the documents exist, "
    "or that the scripts succeed (the first night's Freeze step does)"
)


def consistency_checks(
    context: PreflightContext, *, settings: Any, managed: Callable[[list[str]], Mapping[str, Any]]
) -> list[Check]:
    """Application consistency's harmless probe: DescribeInstanceInformation of the instance
    (``managed`` is Ssm.managed). An opted-in instance SSM does not manage fails the check."""
    documents = ", ".join(f"document/{d}" for d in settings.consistency_document_names())
    send = not_checked("consistency", "ssm:SendCommand", documents, SEND_COMMAND_UNPROVED)
    job = context.job()
    action = "ssm:DescribeInstanceInformation"
    if job is None:
        return [not_checked("consistency", action, "*", "no instance is tagged for backup"), send]
    target = job.instance
    found: dict[str, Any] = {}
    probe = real(
        "consistency", action, f"instance/{target.instance_id}", lambda: found.update(managed([target.instance_id]))
    )
    if probe.result != "passed":
        return [probe, send]
    if target.instance_id in found:
        reason = f"SSM manages it (PingStatus {found[target.instance_id].get('PingStatus')})"
    elif target.consistency == "application":
        reason = "it opts in to application consistency but SSM does not manage it: its backups would fail"
        return [replace_check(probe, "failed", reason), send]
    else:
        reason = "not managed by SSM; it does not opt in to application consistency, so it needs not be"
    return [replace_check(probe, "passed", reason), send]


def replace_check(check: Check, result: Result, reason: str) -> Check:
    return Check(role=check.role, action=check.action, resource=check.resource, result=result, reason=reason)
