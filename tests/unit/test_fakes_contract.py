"""The in-memory adapters of the domain tier keep the real adapters' contracts.

Each check runs the real adapter against moto (with the exact AWS error injected where moto
cannot produce it) and the fake, and compares what a caller can observe: method signatures,
record fields, skip reasons and the error class and AWS code raised.
"""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

import pytest

from smart_vault.aws import Alerts, Ec2, Store
from smart_vault.constants import TAG_INSTANCE_ID, TAG_MANAGED
from smart_vault.errors import SmartVaultError
from smart_vault_sim import fleet
from tests.conftest import BUCKET, DEPLOYMENT, REGION
from tests.unit.domain.fakes import FakeAlerts, FakeEc2, FakeStore


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


@pytest.mark.parametrize(("real", "fake"), [(Ec2, FakeEc2), (Store, FakeStore), (Alerts, FakeAlerts)])
def test_fakes_offer_every_adapter_method_with_the_same_signature(real, fake):
    expected = public_methods(real)
    offered = public_methods(fake)
    for name, signature in expected.items():
        assert name in offered, f"{fake.__name__} lacks {name}"
        assert str(offered[name]) == str(signature), name


def raised(call) -> tuple[type[SmartVaultError], str | None]:
    with pytest.raises(SmartVaultError) as error:
        call()
    return type(error.value), error.value.aws_code


def test_snapshot_records_and_errors_match(account):
    real, fake = Ec2(), FakeEc2()
    built = account.add_instance("web-1", volumes=[("/dev/xvda", 8), ("/dev/sdf", 10)])
    fake_id = fake.add_instance("web-1", volumes=[("/dev/xvda", 8), ("/dev/sdf", 10)])
    tags = [{"Key": TAG_MANAGED, "Value": DEPLOYMENT}]
    args = {"exclude_boot": False, "exclude_data_volume_ids": [], "tags": tags, "description": "d"}

    made_real = real.create_snapshots(instance_id=built.instance_id, **args)
    made_fake = fake.create_snapshots(instance_id=fake_id, **args)
    # The domain indexes these; State and Progress it reads with defaults (moto's reply lacks State).
    required = {"SnapshotId", "VolumeId", "StartTime"}
    assert required <= set(made_real[0]) and required <= set(made_fake[0])
    assert isinstance(made_real[0]["StartTime"], datetime) and isinstance(made_fake[0]["StartTime"], datetime)

    # A deleted id is left out of DescribeSnapshots (AWS fails the SnapshotIds call with
    # InvalidSnapshot.NotFound; the adapter then asks by filter); a second delete is reported.
    gone_real, gone_fake = made_real[0]["SnapshotId"], made_fake[0]["SnapshotId"]
    kept_real, kept_fake = made_real[1]["SnapshotId"], made_fake[1]["SnapshotId"]
    assert real.delete_snapshot(gone_real) is None and fake.delete_snapshot(gone_fake) is None
    assert [s["SnapshotId"] for s in real.describe_snapshots([gone_real, kept_real])] == [kept_real]
    assert [s["SnapshotId"] for s in fake.describe_snapshots([gone_fake, kept_fake])] == [kept_fake]
    assert real.delete_snapshot(gone_real) == fake.delete_snapshot(gone_fake) == "already_deleted"

    # EC2 refuses to delete a snapshot a registered AMI uses; moto cannot register that link.
    in_use_real, in_use_fake = made_real[1]["SnapshotId"], made_fake[1]["SnapshotId"]
    account.tap.fail("DeleteSnapshot", "InvalidSnapshot.InUse", targets=[in_use_real])
    fake.in_use.add(in_use_fake)
    account.tap.activate(True)
    try:
        assert real.delete_snapshot(in_use_real) == fake.delete_snapshot(in_use_fake) == "in_use"
    finally:
        account.tap.activate(False)


def test_instance_queries_match(account):
    real, fake = Ec2(), FakeEc2()
    built = account.add_instance("web-1", volumes=[("/dev/xvda", 8), ("/dev/sdf", 10, {"backup": "False"})])
    fake_id = fake.add_instance("web-1", volumes=[("/dev/xvda", 8), ("/dev/sdf", 10, {"backup": "False"})])
    states = ("running", "stopped")

    # The query asks for the tag key: other values come back too, an untagged instance does not.
    for name, tags in (("typo-1", {"backup": "true"}), ("plain-1", {})):
        account.add_instance(name, tags=tags)
        fake.add_instance(name, tags=tags)
    found_real = real.find_instances("backup", states)
    found_fake = fake.find_instances("backup", states)
    names = [
        sorted(t["Value"] for i in found for t in i["Tags"] if t["Key"] == "Name") for found in (found_real, found_fake)
    ]
    assert names[0] == names[1] == ["typo-1", "web-1"]
    (inst_real,) = [i for i in found_real if i["InstanceId"] == built.instance_id]
    (inst_fake,) = [i for i in found_fake if i["InstanceId"] == fake_id]
    for key in ("InstanceId", "State", "Tags", "RootDeviceName", "BlockDeviceMappings", "Placement"):
        assert key in inst_real and key in inst_fake, key
    assert inst_real["RootDeviceName"] == inst_fake["RootDeviceName"] == "/dev/xvda"

    vols_real = real.volumes(m["Ebs"]["VolumeId"] for m in inst_real["BlockDeviceMappings"])
    vols_fake = fake.volumes(m["Ebs"]["VolumeId"] for m in inst_fake["BlockDeviceMappings"])
    assert sorted(v["Size"] for v in vols_real.values()) == sorted(v["Size"] for v in vols_fake.values()) == [8, 10]

    # By id (a re-run): an id that no longer exists is left out, whatever the state or tags.
    missing = "i-0123456789abcdef0"
    assert [i["InstanceId"] for i in real.instances_by_id([built.instance_id, missing])] == [built.instance_id]
    assert [i["InstanceId"] for i in fake.instances_by_id([fake_id, missing])] == [fake_id]

    # The managed-snapshot query matches on the marker and the instance tag only.
    marker = {TAG_MANAGED: DEPLOYMENT, TAG_INSTANCE_ID: built.instance_id}
    start = datetime(2026, 11, 1, tzinfo=UTC)
    fleet.add_snapshot(
        account.ec2, region=REGION, volume_id=built.volume_ids["/dev/xvda"], start_time=start, tags=marker
    )
    fake.add_snapshot(fake.volume_id(fake_id, "/dev/xvda"), start_time=start, tags={**marker, TAG_INSTANCE_ID: fake_id})
    assert len(real.managed_snapshots(DEPLOYMENT, built.instance_id)) == 1
    assert len(fake.managed_snapshots(DEPLOYMENT, fake_id)) == 1
    assert real.managed_snapshots("other", built.instance_id) == fake.managed_snapshots("other", fake_id) == []


def test_store_round_trips_json_and_misses_alike(account):
    real, fake = Store(BUCKET), FakeStore(BUCKET)
    moment = datetime(2026, 11, 26, tzinfo=UTC)
    for store in (real, fake):
        store.put_json("runs/a/1.json", {"at": moment, "n": 1})
        store.put_json("runs/a/2.json", [1, 2])
        store.put_json("other.json", {})
    assert real.keys("runs/a/") == fake.keys("runs/a/") == ["runs/a/1.json", "runs/a/2.json"]
    assert real.get_many(real.keys("runs/")) == fake.get_many(fake.keys("runs/"))
    assert real.get_json("runs/a/1.json") == fake.get_json("runs/a/1.json") == {"at": str(moment), "n": 1}
    assert raised(lambda: real.get_json("nope.json")) == raised(lambda: fake.get_json("nope.json"))


def test_a_root_volume_in_exclude_data_volume_ids_fails_alike(account):
    # EC2 API Reference, InstanceSpecification: "If you specify the ID of the root volume, the
    # request fails." moto_fixes makes the emulator do the same.
    real, fake = Ec2(), FakeEc2()
    built = account.add_instance("web-1", volumes=[("/dev/xvda", 8), ("/dev/sdf", 10)])
    fake_id = fake.add_instance("web-1", volumes=[("/dev/xvda", 8), ("/dev/sdf", 10)])
    args = {"exclude_boot": True, "tags": [], "description": "d"}
    real_root, fake_root = built.volume_ids["/dev/xvda"], fake.volume_id(fake_id, "/dev/xvda")
    assert raised(
        lambda: real.create_snapshots(instance_id=built.instance_id, exclude_data_volume_ids=[real_root], **args)
    ) == raised(lambda: fake.create_snapshots(instance_id=fake_id, exclude_data_volume_ids=[fake_root], **args))
