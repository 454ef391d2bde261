"""`smart-vault points` and `restore` against the emulated stack, from a recovery point the real
workflow made (one simulated backup run)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from smart_vault.constants import TAG_RESTORED_FROM
from smart_vault_cli import main
from smart_vault_sim import fleet
from smart_vault_sim.fleet import set_snapshot_state
from tests.cli.conftest import Stack, deployed

RUN = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
OPERATOR_POLICY = Path(__file__).parents[2] / "docs" / "restore-operator-policy.json"
SCENARIO = {
    "name": "restore",
    "settings": {"keep_min": 1},
    "instances": [
        {
            "name": "web-1",
            "tags": {"backup": "True", "team": "web"},
            "volumes": [{"device": "/dev/xvda", "size_gib": 8}, {"device": "/dev/sdf", "size_gib": 20}],
        },
        {"name": "db-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]},
    ],
    "faults": [{"operation": "CreateVolume", "instance": "db-1", "error": "VolumeLimitExceeded", "count": 1}],
    "runs": [{"at": "2026-11-26T03:00:00Z"}],
}


@pytest.fixture
def backed_up(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setattr(main, "_POLL_SECONDS", 0)
    with deployed(SCENARIO, monkeypatch) as stack:
        report = stack.sim.run_at(0, RUN)
        assert report["execution"]["status"] == "SUCCEEDED", report["execution"]
        # Every restore below runs with the example operator policy (docs/restore.md), no more.
        stack.sim.authorize_operator(json.loads(OPERATOR_POLICY.read_text()))
        stack.sim.tap.reset_counts()
        yield stack


def _volumes(stack: Stack) -> list[dict]:
    return stack.account.ec2.describe_volumes()["Volumes"]


def _restored(stack: Stack) -> list[dict]:
    return [v for v in _volumes(stack) if any(t["Key"] == TAG_RESTORED_FROM for t in v.get("Tags") or ())]


def _instance_id(stack: Stack, name: str) -> str:
    return stack.account.instance_ids[name]


def test_points_lists_the_run_with_devices_sizes_and_snapshots(backed_up):
    result = backed_up.cli("points", "web-1")
    assert result.exit_code == 0, result.output
    assert "20261126T030000Z" in result.output and "completed" in result.output
    assert "/dev/sdf 20 GiB snap-" in result.output and "/dev/xvda 8 GiB snap-" in result.output

    listed = json.loads(backed_up.cli("points", "--json").output)
    assert {p["instance_name"] for p in listed} == {"web-1", "db-1"}
    [web] = [p for p in listed if p["instance_name"] == "web-1"]
    assert web["state"] == "completed" and [v["device"] for v in web["volumes"]] == ["/dev/sdf", "/dev/xvda"]


def test_points_of_an_unknown_instance_says_so(backed_up):
    result = backed_up.cli("points", "nobody")
    assert result.exit_code == 0 and "no recovery point of nobody" in result.output


def test_restore_volumes_in_the_instance_zone_with_tags_and_attach_commands(backed_up):
    web = _instance_id(backed_up, "web-1")
    zone = backed_up.account.ec2.describe_instances(InstanceIds=[web])["Reservations"][0]["Instances"][0]["Placement"][
        "AvailabilityZone"
    ]

    result = backed_up.cli("restore", "web-1")

    assert result.exit_code == 0, result.output
    restored = _restored(backed_up)
    assert len(restored) == 2
    assert {v["AvailabilityZone"] for v in restored} == {zone}
    assert sorted(v["Size"] for v in restored) == [8, 20]
    assert all(v["State"] == "available" for v in restored)
    for volume in restored:
        tags = {t["Key"]: t["Value"] for t in volume["Tags"]}
        assert tags[TAG_RESTORED_FROM] == volume["SnapshotId"]
    assert f"--instance-id {web} --device /dev/sdf" in result.output
    assert result.output.count("aws ec2 attach-volume") == 2
    # Counted by the emulator: two CreateVolume calls, polls until available.
    assert backed_up.sim.tap.calls["ec2:CreateVolume"] == 2
    assert backed_up.sim.tap.calls["ec2:DescribeVolumes"] >= 2


def test_restore_rerun_is_idempotent(backed_up):
    assert backed_up.cli("restore", "web-1").exit_code == 0
    first = sorted(v["VolumeId"] for v in _restored(backed_up))

    again = backed_up.cli("restore", "web-1", "--run", "20261126T030000Z")

    assert again.exit_code == 0, again.output
    assert sorted(v["VolumeId"] for v in _restored(backed_up)) == first


def test_dry_run_lists_every_problem_and_creates_nothing(backed_up):
    snapshots = backed_up.account.ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:smart-vault:instance-name", "Values": ["web-1"]}]
    )["Snapshots"]
    set_snapshot_state(backed_up.account.region, snapshots[0]["SnapshotId"], "pending")
    before = len(_volumes(backed_up))

    result = backed_up.cli("restore", "web-1", "--run", "20261126T030000Z", "--az", "eu-west-1a", "--dry-run")

    assert result.exit_code == 2, result.output
    assert "problem: Availability Zone eu-west-1a is not in region us-east-1" in result.output
    assert f"snapshot {snapshots[0]['SnapshotId']} is pending (" in result.output
    assert "2 problem(s); nothing was created" in result.output
    assert len(_volumes(backed_up)) == before
    assert backed_up.sim.tap.calls["ec2:CreateVolume"] == 0


def test_dry_run_without_problems_prints_the_plan(backed_up):
    result = backed_up.cli("restore", "web-1", "--dry-run", "--as", "instance")
    assert result.exit_code == 0, result.output
    assert "RegisterImage smart-vault-restore-" in result.output and "root /dev/xvda" in result.output
    assert "RunInstances" in result.output and "no problem found" in result.output
    assert backed_up.sim.tap.calls["ec2:RegisterImage"] == 0 and backed_up.sim.tap.calls["ec2:RunInstances"] == 0


def _fail_second_create_volume(stack: Stack) -> None:
    """The restore's second CreateVolume fails as EC2 fails it when the account's volume storage
    quota is reached (VolumeLimitExceeded); the first succeeds."""
    fault = stack.sim.tap.fail("CreateVolume", "VolumeLimitExceeded", count=1)
    original, seen = fault.matches, {"CreateVolume": 0}

    def second_only(operation: str, params: dict) -> bool:
        if operation != "CreateVolume":
            return False
        seen[operation] += 1
        return seen[operation] == 2 and original(operation, params)

    fault.matches = second_only  # type: ignore[method-assign]


def test_a_failed_create_volume_deletes_the_volumes_already_made(backed_up):
    _fail_second_create_volume(backed_up)

    result = backed_up.cli("restore", "web-1")

    assert result.exit_code == 2, result.output
    assert "restore failed" in result.output and "VolumeLimitExceeded" in result.output
    assert "cleaned up: vol-" in result.output
    assert _restored(backed_up) == []
    assert backed_up.sim.tap.calls["ec2:DeleteVolume"] == 1


def test_a_restore_after_a_cleaned_up_failure_gets_fresh_volumes(backed_up):
    _fail_second_create_volume(backed_up)
    assert backed_up.cli("restore", "web-1").exit_code == 2  # first volume made, then deleted

    again = backed_up.cli("restore", "web-1")

    assert again.exit_code == 0, again.output
    restored = _restored(backed_up)
    assert len(restored) == 2 and all(v["State"] == "available" for v in restored)
    # The deleted volume's token answered "deleted" once; the next token made a new volume.
    assert backed_up.sim.tap.calls["ec2:CreateVolume"] == 2 + 3


def test_keep_partial_keeps_what_was_created(backed_up):
    _fail_second_create_volume(backed_up)

    result = backed_up.cli("restore", "web-1", "--keep-partial")

    assert result.exit_code == 2, result.output
    assert "kept (--keep-partial): vol-" in result.output
    assert len(_restored(backed_up)) == 1
    assert backed_up.sim.tap.calls["ec2:DeleteVolume"] == 0


def test_a_scenario_fault_on_create_volume_hits_that_instance_only(backed_up):
    db = backed_up.cli("restore", "db-1")
    assert db.exit_code == 2 and "VolumeLimitExceeded" in db.output
    assert backed_up.sim.tap.injected["CreateVolume:VolumeLimitExceeded"] == 1
    assert _restored(backed_up) == []
    assert backed_up.cli("restore", "db-1").exit_code == 0  # count 1: the retry succeeds


def test_restore_as_ami_maps_every_device(backed_up):
    result = backed_up.cli("restore", "web-1", "--as", "ami")
    assert result.exit_code == 0, result.output
    image_id = result.output.split("AMI: ")[1].split()[0]
    image = backed_up.account.ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert image["RootDeviceName"] == "/dev/xvda"
    assert sorted(m["DeviceName"] for m in image["BlockDeviceMappings"]) == ["/dev/sdf", "/dev/xvda"]
    # Re-run: the AMI of that name is found again, not registered twice.
    again = backed_up.cli("restore", "web-1", "--as", "ami")
    assert again.exit_code == 0 and f"AMI: {image_id}" in again.output


def test_restore_as_instance_launches_from_the_restored_ami(backed_up):
    result = backed_up.cli("restore", "web-1", "--as", "instance", "--instance-type", "m5.large")
    assert result.exit_code == 0, result.output
    instance_id = result.output.split("instance: ")[1].split()[0]
    launched = backed_up.account.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert launched["InstanceType"] == "m5.large"
    volumes = backed_up.account.ec2.describe_volumes(
        VolumeIds=[m["Ebs"]["VolumeId"] for m in launched["BlockDeviceMappings"]]
    )["Volumes"]
    snapshots = {v["SnapshotId"] for v in volumes}
    web_snaps = {
        s["SnapshotId"]
        for s in backed_up.account.ec2.describe_snapshots(
            OwnerIds=["self"], Filters=[{"Name": "tag:smart-vault:instance-name", "Values": ["web-1"]}]
        )["Snapshots"]
    }
    assert snapshots == web_snaps


def test_a_failed_run_instances_deregisters_the_ami(backed_up):
    backed_up.sim.tap.fail("RunInstances", "InsufficientInstanceCapacity", count=1)
    result = backed_up.cli("restore", "web-1", "--as", "instance")
    assert result.exit_code == 2, result.output
    assert "InsufficientInstanceCapacity" in result.output and "cleaned up: ami-" in result.output
    assert backed_up.account.ec2.describe_images(Owners=["self"])["Images"] == []


def test_one_point_selector_at_a_time(backed_up):
    result = backed_up.cli("restore", "web-1", "--latest", "--run", "20261126T030000Z")
    assert result.exit_code == 2 and "choose one of --at, --run and --latest" in result.output


def test_at_before_any_point(backed_up):
    result = backed_up.cli("restore", "web-1", "--at", "2026-11-25T00:00:00Z")
    assert result.exit_code == 2 and "no complete recovery point at or before" in result.output


def test_dry_run_names_an_archived_snapshot_and_an_unusable_kms_key(backed_up):
    kms = boto3.client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=key)
    [archived] = [
        s["SnapshotId"]
        for s in backed_up.account.ec2.describe_snapshots(
            OwnerIds=["self"], Filters=[{"Name": "tag:smart-vault:instance-name", "Values": ["db-1"]}]
        )["Snapshots"]
    ]
    fleet.ec2_backend(backed_up.account.region).snapshots[archived].storage_tier = "archive"

    result = backed_up.cli("restore", "db-1", "--kms-key", key, "--dry-run")

    assert result.exit_code == 2, result.output
    assert f"snapshot {archived} is archived: restore it first" in result.output
    assert f"--snapshot-id {archived} --temporary-restore-days N, or --permanent-restore" in result.output
    assert f"KMS key {key} is not usable (Disabled)" in result.output
    assert backed_up.sim.tap.calls["ec2:CreateVolume"] == 0


def test_the_operator_policy_denies_deleting_a_volume_no_restore_made(backed_up):
    from smart_vault.aws import Ec2
    from smart_vault.errors import PermissionDeniedError

    web_volume = next(v for v, (name, _) in backed_up.account.volumes.items() if name == "web-1")
    operator = Ec2(session=backed_up.sim.operator_session(region_name=backed_up.account.region))
    with pytest.raises(PermissionDeniedError, match="UnauthorizedOperation"):
        operator.delete_volume(web_volume)
    assert backed_up.sim.authorizer.denied[-1].startswith("operator ec2:DeleteVolume")


def test_points_show_the_lock_of_a_locked_snapshot(backed_up):
    [snapshot] = backed_up.account.ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:smart-vault:instance-name", "Values": ["db-1"]}]
    )["Snapshots"]
    backed_up.account.ec2.lock_snapshot(SnapshotId=snapshot["SnapshotId"], LockMode="governance", LockDuration=10)

    listed = json.loads(backed_up.cli("points", "db-1", "--json").output)

    [volume] = listed[0]["volumes"]
    assert volume["locked_until"] is not None
    assert "until " in backed_up.cli("points", "db-1").output


def test_a_second_restore_as_instance_after_the_first_was_terminated_launches_a_new_one(backed_up):
    first = backed_up.cli("restore", "web-1", "--as", "instance")
    assert first.exit_code == 0, first.output
    first_id = first.output.split("instance: ")[1].split()[0]
    again = backed_up.cli("restore", "web-1", "--as", "instance")
    assert again.output.split("instance: ")[1].split()[0] == first_id  # a re-run: the same instance
    backed_up.account.ec2.terminate_instances(InstanceIds=[first_id])

    second = backed_up.cli("restore", "web-1", "--as", "instance")

    assert second.exit_code == 0, second.output
    second_id = second.output.split("instance: ")[1].split()[0]
    assert second_id != first_id
    state = backed_up.account.ec2.describe_instances(InstanceIds=[second_id])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] in ("pending", "running")
