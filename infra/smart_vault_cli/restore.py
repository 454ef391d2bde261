"""`smart-vault points` and `restore`: recovery points of the deployment, and restoring one.

The domain (points, requests, problems) is ``smart_vault.recovery.points``; this module makes the calls
with the operator's credentials, waits, and cleans up what a failed restore created.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError

from smart_vault.aws import Ec2
from smart_vault.backup.inventory import tag_dict
from smart_vault.constants import NEW_RESOURCE_VISIBILITY_SECONDS, TAG_SOURCE_SNAPSHOT
from smart_vault.errors import SmartVaultError
from smart_vault.recovery.points import (
    ImageMetadata,
    RecoveryPoint,
    client_token,
    group_points,
    image_refusal,
    image_request,
    instance_request,
    latest_point,
    point_at,
    point_of_run,
    restore_problems,
    volume_requests,
)
from smart_vault.retention.locks import active_locks
from smart_vault.validation import format_time, parse_time
from smart_vault_cli import deployment
from smart_vault_cli.deployment import CliError, Deployment, check_region, explain_aws_failure
from smart_vault_cli.operations import deployed_settings

RestoreKind = Literal["volumes", "ami", "instance"]
# DescribeKey KeyState values a key can encrypt and decrypt with (KMS API Reference, KeyMetadata).
USABLE_KEY_STATES = ("Enabled",)
Warn = Callable[[str], None]


@dataclass
class Vault:
    """Where recovery points are read and restored: the operator's session in that Region and
    the deployment's marker. ``copy_regions``: where the deployment copies to, when the stack was
    read (points in the stack's Region then say which Regions hold a completed copy)."""

    session: Any
    deployment_id: str
    copy_regions: tuple[str, ...] = ()
    profile: str | None = None

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    def session_in(self, region: str) -> Any:
        session = deployment.new_session(profile_name=self.profile, region_name=region)
        check_region(session)
        return session


def open_vault(
    stack: str,
    *,
    region: str | None,
    profile: str | None,
    from_region: str | None = None,
    deployment_id: str | None = None,
) -> Vault:
    """The Region to read points in and restore to (``from_region``, else the stack's).

    With ``from_region`` and ``deployment_id`` no call goes to the stack's Region: a Region
    restored from holds all it needs (the managed marker, the copies' tags, the instance spec),
    so a restore works while the source Region is down. Otherwise the stack names the deployment
    id and the copy Regions."""
    if from_region and deployment_id:
        try:
            session = deployment.new_session(profile_name=profile, region_name=from_region)
        except ProfileNotFound as error:
            raise CliError(str(error)) from None
        check_region(session)
        return Vault(session=session, deployment_id=deployment_id, profile=profile)
    try:
        dep = Deployment.find(stack, region=region, profile=profile)
        settings = deployed_settings(dep)
    except (BotoConnectionError, ReadTimeoutError) as error:
        if not from_region:
            raise
        raise CliError(
            f"cannot reach the stack {stack} in {region or 'its Region'} ({error}); to restore from "
            f"{from_region} without it, pass --deployment-id (the value of the smart-vault:managed-by tag)"
        ) from None
    session = dep.regional(from_region)
    own = session.region_name == dep.session.region_name
    return Vault(
        session=session,
        deployment_id=deployment_id or settings.deployment_id,
        copy_regions=tuple(d.region for d in settings.copy_regions) if own else (),
        profile=profile,
    )


def points(vault: Vault, instance: str | None, *, warn: Warn | None = None) -> list[RecoveryPoint]:
    """The recovery points of INSTANCE (id or Name tag), or of every instance, newest first."""
    ec2 = Ec2(session=vault.session)
    by_id = instance if instance is not None and instance.startswith("i-") else None
    snapshots = _managed(ec2, vault.deployment_id, by_id)
    # Locks (DescribeLockedSnapshots, 200 ids a request) shown with the points that have them.
    now = datetime.now(UTC)
    locks = {
        sid: "its completion + the lock's duration" if until.year == datetime.max.year else format_time(until)
        for sid, until in active_locks(ec2, [s["SnapshotId"] for s in snapshots], now).items()
    }
    copies = _completed_copies(vault, snapshots, by_id, warn or (lambda _message: None))
    found = group_points(snapshots, instance_id=by_id, copies=copies, locks=locks)
    if instance is None or by_id is not None:
        return found
    found = [p for p in found if p.instance_name == instance]
    if len({p.instance_id for p in found}) > 1:
        ids = ", ".join(sorted({p.instance_id for p in found}))
        raise CliError(f"more than one instance was named {instance}: {ids}; name it by id")
    return found


def _managed(ec2: Ec2, deployment_id: str, instance_id: str | None) -> list[dict[str, Any]]:
    if instance_id is not None:
        return ec2.managed_snapshots(deployment_id, instance_id)
    return ec2.all_managed_snapshots(deployment_id)


def _completed_copies(
    vault: Vault, snapshots: Sequence[dict[str, Any]], instance_id: str | None, warn: Warn
) -> dict[str, list[str]]:
    """Snapshot id -> the Regions holding a completed copy of it: here, the copies listed
    themselves; in the stack's Region, each copy Region's copies by their source-snapshot tag
    (one DescribeSnapshots scan per Region; one that cannot be read is named, not fatal)."""
    held: dict[str, list[str]] = {
        s["SnapshotId"]: [vault.region]
        for s in snapshots
        if s.get("State") == "completed" and tag_dict(s.get("Tags")).get(TAG_SOURCE_SNAPSHOT)
    }
    for region in vault.copy_regions:
        if region == vault.region:
            continue
        try:
            found = _managed(Ec2(session=vault.session_in(region)), vault.deployment_id, instance_id)
        except (SmartVaultError, ClientError, BotoCoreError) as error:
            warn(f"copies in {region} not listed: {explain_aws_failure(error) or error}")
            continue
        for copy in found:
            source = tag_dict(copy.get("Tags")).get(TAG_SOURCE_SNAPSHOT)
            if source and copy.get("State") == "completed":
                held.setdefault(source, []).append(region)
    return held


def choose(found: Sequence[RecoveryPoint], *, instance: str, at: str | None, run_id: str | None) -> RecoveryPoint:
    if not found:
        raise CliError(f"no recovery point of {instance}")
    if run_id is not None:
        chosen = point_of_run(found, run_id)
        if chosen is None:
            raise CliError(f"{instance} has no recovery point of run {run_id}")
        return chosen
    if at is not None:
        try:
            moment = parse_time(at, "--at")
        except SmartVaultError as error:
            raise CliError(f"--at must be a time like 2026-11-26T03:00:00Z: {error}") from None
        chosen = point_at(found, moment)
        if chosen is None:
            raise CliError(f"{instance} has no complete recovery point at or before {at}")
        return chosen
    chosen = latest_point(found)
    if chosen is None:
        raise CliError(f"{instance} has no complete recovery point (see `smart-vault points {instance}`)")
    return chosen


@dataclass
class RestorePlan:
    point: RecoveryPoint
    kind: RestoreKind
    region: str
    zone: str
    volumes: list[dict[str, Any]] = field(default_factory=list)  # CreateVolume requests
    image: dict[str, Any] | None = None  # RegisterImage request
    instance: dict[str, Any] | None = None  # RunInstances request (ImageId filled in later)
    problems: list[str] = field(default_factory=list)


@dataclass
class RestoreResult:
    plan: RestorePlan
    volume_ids: dict[str, str] = field(default_factory=dict)  # device -> volume id
    image_id: str | None = None
    instance_id: str | None = None


@dataclass
class Overrides:
    instance_type: str | None = None
    subnet_id: str | None = None
    security_group_ids: tuple[str, ...] = ()
    kms_key_id: str | None = None


def plan(
    vault: Vault,
    point: RecoveryPoint,
    *,
    kind: RestoreKind,
    zone: str | None = None,
    overrides: Overrides | None = None,
) -> RestorePlan:
    """Every request the restore would make and every problem found, with read-only calls
    (DescribeInstances, DescribeVolumes, DescribeAvailabilityZones, kms:DescribeKey) in the
    Region restored to."""
    overrides = overrides or Overrides()
    session = vault.session
    ec2 = Ec2(session=session)
    live = ec2.instances_by_id([point.instance_id])
    instance = next((i for i in live if i.get("State", {}).get("Name") != "terminated"), None)
    chosen_zone = zone or (instance or {}).get("Placement", {}).get("AvailabilityZone")
    result = RestorePlan(point=point, kind=kind, region=session.region_name, zone=chosen_zone or "")
    if not chosen_zone:
        result.problems.append(
            f"{point.instance_id} does not exist in {result.region}: pass --az to choose the Availability Zone"
        )
    originals = ec2.volumes([v.volume_id for v in point.volumes])
    keys = {v.kms_key_id for v in point.volumes if v.kms_key_id} | (
        {overrides.kms_key_id} if overrides.kms_key_id else set()
    )
    result.problems += restore_problems(
        point,
        zone=chosen_zone,
        region=result.region,
        zones=ec2.availability_zones(),
        unusable_keys=_unusable_keys(session, keys),
    )
    if kind == "volumes":
        requests = volume_requests(point, result.zone, originals=originals, kms_key_id=overrides.kms_key_id)
        result.volumes = [r.params for r in requests]
        return result
    # The live instance (same Region) knows its subnet and groups too; otherwise (terminated, or
    # a copy Region) the instance spec its snapshots recorded at backup time.
    recorded = ImageMetadata.from_tags(point.volumes[0].tags) if point.volumes else None
    meta = ImageMetadata.from_instance(instance) if instance is not None else recorded
    if meta is None:
        result.problems.append(
            f"{point.instance_id} is not in {result.region} and its snapshots record no instance spec "
            "(architecture, boot mode, root device), so an AMI cannot be registered; restore --as volumes"
        )
        return result
    refusal = image_refusal(point, meta)
    if refusal:
        result.problems.append(f"cannot register an AMI: {refusal}")
        return result
    result.image = image_request(point, meta, originals=originals)
    if kind == "instance":
        result.instance = instance_request(
            "<the restored AMI>",
            point,
            meta,
            instance_type=overrides.instance_type,
            subnet_id=overrides.subnet_id,
            security_group_ids=overrides.security_group_ids,
        )
    return result


def _unusable_keys(session: Any, keys: set[str]) -> dict[str, str]:
    """KMS key -> why it cannot be used (DescribeKey: KeyState, or the error it answered)."""
    unusable = {}
    kms = session.client("kms")
    for key in sorted(keys):
        try:
            state = kms.describe_key(KeyId=key)["KeyMetadata"].get("KeyState", "")
        except ClientError as error:
            unusable[key] = error.response.get("Error", {}).get("Code", "error")
            continue
        if state not in USABLE_KEY_STATES:
            unusable[key] = state
    return unusable


Progress = Callable[[int, int], None]  # (available, total)


def execute(
    vault: Vault,
    restore_plan: RestorePlan,
    *,
    keep_partial: bool = False,
    on_progress: Progress | None = None,
    interval: float = 2.0,
    timeout: float = 3600.0,
) -> RestoreResult:
    """Create what the plan says; on any failure delete what this call created (unless
    ``keep_partial``) and raise a CliError saying what failed and what was cleaned up."""
    if restore_plan.problems:
        raise CliError("restore refused: " + "; ".join(restore_plan.problems))
    ec2 = Ec2(session=vault.session)
    result = RestoreResult(plan=restore_plan)
    created_volumes: list[str] = []
    created_image: str | None = None
    try:
        if restore_plan.kind == "volumes":
            for params in restore_plan.volumes:
                volume = _create_volume(ec2, restore_plan, params)
                created_volumes.append(volume["VolumeId"])
                result.volume_ids[_device(restore_plan, params)] = volume["VolumeId"]
            wait_available(ec2, created_volumes, on_progress=on_progress, interval=interval, timeout=timeout)
            return result
        assert restore_plan.image is not None  # plan() gives ami/instance plans an image or a problem
        result.image_id, fresh = _image(ec2, restore_plan.image)
        created_image = result.image_id if fresh else None
        if restore_plan.kind == "instance" and restore_plan.instance is not None:
            wait_image_available(ec2, result.image_id, interval=interval, timeout=timeout)
            result.instance_id = _run_instance(ec2, restore_plan, result.image_id)
        return result
    except (CliError, SmartVaultError, ClientError, BotoCoreError) as error:
        reason = error if isinstance(error, CliError) else (explain_aws_failure(error) or str(error))
        cleaned = [] if keep_partial else _clean_up(ec2, created_volumes, created_image)
        kept = created_volumes + ([created_image] if created_image else [])
        tail = (
            f"; kept (--keep-partial): {', '.join(kept)}"
            if keep_partial and kept
            else f"; cleaned up: {', '.join(cleaned)}"
            if cleaned
            else ""
        )
        raise CliError(f"restore failed: {reason}{tail}") from None


# Tokens tried per device before giving up: each earlier one names a volume a cleaned-up restore
# deleted (EC2 keeps answering a token with the volume it made).
MAX_TOKEN_ATTEMPTS = 10


def _create_volume(ec2: Ec2, restore_plan: RestorePlan, params: dict[str, Any]) -> dict[str, Any]:
    """CreateVolume; when the token answers with a deleted volume, the next deterministic token."""
    device = _device(restore_plan, params)
    for attempt in range(MAX_TOKEN_ATTEMPTS):
        token = client_token(restore_plan.point, device, restore_plan.zone, attempt)
        volume = ec2.create_volume({**params, "ClientToken": token})
        if volume.get("State") not in ("deleting", "deleted"):
            return volume
    raise CliError(
        f"{device}: {MAX_TOKEN_ATTEMPTS} earlier restores of this point were deleted; restore into another --az"
    )


# RunInstances states after which an instance is gone (DescribeInstances InstanceState).
GONE_INSTANCE_STATES = ("shutting-down", "terminated")


def _run_instance(ec2: Ec2, restore_plan: RestorePlan, image_id: str) -> str:
    """RunInstances; when the token answers with an instance terminated since (EC2 answers a
    repeated ClientToken with the instance it launched, "Ensuring idempotency"), the next
    deterministic token, so a second restore after the first was terminated launches anew."""
    assert restore_plan.instance is not None
    for attempt in range(MAX_TOKEN_ATTEMPTS):
        token = client_token(restore_plan.point, "instance", image_id, attempt)
        launched = ec2.run_instance({**restore_plan.instance, "ImageId": image_id, "ClientToken": token})
        instance_id = str(launched["InstanceId"])
        # The answer may carry the state at launch: DescribeInstances says whether it is gone.
        states = {(launched.get("State") or {}).get("Name")} | {
            (i.get("State") or {}).get("Name") for i in ec2.instances_by_id([instance_id])
        }
        if not states & set(GONE_INSTANCE_STATES):
            return instance_id
    raise CliError(f"{MAX_TOKEN_ATTEMPTS} earlier instances restored from {image_id} were terminated")


def _device(restore_plan: RestorePlan, params: dict[str, Any]) -> str:
    volume = next(v for v in restore_plan.point.volumes if v.snapshot_id == params["SnapshotId"])
    return volume.device or volume.volume_id


def _image(ec2: Ec2, params: dict[str, Any]) -> tuple[str, bool]:
    """Register the AMI, or find the one a previous run registered under the same name
    (AMI names are unique per account and region: InvalidAMIName.Duplicate)."""
    try:
        return ec2.register_image(params), True
    except SmartVaultError as error:
        if error.aws_code != "InvalidAMIName.Duplicate":
            raise
    existing = ec2.image_by_name(params["Name"])
    if existing is None:
        raise CliError(f"an AMI named {params['Name']} exists but cannot be found")
    return existing, False


def _clean_up(ec2: Ec2, volume_ids: list[str], image_id: str | None) -> list[str]:
    cleaned = []
    for volume_id in volume_ids:
        try:
            ec2.delete_volume(volume_id)
            cleaned.append(volume_id)
        except SmartVaultError:
            continue  # reported by its absence from the cleaned list
    if image_id:
        try:
            ec2.deregister_image(image_id)
            cleaned.append(image_id)
        except SmartVaultError:
            pass
    return cleaned


def wait_available(
    ec2: Ec2,
    volume_ids: list[str],
    *,
    on_progress: Progress | None = None,
    interval: float = 2.0,
    timeout: float = 3600.0,
) -> None:
    """Poll DescribeVolumes until every volume is ``available``; a volume in ``error`` fails.

    A volume this restore just created may be missing from DescribeVolumes for a while ("Eventual
    consistency in the Amazon EC2 API"): it is polled again, and only counts as gone (which
    cleans it up) after NEW_RESOURCE_VISIBILITY_SECONDS."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        found = ec2.volumes(volume_ids)
        states = {v: found.get(v, {}).get("State", "missing") for v in volume_ids}
        ready = sum(1 for s in states.values() if s == "available")
        if on_progress is not None:
            on_progress(ready, len(volume_ids))
        gone: tuple[str, ...] = ("error", "deleting", "deleted")
        if time.monotonic() - started >= NEW_RESOURCE_VISIBILITY_SECONDS:
            gone += ("missing",)
        broken = {v: s for v, s in states.items() if s in gone}
        if broken:
            raise CliError("volumes failed: " + ", ".join(f"{v} is {s}" for v, s in sorted(broken.items())))
        if ready == len(volume_ids):
            return
        if time.monotonic() > deadline:
            raise CliError(f"volumes still not available after {timeout:.0f} s: {states}")
        time.sleep(interval)


# DescribeImages states after which an AMI will never become available.
BROKEN_IMAGE_STATES = ("invalid", "deregistered", "failed", "error", "disabled")


def wait_image_available(ec2: Ec2, image_id: str, *, interval: float = 2.0, timeout: float = 3600.0) -> None:
    """Poll DescribeImages until the AMI is ``available``: RunInstances refuses a ``pending`` one
    (InvalidAMIID.Unavailable), and a new AMI may not be listed at first (eventual consistency)."""
    started = time.monotonic()
    while True:
        state = ec2.image_state(image_id)
        if state == "available":
            return
        if state in BROKEN_IMAGE_STATES:
            raise CliError(f"the AMI {image_id} is {state}")
        waited = time.monotonic() - started
        if state is None and waited >= NEW_RESOURCE_VISIBILITY_SECONDS:
            raise CliError(f"the AMI {image_id} is not listed by DescribeImages after {waited:.0f} s")
        if waited > timeout:
            raise CliError(f"the AMI {image_id} is still {state} after {timeout:.0f} s")
        time.sleep(interval)


def attach_commands(result: RestoreResult, *, instance_id: str) -> list[str]:
    """The exact AWS CLI commands that attach the restored volumes to INSTANCE_ID."""
    return [
        f"aws ec2 attach-volume --region {result.plan.region} --volume-id {volume_id} "
        f"--instance-id {instance_id} --device {device}"
        for device, volume_id in sorted(result.volume_ids.items())
    ]


def describe_moment(point: RecoveryPoint) -> str:
    try:
        return f"{point.moment:%Y-%m-%d %H:%M:%S}Z"
    except SmartVaultError:
        return point.run_time or "?"
