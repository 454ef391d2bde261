"""The emulated EC2 refuses CreateVolume / RegisterImage / RunInstances requests as EC2 does
(moto alone accepts them), and keeps ClientToken idempotency (see restore_rules for the pages)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from smart_vault_sim import fleet
from tests.conftest import REGION


@pytest.fixture
def snapshot(account):
    web = account.add_instance("web-1", volumes=[("/dev/xvda", 8), ("/dev/sdf", 20)])
    ids = {}
    for device, volume_id in web.volume_ids.items():
        ids[device] = account.ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]
    return ids


def _code(call, **params) -> str:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return str(caught.value.response["Error"]["Code"])


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"Size": 10}, "InvalidParameterValue"),  # smaller than the 20 GiB snapshot
        ({"VolumeType": "gp2", "Iops": 3000}, "InvalidParameterCombination"),
        ({"VolumeType": "gp3", "Iops": 2000}, "InvalidParameterValue"),  # gp3: 3,000-80,000
        ({"VolumeType": "gp3", "Iops": 90_000}, "InvalidParameterValue"),
        ({"VolumeType": "io1"}, "MissingParameter"),  # io1/io2 need Iops
        ({"VolumeType": "io2", "Iops": 300_000}, "InvalidParameterValue"),  # io2: 100-256,000
        ({"VolumeType": "st1", "Size": 500, "Throughput": 250}, "InvalidParameterCombination"),  # gp3 only
        ({"VolumeType": "gp3", "Throughput": 100}, "InvalidParameterValue"),  # 125-2,000
        ({"VolumeType": "standard", "Size": 2000}, "InvalidParameterValue"),  # standard: 1-1,024
        ({"AvailabilityZone": "us-west-2a"}, "InvalidParameterValue"),  # another region's zone
    ],
)
def test_create_volume_refuses_what_ec2_refuses(account, snapshot, params, code):
    request = {"AvailabilityZone": f"{REGION}a", "SnapshotId": snapshot["/dev/sdf"], **params}
    assert _code(account.ec2.create_volume, **request) == code


def test_create_volume_from_an_archived_snapshot_is_refused(account, snapshot):
    fleet.ec2_backend(REGION).snapshots[snapshot["/dev/sdf"]].storage_tier = "archive"
    code = _code(account.ec2.create_volume, AvailabilityZone=f"{REGION}a", SnapshotId=snapshot["/dev/sdf"])
    assert code == "IncorrectState"


def test_client_token_returns_the_same_volume_and_refuses_changed_parameters(account, snapshot):
    request = {"AvailabilityZone": f"{REGION}a", "SnapshotId": snapshot["/dev/sdf"], "ClientToken": "restore-1"}
    first = account.ec2.create_volume(**request)
    again = account.ec2.create_volume(**request)
    assert again["VolumeId"] == first["VolumeId"]
    assert (
        len(
            account.ec2.describe_volumes(Filters=[{"Name": "snapshot-id", "Values": [snapshot["/dev/sdf"]]}])["Volumes"]
        )
        == 1
    )
    assert _code(account.ec2.create_volume, **{**request, "Size": 30}) == "IdempotentParameterMismatch"


def test_a_new_volume_is_creating_before_it_is_available(account, snapshot):
    made = account.ec2.create_volume(AvailabilityZone=f"{REGION}a", SnapshotId=snapshot["/dev/sdf"])
    assert made["State"] == "creating"
    states = [account.ec2.describe_volumes(VolumeIds=[made["VolumeId"]])["Volumes"][0]["State"] for _ in range(2)]
    assert states == ["creating", "available"]


def _image(snapshot, **overrides):
    request = {
        "Name": "restore-web-1",
        "RootDeviceName": "/dev/xvda",
        "Architecture": "x86_64",
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot["/dev/xvda"]}},
            {"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": snapshot["/dev/sdf"], "VolumeSize": 20}},
        ],
    }
    request.update(overrides)
    return request


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"RootDeviceName": "/dev/sda1"}, "InvalidBlockDeviceMapping"),  # root not in the mappings
        ({"BlockDeviceMappings": "duplicate"}, "InvalidBlockDeviceMapping"),
        ({"BlockDeviceMappings": "encrypted"}, "InvalidBlockDeviceMapping"),  # encryption not settable
        ({"BlockDeviceMappings": "small"}, "InvalidBlockDeviceMapping"),
        ({"BootMode": "bios"}, "InvalidParameterValue"),
    ],
)
def test_register_image_refuses_what_ec2_refuses(account, snapshot, change, code):
    request = _image(snapshot)
    mappings = request["BlockDeviceMappings"]
    if change.get("BlockDeviceMappings") == "duplicate":
        mappings[1]["DeviceName"] = "/dev/xvda"
    elif change.get("BlockDeviceMappings") == "encrypted":
        mappings[1]["Ebs"]["Encrypted"] = True
    elif change.get("BlockDeviceMappings") == "small":
        mappings[1]["Ebs"]["VolumeSize"] = 10
    else:
        request.update(change)
    assert _code(account.ec2.register_image, **request) == code
    assert account.ec2.describe_images(Owners=["self"])["Images"] == []


def test_a_registered_image_lists_its_mappings_pins_its_snapshots_and_launches_them(account, snapshot):
    image_id = account.ec2.register_image(**_image(snapshot, BootMode="uefi", EnaSupport=True))["ImageId"]
    image = account.ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert [m["DeviceName"] for m in image["BlockDeviceMappings"]] == ["/dev/xvda", "/dev/sdf"]
    assert _code(account.ec2.register_image, **_image(snapshot)) == "InvalidAMIName.Duplicate"
    assert _code(account.ec2.delete_snapshot, SnapshotId=snapshot["/dev/sdf"]) == "InvalidSnapshot.InUse"

    launch = {"ImageId": image_id, "MinCount": 1, "MaxCount": 1, "ClientToken": "launch-1"}
    first = account.ec2.run_instances(**launch)["Instances"][0]
    assert account.ec2.run_instances(**launch)["Instances"][0]["InstanceId"] == first["InstanceId"]
    assert _code(account.ec2.run_instances, **{**launch, "InstanceType": "m5.large"}) == "IdempotentParameterMismatch"
    volume_ids = [m["Ebs"]["VolumeId"] for m in first["BlockDeviceMappings"]]
    volumes = account.ec2.describe_volumes(VolumeIds=volume_ids)["Volumes"]
    assert {v["SnapshotId"] for v in volumes} == set(snapshot.values())

    account.ec2.deregister_image(ImageId=image_id)
    account.ec2.delete_snapshot(SnapshotId=snapshot["/dev/sdf"])  # no longer in use


def test_run_instances_refuses_groups_of_another_vpc(account, snapshot):
    image_id = account.ec2.register_image(**_image(snapshot))["ImageId"]
    vpc = account.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    other = account.ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = account.ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    group = account.ec2.create_security_group(GroupName="g", Description="g", VpcId=other)["GroupId"]
    code = _code(
        account.ec2.run_instances, ImageId=image_id, MinCount=1, MaxCount=1, SubnetId=subnet, SecurityGroupIds=[group]
    )
    assert code == "InvalidParameter"
