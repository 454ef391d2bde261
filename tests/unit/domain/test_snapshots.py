"""Snapshot start and completion checks, against the in-memory EC2."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smart_vault.backup.snapshots import check_backup, next_check_wait, start_backup
from smart_vault.constants import (
    NEW_RESOURCE_VISIBILITY_SECONDS,
    TAG_DEVICE_MAP,
    TAG_INSTANCE_ID,
    TAG_MANAGED,
    TAG_RUN_ID,
    TAG_RUN_TIME,
)
from smart_vault.errors import SnapshotFailedError, SnapshotTimeoutError, ThrottledError
from smart_vault.models import BackupState, InstanceJob
from smart_vault.settings import Settings
from tests.unit.domain.conftest import DEPLOYMENT, job_for, settings
from tests.unit.domain.fakes import FakeEc2


def tags_of(record: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in record["Tags"]}


def test_one_create_snapshots_for_the_selected_volumes_tagged_at_creation(ec2):
    config = settings(copy_tags=["Name", "team"])
    web = ec2.add_instance(
        "web-1",
        tags={"backup": "True", "team": "web"},
        volumes=[("/dev/xvda", 8), ("/dev/sdf", 100), ("/dev/sdg", 5, {"backup": "False"})],
    )

    backup = start_backup(job_for(ec2, web, config=config), settings=config, ec2=ec2)

    assert ec2.calls == {"ec2:DescribeSnapshots": 1, "ec2:CreateSnapshots": 1}
    assert backup.status == "pending" and backup.created and backup.wait_seconds == 60
    assert {(s.device, s.volume_id) for s in backup.snapshots} == {
        ("/dev/xvda", ec2.volume_id(web, "/dev/xvda")),
        ("/dev/sdf", ec2.volume_id(web, "/dev/sdf")),
    }
    tags = tags_of(ec2.snapshots[backup.snapshots[0].snapshot_id])
    assert tags[TAG_MANAGED] == DEPLOYMENT and tags[TAG_INSTANCE_ID] == web
    assert tags[TAG_RUN_ID] == "20261126T030000Z" and tags[TAG_RUN_TIME] == "2026-11-26T03:00:00Z"
    assert tags["team"] == "web" and "/dev/sdf" in tags[TAG_DEVICE_MAP]


def test_root_volume_opted_out_is_left_out_with_exclude_boot_volume(ec2):
    # AWS rejects a root volume in ExcludeDataVolumeIds (API_InstanceSpecification); the fake does too.
    web = ec2.add_instance("web-1", volumes=[("/dev/xvda", 8, {"backup": "False"}), ("/dev/sdf", 10)])

    backup = start_backup(job_for(ec2, web), settings=settings(), ec2=ec2)

    assert [s.device for s in backup.snapshots] == ["/dev/sdf"]


def test_a_re_run_finds_this_runs_snapshots_and_creates_none(ec2):
    web = ec2.add_instance("web-1", volumes=[("/dev/xvda", 8), ("/dev/sdf", 10)])
    job = job_for(ec2, web)
    first = start_backup(job, settings=settings(), ec2=ec2)
    again = start_backup(replace(job, run=replace(job.run, execution_name="exec-2")), settings=settings(), ec2=ec2)
    assert ec2.calls["ec2:CreateSnapshots"] == 1
    assert not again.created and again.wait_seconds == 0
    assert {s.snapshot_id for s in again.snapshots} == {s.snapshot_id for s in first.snapshots}


def test_snapshots_in_error_are_not_reused(ec2):
    web = ec2.add_instance("web-1")
    job = job_for(ec2, web)
    first = start_backup(job, settings=settings(), ec2=ec2)
    ec2.set_state(first.snapshots[0].snapshot_id, "error")
    retry = start_backup(job, settings=settings(), ec2=ec2)
    assert retry.created and retry.snapshots[0].snapshot_id != first.snapshots[0].snapshot_id


def test_dry_run_and_empty_selection_create_nothing(ec2):
    web = ec2.add_instance("web-1")
    bare = ec2.add_instance("bare", volumes=[("/dev/xvda", 8, {"backup": "False"})])
    assert start_backup(job_for(ec2, web, dry_run=True), settings=settings(), ec2=ec2).status == "skipped"
    skipped = start_backup(job_for(ec2, bare), settings=settings(), ec2=ec2)
    assert skipped.reason == "no volumes selected for backup"
    assert ec2.calls["ec2:CreateSnapshots"] == 0 and not ec2.snapshots


def test_vanished_instance_is_skipped_naming_the_aws_code(ec2):
    web = ec2.add_instance("web-1")
    job = job_for(ec2, web)
    del ec2.instances[web]  # terminated and gone since discovery
    backup = start_backup(job, settings=settings(), ec2=ec2)
    assert backup.status == "skipped" and "InvalidInstanceID.NotFound" in (backup.reason or "")


def test_a_throttled_create_raises_for_the_workflow_and_creates_nothing(ec2):
    web = ec2.add_instance("web-1")
    job = job_for(ec2, web)
    ec2.fail("ec2:CreateSnapshots", "RequestLimitExceeded")
    with pytest.raises(ThrottledError, match="RequestLimitExceeded"):
        start_backup(job, settings=settings(), ec2=ec2)
    assert not ec2.snapshots
    assert start_backup(job, settings=settings(), ec2=ec2).created


def started(ec2: FakeEc2, config: Settings) -> InstanceJob:
    web = ec2.add_instance("web-1", volumes=[("/dev/xvda", 8), ("/dev/sdf", 10)])
    job = job_for(ec2, web, config=config)
    job = replace(job, backup=start_backup(job, settings=config, ec2=ec2))
    ec2.calls.clear()
    return job


def advance(job: InstanceJob, config: Settings, ec2: FakeEc2) -> InstanceJob:
    return replace(job, backup=check_backup(job, settings=config, ec2=ec2))


def test_check_backs_off_while_pending_then_completes_with_one_call_per_check(ec2):
    config = settings()
    job = started(ec2, config)
    waits = []
    for _ in range(5):
        job = advance(job, config, ec2)
        waits.append(job.backup.wait_seconds)
    assert waits == [120, 240, 480, 960, 1800]  # doubles, capped at wait_max_seconds
    for ref in job.backup.snapshots:
        ec2.set_state(ref.snapshot_id, "completed")
    job = advance(job, config, ec2)
    assert job.backup.status == "completed" and job.backup.checks == 6 and job.backup.progress == 100
    assert ec2.calls == {"ec2:DescribeSnapshots": 6}


def test_checks_until_the_timeout_are_logarithmic_then_one_per_cap(ec2):
    # Defaults: 60 s doubling to 1,800 s, 6 h timeout. Checks at 60, 180, 420, 900 and 1,860 s,
    # then one per 30 min; the last wait is cut short so the check that times out is at exactly 6 h.
    config = settings()
    job = started(ec2, config)
    with pytest.raises(SnapshotTimeoutError, match="still pending after 21600 s"):
        for _ in range(1000):
            job = advance(job, config, ec2)
    ramp = 60 + 120 + 240 + 480 + 960
    assert ec2.calls["ec2:DescribeSnapshots"] == 5 + math.ceil((21600 - ramp) / 1800)  # 16


def test_check_fails_on_error_state_naming_the_snapshot(ec2):
    config = settings()
    job = started(ec2, config)
    bad = job.backup.snapshots[1].snapshot_id
    ec2.set_state(bad, "error")
    with pytest.raises(SnapshotFailedError, match=bad):
        check_backup(job, settings=config, ec2=ec2)


def test_a_snapshot_deleted_while_pending_fails_the_check_naming_it(ec2):
    # DescribeSnapshots with an id that no longer exists fails the call (InvalidSnapshot.NotFound);
    # the adapter finds out which one is gone, and the check names it once EC2 has had the time
    # to list a new snapshot (eventual consistency: before that, it is still pending).
    config = settings()
    job = started(ec2, config)
    gone = job.backup.snapshots[0].snapshot_id
    del ec2.snapshots[gone]
    assert check_backup(job, settings=config, ec2=ec2).status == "pending"
    job = replace(job, backup=replace(job.backup, waited_seconds=NEW_RESOURCE_VISIBILITY_SECONDS))
    with pytest.raises(SnapshotFailedError, match=f"disappeared before completing: {gone}$"):
        check_backup(job, settings=config, ec2=ec2)


def test_check_of_a_skipped_backup_makes_no_call(ec2):
    config = settings()
    job = replace(started(ec2, config), backup=BackupState(status="skipped", reason="instance gone"))
    assert check_backup(job, settings=config, ec2=ec2).reason == "instance gone"
    assert not ec2.calls


@given(
    initial=st.integers(0, 3600),
    extra=st.integers(0, 3600),
    timeout=st.integers(60, 7 * 24 * 3600),
    doublings=st.integers(0, 40),
    waited=st.integers(0, 7 * 24 * 3600),
    floor=st.integers(0, 4 * 3600),
)
def test_next_wait_doubles_within_the_cap_and_never_passes_the_timeout(
    initial, extra, timeout, doublings, waited, floor
):
    config = Settings(
        wait_initial_seconds=initial,
        wait_max_seconds=min(3600, max(1, initial) + extra),
        snapshot_timeout_seconds=timeout,
    )
    remaining = timeout - waited
    wait = next_check_wait(doublings, waited_seconds=waited, settings=config, floor=floor)
    assert wait >= 1  # the Wait/Check loop never spins
    if remaining >= 1:
        assert wait <= remaining  # the timeout is seen on time
        # the fleet's floor wins over the cap (the cap is about promptness, the floor about
        # EC2's request rate), and nothing else raises a wait above the cap
        assert wait >= min(floor, remaining)
        assert wait <= max(config.wait_max_seconds, floor)
        assert wait == min(max(min(initial * 2**doublings, config.wait_max_seconds), floor, 1), remaining)


def test_a_large_fleet_waits_its_check_interval_before_the_first_check_and_between_checks(ec2):
    config = settings()  # wait_initial_seconds 60, wait_max_seconds 1800
    web = ec2.add_instance("web-1", volumes=[("/dev/xvda", 8)])
    job = job_for(ec2, web, config=config)
    job = replace(job, run=replace(job.run, min_check_interval_seconds=2000))  # 10,000 at 5/s
    job = replace(job, backup=start_backup(job, settings=config, ec2=ec2))
    assert job.backup.wait_seconds == 2000  # not 60
    for snap in job.backup.snapshots:
        ec2.set_state(snap.snapshot_id, "pending")
    pending = check_backup(job, settings=config, ec2=ec2)
    # The floor wins over the 1,800 s cap: a snapshot is seen up to 2,000 s late, and the
    # fleet's DescribeSnapshots stay under check_rate_per_second
    assert pending.status == "pending" and pending.wait_seconds == 2000
    # A floor below the cap (1,000 instances: 200 s) holds only the early checks; the doubling
    # goes on underneath it: 200, 200, 240, 480, 960, 1800
    job = replace(job, run=replace(job.run, min_check_interval_seconds=200), backup=replace(job.backup, checks=0))
    waits = []
    for _ in range(6):
        job = replace(job, backup=check_backup(job, settings=config, ec2=ec2))
        waits.append(job.backup.wait_seconds)
    assert waits == [200, 240, 480, 960, 1800, 1800]
