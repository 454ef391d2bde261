"""Restore drills: prove on a schedule that the backups restore.

Each drill picks ``instances_per_drill`` instances that have a complete recovery point (least
recently drilled first, ties in a random order seeded by the drill's scheduled time, so a re-run
of the same slot picks the same ones), restores each one's latest point as volumes in a scratch
Availability Zone, waits until they are available, deletes them, and records the result. The
recovery points and the CreateVolume requests come from ``smart_vault.recovery.points`` (shared with
``smart-vault restore``).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from smart_vault.aws import Alerts, Ec2, Store
from smart_vault.backup.inventory import SELECTED_STATES, tag_dict
from smart_vault.constants import (
    DRILLS_PREFIX,
    METRIC_DRILL_SUCCEEDED,
    METRIC_HOURS_SINCE_DRILL,
    METRIC_RESTORE_OBJECTIVE_MISSED,
    METRIC_TIME_TO_RESTORE,
    NEW_RESOURCE_VISIBILITY_SECONDS,
    TAG_DRILL,
    TAG_DRILL_EXECUTION,
    TAG_INSTANCE_ID,
    TAG_VERIFIED_AT,
)
from smart_vault.errors import (
    InvalidInputError,
    RestoreFailedError,
    SmartVaultError,
    VolumeBusyError,
    shorten_error,
)
from smart_vault.models import ErrorInfo, RunContext
from smart_vault.observability import COUNT, SECONDS, logger, metrics
from smart_vault.recovery.points import RecoveryPoint, group_points, latest_point, recovery_points, volume_requests
from smart_vault.settings import Settings
from smart_vault.validation import (
    format_time,
    parse_time,
    read_aws_id,
    read_int,
    read_list,
    read_str,
    require_mapping,
)

# Volumes restored from a snapshot are usually available within seconds to a minute (their
# blocks load lazily afterwards): check soon, then back off, up to the drill's timeout.
WAIT_INITIAL_SECONDS = 15
WAIT_MAX_SECONDS = 120
HISTORY_KEY = f"{DRILLS_PREFIX}/history.json"
CLIENT_TOKEN_LENGTH = 64  # CreateVolume ClientToken: up to 64 ASCII characters
# Ends a Restore failure's message: the volumes made before it, for the Cleanup (made_volumes).
MADE_MARKER = "(volumes made before this failure: "

# A drill "warning": everything it restored passed, but something in scope it could not drill
# or a leftover volume of an earlier drill needs a look (docs/decisions.md, "Restore drills").
DrillStatus = Literal["passed", "warning", "failed"]
# A row's status: drilled (passed or failed), or not drillable (no complete recovery point).
RowStatus = Literal["passed", "failed", "no_restorable_point"]
NO_RESTORABLE_POINT: Literal["no_restorable_point"] = "no_restorable_point"
NO_SNAPSHOT_YET = "no managed snapshot yet"
INCOMPLETE_POINT = "no completed snapshot of every device"


def record_key(drill_id: str, execution_name: str) -> str:
    return f"{DRILLS_PREFIX}/{drill_id}/{execution_name}.json"


@dataclass(frozen=True, kw_only=True)
class DrillContext:
    """Which drill: its scheduled time (the drill id, like a backup run id), execution and AZ."""

    drill_id: str
    drill_time: str
    execution_name: str
    availability_zone: str
    region: str | None = None  # a copy destination the drill restores in (None: the source)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, path: str = "drill.") -> DrillContext:
        data = require_mapping(data, path.rstrip("."))
        drill_time = read_str(data, "drill_time", path=path)
        drill_id = read_str(data, "drill_id", path=path)
        if drill_id != RunContext.run_id_for(parse_time(drill_time, f"{path}drill_time")):
            raise InvalidInputError(f"{path}drill_id", f"does not match drill_time {drill_time!r}")
        return cls(
            drill_id=drill_id,
            drill_time=drill_time,
            execution_name=read_str(data, "execution_name", path=path),
            availability_zone=read_str(data, "availability_zone", path=path),
            region=read_str(data, "region", path=path, default=None),
        )


@dataclass(frozen=True, kw_only=True)
class DrillTarget:
    """One instance to drill: the recovery point (its run) chosen by the selection."""

    instance_id: str
    name: str
    run_id: str
    snapshot_ids: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.name} ({self.instance_id})" if self.name else self.instance_id

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, path: str = "target.") -> DrillTarget:
        data = require_mapping(data, path.rstrip("."))
        return cls(
            instance_id=read_aws_id(data, "instance_id", "instance", path=path),
            name=str(data.get("name") or ""),
            run_id=read_str(data, "run_id", path=path),
            snapshot_ids=tuple(
                read_aws_id({"snapshot_ids": s}, "snapshot_ids", "snapshot", path=path)
                for s in read_list(data, "snapshot_ids", path=path)
            ),
        )


@dataclass(frozen=True, kw_only=True)
class RestoredVolume:
    volume_id: str
    snapshot_id: str
    device: str


@dataclass(frozen=True, kw_only=True)
class RestoreState:
    """Where an instance's restore stands: written by restore, advanced by check."""

    status: Literal["creating", "available"]
    volumes: tuple[RestoredVolume, ...]
    wait_seconds: int = WAIT_INITIAL_SECONDS
    waited_seconds: int = 0
    checks: int = 0
    seconds_to_available: int | None = None
    # Per volume, once available: DescribeVolumeStatus's initialization and the time to fully
    # initialized it implies (VolumeInit.to_dict rows).
    initialization: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, path: str = "restore.") -> RestoreState:
        data = require_mapping(data, path.rstrip("."))
        status = read_str(data, "status", path=path)
        if status not in ("creating", "available"):
            raise InvalidInputError(f"{path}status", f"must be creating or available, got {status!r}")
        volumes = []
        for i, raw in enumerate(read_list(data, "volumes", path=path)):
            item = require_mapping(raw, f"{path}volumes[{i}]")
            volumes.append(
                RestoredVolume(
                    volume_id=read_aws_id(item, "volume_id", "volume", path=f"{path}volumes[{i}]."),
                    snapshot_id=read_aws_id(item, "snapshot_id", "snapshot", path=f"{path}volumes[{i}]."),
                    device=str(item.get("device") or ""),
                )
            )
        return cls(
            status=status,
            volumes=tuple(volumes),
            wait_seconds=read_int(data, "wait_seconds", path=path, default=WAIT_INITIAL_SECONDS, minimum=0),
            waited_seconds=read_int(data, "waited_seconds", path=path, default=0, minimum=0),
            checks=read_int(data, "checks", path=path, default=0, minimum=0),
            seconds_to_available=data.get("seconds_to_available"),
            initialization=tuple(
                dict(require_mapping(r, f"{path}initialization")) for r in data.get("initialization") or ()
            ),
        )


def initialization_rows(
    volumes: Mapping[str, Mapping[str, Any]],
    details: Mapping[str, Mapping[str, Any]],
    seconds_to_available: int,
    rate: int | None,
) -> tuple[dict[str, Any], ...]:
    """Each volume's initialization as EBS reports it, and its time to fully initialized: the
    time to available plus EBS's estimate of what remains (EstimatedTimeToCompleteInSeconds,
    given only for a provisioned rate; None otherwise, or 0 remaining once Progress is 100)."""
    rows = []
    for volume_id, volume in volumes.items():
        detail = details.get(volume_id) or {}
        estimate = detail.get("EstimatedTimeToCompleteInSeconds")
        if estimate is None and detail.get("Progress") == 100:
            estimate = 0
        rows.append(
            {
                "volume_id": volume_id,
                "size_gib": volume.get("Size"),
                "initialization_type": detail.get("InitializationType"),
                "rate": rate if detail.get("InitializationType") == "provisioned-rate" else None,
                "progress": detail.get("Progress"),
                "estimated_seconds": estimate,
                "seconds_to_initialized": None if estimate is None else seconds_to_available + int(estimate),
            }
        )
    return tuple(rows)


# -- select -------------------------------------------------------------------------------------
def drill_region(settings: Settings, history: Mapping[str, Any]) -> str | None:
    """The Region this drill restores in: the source, or with ``regions`` ``in_turn`` the next of
    the source and each copy destination, by how many drills reported before (None: the source)."""
    turns: list[str | None] = [None]
    if settings.drill.regions == "in_turn":
        turns += [d.region for d in settings.copy_regions]
    return turns[int(history.get("drills") or 0) % len(turns)]


def select(
    *, drill_time: datetime, execution_name: str, settings: Settings, ec2: Ec2, store: Store, ec2_for: Any = None
) -> dict[str, Any]:
    """The drill's context and the instances it restores (least recently drilled first), in
    the Region whose turn it is (``ec2_for(region)``: that Region's EC2), from its own snapshots."""
    drill_id = RunContext.run_id_for(drill_time)
    raw_history = store.get_optional(HISTORY_KEY)
    region = drill_region(settings, raw_history if isinstance(raw_history, Mapping) else {})
    source = ec2
    if region is not None and ec2_for is not None:
        ec2 = ec2_for(region)
    zone = (settings.drill.availability_zone if region is None else None) or _first_zone(ec2)
    context = DrillContext(
        drill_id=drill_id,
        drill_time=format_time(drill_time),
        execution_name=execution_name,
        availability_zone=zone,
        region=region,
    )
    points = recovery_points(ec2, settings.deployment_id)
    latest: dict[str, RecoveryPoint] = {}
    for instance_id in sorted({p.instance_id for p in points}):
        point = latest_point(p for p in points if p.instance_id == instance_id)
        if point is not None:
            latest[instance_id] = point
    history = _instances_history(raw_history)
    chosen = pick(sorted(latest), history, count=settings.drill.instances_per_drill, seed=drill_id)
    targets = [
        DrillTarget(
            instance_id=i,
            name=latest[i].instance_name,
            run_id=latest[i].run_id,
            snapshot_ids=tuple(v.snapshot_id for v in latest[i].volumes),
        )
        for i in chosen
    ]
    unrestorable = _unrestorable(points, latest, settings=settings, ec2=source)  # the instances are the source's
    logger.info("drill selection", extra={"candidates": len(latest), "chosen": chosen, "zone": zone, "region": region})
    return {
        "drill": context.to_dict(),
        "instances": [t.to_dict() for t in targets],
        "candidates": len(latest),
        "unrestorable": [asdict(u) for u in unrestorable],
    }


@dataclass(frozen=True, kw_only=True)
class Unrestorable:
    """An instance in scope the drill cannot restore, and why."""

    instance_id: str
    name: str
    reason: str


def _unrestorable(
    points: Sequence[RecoveryPoint], latest: Mapping[str, RecoveryPoint], *, settings: Settings, ec2: Ec2
) -> list[Unrestorable]:
    """The instances the backup selects (its tag, exactly) or with this deployment's snapshots
    that have no complete recovery point: the drill reports them rather than skip them."""
    names = {p.instance_id: p.instance_name for p in points}
    in_scope: dict[str, str] = {}
    for instance in ec2.find_instances(settings.backup_tag_key, SELECTED_STATES):
        tags = tag_dict(instance.get("Tags"))
        if tags.get(settings.backup_tag_key) == settings.backup_tag_value:
            in_scope[str(instance["InstanceId"])] = tags.get("Name", "")
    return [
        Unrestorable(
            instance_id=i,
            name=names.get(i) or in_scope.get(i, ""),
            reason=INCOMPLETE_POINT if i in names else NO_SNAPSHOT_YET,
        )
        for i in sorted((set(in_scope) | set(names)) - set(latest))
    ]


def pick(candidates: Sequence[str], history: Mapping[str, Mapping[str, Any]], *, count: int, seed: str) -> list[str]:
    """``count`` instances, never-drilled and least recently drilled first; ties in a random
    order that depends only on ``seed`` (the same drill slot always picks the same ones)."""
    shuffled = list(candidates)
    random.Random(seed).shuffle(shuffled)
    ordered = sorted(shuffled, key=lambda i: str((history.get(i) or {}).get("last_drilled") or ""))
    return ordered[:count]


def _first_zone(ec2: Ec2) -> str:
    # Never a Local or Wavelength Zone (other services, other limits) nor an impaired one.
    zones = sorted(ec2.availability_zones(healthy_only=True))
    if not zones:
        raise RestoreFailedError("the region has no available Availability Zone for the drill's volumes")
    return zones[0]


def _instances_history(raw: Any) -> dict[str, dict[str, Any]]:
    instances = (raw or {}).get("instances") if isinstance(raw, Mapping) else None
    return {str(k): dict(v) for k, v in (instances or {}).items() if isinstance(v, Mapping)}


# -- restore and check --------------------------------------------------------------------------
def client_token(context: DrillContext, snapshot_id: str) -> str:
    """One token per drill execution and snapshot: a retried request returns the same volume,
    and next week's drill of the same point creates a new one (a token is never reused for a
    request with other tags, which EC2 refuses with IdempotentParameterMismatch)."""
    seed = f"{context.execution_name}|{snapshot_id}|{context.availability_zone}"
    return f"sv-drill-{hashlib.sha256(seed.encode()).hexdigest()}"[:CLIENT_TOKEN_LENGTH]


def drill_tags(context: DrillContext, target: DrillTarget, deployment_id: str) -> dict[str, str]:
    """What marks a drill volume: the drill marker is what DeleteVolume's IAM condition requires,
    the execution and instance are how the cleanup finds every volume it made."""
    return {
        TAG_DRILL: deployment_id,
        TAG_DRILL_EXECUTION: context.execution_name,
        TAG_INSTANCE_ID: target.instance_id,
        "Name": f"smart-vault drill of {target.label}"[:256],
    }


def restore(context: DrillContext, target: DrillTarget, *, settings: Settings, ec2: Ec2) -> RestoreState:
    """One CreateVolume per device of the chosen recovery point, in the scratch zone."""
    points = group_points(ec2.managed_snapshots(settings.deployment_id, target.instance_id, target.run_id))
    point = latest_point(points)
    if point is None:
        raise RestoreFailedError(
            f"the recovery point {target.run_id} of {target.label} is no longer complete (pruned or changed)"
        )
    marks = drill_tags(context, target, settings.deployment_id)
    restored: list[RestoredVolume] = []
    # The original volume's type is not used: a drill restores to gp3, the cheapest volume with
    # the baseline performance to become available (docs/decisions.md, "Restore drills").
    for request in volume_requests(point, context.availability_zone, originals={}):
        params = dict(request.params)
        params["ClientToken"] = client_token(context, request.snapshot_id)
        if settings.drill.volume_initialization_rate is not None:
            params["VolumeInitializationRate"] = settings.drill.volume_initialization_rate
        params["TagSpecifications"] = [{"ResourceType": "volume", "Tags": _with(params, marks)}]
        try:
            volume = ec2.create_volume(params)
        except SmartVaultError as error:
            if not restored:
                raise
            # The Cleanup finds the volumes by tag, but EC2 may not list one made a moment ago
            # (eventual consistency): the error names them, which is all a Catch passes on.
            made = ", ".join(v.volume_id for v in restored)
            raise type(error)(
                f"{error} {MADE_MARKER}{made})", aws_code=error.aws_code, operation=error.operation
            ) from error
        restored.append(
            RestoredVolume(volume_id=volume["VolumeId"], snapshot_id=request.snapshot_id, device=request.device)
        )
    logger.info("drill volumes created", extra={"volumes": [v.volume_id for v in restored]})
    return RestoreState(status="creating", volumes=tuple(restored))


def _with(params: Mapping[str, Any], marks: Mapping[str, str]) -> list[dict[str, str]]:
    """The request's volume tags with the drill's marks (which win over a copied Name)."""
    tags: dict[str, str] = {}
    for spec in params.get("TagSpecifications") or ():
        tags.update({t["Key"]: t["Value"] for t in spec.get("Tags") or ()})
    tags.update(marks)
    items = [{"Key": k, "Value": v} for k, v in tags.items()]
    return items[-50:]  # at most 50 tags per resource; the marks come last


def check(state: RestoreState, *, settings: Settings, ec2: Ec2) -> RestoreState:
    """One DescribeVolumes: available, still creating (wait again), or failed."""
    ids = [v.volume_id for v in state.volumes]
    found = ec2.volumes(ids)
    missing = [i for i in ids if i not in found]
    waited = state.waited_seconds + state.wait_seconds
    if missing and waited >= NEW_RESOURCE_VISIBILITY_SECONDS:
        raise RestoreFailedError(f"restored volumes disappeared: {', '.join(missing)}")
    # A volume not listed yet so soon after CreateVolume (eventual consistency) is still creating.
    found.update({i: {"VolumeId": i, "State": "creating"} for i in missing})
    failed = [i for i in ids if found[i].get("State") == "error"]
    if failed:
        raise RestoreFailedError(f"restored volumes ended in state error: {', '.join(_with_keys(failed, found))}")
    if all(found[i].get("State") == "available" for i in ids):
        return RestoreState(
            status="available",
            volumes=state.volumes,
            wait_seconds=0,
            waited_seconds=waited,
            checks=state.checks + 1,
            seconds_to_available=waited,
            initialization=initialization_rows(
                {i: found[i] for i in ids},
                ec2.volume_initialization(ids),
                waited,
                settings.drill.volume_initialization_rate,
            ),
        )
    timeout = settings.drill.timeout_seconds
    if waited >= timeout:
        raise RestoreFailedError(f"restored volumes not available after {waited} s (drill.timeout_seconds={timeout})")
    return RestoreState(
        status="creating",
        volumes=state.volumes,
        wait_seconds=max(1, min(state.wait_seconds * 2, WAIT_MAX_SECONDS, timeout - waited)),
        waited_seconds=waited,
        checks=state.checks + 1,
    )


def _with_keys(volume_ids: Sequence[str], found: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Each failed volume with its KMS key: EBS fails a volume whose key the caller may not use
    or that is not enabled ("Creation will fail if an invalid AWS KMS key was provided", Amazon
    EBS User Guide, "Amazon EventBridge events for Amazon EBS", createVolume), and DescribeVolumes
    gives no reason, so the key is what the operator needs to look at (fleet_kms_keys)."""
    return [
        f"{i} (KMS key {found[i]['KmsKeyId']}: is it enabled, and may the drill role use it?)"
        if found[i].get("KmsKeyId")
        else i
        for i in volume_ids
    ]


# -- cleanup ------------------------------------------------------------------------------------
def made_volumes(item: Mapping[str, Any]) -> tuple[str, ...]:
    """The volume ids a Map iteration knows it made: its restore state's, or those its Restore
    failure names (see restore)."""
    restore_raw = item.get("restore")
    if isinstance(restore_raw, Mapping):
        return tuple(v.volume_id for v in RestoreState.from_dict(restore_raw).volumes)
    failure = item.get("failure")
    if not isinstance(failure, Mapping) or not isinstance(failure.get("error"), Mapping):
        return ()
    message = ErrorInfo.from_catch(failure["error"]).message
    named = message.rpartition(MADE_MARKER)[2] if MADE_MARKER in message else ""
    return tuple(re.findall(r"\bvol-[0-9a-f]+\b", named))


def cleanup(
    context: DrillContext, target: DrillTarget, *, settings: Settings, ec2: Ec2, made: Sequence[str] = ()
) -> dict[str, Any]:
    """Delete every volume this drill execution made for the instance, found by their tags, so
    a restore that failed half-way leaves nothing behind either. ``made``: the ids the iteration
    knows it made; one neither the tag lookup nor an id lookup lists yet (EC2 is eventually
    consistent) makes the step retry (VolumeBusyError) rather than leave it behind."""
    volumes = ec2.tagged_volumes(
        {
            TAG_DRILL: settings.deployment_id,
            TAG_DRILL_EXECUTION: context.execution_name,
            TAG_INSTANCE_ID: target.instance_id,
        }
    )
    unlisted = sorted(set(made) - {v["VolumeId"] for v in volumes})
    if unlisted:
        volumes += ec2.volumes(unlisted).values()
        unseen = sorted(set(unlisted) - {v["VolumeId"] for v in volumes})
        if unseen:
            raise VolumeBusyError(f"drill volumes not listed by EC2 yet, deleted once listed: {', '.join(unseen)}")
    busy = [v["VolumeId"] for v in volumes if v.get("State") == "creating"]
    if busy:
        raise VolumeBusyError(f"drill volumes still creating, deleted once available: {', '.join(busy)}")
    deleted = [v["VolumeId"] for v in volumes if ec2.delete_volume(v["VolumeId"])]
    logger.info("drill volumes deleted", extra={"volumes": deleted})
    return {"cleaned_up": True, "deleted": sorted(deleted)}


# -- sweep --------------------------------------------------------------------------------------
LeftoverStatus = Literal["swept", "present"]


@dataclass(frozen=True, kw_only=True)
class Leftover:
    """A drill volume an earlier drill of this deployment left (its cleanup failed)."""

    volume_id: str
    execution_name: str
    instance_id: str
    state: str
    status: LeftoverStatus
    reason: str | None = None  # why a present one is still there


def sweep(context: DrillContext, *, settings: Settings, ec2: Ec2) -> dict[str, Any]:
    """Delete the leftover drill volumes of earlier drills of this deployment, found by the drill
    marker with this deployment's id (the tag DeleteVolume's IAM condition requires: another
    deployment's volumes are neither listed nor deletable). Only ``available`` ones: an attached
    (``in-use``) one is someone's now, so it is reported and never touched; a failed delete is
    reported and tried again by the next drill."""
    found: list[Leftover] = []
    for volume in sorted(ec2.tagged_volumes({TAG_DRILL: settings.deployment_id}), key=lambda v: v["VolumeId"]):
        tags = tag_dict(volume.get("Tags"))
        execution = tags.get(TAG_DRILL_EXECUTION, "")
        if execution == context.execution_name:
            continue  # this drill's own, for its Cleanup
        state = str(volume.get("State") or "")
        status: LeftoverStatus = "present"
        reason = _kept_because(volume)
        if reason is None:
            try:
                ec2.delete_volume(volume["VolumeId"])  # False: gone already, swept all the same
                status = "swept"
            except SmartVaultError as error:
                reason = f"DeleteVolume failed: {error.aws_code or type(error).__name__}: {shorten_error(str(error))}"
        found.append(
            Leftover(
                volume_id=volume["VolumeId"],
                execution_name=execution,
                instance_id=tags.get(TAG_INSTANCE_ID, ""),
                state=state,
                status=status,
                reason=reason,
            )
        )
    logger.info("drill leftovers", extra={"leftovers": [asdict(f) for f in found]})
    return {"leftovers": [asdict(f) for f in found]}


def _kept_because(volume: Mapping[str, Any]) -> str | None:
    """Why a leftover is not deleted now (None: it is ``available``, so it goes)."""
    state = volume.get("State")
    if state == "available":
        return None
    if state == "in-use":
        attached = ", ".join(str(a.get("InstanceId")) for a in volume.get("Attachments") or ())
        return f"in-use (attached to {attached or 'an instance'}): not touched, detach or delete it yourself"
    return f"state {state}: deleted by a later drill once available"


def leftover_from(item: Mapping[str, Any], i: int) -> Leftover:
    path = f"sweep.leftovers[{i}]."
    status = read_str(item, "status", path=path)
    if status not in ("swept", "present"):
        raise InvalidInputError(f"{path}status", f"must be swept or present, got {status!r}")
    return Leftover(
        volume_id=read_aws_id(item, "volume_id", "volume", path=path),
        execution_name=str(item.get("execution_name") or ""),
        instance_id=str(item.get("instance_id") or ""),
        state=str(item.get("state") or ""),
        status="swept" if status == "swept" else "present",
        reason=item.get("reason"),
    )


# -- report -------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class InstanceResult:
    """One drilled instance, as the audit record, the alert and the simulator report show it."""

    instance_id: str
    name: str
    recovery_point: str | None
    snapshot_ids: tuple[str, ...]
    volumes: tuple[str, ...]
    seconds_to_available: int | None
    status: RowStatus
    cleaned_up: bool
    step: str | None = None
    error: dict[str, Any] | None = None
    reason: str | None = None  # why a no_restorable_point instance was not drilled
    # The Verify step's row per snapshot (smart_vault.verification.blocks.SnapshotCheck): file
    # system found, blocks read, checksum failures; empty when the drill did not get that far.
    checks: tuple[dict[str, Any], ...] = ()
    initialization: tuple[dict[str, Any], ...] = ()  # RestoreState.initialization
    # Until every volume is fully initialized (None: EBS gave no estimate for one of them).
    seconds_to_initialized: int | None = None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.instance_id})" if self.name else self.instance_id


@dataclass(frozen=True, kw_only=True)
class DrillReport:
    drill_id: str
    drill_time: str
    execution_name: str
    availability_zone: str | None
    status: DrillStatus
    candidates: int
    instances: tuple[InstanceResult, ...] = ()
    reason: str | None = None
    verified_snapshots: tuple[str, ...] = field(default_factory=tuple)
    region: str | None = None  # the Region the drill restored in (proved)
    leftovers: tuple[Leftover, ...] = ()  # earlier drills' volumes this one swept or found
    sweep_error: str | None = None  # the sweep step itself failed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def instance_result(item: Mapping[str, Any]) -> InstanceResult:
    """The Map iteration's final state: target, restore (or the failure), cleanup."""
    target = DrillTarget.from_dict(item.get("target"))
    failure = item.get("failure")
    restore_raw = item.get("restore")
    state = RestoreState.from_dict(restore_raw) if isinstance(restore_raw, Mapping) else None
    cleanup_raw = require_mapping(item.get("cleanup") or {}, "cleanup")
    cleaned = bool(cleanup_raw.get("cleaned_up"))
    step, error = None, None
    if isinstance(failure, Mapping):
        step = str(failure.get("step") or "Restore")
        error = asdict(ErrorInfo.from_catch(failure.get("error")))
    elif not cleaned:
        step = "Cleanup"
        error = asdict(ErrorInfo.from_catch(cleanup_raw.get("error") or {"Error": "Unknown"}))
    checks, problems = _verification(item)
    if problems and step is None:
        step, error = "Verify", {"type": "VerificationFailed", "message": "; ".join(problems), "aws_code": None}
    passed = failure is None and state is not None and state.status == "available" and cleaned and not problems
    return InstanceResult(
        instance_id=target.instance_id,
        name=target.name,
        recovery_point=target.run_id,
        snapshot_ids=target.snapshot_ids,
        volumes=tuple(v.volume_id for v in state.volumes) if state else tuple(cleanup_raw.get("deleted") or ()),
        seconds_to_available=state.seconds_to_available if state else None,
        status="passed" if passed else "failed",
        cleaned_up=cleaned,
        step=step,
        error=error,
        checks=checks,
        initialization=state.initialization if state else (),
        seconds_to_initialized=_slowest(state.initialization) if state else None,
    )


def _slowest(rows: Sequence[Mapping[str, Any]]) -> int | None:
    times = [r.get("seconds_to_initialized") for r in rows]
    return None if not times or any(t is None for t in times) else max(int(t) for t in times if t is not None)


def _verification(item: Mapping[str, Any]) -> tuple[tuple[dict[str, Any], ...], list[str]]:
    """The Verify step's rows and problems (none: it passed, or did not run). A run that got to
    Cleanup without verifying (an older definition) has no rows, and fails nothing here."""
    raw = item.get("verification")
    if not isinstance(raw, Mapping):
        return (), []
    rows = tuple(dict(require_mapping(r, f"verification.volumes[{i}]")) for i, r in enumerate(raw.get("volumes") or ()))
    problems = [str(p) for p in raw.get("problems") or ()]
    if raw.get("status") == "failed" and not problems:
        problems = ["the verification failed"]
    return rows, problems


# Fast Snapshot Restore: "$0.75 per Availability Zone" per DSU-hour, us-east-1 ("How AWS Pricing
# Works", Amazon EBS); a volume from an FSR-enabled snapshot is fully initialized at creation.
FSR_DSU_HOUR_USD = 0.75
MAX_INITIALIZATION_RATE = 300  # CreateVolume VolumeInitializationRate: 100-300 MiB/s
MIN_INITIALIZATION_RATE = 100


def what_meets(row: InstanceResult, objective_seconds: int) -> str:
    """The provisioned rate that would initialize every volume in time, or Fast Snapshot Restore."""
    allowed = objective_seconds - int(row.seconds_to_available or 0)
    fsr = (
        f"enable Fast Snapshot Restore on its snapshots in the drill's Availability Zone "
        f"(${FSR_DSU_HOUR_USD} per DSU-hour per Availability Zone, us-east-1)"
    )
    if allowed <= 0:
        return f"the volumes took {row.seconds_to_available} s to become available: {fsr}"
    needed = 0
    for init in row.initialization:
        rate, estimate = init.get("rate"), init.get("estimated_seconds")
        mib = int(estimate) * int(rate) if estimate is not None and rate else int(init.get("size_gib") or 0) * 1024
        needed = max(needed, -(-mib // allowed))
    if needed <= MAX_INITIALIZATION_RATE:
        rate = max(needed, MIN_INITIALIZATION_RATE)
        return f"set drill.volume_initialization_rate to {rate} MiB/s (CreateVolume VolumeInitializationRate) or {fsr}"
    return f"no provisioned rate (at most {MAX_INITIALIZATION_RATE} MiB/s) is enough ({needed} MiB/s needed): {fsr}"


def objective_result(row: InstanceResult, objective_minutes: int | None) -> InstanceResult:
    """A restore that passed but would not be fully initialized within the objective fails,
    with what would meet it; without an estimate from EBS (the default rate) it is not proven."""
    if objective_minutes is None or row.status != "passed":
        return row
    limit = objective_minutes * 60
    took = row.seconds_to_initialized
    if took is not None and took <= limit:
        return row
    shown = "unknown (EBS gives no estimate at the default initialization rate)" if took is None else f"{took} s"
    message = (
        f"restore_objective_minutes {objective_minutes}: time to fully initialized {shown}; "
        f"to meet it, {what_meets(row, limit)}"
    )
    error = {"type": "RestoreObjectiveMissed", "message": message, "aws_code": None}
    return replace(row, status="failed", step="Objective", error=error)


def unrestorable_result(item: Mapping[str, Any]) -> InstanceResult:
    """The row of an instance Select found no complete recovery point of."""
    return InstanceResult(
        instance_id=read_aws_id(item, "instance_id", "instance", path="unrestorable."),
        name=str(item.get("name") or ""),
        recovery_point=None,
        snapshot_ids=(),
        volumes=(),
        seconds_to_available=None,
        status=NO_RESTORABLE_POINT,
        cleaned_up=True,
        reason=read_str(item, "reason", path="unrestorable."),
    )


def report(
    *,
    drill_time: datetime,
    execution_name: str,
    state: Mapping[str, Any],
    settings: Settings,
    ec2: Ec2,
    store: Store,
    alerts: Alerts | None,
) -> DrillReport:
    """Tag what passed, write the record and the history, emit the metrics, alert on failure."""
    drill_id = RunContext.run_id_for(drill_time)
    selection = state.get("selection") if isinstance(state.get("selection"), Mapping) else None
    results = tuple(
        instance_result(require_mapping(r, f"results[{i}]")) for i, r in enumerate(state.get("results") or ())
    )
    unrestorable = tuple(
        unrestorable_result(require_mapping(u, f"selection.unrestorable[{i}]"))
        for i, u in enumerate((selection or {}).get("unrestorable") or ())
    )
    results = tuple(objective_result(r, settings.drill.restore_objective_minutes) for r in results)
    leftovers, sweep_error = _sweep_outcome(state)
    reason = _failure_reason(state.get("run_failure"), results)
    status = _drill_status(results, reason, unrestorable=unrestorable, leftovers=leftovers, sweep_error=sweep_error)
    verified = tuple(s for r in results if r.status == "passed" for s in r.snapshot_ids)
    if verified:
        # Service Authorization Reference: ec2:CreateTags on snapshot/* with aws:ResourceTag (this
        # deployment's marker) and aws:TagKeys (verified-at only), see infra function_specs.
        ec2.tag_resources(verified, {TAG_VERIFIED_AT: format_time(drill_time)})
    drill = selection.get("drill") if selection else None
    result = DrillReport(
        drill_id=drill_id,
        drill_time=format_time(drill_time),
        execution_name=execution_name,
        availability_zone=(drill or {}).get("availability_zone"),
        status=status,
        candidates=int((selection or {}).get("candidates") or 0),
        instances=results + unrestorable,
        reason=reason,
        verified_snapshots=verified,
        region=(drill or {}).get("region") or ec2.region_name(),
        leftovers=leftovers,
        sweep_error=sweep_error,
    )
    store.put_json(record_key(drill_id, execution_name), result.to_dict())
    if settings.drill.restore_objective_minutes is not None:
        missed = sum(1 for r in results if r.step == "Objective")
        metrics.add_metric(name=METRIC_RESTORE_OBJECTIVE_MISSED, unit=COUNT, value=missed)
    _emit_metrics(result, results, hours_since=_update_history(store, result, drill_time))
    if status != "passed" and alerts is not None:
        alerts.publish(_alert(result))
    return result


def _sweep_outcome(state: Mapping[str, Any]) -> tuple[tuple[Leftover, ...], str | None]:
    """The leftover drill volumes the sweep reported, and why the sweep failed (None: it did not)."""
    sweep_raw = state.get("sweep") if isinstance(state.get("sweep"), Mapping) else {}
    leftovers = tuple(
        leftover_from(require_mapping(v, f"sweep.leftovers[{i}]"), i)
        for i, v in enumerate((sweep_raw or {}).get("leftovers") or ())
    )
    if state.get("sweep_failure") is None:
        return leftovers, None
    info = ErrorInfo.from_catch(state["sweep_failure"])
    return leftovers, f"{info.type}: {shorten_error(info.message)}"


def _failure_reason(run_failure: Any, results: Sequence[InstanceResult]) -> str | None:
    """Why the drill failed as a whole (None: its instances say how it went)."""
    if run_failure is not None:
        info = ErrorInfo.from_catch(run_failure)
        return f"the drill failed before reporting its instances: {info.type}: {info.message}"
    if not results:
        return "no complete recovery point of this deployment to restore"
    return None


def _drill_status(
    results: Sequence[InstanceResult],
    reason: str | None,
    *,
    unrestorable: Sequence[InstanceResult],
    leftovers: Sequence[Leftover],
    sweep_error: str | None,
) -> DrillStatus:
    """Failed unless every restore passed; passed with something else to report is a warning."""
    if not results or reason is not None or not all(r.status == "passed" for r in results):
        return "failed"
    return "warning" if unrestorable or leftovers or sweep_error else "passed"


def _emit_metrics(result: DrillReport, results: Sequence[InstanceResult], *, hours_since: float) -> None:
    # A failed drill emits DrillSucceeded 0 (not nothing): the datapoint says a drill ran.
    # A warning's restores passed: the drill proved what it restored (the alert says the rest).
    metrics.add_metric(name=METRIC_DRILL_SUCCEEDED, unit=COUNT, value=0 if result.status == "failed" else 1)
    for r in results:
        if r.seconds_to_available is not None:
            metrics.add_metric(name=METRIC_TIME_TO_RESTORE, unit=SECONDS, value=r.seconds_to_available)
    metrics.add_metric(name=METRIC_HOURS_SINCE_DRILL, unit=COUNT, value=hours_since)


def _update_history(store: Store, result: DrillReport, drill_time: datetime) -> float:
    """Record who was drilled when (the next selection's order); returns the hours since the
    last drill that passed (0 now when this one passed)."""
    raw = store.get_optional(HISTORY_KEY)
    history = dict(raw) if isinstance(raw, Mapping) else {}
    instances = _instances_history(history)
    for r in result.instances:
        if r.status == NO_RESTORABLE_POINT:
            continue  # not drilled: it stays first in line for when it has a point
        entry = instances.setdefault(r.instance_id, {})
        entry["last_drilled"] = result.drill_time
        entry["last_status"] = r.status
        if r.status == "passed":
            entry["last_passed"] = result.drill_time
    history["instances"] = instances
    history["drills"] = int(history.get("drills") or 0) + 1  # whose turn the next drill's Region is
    if result.status != "failed":
        history["last_passed"] = result.drill_time
    history.setdefault("first_drill", result.drill_time)
    store.put_json(HISTORY_KEY, history)
    since = parse_time(str(history.get("last_passed") or history["first_drill"]), "history.last_passed")
    return round((drill_time - since).total_seconds() / 3600, 1)


def _leftover_line(volume: Leftover) -> str:
    origin = f"left by {volume.execution_name or 'an earlier drill'} ({volume.instance_id or 'unknown instance'})"
    if volume.status == "swept":
        return f"- leftover drill volume {volume.volume_id} {origin}: swept (deleted)"
    return f"- leftover drill volume {volume.volume_id} {origin}: still present: {volume.reason}"


def _alert(result: DrillReport) -> dict[str, Any]:
    drilled = [r for r in result.instances if r.status != NO_RESTORABLE_POINT]
    failed = [r for r in drilled if r.status != "passed"]
    not_drilled = [r for r in result.instances if r.status == NO_RESTORABLE_POINT]
    word = "WARNING" if result.status == "warning" else "FAILED"
    lines = [f"Smart Vault restore drill {result.drill_id} ({result.execution_name}) {word}."]
    if result.reason:
        lines.append(result.reason)
    for r in failed:
        error = r.error or {}
        code = f" [{error.get('aws_code')}]" if error.get("aws_code") else ""
        lines.append(
            f"- {r.label}: step {r.step}: {error.get('type')}{code}: {shorten_error(str(error.get('message') or ''))}"
        )
        if not r.cleaned_up:
            lines.append(f"  volumes may be left behind (tag {TAG_DRILL_EXECUTION}={result.execution_name})")
    lines += [f"- {r.label}: not drilled ({NO_RESTORABLE_POINT}): {r.reason}" for r in not_drilled]
    lines += [_leftover_line(v) for v in result.leftovers]
    if result.sweep_error:
        lines.append(f"The sweep of earlier drills' volumes failed (the next drill tries again): {result.sweep_error}")
    passed = len(drilled) - len(failed)
    lines.append(f"{passed} of {len(drilled)} instances restored and cleaned up.")
    if result.status == "warning":
        notes = [f"{len(not_drilled)} instance(s) without a restorable point"] if not_drilled else []
        swept = sum(1 for v in result.leftovers if v.status == "swept")
        if swept:
            notes.append(f"{swept} leftover drill volume(s) swept")
        if len(result.leftovers) > swept:
            notes.append(f"{len(result.leftovers) - swept} leftover drill volume(s) still present")
        if result.sweep_error:
            notes.append("leftover sweep failed")
        subject = f"Smart Vault restore drill WARNING ({', '.join(notes)})"
    elif not drilled:
        subject = "Smart Vault restore drill FAILED (nothing restored)"
    else:
        subject = f"Smart Vault restore drill FAILED ({len(failed)} of {len(drilled)} instances)"
    event_type = "drill_warning" if result.status == "warning" else "drill_failed"
    return Alerts.request(
        subject=subject,
        text="\n".join(lines),
        document={"event_type": event_type, **result.to_dict()},
        attributes={"event_type": event_type},
    )
