"""`smart-vault points` and `restore` in a copy Region: a copy's VolumeId is
EC2's placeholder, so points there are grouped by the copies' source-volume and device tags, and
an AMI or instance is registered from the instance spec recorded at backup time, with the
source Region unreachable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from smart_vault.constants import TAG_DEVICE, TAG_INSTANCE_SPEC, TAG_RESTORED_FROM
from smart_vault_cli import deployment, main
from smart_vault_sim import fleet
from tests.cli.conftest import Stack, deployed

RUN = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
SOURCE, COPY = "us-east-1", "us-west-2"
DEPLOYMENT_ID = "smart-vault-sim"  # the deployed functions' DEPLOYMENT_ID (tests/cli/conftest.py)
DEVICES = ["/dev/sdf", "/dev/sdg", "/dev/xvda"]
OPERATOR_POLICY = Path(__file__).parents[2] / "docs" / "restore-operator-policy.json"
SCENARIO = {
    "name": "restore from off-site copies",
    "settings": {
        "keep_min": 1,
        "copy_regions": [{"region": COPY, "kms_key": "alias/smart-vault-dr", "retention_days": 7, "keep_min": 1}],
    },
    "instances": [
        {
            "name": "web-1",
            "tags": {"backup": "True"},
            "volumes": [
                {"device": "/dev/xvda", "size_gib": 8},
                {"device": "/dev/sdf", "size_gib": 20},
                {"device": "/dev/sdg", "size_gib": 30},
            ],
        }
    ],
    "runs": [{"at": "2026-11-26T03:00:00Z"}],
}


def _describe(stack: Stack, instance_id: str) -> dict[str, Any]:
    return stack.account.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


@pytest.fixture
def copied(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setattr(main, "_POLL_SECONDS", 0)
    with deployed(SCENARIO, monkeypatch) as stack:
        # What DescribeInstances says of a Graviton instance booted with UEFI, IMDSv2 required
        # (moto answers x86_64 and no boot mode, ENA or TPM unless told).
        instance = fleet.ec2_backend(SOURCE).get_instance(stack.account.instance_ids["web-1"])
        instance.architecture = "arm64"
        instance.boot_mode = "uefi"
        instance.current_instance_boot_mode = "uefi"
        instance.ena_support = True
        instance.tpm_support = "v2.0"
        instance.instance_type = "m7g.large"
        instance.metadata_options.http_tokens = "required"
        report = stack.sim.run_at(0, RUN)
        assert report["execution"]["status"] == "SUCCEEDED", report["execution"]
        stack.sim.authorize_operator(json.loads(OPERATOR_POLICY.read_text()))
        stack.sim.tap.reset_counts()
        yield stack


@pytest.fixture
def source_down(copied: Stack, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every endpoint of the source Region refuses connections (as when the Region is down);
    returns the calls that tried one."""
    tried: list[str] = []
    opened = deployment.new_session

    def session(**kwargs: Any) -> Any:
        made = opened(**kwargs)

        def unreachable(model: Any, context: Any = None, **_: Any) -> None:
            region = (context or {}).get("client_region")
            if region == SOURCE:
                service = model.service_model.endpoint_prefix
                tried.append(f"{service}:{model.name}")
                raise EndpointConnectionError(endpoint_url=f"https://{service}.{SOURCE}.amazonaws.com/")

        made.events.register_first("before-parameter-build", unreachable)
        return made

    monkeypatch.setattr(deployment, "new_session", session)
    return tried


def _copies(stack: Stack) -> list[dict[str, Any]]:
    return list(boto3.client("ec2", region_name=COPY).describe_snapshots(OwnerIds=["self"])["Snapshots"])


def _restored_volumes(region: str) -> list[dict[str, Any]]:
    volumes = boto3.client("ec2", region_name=region).describe_volumes()["Volumes"]
    return [v for v in volumes if any(t["Key"] == TAG_RESTORED_FROM for t in v.get("Tags") or ())]


def test_copies_carry_the_device_and_the_instance_spec(copied):
    copies = _copies(copied)
    assert len(copies) == 3 and {c["VolumeId"] for c in copies} == {"vol-ffffffff"}  # EC2's placeholder
    tags = [{t["Key"]: t["Value"] for t in c["Tags"]} for c in copies]
    assert sorted(t[TAG_DEVICE] for t in tags) == DEVICES
    spec = dict(item.split("=", 1) for item in tags[0][TAG_INSTANCE_SPEC].split(","))
    assert spec["arch"] == "arm64" and spec["boot"] == "uefi" and spec["root"] == "/dev/xvda"
    assert spec["imds"] == "required" and spec["tpm"] == "v2.0" and spec["type"] == "m7g.large"
    assert all(len(c["Tags"]) < 50 for c in copies)  # a slot stays free for verified-at


def test_points_in_the_copy_region_list_every_device(copied):
    result = copied.cli("points", "web-1", "--from-region", COPY, "--json")
    assert result.exit_code == 0, result.output
    [point] = json.loads(result.output)
    assert point["state"] == "completed"
    assert [v["device"] for v in point["volumes"]] == DEVICES
    assert {v["volume_id"] for v in point["volumes"]} != {"vol-ffffffff"}

    table = copied.cli("points", "web-1", "--from-region", COPY)
    for device, size in zip(DEVICES, (20, 30, 8), strict=True):
        assert f"{device} {size} GiB snap-" in table.output


def test_points_in_the_source_region_name_the_regions_holding_a_completed_copy(copied):
    [point] = json.loads(copied.cli("points", "web-1", "--json").output)
    assert point["copy_regions"] == [COPY]
    assert COPY in copied.cli("points", "web-1").output


def test_a_missing_copy_makes_the_point_incomplete_and_the_restore_fails(copied):
    ec2 = boto3.client("ec2", region_name=COPY)
    [gone] = [c for c in _copies(copied) if {"Key": TAG_DEVICE, "Value": "/dev/sdg"} in c["Tags"]]
    ec2.delete_snapshot(SnapshotId=gone["SnapshotId"])

    [point] = json.loads(copied.cli("points", "web-1", "--from-region", COPY, "--json").output)
    assert point["state"] == "incomplete" and point["missing_devices"] == ["/dev/sdg"]

    dry = copied.cli("restore", "web-1", "--from-region", COPY, "--run", "20261126T030000Z", "--dry-run")
    assert dry.exit_code == 2, dry.output
    assert "/dev/sdg: the snapshot of this run no longer exists" in dry.output
    partial = copied.cli("restore", "web-1", "--from-region", COPY, "--run", "20261126T030000Z", "--az", "us-west-2a")
    assert partial.exit_code == 2, partial.output
    assert _restored_volumes(COPY) == []


def test_region_after_the_verb_is_the_stack_region(copied):
    before = copied.cli("points", "web-1", "--json")
    after = copied.cli("points", "web-1", "--region", SOURCE, "--json")
    assert after.exit_code == 0, after.output
    assert json.loads(after.output) == json.loads(before.output)


def test_restore_in_the_copy_region_with_the_source_region_down(copied, source_down):
    scope = ["--from-region", COPY, "--deployment-id", DEPLOYMENT_ID]

    listed = copied.cli("points", "web-1", *scope, "--json")
    assert listed.exit_code == 0, listed.output
    assert [v["device"] for v in json.loads(listed.output)[0]["volumes"]] == DEVICES

    dry = copied.cli("restore", "web-1", *scope, "--az", "us-west-2a", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.output.count("CreateVolume snap-") == 3 and "no problem found" in dry.output

    volumes = copied.cli("restore", "web-1", *scope, "--az", "us-west-2a")
    assert volumes.exit_code == 0, volumes.output
    restored = _restored_volumes(COPY)
    assert len(restored) == 3 and all(v["State"] == "available" for v in restored)
    for device in DEVICES:
        assert f"restored {device}: vol-" in volumes.output and f"--device {device}" in volumes.output
    assert "vol-ffffffff" not in volumes.output

    launched = copied.cli("restore", "web-1", *scope, "--az", "us-west-2a", "--as", "instance")
    assert launched.exit_code == 0, launched.output
    image_id = launched.output.split("AMI: ")[1].split()[0]
    ec2 = boto3.client("ec2", region_name=COPY)
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert image["Architecture"] == "arm64" and image["BootMode"] == "uefi"
    assert image["TpmSupport"] == "v2.0" and image["ImdsSupport"] == "v2.0" and image["EnaSupport"] is True
    assert image["RootDeviceName"] == "/dev/xvda"
    assert sorted(m["DeviceName"] for m in image["BlockDeviceMappings"]) == DEVICES
    copy_ids = {c["SnapshotId"] for c in _copies(copied)}
    assert {m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"]} == copy_ids
    instance_id = launched.output.split("instance: ")[1].split()[0]
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert instance["ImageId"] == image_id and instance["InstanceType"] == "m7g.large"
    assert instance["Architecture"] == "arm64" and instance["BootMode"] == "uefi"
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert source_down == []  # not one call tried the source Region


def test_without_a_deployment_id_an_unreachable_stack_region_is_named(copied, source_down):
    result = copied.cli("points", "web-1", "--from-region", COPY)
    assert result.exit_code == 2, result.output
    assert f"cannot reach the stack SmartVault in {SOURCE}" in result.output
    assert "pass --deployment-id" in result.output
    assert source_down  # it tried the stack, and only the stack
