"""Recovery points of off-site copies, pure: every copy has EC2's placeholder
VolumeId, so a point groups them by their source-volume and device tags; an AMI is registered
from the instance spec the snapshots carry."""

from __future__ import annotations

from smart_vault.constants import (
    TAG_DEVICE,
    TAG_DEVICE_MAP,
    TAG_INSTANCE_ID,
    TAG_INSTANCE_SPEC,
    TAG_RUN_ID,
    TAG_RUN_TIME,
    TAG_SOURCE_SNAPSHOT,
    TAG_SOURCE_VOLUME,
)
from smart_vault.instance_spec import InstanceSpec
from smart_vault.recovery.points import ImageMetadata, group_points, image_request

SPEC = "arch=arm64,boot=uefi,ena=1,root=/dev/xvda,virt=hvm,imds=required,tpm=v2.0,type=m7g.large"
DEVICES = {
    "vol-0000000000000000a": "/dev/xvda",
    "vol-0000000000000000b": "/dev/sdf",
    "vol-0000000000000000c": "/dev/sdg",
}


def _copy(index: int, source_volume: str, device: str) -> dict:
    tags = {
        TAG_INSTANCE_ID: "i-0123456789abcdef0",
        TAG_RUN_ID: "20261126T030000Z",
        TAG_RUN_TIME: "2026-11-26T03:00:00Z",
        TAG_DEVICE_MAP: ",".join(f"{v}={d}" for v, d in DEVICES.items()),
        TAG_INSTANCE_SPEC: SPEC,
        TAG_SOURCE_SNAPSHOT: f"snap-{index:017x}",
        TAG_SOURCE_VOLUME: source_volume,
        TAG_DEVICE: device,
    }
    return {
        "SnapshotId": f"snap-{index + 100:017x}",
        "VolumeId": "vol-ffffffff",  # CopySnapshot: "an arbitrary source volume ID"
        "State": "completed",
        "StartTime": "2026-11-26T04:00:00Z",
        "VolumeSize": 8,
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
    }


def test_copies_group_by_source_volume_and_device_not_by_the_placeholder():
    copies = [_copy(i, volume, device) for i, (volume, device) in enumerate(DEVICES.items())]
    [point] = group_points(copies)
    assert [v.device for v in point.volumes] == ["/dev/sdf", "/dev/sdg", "/dev/xvda"]
    assert {v.volume_id for v in point.volumes} == set(DEVICES)
    assert point.complete


def test_a_missing_copy_makes_the_point_incomplete():
    copies = [_copy(i, volume, device) for i, (volume, device) in enumerate(DEVICES.items()) if device != "/dev/sdg"]
    [point] = group_points(copies)
    assert point.state == "incomplete" and point.missing_devices == ("/dev/sdg",)


def test_image_metadata_from_the_spec_tag_keeps_boot_mode_imds_tpm_and_ena():
    [point] = group_points([_copy(i, v, d) for i, (v, d) in enumerate(DEVICES.items())])
    meta = ImageMetadata.from_tags(point.volumes[0].tags)
    assert meta is not None and meta.architecture == "arm64" and meta.root_device == "/dev/xvda"
    params = image_request(point, meta, originals={})
    assert params["BootMode"] == "uefi" and params["ImdsSupport"] == "v2.0" and params["TpmSupport"] == "v2.0"
    assert params["EnaSupport"] is True and params["Architecture"] == "arm64"
    assert meta.instance_type == "m7g.large"


def test_ena_omitted_by_describe_instances_is_not_assumed():
    meta = ImageMetadata.from_instance({"RootDeviceName": "/dev/xvda", "Architecture": "x86_64"})
    assert meta.ena_support is False
    [point] = group_points([_copy(0, "vol-0000000000000000a", "/dev/xvda")])
    params = image_request(point, meta, originals={})
    assert "EnaSupport" not in params and "ImdsSupport" not in params and "TpmSupport" not in params


def test_the_spec_tag_round_trips_and_stays_short():
    spec = InstanceSpec.from_tag(SPEC)
    assert spec is not None and spec.to_tag() == SPEC and len(SPEC) < 256
    windows = InstanceSpec(root_device="/dev/sda1", platform="windows", usage_operation="RunInstances:0002")
    assert InstanceSpec.from_tag(windows.to_tag()) == windows
    assert InstanceSpec.from_tag("") is None and InstanceSpec.from_tag("type=m5.large") is None
