"""Which instances and volumes a run backs up, how it paces them and how it tags snapshots."""

from __future__ import annotations

import pytest

from smart_vault.backup.discovery import discover, find_targets, select_instances
from smart_vault.backup.inventory import MAX_TAG_VALUE, MAX_TAGS_PER_RESOURCE, snapshot_tags
from smart_vault.constants import TAG_DEVICE_MAP, TAG_MANAGED, TAG_RUN_ID
from smart_vault.errors import PermissionDeniedError
from smart_vault.models import InstanceTarget, RunContext, RunRequest, VolumeTarget
from tests.unit.domain.conftest import DEPLOYMENT, run, settings
from tests.unit.domain.fakes import CLOCK


def test_selects_tagged_running_and_stopped_instances_with_their_volumes(ec2):
    web = ec2.add_instance("web-1", volumes=[("/dev/xvda", 8), ("/dev/sdf", 100)])
    ec2.add_instance("db-stopped", state="stopped")
    ec2.add_instance("untagged", tags={})
    ec2.add_instance("wrong-value", tags={"backup": "False"})
    ec2.add_instance("gone", state="terminated")

    targets = find_targets(settings=settings(), ec2=ec2)

    assert [t.name for t in targets] == ["web-1", "db-stopped"]  # by instance id
    assert targets[0].volumes == (
        VolumeTarget(volume_id=ec2.volume_id(web, "/dev/xvda"), device="/dev/xvda", root=True, size_gib=8),
        VolumeTarget(volume_id=ec2.volume_id(web, "/dev/sdf"), device="/dev/sdf", root=False, size_gib=100),
    )
    assert ec2.calls == {"ec2:DescribeInstances": 1, "ec2:DescribeVolumes": 1}


def test_opted_out_volumes_and_copied_tags(ec2):
    config = settings(copy_tags=["Name", "team", "aws:cloudformation:stack-name"])
    web = ec2.add_instance(
        "web-1",
        tags={"backup": "True", "team": "web", "secret": "x", "aws:cloudformation:stack-name": "s"},
        volumes=[("/dev/xvda", 8, {"backup": "FALSE"}), ("/dev/sdf", 100), ("/dev/sdg", 5, {"backup": "false"})],
    )
    (target,) = find_targets(settings=config, ec2=ec2)
    assert [v.device for v in target.volumes] == ["/dev/sdf"]
    # The opted-out root is left to ExcludeBootVolume; only data volumes are listed.
    assert target.excluded_volume_ids == (ec2.volume_id(web, "/dev/sdg"),)
    assert target.copied_tags == {"Name": "web-1", "team": "web"}  # aws: tags cannot be copied


def test_custom_tag_key_and_value(ec2):
    ec2.add_instance("a", tags={"snapshot-policy": "daily"})
    ec2.add_instance("b", tags={"backup": "True"})
    config = settings(backup_tag_key="snapshot-policy", backup_tag_value="daily")
    assert [t.name for t in find_targets(settings=config, ec2=ec2)] == ["a"]


def test_start_delays_spread_each_wave_under_the_create_rate(ec2):
    for n in range(10):
        ec2.add_instance(f"n-{n}")
    targets = find_targets(settings=settings(create_rate_per_second=4, map_concurrency=8), ec2=ec2)
    assert [t.start_delay_seconds for t in targets] == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0]


def test_an_empty_fleet_makes_no_describe_volumes_call(ec2):
    assert find_targets(settings=settings(), ec2=ec2) == []
    assert ec2.calls == {"ec2:DescribeInstances": 1}


def test_a_named_instance_that_does_not_exist_is_skipped_with_a_reason(ec2):
    # A re-run must not fail because one named instance is gone.
    a = ec2.add_instance("a")
    targets = find_targets(settings=settings(), ec2=ec2, instance_ids=[a, "i-0123456789abcdef0"])
    assert [(t.instance_id, t.skip_reason) for t in targets] == [
        (a, None),
        ("i-0123456789abcdef0", "instance does not exist (named in instance_ids)"),
    ]
    assert targets[1].volumes == ()


def test_discover_writes_the_inventory_and_returns_a_small_pointer(ec2, store):
    a = ec2.add_instance("a", volumes=[("/dev/xvda", 8), ("/dev/sdf", 20)])
    ec2.add_instance("b")
    request = RunRequest(time=CLOCK, dry_run=True, instance_ids=(a,))
    result = discover(
        request,
        execution_arn=run().execution_arn,
        execution_name="exec-1",
        settings=settings(),
        ec2=ec2,
        store=store,
    )
    assert result.inventory_key == "runs/20261126T030000Z/exec-1/inventory.json"
    assert result.run.dry_run is True and (result.instance_count, result.volume_count) == (1, 2)
    items = [InstanceTarget.from_dict(i) for i in store.get_json(result.inventory_key)]
    assert [i.instance_id for i in items] == [a]
    assert store.calls["s3:PutObject"] == 1


def test_the_run_spaces_each_instance_checks_by_fleet_size_over_the_check_rate(ec2, store):
    # 11 instances to back up and one named but gone (skipped: it makes no check)
    ids = [ec2.add_instance(f"n-{n}") for n in range(11)]
    request = RunRequest(time=CLOCK, instance_ids=(*ids, "i-0123456789abcdef0"))
    result = discover(
        request,
        execution_arn=run().execution_arn,
        execution_name="exec-1",
        settings=settings(check_rate_per_second=5),
        ec2=ec2,
        store=store,
    )
    # ceil(11 / 5): each instance waits at least 3 s between checks, so 11 instances make at most
    # 5 checks a second on average; 10,000 at the default 5/s wait at least 2,000 s
    assert result.run.min_check_interval_seconds == 3
    assert RunContext.from_dict(result.run.to_dict()) == result.run  # it reaches every child


def test_discover_passes_aws_errors_through_classified(ec2, store):
    ec2.fail("ec2:DescribeInstances", "UnauthorizedOperation")
    with pytest.raises(PermissionDeniedError):
        discover(
            RunRequest(time=CLOCK),
            execution_arn="arn",
            execution_name="exec-1",
            settings=settings(),
            ec2=ec2,
            store=store,
        )
    assert not store.objects


def target(**overrides) -> InstanceTarget:
    fields = {
        "instance_id": "i-0123456789abcdef0",
        "name": "web-1",
        "availability_zone": "us-east-1a",
        "state": "running",
        "volumes": (VolumeTarget(volume_id="vol-0123456789abcdef0", device="/dev/xvda", root=True, size_gib=8),),
    }
    return InstanceTarget(**{**fields, **overrides})


def test_snapshot_tags_carry_the_marker_and_stay_within_ec2_limits():
    many = {f"t{i:02d}": "v" * 300 for i in range(60)}
    tags = {t["Key"]: t["Value"] for t in snapshot_tags(target(copied_tags=many), run(), DEPLOYMENT)}
    assert len(tags) == MAX_TAGS_PER_RESOURCE - 1  # one slot left for smart-vault:verified-at
    assert all(len(v) <= MAX_TAG_VALUE for v in tags.values())
    assert tags[TAG_MANAGED] == DEPLOYMENT and tags[TAG_RUN_ID] == "20261126T030000Z"


def test_copied_tags_cannot_forge_the_marker_and_a_long_device_map_is_dropped():
    volumes = tuple(
        VolumeTarget(volume_id=f"vol-{i:017x}", device=f"/dev/sd{chr(102 + i)}", root=False, size_gib=1)
        for i in range(12)
    )
    tags = {
        t["Key"]: t["Value"]
        for t in snapshot_tags(target(volumes=volumes, copied_tags={TAG_MANAGED: "forged"}), run(), DEPLOYMENT)
    }
    assert tags[TAG_MANAGED] == DEPLOYMENT
    assert TAG_DEVICE_MAP not in tags  # 12 volumes do not fit one 256-character value


def test_near_miss_tag_values_are_reported_not_selected(ec2):
    ec2.add_instance("web-1")
    lower = ec2.add_instance("typo-lower", tags={"backup": "true"})
    spaced = ec2.add_instance("typo-space", tags={"backup": " True\t"})
    ec2.add_instance("off-1", tags={"backup": "False"})

    selection = select_instances(settings=settings(), ec2=ec2)

    assert [t.name for t in selection.targets] == ["web-1"]
    assert [(n.instance_id, n.name, n.value) for n in selection.near_misses] == sorted(
        [(lower, "typo-lower", "true"), (spaced, "typo-space", " True\t")]
    )
    assert ec2.calls["ec2:DescribeInstances"] == 1  # one tag-key query finds both kinds
