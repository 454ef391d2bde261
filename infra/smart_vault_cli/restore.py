"""`smart-vault points` and `restore`: recovery points of the deployment, and restoring one.

The domain (points, requests, problems) is ``smart_vault.recovery``; this module makes the calls
with the operator's credentials, waits, and cleans up what a failed restore created.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import click
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from smart_vault.aws import Ec2
from smart_vault.constants import TAG_MANAGED, TAG_SOURCE_SNAPSHOT
from smart_vault.errors import SmartVaultError
from smart_vault.inventory import tag_dict
from smart_vault.locks import active_locks
from smart_vault.recovery import (
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
from smart_vault.validation import format_time, parse_time
from smart_vault_cli import deployment
from smart_vault_cli.deployment import CliError, Deployment, explain_aws_failure
from smart_vault_cli.operations import deployed_settings

RestoreKind = Literal["volumes", "ami", "instance"]
# DescribeKey KeyState values a key can encrypt and decrypt with (KMS API Reference, KeyMetadata).
USABLE_KEY_STATES = ("Enabled",)


@dataclass
class Vault:
    """Where recovery points are read and restored: one Region of one deployment.

    In the stack's Region (``home``) the deployment id and copy Regions come from the deployed
    settings; in another Region (``--from-region``) nothing is asked of the stack or its Region,
    so a restore works while that Region is down: the deployment id is given or read from the
    off-site copies there."""

    session: Any
    deployment_id: str
    copy_regions: tuple[str, ...] = ()  # the deployment's destinations (known in the home Region)
    home: bool = True
    profile: str | None = None

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    def regional(self, region: str) -> Any:
        if region == self.region:
            return self.session
        session = deployment.new_session(profile_name=self.profile, region_name=region)
        deployment.check_region(session)
        return session


def home_vault(dep: Deployment, *, deployment_id: str | None = None) -> Vault:
    settings = deployed_settings(dep)
    return Vault(
        session=dep.session,
        deployment_id=deployment_id or settings.deployment_id,
        copy_regions=tuple(d.region for d in settings.copy_regions),
        profile=dep.profile,
    )


def region_vault(region: str, *, deployment_id: str | None = None, profile: str | None = None) -> Vault:
    """The points in ``region`` without the stack: ``deployment_id`` or the one deployment whose
    copies are there (their managed tag)."""
    try:
        session = deployment.new_session(profile_name=profile, region_name=region)
    except ProfileNotFound as error:
        raise CliError(str(error)) from None
    deployment.check_region(session)
    if deployment_id is None:
        found = {tag_dict(s.get("Tags")).get(TAG_MANAGED) for s in Ec2(session=session).copies_in_region()}
        found.discard(None)
        if len(found) != 1:
            names = ", ".join(sorted(str(f) for f in found))
            which = f"copies of {len(found)} deployments ({names})" if found else "no Smart Vault copies"
            raise CliError(f"{region} has {which}: pass --deployment-id")
        deployment_id = str(found.pop())
    return Vault(session=session, deployment_id=deployment_id, home=False, profile=profile)


def points(vault: Vault, instance: str | None) -> list[RecoveryPoint]:
    """The recovery points of INSTANCE (id or Name tag), or of every instance, newest first."""
    ec2 = Ec2(session=vault.session)
    by_id = instance if instance is not None and instance.startswith("i-") else None
    if by_id is not None:
        snapshots = ec2.managed_snapshots(vault.deployment_id, by_id)
    else:
        snapshots = ec2.all_managed_snapshots(vault.deployment_id)
    # Locks (DescribeLockedSnapshots, 200 ids a request) shown with the points that have them.
    now = datetime.now(UTC)
    locks = {
        sid: "its completion + the lock's duration" if until.year == datetime.max.year else format_time(until)
        for sid, until in active_locks(ec2, [s["SnapshotId"] for s in snapshots], now).items()
    }
    found = group_points(snapshots, instance_id=by_id, locks=locks, copies=_copies(vault, snapshots, by_id))
    if instance is None or by_id is not None:
        return found
    found = [p for p in found if p.instance_name == instance]
    if len({p.instance_id for p in found}) > 1:
        ids = ", ".join(sorted({p.instance_id for p in found}))
        raise CliError(f"more than one instance was named {instance}: {ids}; name it by id")
    return found


def _copies(vault: Vault, snapshots: Sequence[Mapping[str, Any]], instance_id: str | None) -> dict[str, list[str]]:
    """Snapshot id -> Regions holding a completed copy of it. In a copy Region, the snapshots
    are the copies: each completed one is held here."""
    if not vault.home:
        return {s["SnapshotId"]: [vault.region] for s in snapshots if s.get("State") == "completed"}
    held: dict[str, list[str]] = {}
    for region in vault.copy_regions:
        ec2 = Ec2(session=vault.regional(region))
        try:
            if instance_id is not None:
                copies = ec2.managed_snapshots(vault.deployment_id, instance_id)
            else:
                copies = ec2.all_managed_snapshots(vault.deployment_id)
        except (SmartVaultError, BotoCoreError) as error:
            # The points here stay readable when a copy Region is not: say so, list no copy there.
            click.echo(f"warning: copies in {region} unknown: {explain_aws_failure(error) or error}", err=True)
            continue
        for copy in copies:
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
    (DescribeInstances, DescribeVolumes, DescribeAvailabilityZones, kms:DescribeKey), all in the
    vault's Region. From an off-site copy the original instance and volumes are in another
    Region: not looked up; the point's instance-spec tag says what the AMI needs."""
    overrides = overrides or Overrides()
    session = vault.session
    ec2 = Ec2(session=session)
    here = point.source_region in (None, vault.region)
    instance = None
    originals: dict[str, dict[str, Any]] = {}
    if here:
        live = ec2.instances_by_id([point.instance_id])
        instance = next((i for i in live if i.get("State", {}).get("Name") != "terminated"), None)
        originals = ec2.volumes([v.volume_id for v in point.volumes])
    chosen_zone = zone or (instance or {}).get("Placement", {}).get("AvailabilityZone")
    result = RestorePlan(point=point, kind=kind, region=vault.region, zone=chosen_zone or "")
    if not chosen_zone and kind == "volumes":
        where = "no longer exists" if here else f"is in {point.source_region}"
        result.problems.append(f"{point.instance_id} {where}: pass --az to choose the Availability Zone")
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
    # The spec recorded at backup time is the point-in-time truth (docs/decisions.md); the live
    # instance, in its own Region only, adds where to launch (subnet, groups, key pair).
    spec = point.spec
    if spec is None and instance is None:
        result.problems.append(
            f"{point.instance_id} {'no longer exists' if here else 'is in ' + str(point.source_region)} and its "
            "snapshots record no instance spec: its architecture, boot mode and root device are unknown, "
            "so an AMI cannot be registered; restore --as volumes"
        )
        return result
    meta = ImageMetadata.from_spec(spec, instance) if spec is not None else ImageMetadata.from_instance(instance or {})
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
    ec2 = Ec2(session=vault.regional(restore_plan.region))
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
        # RunInstances refuses an AMI that is still pending (InvalidAMIID.Unavailable).
        wait_image(ec2, result.image_id, interval=interval, timeout=timeout)
        if restore_plan.kind == "instance" and restore_plan.instance is not None:
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
# States of an instance a token may answer with that a new restore must not count as restored
# ("The client token is valid for at least 24 hours after the termination of the instance").
GONE_INSTANCE_STATES = ("shutting-down", "terminated")


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


def _run_instance(ec2: Ec2, restore_plan: RestorePlan, image_id: str) -> str:
    """RunInstances; when the token answers with an instance terminated since (an earlier
    restore of this point), the next deterministic token launches a new one."""
    assert restore_plan.instance is not None
    for attempt in range(MAX_TOKEN_ATTEMPTS):
        token = client_token(restore_plan.point, "instance", image_id, attempt)
        launched = ec2.run_instance({**restore_plan.instance, "ImageId": image_id, "ClientToken": token})
        if (launched.get("State") or {}).get("Name") not in GONE_INSTANCE_STATES:
            return str(launched["InstanceId"])
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


# Polls that may still miss a volume or AMI just created (EC2 eventual consistency: "run the
# Describe command repeatedly, starting with a couple of seconds of wait time, and increasing
# gradually up to a few minutes"): the wait doubles from ``interval`` up to BACKOFF_CAP_SECONDS;
# 8 polls from 2 s are about 4 minutes. Only then is a missing resource a failure.
MAX_INVISIBLE_POLLS = 8
BACKOFF_CAP_SECONDS = 60.0


def _backoff(interval: float, misses: int) -> float:
    return float(min(interval * 2 ** max(misses - 1, 0), BACKOFF_CAP_SECONDS))


def wait_available(
    ec2: Ec2,
    volume_ids: list[str],
    *,
    on_progress: Progress | None = None,
    interval: float = 2.0,
    timeout: float = 3600.0,
) -> None:
    """Poll DescribeVolumes until every volume is ``available``; a volume in ``error`` fails, and
    one still missing after MAX_INVISIBLE_POLLS polls (a just-created volume may be missing from
    the first ones, with backoff between them)."""
    deadline = time.monotonic() + timeout
    misses = 0
    while True:
        found = ec2.volumes(volume_ids)
        states = {v: found.get(v, {}).get("State", "missing") for v in volume_ids}
        ready = sum(1 for s in states.values() if s == "available")
        if on_progress is not None:
            on_progress(ready, len(volume_ids))
        missing = "missing" in states.values()
        misses = misses + 1 if missing else 0
        broken = {
            v: s
            for v, s in states.items()
            if s in ("error", "deleting", "deleted") or (s == "missing" and misses > MAX_INVISIBLE_POLLS)
        }
        if broken:
            raise CliError("volumes failed: " + ", ".join(f"{v} is {s}" for v, s in sorted(broken.items())))
        if ready == len(volume_ids):
            return
        if time.monotonic() > deadline:
            raise CliError(f"volumes still not available after {timeout:.0f} s: {states}")
        time.sleep(_backoff(interval, misses) if missing else interval)


def wait_image(ec2: Ec2, image_id: str, *, interval: float = 2.0, timeout: float = 3600.0) -> None:
    """Poll DescribeImages until the AMI is ``available`` (RegisterImage answers while it is
    ``pending``, and RunInstances refuses it then); ``failed`` or never listed fails."""
    deadline = time.monotonic() + timeout
    misses = 0
    while True:
        state = ec2.image_state(image_id)
        if state == "available":
            return
        misses = misses + 1 if state is None else 0
        if state in ("failed", "invalid", "deregistered", "error") or misses > MAX_INVISIBLE_POLLS:
            raise CliError(f"AMI {image_id} is {state or 'missing'}")
        if time.monotonic() > deadline:
            raise CliError(f"AMI {image_id} still {state} after {timeout:.0f} s")
        time.sleep(_backoff(interval, misses) if state is None else interval)


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
