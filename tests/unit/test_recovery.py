"""Recovery points read back from real managed snapshots (made by the snapshot handler on moto),
and the restore requests planned from them."""

from __future__ import annotations

from datetime import timedelta

from smart_vault.aws import Ec2
from smart_vault.constants import TAG_RESTORED_FROM
from smart_vault.handlers import snapshot
from smart_vault.recovery.points import (
    ImageMetadata,
    client_token,
    group_points,
    image_refusal,
    image_request,
    latest_point,
    point_at,
    point_of_run,
    recovery_points,
    restore_problems,
    volume_requests,
)
from smart_vault_sim.fleet import set_snapshot_state
from tests.conftest import DEPLOYMENT, REGION, RUN_TIME, run_context


def _backup(account, instance_id, *, days_ago=0):
    run = run_context(at=RUN_TIME - timedelta(days=days_ago), name=f"exec-{days_ago}")
    account.invoke(snapshot.handler, account.job(instance_id, run=run))
    return run


def test_points_group_one_run_per_instance_with_devices_newest_first(account):
    account.configure(copy_tags=["Name", "team"])
    web = account.add_instance(
        "web-1", tags={"backup": "True", "team": "web"}, volumes=[("/dev/xvda", 8), ("/dev/sdf", 20)]
    )
    db = account.add_instance("db-1", volumes=[("/dev/xvda", 8)])
    old = _backup(account, web.instance_id, days_ago=2)
    new = _backup(account, web.instance_id)
    _backup(account, db.instance_id)

    points = recovery_points(Ec2(), DEPLOYMENT, web.instance_id)

    assert [p.run_id for p in points] == [new.run_id, old.run_id]
    latest = points[0]
    assert latest.instance_name == "web-1" and latest.run_time == new.run_time
    assert [(v.device, v.size_gib, v.volume_id) for v in latest.volumes] == [
        ("/dev/sdf", 20, web.volume_ids["/dev/sdf"]),
        ("/dev/xvda", 8, web.volume_ids["/dev/xvda"]),
    ]
    assert latest.complete and latest.state == "completed"
    assert latest_point(points) == latest
    assert point_at(points, RUN_TIME - timedelta(days=1)) == points[1]
    assert point_at(points, RUN_TIME - timedelta(days=3)) is None
    everyone = recovery_points(Ec2(), DEPLOYMENT)
    assert {p.instance_id for p in everyone} == {web.instance_id, db.instance_id}


def test_a_point_is_complete_only_when_every_device_completed(account):
    web = account.add_instance("web-1", volumes=[("/dev/xvda", 8), ("/dev/sdf", 20)])
    run = _backup(account, web.instance_id)
    snaps = account.snapshots(web.instance_id)
    set_snapshot_state(REGION, snaps[0]["SnapshotId"], "pending")

    point = point_of_run(recovery_points(Ec2(), DEPLOYMENT, web.instance_id), run.run_id)
    assert point is not None and point.state == "pending" and not point.complete
    assert latest_point([point]) is None

    # A device whose snapshot was deleted leaves the point incomplete (the device map names it).
    set_snapshot_state(REGION, snaps[0]["SnapshotId"], "completed")
    account.ec2.delete_snapshot(SnapshotId=snaps[1]["SnapshotId"])
    point = recovery_points(Ec2(), DEPLOYMENT, web.instance_id)[0]
    assert point.state == "incomplete" and len(point.missing_devices) == 1
    problems = restore_problems(point, zone="us-east-1a", region=REGION, zones=["us-east-1a"])
    assert problems == [f"{point.missing_devices[0]}: the snapshot of this run no longer exists"]


def test_a_completed_snapshot_wins_over_an_error_one_of_the_same_run():
    def snap(sid, state, start):
        tags = {
            "smart-vault:instance-id": "i-0123456789abcdef0",
            "smart-vault:run-id": "20261126T030000Z",
            "smart-vault:run-time": "2026-11-26T03:00:00Z",
            "smart-vault:device-map": "vol-0123456789abcdef0=/dev/xvda",
        }
        return {
            "SnapshotId": sid,
            "VolumeId": "vol-0123456789abcdef0",
            "State": state,
            "StartTime": start,
            "VolumeSize": 8,
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
        }

    [point] = group_points(
        [snap("snap-00000000000000001", "error", "1"), snap("snap-00000000000000002", "completed", "2")]
    )
    assert point.complete and point.volumes[0].snapshot_id == "snap-00000000000000002"


def test_volume_requests_keep_type_iops_throughput_and_tags_and_are_deterministic(account):
    web = account.add_instance("web-1", volumes=[("/dev/xvda", 8), ("/dev/sdf", 20)])
    data = web.volume_ids["/dev/sdf"]
    account.ec2.modify_volume(VolumeId=data, VolumeType="gp3", Iops=4000, Throughput=250)
    account.ec2.create_tags(
        Resources=[data], Tags=[{"Key": "team", "Value": "web"}, {"Key": "smart-vault:x", "Value": "y"}]
    )
    _backup(account, web.instance_id)
    point = recovery_points(Ec2(), DEPLOYMENT, web.instance_id)[0]
    originals = Ec2().volumes([v.volume_id for v in point.volumes])

    requests = {r.device: r.params for r in volume_requests(point, "us-east-1b", originals=originals)}

    sdf = requests["/dev/sdf"]
    assert sdf["AvailabilityZone"] == "us-east-1b" and sdf["Size"] == 20
    assert (sdf["VolumeType"], sdf["Iops"], sdf["Throughput"]) == ("gp3", 4000, 250)
    tags = {t["Key"]: t["Value"] for t in sdf["TagSpecifications"][0]["Tags"]}
    assert tags == {"team": "web", TAG_RESTORED_FROM: point.volume("/dev/sdf").snapshot_id}
    assert len(sdf["ClientToken"]) <= 64
    assert sdf["ClientToken"] == client_token(point, "/dev/sdf", "us-east-1b")
    assert sdf["ClientToken"] != requests["/dev/xvda"]["ClientToken"]
    assert client_token(point, "/dev/sdf", "us-east-1a") != sdf["ClientToken"]
    # The original volume gone: the snapshot's size and encryption, the fallback type.
    gone = {r.device: r.params for r in volume_requests(point, "us-east-1b", originals={})}
    assert gone["/dev/sdf"]["VolumeType"] == "gp3" and "Iops" not in gone["/dev/sdf"]


def test_problems_name_the_zone_pending_archive_and_kms_key(account):
    web = account.add_instance("web-1", volumes=[("/dev/xvda", 8)])
    _backup(account, web.instance_id)
    point = recovery_points(Ec2(), DEPLOYMENT, web.instance_id)[0]
    archived = group_points(
        [
            {**s, "StorageTier": "archive", "State": "pending", "Progress": "40%"}
            for s in account.snapshots(web.instance_id)
        ]
    )[0]

    problems = restore_problems(
        archived, zone="eu-west-1a", region=REGION, zones=["us-east-1a"], unusable_keys={"alias/x": "Disabled"}
    )

    assert problems[0] == "Availability Zone eu-west-1a is not in region us-east-1"
    assert "is pending (40%), not completed" in problems[1]
    assert "is archived: restore it first" in problems[2]
    assert problems[3].startswith("KMS key alias/x is not usable (Disabled)")
    assert restore_problems(point, zone="us-east-1a", region=REGION, zones=["us-east-1a"]) == []


def test_image_request_maps_every_device_and_refuses_billing_products(account):
    web = account.add_instance("web-1", volumes=[("/dev/xvda", 8), ("/dev/sdf", 20)])
    _backup(account, web.instance_id)
    point = recovery_points(Ec2(), DEPLOYMENT, web.instance_id)[0]
    [raw] = Ec2().instances_by_id([web.instance_id])
    meta = ImageMetadata.from_instance(raw)

    assert image_refusal(point, meta) is None
    params = image_request(point, meta, originals={})
    assert params["RootDeviceName"] == "/dev/xvda"
    assert sorted(m["DeviceName"] for m in params["BlockDeviceMappings"]) == ["/dev/sdf", "/dev/xvda"]
    assert {m["Ebs"]["SnapshotId"] for m in params["BlockDeviceMappings"]} == {v.snapshot_id for v in point.volumes}

    windows = ImageMetadata(root_device="/dev/xvda", architecture="x86_64", platform="windows")
    assert "Windows" in (image_refusal(point, windows) or "")
    rhel = ImageMetadata(root_device="/dev/xvda", architecture="x86_64", usage_operation="RunInstances:0010")
    assert "RunInstances:0010" in (image_refusal(point, rhel) or "")
    no_root = ImageMetadata(root_device="/dev/sda1", architecture="x86_64")
    assert "no snapshot of the root device /dev/sda1" in (image_refusal(point, no_root) or "")
