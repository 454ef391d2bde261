"""moto_speed changes how moto finds snapshots, volumes and instances, never what it answers: every query
here gets the same answer, in the same order, with the index as without it."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from smart_vault_sim import moto_speed

REGION = "us-east-1"


def _fleet(ec2: Any) -> list[str]:
    """Three instances, two volumes snapshotted twice each, tags overwritten on one snapshot."""
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    snapshot_ids = []
    for n in range(3):
        instance = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        volume = ec2.create_volume(
            AvailabilityZone=f"{REGION}a",
            Size=8,
            TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "tier", "Value": ["hot", "cold"][n % 2]}]}],
        )["VolumeId"]
        for run in ("r1", "r2"):
            snapshot_ids.append(
                ec2.create_snapshot(
                    VolumeId=volume,
                    TagSpecifications=[
                        {
                            "ResourceType": "snapshot",
                            "Tags": [
                                {"Key": "instance", "Value": instance},
                                {"Key": "run", "Value": run},
                                {"Key": "fleet", "Value": f"web-{n}"},
                            ],
                        }
                    ],
                )["SnapshotId"]
            )
    # A tag value that changes: the index keeps the old value as a candidate, moto re-checks it.
    ec2.create_tags(Resources=[snapshot_ids[0]], Tags=[{"Key": "run", "Value": "r9"}])
    ec2.delete_snapshot(SnapshotId=snapshot_ids[1])
    return snapshot_ids


QUERIES: list[dict[str, Any]] = [
    {"Filters": [{"Name": "tag:run", "Values": ["r1"]}]},
    {"Filters": [{"Name": "tag:run", "Values": ["r9", "r2"]}]},
    {"Filters": [{"Name": "tag:fleet", "Values": ["web-*"]}]},  # a pattern: moto's full scan
    {"Filters": [{"Name": "tag:fleet", "Values": ["web-1"]}, {"Name": "tag:run", "Values": ["r2"]}]},
    {"Filters": [{"Name": "tag:absent", "Values": ["x"]}]},
    {"Filters": [{"Name": "status", "Values": ["completed"]}]},
]


def _answers(ec2: Any, snapshot_ids: list[str]) -> list[Any]:
    answers: list[Any] = [
        [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"], **q)["Snapshots"]] for q in QUERIES
    ]
    ids_filter = {"Filters": [{"Name": "snapshot-id", "Values": [snapshot_ids[4], snapshot_ids[1], snapshot_ids[2]]}]}
    answers.append([s["SnapshotId"] for s in ec2.describe_snapshots(**ids_filter)["Snapshots"]])
    answers.append(
        [s["SnapshotId"] for s in ec2.describe_snapshots(SnapshotIds=[snapshot_ids[2], snapshot_ids[0]])["Snapshots"]]
    )
    volumes = [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]]
    by_volume_filter = {"Filters": [{"Name": "volume-id", "Values": [volumes[2], volumes[0], "vol-0000ffff"]}]}
    answers.append([v["VolumeId"] for v in ec2.describe_volumes(**by_volume_filter)["Volumes"]])
    tagged = {"Filters": [{"Name": "tag:tier", "Values": ["cold"]}]}
    answers.append([v["VolumeId"] for v in ec2.describe_volumes(**tagged)["Volumes"]])
    for missing in ([snapshot_ids[1]], [snapshot_ids[2], snapshot_ids[2]]):  # deleted; named twice
        with pytest.raises(ClientError) as refused:
            ec2.describe_snapshots(SnapshotIds=missing)
        answers.append(refused.value.response["Error"]["Code"])
    return answers


def test_describe_snapshots_answers_as_moto_does_with_and_without_the_index():
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        snapshot_ids = _fleet(ec2)
        plain = _answers(ec2, snapshot_ids)
        with moto_speed.patched():
            indexed = _answers(ec2, snapshot_ids)
            # And snapshots tagged while the index exists are found through it
            more = _fleet(ec2)
            indexed_after = _answers(ec2, more)
        plain_after = _answers(ec2, more)
    assert indexed == plain
    assert indexed_after == plain_after
    assert plain[0]  # the queries do find snapshots


def test_instance_lookups_by_id_find_every_instance_and_refuse_an_unknown_one():
    with mock_aws(), moto_speed.patched():
        ec2 = boto3.client("ec2", region_name=REGION)
        ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

        def instance_type(instance_id: str) -> str:  # DescribeInstanceAttribute: moto's get_instance
            answer = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="instanceType")
            return str(answer["InstanceType"]["Value"])

        first = [i["InstanceId"] for i in ec2.run_instances(ImageId=ami, MinCount=3, MaxCount=3)["Instances"]]
        assert instance_type(first[1]) == "m1.small"  # indexes the reservation
        later = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]
        # Then an instance launched after the index was built is found, and so are the earlier ones
        assert instance_type(later["InstanceId"]) == "t3.micro"
        assert [instance_type(i) for i in first] == ["m1.small"] * 3
        with pytest.raises(ClientError) as refused:
            instance_type("i-0123456789abcdef0")
        assert refused.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
