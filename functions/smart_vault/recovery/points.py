"""Recovery points and restore planning: what can be restored, and the exact AWS requests.

A recovery point is one run's crash-consistent set of snapshots of one instance, read back
from the tags every managed snapshot carries (instance id and name, run id and time, device
map). The functions here are pure: they take DescribeSnapshots / DescribeVolumes /
DescribeInstances records and return typed plans and request parameters; the CLI (`smart-vault
points`, `restore`) and the restore drill make the calls through ``smart_vault.aws.Ec2``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from smart_vault.aws import Ec2
from smart_vault.backup.inventory import MAX_TAGS_PER_RESOURCE, tag_dict
from smart_vault.constants import (
    TAG_DEVICE,
    TAG_DEVICE_MAP,
    TAG_INSTANCE_ID,
    TAG_INSTANCE_NAME,
    TAG_INSTANCE_SPEC,
    TAG_RESTORED_FROM,
    TAG_RUN_ID,
    TAG_RUN_TIME,
    TAG_SOURCE_VOLUME,
    TAG_VERIFIED_AT,
)
from smart_vault.instance_spec import InstanceSpec
from smart_vault.validation import parse_time

PointState = Literal["completed", "pending", "error", "incomplete"]
# Snapshot states in order of preference when a run holds more than one snapshot of a volume
# (a re-run after an ``error`` snapshot creates a fresh one under the same run id).
_STATE_RANK = {"completed": 0, "pending": 1, "error": 2}

# CreateVolume (EC2 API Reference): "Default: gp2"; we restore to gp3 when the original volume
# is gone, the current general-purpose type with a baseline that needs no IOPS/throughput.
FALLBACK_VOLUME_TYPE = "gp3"
# ClientToken: "Up to 64 ASCII characters" (EC2 API Reference, "Ensuring idempotency").
CLIENT_TOKEN_LENGTH = 64


@dataclass(frozen=True, kw_only=True)
class PointVolume:
    """One device of a recovery point: the snapshot and what DescribeSnapshots says of it."""

    device: str
    volume_id: str
    snapshot_id: str
    size_gib: int
    state: str
    progress: int = 0
    encrypted: bool = False
    kms_key_id: str | None = None
    # DescribeSnapshots StorageTier: "archive" must be restored (RestoreSnapshotTier) before use.
    storage_tier: str = "standard"
    copy_regions: tuple[str, ...] = ()
    locked_until: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RecoveryPoint:
    instance_id: str
    instance_name: str
    run_id: str
    run_time: str
    volumes: tuple[PointVolume, ...]
    # Devices the run's device map names but whose snapshot no longer exists (or never did).
    missing_devices: tuple[str, ...] = ()

    @property
    def state(self) -> PointState:
        states = {v.state for v in self.volumes}
        if "error" in states:
            return "error"
        if self.missing_devices or not self.volumes:
            return "incomplete"
        if states == {"completed"}:
            return "completed"
        return "pending"

    @property
    def complete(self) -> bool:
        """Restorable as a whole: every device's snapshot completed."""
        return self.state == "completed"

    @property
    def moment(self) -> datetime:
        return parse_time(self.run_time, "run_time")

    @property
    def label(self) -> str:
        return f"{self.instance_name} ({self.instance_id})" if self.instance_name else self.instance_id

    @property
    def source(self) -> str:
        """What an AMI or instance restored from the whole point is tagged restored-from."""
        return f"{self.instance_id}/{self.run_id}"

    def volume(self, device: str) -> PointVolume | None:
        return next((v for v in self.volumes if v.device == device), None)

    @property
    def copy_regions(self) -> tuple[str, ...]:
        """The Regions holding a completed copy of every device of the point."""
        if not self.volumes or self.missing_devices:
            return ()
        common = set(self.volumes[0].copy_regions).intersection(*(v.copy_regions for v in self.volumes[1:]))
        return tuple(sorted(common))

    @property
    def verified_at(self) -> str | None:
        """When a restore drill last proved every snapshot of the point (the verified-at tag,
        oldest of its volumes'); None: never verified whole."""
        stamps = [v.tags.get(TAG_VERIFIED_AT) for v in self.volumes]
        if not stamps or any(s is None for s in stamps) or self.missing_devices:
            return None
        return min(s for s in stamps if s is not None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state
        data["copy_regions"] = list(self.copy_regions)
        data["verified_at"] = self.verified_at
        for volume in data["volumes"]:
            volume["tags"] = dict(volume["tags"])
        return data


def parse_device_map(value: str | None) -> dict[str, str]:
    """``vol-1=/dev/xvda,vol-2=/dev/sdf`` (the device-map tag) -> volume id -> device."""
    pairs = (item.split("=", 1) for item in (value or "").split(",") if "=" in item)
    return {volume: device for volume, device in pairs}


def recovery_points(
    ec2: Ec2,
    deployment_id: str,
    instance_id: str | None = None,
    *,
    copies: Mapping[str, Sequence[str]] | None = None,
    locks: Mapping[str, str] | None = None,
) -> list[RecoveryPoint]:
    """This deployment's recovery points (of one instance, or all), newest first: one
    paginated DescribeSnapshots over the managed marker (and the instance id when given)."""
    if instance_id is None:
        snapshots = ec2.all_managed_snapshots(deployment_id)
    else:
        snapshots = ec2.managed_snapshots(deployment_id, instance_id)
    return group_points(snapshots, instance_id=instance_id, copies=copies, locks=locks)


def group_points(
    snapshots: Iterable[Mapping[str, Any]],
    *,
    instance_id: str | None = None,
    copies: Mapping[str, Sequence[str]] | None = None,
    locks: Mapping[str, str] | None = None,
) -> list[RecoveryPoint]:
    """Group managed snapshots (DescribeSnapshots records) into recovery points, newest first.

    Snapshots and off-site copies alike: a copy's VolumeId is a placeholder (CopySnapshot, EC2
    API Reference: "Do not use this volume ID for any purpose"), so a copy counts as the volume
    and device its ``source-volume`` and ``device`` tags name.

    ``copies``: snapshot id -> regions holding a completed copy; ``locks``: snapshot id ->
    locked-until time. Both are optional: points carry them when the caller knows them.
    """
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for snapshot in snapshots:
        tags = tag_dict(snapshot.get("Tags"))
        owner, run_id = tags.get(TAG_INSTANCE_ID), tags.get(TAG_RUN_ID)
        if not owner or not run_id or (instance_id is not None and owner != instance_id):
            continue
        groups.setdefault((owner, run_id), []).append(snapshot)
    points = [_point(owner, run_id, members, copies or {}, locks or {}) for (owner, run_id), members in groups.items()]
    return sorted(points, key=lambda p: (p.run_id, p.instance_id), reverse=True)


def _point(
    instance_id: str,
    run_id: str,
    members: list[Mapping[str, Any]],
    copies: Mapping[str, Sequence[str]],
    locks: Mapping[str, str],
) -> RecoveryPoint:
    tags = tag_dict(members[0].get("Tags"))
    device_map: dict[str, str] = {}
    for member in members:
        device_map.update(parse_device_map(tag_dict(member.get("Tags")).get(TAG_DEVICE_MAP)))
    best: dict[str, Mapping[str, Any]] = {}
    for member in sorted(members, key=lambda s: str(s.get("StartTime") or ""), reverse=True):
        volume_id = source_volume(member)
        current = best.get(volume_id)
        if current is None or _rank(member) < _rank(current):
            best[volume_id] = member
    volumes = tuple(
        sorted(
            (_volume(s, volume_id, device_map, copies, locks) for volume_id, s in best.items()),
            key=lambda v: (v.device or "~", v.volume_id),
        )
    )
    missing = tuple(sorted(device for volume, device in device_map.items() if volume not in best))
    return RecoveryPoint(
        instance_id=instance_id,
        instance_name=tags.get(TAG_INSTANCE_NAME, ""),
        run_id=run_id,
        run_time=tags.get(TAG_RUN_TIME, ""),
        volumes=volumes,
        missing_devices=missing,
    )


def _rank(snapshot: Mapping[str, Any]) -> int:
    return _STATE_RANK.get(str(snapshot.get("State")), 3)


def source_volume(snapshot: Mapping[str, Any]) -> str:
    """The volume a snapshot is of: its own VolumeId, or for a copy its source-volume tag."""
    return tag_dict(snapshot.get("Tags")).get(TAG_SOURCE_VOLUME) or str(snapshot["VolumeId"])


def _volume(
    snapshot: Mapping[str, Any],
    volume_id: str,
    device_map: Mapping[str, str],
    copies: Mapping[str, Sequence[str]],
    locks: Mapping[str, str],
) -> PointVolume:
    tags = tag_dict(snapshot.get("Tags"))
    device = tags.get(TAG_DEVICE) or device_map.get(volume_id, "")
    raw_progress = str(snapshot.get("Progress") or "").rstrip("%")
    state = str(snapshot.get("State") or "pending")
    progress = int(raw_progress) if raw_progress.isdigit() else (100 if state == "completed" else 0)
    snapshot_id = snapshot["SnapshotId"]
    return PointVolume(
        device=device,
        volume_id=volume_id,
        snapshot_id=snapshot_id,
        size_gib=int(snapshot.get("VolumeSize") or 0),
        state=state,
        progress=progress,
        encrypted=bool(snapshot.get("Encrypted")),
        kms_key_id=snapshot.get("KmsKeyId") or None,
        storage_tier=str(snapshot.get("StorageTier") or "standard"),
        copy_regions=tuple(sorted(copies.get(snapshot_id, ()))),
        locked_until=locks.get(snapshot_id),
        tags=tags,
    )


def latest_point(points: Iterable[RecoveryPoint]) -> RecoveryPoint | None:
    """The newest complete recovery point."""
    complete = [p for p in points if p.complete]
    return max(complete, key=lambda p: p.run_id) if complete else None


def point_at(points: Iterable[RecoveryPoint], moment: datetime) -> RecoveryPoint | None:
    """The newest complete recovery point taken at or before ``moment``."""
    complete = [p for p in points if p.complete and p.moment <= moment]
    return max(complete, key=lambda p: p.run_id) if complete else None


def point_of_run(points: Iterable[RecoveryPoint], run_id: str) -> RecoveryPoint | None:
    """The point of exactly this run, complete or not (a dry run lists what is wrong with it)."""
    return next((p for p in points if p.run_id == run_id), None)


# -- restore planning -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class VolumeRequest:
    device: str
    snapshot_id: str
    params: dict[str, Any]  # CreateVolume parameters, ready for ``ec2.create_volume(**params)``


def client_token(point: RecoveryPoint, device: str, zone: str, attempt: int = 0) -> str:
    """The same token for the same point, device and AZ, so a re-run returns the same volume
    instead of creating another (CreateVolume ClientToken: at most 64 ASCII characters).
    ``attempt`` > 0: the next token, after the volume of the previous one was deleted (a
    cleaned-up restore), so a new restore does not get the deleted volume back."""
    seed = f"{point.instance_id}|{point.run_id}|{device}|{zone}" + (f"|{attempt}" if attempt else "")
    return f"sv-{hashlib.sha256(seed.encode()).hexdigest()}"[:CLIENT_TOKEN_LENGTH]


def restored_tags(source: Mapping[str, str], restored_from: str) -> list[dict[str, str]]:
    """The source's own tags (not ``aws:``, which nobody may set, nor Smart Vault's markers)
    plus ``smart-vault:restored-from``; at most 50 tags (EC2 User Guide, "Tag restrictions")."""
    kept = {k: v for k, v in source.items() if not k.startswith(("aws:", "smart-vault:"))}
    items = [{"Key": k, "Value": v} for k, v in sorted(kept.items())][: MAX_TAGS_PER_RESOURCE - 1]
    return [*items, {"Key": TAG_RESTORED_FROM, "Value": restored_from}]


def volume_requests(
    point: RecoveryPoint,
    zone: str,
    *,
    originals: Mapping[str, Mapping[str, Any]],
    kms_key_id: str | None = None,
) -> list[VolumeRequest]:
    """One CreateVolume per device of the point, in ``zone``.

    Type, IOPS and throughput come from the original volume (DescribeVolumes record in
    ``originals``) when it still exists, else the fallback type; the snapshot's encryption is
    kept (EC2 encrypts a volume from an encrypted snapshot whatever the request says), with its
    key unless ``kms_key_id`` names another. Tags: the original volume's, else the snapshot's.
    """
    requests = []
    for volume in point.volumes:
        original = originals.get(volume.volume_id)
        params: dict[str, Any] = {
            "AvailabilityZone": zone,
            "SnapshotId": volume.snapshot_id,
            "Size": volume.size_gib,
            "ClientToken": client_token(point, volume.device, zone),
        }
        params.update(_performance(original))
        key = kms_key_id or volume.kms_key_id
        if volume.encrypted or kms_key_id:
            params["Encrypted"] = True
            if key:
                params["KmsKeyId"] = key
        source_tags = tag_dict(original.get("Tags")) if original else dict(volume.tags)
        params["TagSpecifications"] = [
            {"ResourceType": "volume", "Tags": restored_tags(source_tags, volume.snapshot_id)}
        ]
        requests.append(VolumeRequest(device=volume.device, snapshot_id=volume.snapshot_id, params=params))
    return requests


def _performance(original: Mapping[str, Any] | None) -> dict[str, Any]:
    """VolumeType, Iops and Throughput as the original volume had them.

    CreateVolume (EC2 API Reference): Iops is valid for io1, io2 and gp3 only, Throughput for
    gp3 only; sending either for another type fails the request."""
    if not original:
        return {"VolumeType": FALLBACK_VOLUME_TYPE}
    volume_type = str(original.get("VolumeType") or FALLBACK_VOLUME_TYPE)
    params: dict[str, Any] = {"VolumeType": volume_type}
    if volume_type in ("io1", "io2", "gp3") and original.get("Iops"):
        params["Iops"] = int(original["Iops"])
    if volume_type == "gp3" and original.get("Throughput"):
        params["Throughput"] = int(original["Throughput"])
    return params


def restore_problems(
    point: RecoveryPoint,
    *,
    zone: str | None,
    region: str,
    zones: Iterable[str],
    unusable_keys: Mapping[str, str] | None = None,
) -> list[str]:
    """Everything that would make the restore fail, found before anything is created.

    ``zones``: the region's Availability Zones (DescribeAvailabilityZones); ``unusable_keys``:
    KMS key id -> why it cannot be used (disabled, pending deletion, access denied). ``zone``
    None: not chosen yet (the caller reports that itself)."""
    problems = []
    if zone is not None and zone not in set(zones):
        problems.append(f"Availability Zone {zone} is not in region {region}")
    for device in point.missing_devices:
        problems.append(f"{device}: the snapshot of this run no longer exists")
    for volume in point.volumes:
        name = volume.device or volume.volume_id
        if volume.state != "completed":
            problems.append(
                f"{name}: snapshot {volume.snapshot_id} is {volume.state} ({volume.progress}%), not completed"
            )
        if volume.storage_tier == "archive":
            # RestoreSnapshotTier (EC2 API Reference): a temporary restore names its days
            # (TemporaryRestoreDays), a permanent one sets PermanentRestore; one of the two.
            problems.append(
                f"{name}: snapshot {volume.snapshot_id} is archived: restore it first "
                f"(aws ec2 restore-snapshot-tier --snapshot-id {volume.snapshot_id} --temporary-restore-days N, "
                "or --permanent-restore), which takes up to 72 hours"
            )
    for key, reason in sorted((unusable_keys or {}).items()):
        users = ", ".join(v.snapshot_id for v in point.volumes if v.kms_key_id == key) or "the restore"
        problems.append(f"KMS key {key} is not usable ({reason}); needed by {users}")
    return problems


# -- AMI and instance -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ImageMetadata:
    """What RegisterImage needs that the snapshots' volumes do not record: from the live
    instance, or from the instance spec tag recorded at backup time (smart_vault.instance_spec)."""

    root_device: str
    architecture: str
    virtualization_type: str = "hvm"
    # RegisterImage EnaSupport, ImdsSupport ("v2.0": instances launched from the AMI require
    # IMDSv2), TpmSupport ("v2.0") and BootMode: sent only as the instance had them.
    ena_support: bool = False
    imds_required: bool = False
    tpm_support: str | None = None
    boot_mode: str | None = None
    platform: str | None = None
    usage_operation: str = "RunInstances"
    instance_type: str | None = None
    subnet_id: str | None = None
    security_group_ids: tuple[str, ...] = ()
    key_name: str | None = None

    @classmethod
    def from_spec(cls, spec: InstanceSpec, **where: Any) -> ImageMetadata:
        return cls(
            root_device=spec.root_device,
            architecture=spec.architecture,
            virtualization_type=spec.virtualization_type,
            ena_support=spec.ena_support,
            imds_required=spec.http_tokens == "required",
            tpm_support=spec.tpm_support,
            boot_mode=spec.boot_mode,
            platform=spec.platform,
            usage_operation=spec.usage_operation,
            instance_type=spec.instance_type,
            **where,
        )

    @classmethod
    def from_instance(cls, instance: Mapping[str, Any]) -> ImageMetadata:
        """From a DescribeInstances record (EnaSupport omitted: ENA is not enabled)."""
        return cls.from_spec(
            InstanceSpec.from_instance(instance),
            subnet_id=instance.get("SubnetId") or None,
            security_group_ids=tuple(g["GroupId"] for g in instance.get("SecurityGroups") or ()),
            key_name=instance.get("KeyName") or None,
        )

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> ImageMetadata | None:
        """From a snapshot's (or copy's) instance-spec tag; None when it has none. No subnet,
        groups or key pair: those are the source Region's and may not exist where this restores."""
        spec = InstanceSpec.from_tag(tags.get(TAG_INSTANCE_SPEC))
        return cls.from_spec(spec) if spec else None


def image_refusal(point: RecoveryPoint, meta: ImageMetadata) -> str | None:
    """Why an AMI registered from these snapshots would be broken, or None.

    An AMI registered from snapshots carries no billing product: "you can't create a Windows
    AMI or an AMI with a billing product ... from snapshots" (RegisterImage, EC2 API Reference;
    "Understand AMI billing information", EC2 User Guide). Plain Linux is UsageOperation
    ``RunInstances``; anything else (Windows ``RunInstances:0002``, RHEL ``RunInstances:0010``,
    SQL Server...) has a billing code it would lose."""
    if (meta.platform or "").lower() == "windows":
        return "the instance runs Windows: RegisterImage cannot carry Windows billing information"
    if meta.usage_operation != "RunInstances":
        return (
            f"the instance has the billing product {meta.usage_operation}: RegisterImage cannot carry it; "
            "restore as volumes and attach them to an instance launched from the original AMI"
        )
    if not meta.root_device:
        return "the root device name of the instance is unknown"
    if point.volume(meta.root_device) is None:
        return f"the recovery point has no snapshot of the root device {meta.root_device}"
    return None


def image_request(
    point: RecoveryPoint,
    meta: ImageMetadata,
    *,
    originals: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """RegisterImage parameters: one EBS mapping per device of the point, root included."""
    mappings = []
    for volume in point.volumes:
        ebs: dict[str, Any] = {
            "SnapshotId": volume.snapshot_id,
            "VolumeSize": volume.size_gib,
            "DeleteOnTermination": True,
        }
        ebs.update(_performance(originals.get(volume.volume_id)))
        mappings.append({"DeviceName": volume.device, "Ebs": ebs})
    params: dict[str, Any] = {
        "Name": f"smart-vault-restore-{point.instance_id}-{point.run_id}",
        "Description": f"Smart Vault restore of {point.label} from run {point.run_id}"[:255],
        "RootDeviceName": meta.root_device,
        "BlockDeviceMappings": mappings,
        "Architecture": meta.architecture,
        "VirtualizationType": meta.virtualization_type,
        "TagSpecifications": [
            {"ResourceType": "image", "Tags": restored_tags(point.volumes[0].tags, point.source)},
        ],
    }
    if meta.boot_mode:
        params["BootMode"] = meta.boot_mode
    if meta.ena_support:
        params["EnaSupport"] = True
    if meta.imds_required:
        params["ImdsSupport"] = "v2.0"
    if meta.tpm_support:
        params["TpmSupport"] = meta.tpm_support
    return params


def instance_request(
    image_id: str,
    point: RecoveryPoint,
    meta: ImageMetadata,
    *,
    instance_type: str | None = None,
    subnet_id: str | None = None,
    security_group_ids: Sequence[str] = (),
) -> dict[str, Any]:
    """RunInstances parameters: the original's type, subnet and groups unless overridden."""
    params: dict[str, Any] = {
        "ImageId": image_id,
        "MinCount": 1,
        "MaxCount": 1,
        "InstanceType": instance_type or meta.instance_type or "t3.micro",
        "ClientToken": client_token(point, "instance", image_id),
        "TagSpecifications": [
            {
                "ResourceType": "instance",
                "Tags": restored_tags({"Name": f"{point.instance_name or point.instance_id}-restored"}, point.source),
            }
        ],
    }
    subnet = subnet_id or meta.subnet_id
    if subnet:
        params["SubnetId"] = subnet
    groups = list(security_group_ids) or list(meta.security_group_ids)
    if groups:
        params["SecurityGroupIds"] = groups
    if meta.key_name:
        params["KeyName"] = meta.key_name
    return params
