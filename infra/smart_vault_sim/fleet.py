"""Build EC2 instances, volumes and snapshots in an emulated (moto) account."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.backends import get_backend

ACCOUNT_ID = "123456789012"
DEMO_AMI = "ami-03cf127a"  # one of moto's built-in images


@dataclass(frozen=True, kw_only=True)
class VolumeSpec:
    device: str
    size_gib: int = 8
    tags: Mapping[str, str] = field(default_factory=dict)
    volume_type: str = "gp3"
    kms_key: str | None = None  # a customer managed key (ARN): the volume is encrypted with it


@dataclass(frozen=True, kw_only=True)
class BuiltInstance:
    instance_id: str
    name: str
    volume_ids: dict[str, str]  # device -> volume id


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def ec2_backend(region: str) -> Any:
    return get_backend("ec2")[ACCOUNT_ID][region]


def add_instance(
    ec2: Any,
    *,
    region: str,
    name: str,
    tags: Mapping[str, str],
    volumes: Sequence[VolumeSpec],
    state: str = "running",
) -> BuiltInstance:
    """Run an instance whose first volume is its root device, then move it to ``state``."""
    all_tags = {"Name": name, **tags} if name else dict(tags)
    mappings = [
        {
            "DeviceName": v.device,
            "Ebs": {
                "VolumeSize": v.size_gib,
                "VolumeType": v.volume_type,
                "DeleteOnTermination": False,
                **({"Encrypted": True, "KmsKeyId": v.kms_key} if v.kms_key else {}),
            },
        }
        for v in volumes
    ]
    extra: dict[str, Any] = {}
    if all_tags:
        extra["TagSpecifications"] = [{"ResourceType": "instance", "Tags": _tag_list(all_tags)}]
    instance = ec2.run_instances(ImageId=DEMO_AMI, MinCount=1, MaxCount=1, BlockDeviceMappings=mappings, **extra)[
        "Instances"
    ][0]
    instance_id = instance["InstanceId"]
    if volumes:
        # moto takes the root device name from the AMI; on AWS it is the first mapping here.
        ec2_backend(region).get_instance(instance_id).root_device_name = volumes[0].device
    volume_ids = {m["DeviceName"]: m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"]}
    for spec in volumes:
        if spec.tags:
            ec2.create_tags(Resources=[volume_ids[spec.device]], Tags=_tag_list(spec.tags))
    if state == "stopped":
        ec2.stop_instances(InstanceIds=[instance_id])
    elif state == "terminated":
        ec2.terminate_instances(InstanceIds=[instance_id])
    return BuiltInstance(instance_id=instance_id, name=name, volume_ids=volume_ids)


def add_volume(ec2: Any, *, region: str, instance_id: str, size_gib: int = 8) -> str:
    """A volume in the instance's Availability Zone, not attached (to snapshot and then delete)."""
    zone = ec2_backend(region).get_instance(instance_id).availability_zone
    return str(ec2.create_volume(AvailabilityZone=zone, Size=size_gib)["VolumeId"])


def add_snapshot(
    ec2: Any,
    *,
    region: str,
    volume_id: str,
    start_time: datetime,
    tags: Mapping[str, str],
    state: str = "completed",
    description: str = "",
) -> str:
    """A snapshot that already existed, with the creation time and state it had on AWS."""
    snapshot_id = ec2.create_snapshot(
        VolumeId=volume_id,
        Description=description,
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": _tag_list(tags)}] if tags else [],
    )["SnapshotId"]
    snapshot = ec2_backend(region).snapshots[snapshot_id]
    snapshot.start_time = start_time
    snapshot.status = state
    return str(snapshot_id)


def set_snapshot_state(region: str, snapshot_id: str, state: str, at: datetime | None = None) -> None:
    """Set a snapshot's state; ``at``: when it completed (what a pending lock's duration starts from)."""
    snapshot = ec2_backend(region).snapshots[snapshot_id]
    if state == "completed" and at is not None:
        mark_completed(snapshot, at)
    snapshot.status = state


def mark_completed(snapshot: Any, at: datetime) -> None:
    """A pending snapshot (or copy) completed at ``at``: a lock taken while it was pending starts
    its duration then (EC2 API Reference, LockedSnapshotsInfo, lockDurationStartTime), whenever
    the lock model next looks at it (snapshot_locks)."""
    snapshot.status = "completed"
    snapshot.completed_on = at


def pin_to_ami(ec2: Any, *, region: str, snapshot_id: str, name: str) -> str:
    """Register an AMI whose root device is this snapshot, as on AWS: DescribeImages lists the
    mapping and DeleteSnapshot answers InvalidSnapshot.InUse while the AMI exists (the emulator's
    RegisterImage, ``restore_rules``, records both)."""
    backend = ec2_backend(region)
    snapshot = backend.snapshots[snapshot_id]
    state, snapshot.status = snapshot.status, "completed"  # RegisterImage needs a completed one
    try:
        image_id = ec2.register_image(
            Name=name,
            RootDeviceName="/dev/xvda",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot_id}}],
        )["ImageId"]
    finally:
        snapshot.status = state  # the scenario's state: an AMI of a pending snapshot is its business
    return str(image_id)
