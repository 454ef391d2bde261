"""Pruning decisions and their effects, against the in-memory EC2 and bucket."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from smart_vault.backup.snapshots import check_backup, start_backup
from smart_vault.constants import TAG_INSTANCE_ID, TAG_MANAGED, TAG_RUN_ID
from smart_vault.models import BackupState, InstanceJob
from smart_vault.retention.deferral import DELETE_ATTEMPTS
from smart_vault.retention.pruning import prune_instance, save_outcome, snapshot_record
from smart_vault.settings import Settings
from tests.unit.domain.conftest import DEPLOYMENT, job_for, settings
from tests.unit.domain.fakes import CLOCK, FakeEc2, FakeStore


def old(ec2: FakeEc2, instance_id: str, device: str = "/dev/xvda", *, days: float, owner: str | None = DEPLOYMENT):
    tags = {TAG_INSTANCE_ID: instance_id, TAG_RUN_ID: f"old-{days}"}
    if owner:
        tags[TAG_MANAGED] = owner
    return ec2.add_snapshot(ec2.volume_id(instance_id, device), start_time=CLOCK - timedelta(days=days), tags=tags)


def backed_up(ec2: FakeEc2, instance_id: str, config: Settings, **run_args) -> InstanceJob:
    job = job_for(ec2, instance_id, config=config, **run_args)
    job = replace(job, backup=start_backup(job, settings=config, ec2=ec2))
    for ref in job.backup.snapshots:
        ec2.set_state(ref.snapshot_id, "completed")
    job = replace(job, backup=check_backup(job, settings=config, ec2=ec2))
    ec2.calls.clear()
    return job


def test_deletes_the_expired_and_keeps_keep_min_and_the_young(ec2):
    config = settings()
    web = ec2.add_instance("web-1")
    ancient, older, recent = old(ec2, web, days=30), old(ec2, web, days=10), old(ec2, web, days=3)

    outcome = prune_instance(backed_up(ec2, web, config), settings=config, ec2=ec2, store=FakeStore())

    assert {d.snapshot_id for d in outcome.deleted} == {ancient, older}
    assert recent in ec2.snapshots and outcome.status == "backed_up"
    assert ec2.calls == {
        "ec2:DescribeSnapshots": 1,
        "ec2:DescribeLockedSnapshots": 1,
        "ec2:DescribeImages": 1,
        "ec2:DeleteSnapshot": 2,
    }


def test_never_deletes_unmanaged_or_another_deployments_snapshots(ec2):
    config = settings(max_delete_fraction=1.0)
    web = ec2.add_instance("web-1")
    theirs, other = old(ec2, web, days=90, owner=None), old(ec2, web, days=90, owner="other-vault")
    for days in (20, 21, 22):
        old(ec2, web, days=days)
    outcome = prune_instance(backed_up(ec2, web, config), settings=config, ec2=ec2, store=FakeStore())
    assert len(outcome.deleted) == 2
    assert {theirs, other} <= set(ec2.snapshots)


def test_a_snapshot_an_ami_uses_is_kept_up_front_naming_the_ami(ec2):
    config = settings()
    web = ec2.add_instance("web-1")
    old(ec2, web, days=2)
    ami_snap = old(ec2, web, days=20)
    image = ec2.pin(ami_snap)
    outcome = prune_instance(backed_up(ec2, web, config), settings=config, ec2=ec2, store=FakeStore())
    assert outcome.deleted == () and outcome.skipped_deletes == ()
    assert [(p.snapshot_id, p.image_id) for p in outcome.kept_by_ami] == [(ami_snap, image)]
    assert ami_snap in ec2.snapshots and ec2.calls["ec2:DeleteSnapshot"] == 0


def test_a_snapshot_pinned_after_the_lookup_is_skipped_and_reported(ec2):
    # An AMI registered between DescribeImages and DeleteSnapshot: EC2 answers InUse.
    config = settings()
    web = ec2.add_instance("web-1")
    old(ec2, web, days=2)
    ami_snap = old(ec2, web, days=20)
    ec2.in_use.add(ami_snap)
    outcome = prune_instance(backed_up(ec2, web, config), settings=config, ec2=ec2, store=FakeStore())
    assert [(s.snapshot_id, s.reason) for s in outcome.skipped_deletes] == [(ami_snap, "in_use")]


def test_a_delete_throttled_once_is_retried_in_the_function_and_done(ec2):
    config = settings(max_delete_fraction=1.0)
    web = ec2.add_instance("web-1")
    keep, b, c = old(ec2, web, days=2), old(ec2, web, days=20), old(ec2, web, days=21)
    job = backed_up(ec2, web, config)
    ec2.fail("ec2:DeleteSnapshot", "RequestLimitExceeded", targets=[c])
    outcome = prune_instance(job, settings=config, ec2=ec2, store=FakeStore())
    assert keep in ec2.snapshots and {b, c}.isdisjoint(ec2.snapshots)
    assert {d.snapshot_id for d in outcome.deleted} == {b, c} and outcome.deferred_deletes == ()


def test_a_delete_still_throttled_after_its_retries_is_deferred_and_the_backup_stands(ec2):
    config = settings(max_delete_fraction=1.0)
    web = ec2.add_instance("web-1")
    old(ec2, web, days=19)  # kept: keep_min 2 with this run's snapshot
    b, c = old(ec2, web, days=20), old(ec2, web, days=21)
    job = backed_up(ec2, web, config)
    ec2.fail("ec2:DeleteSnapshot", "RequestLimitExceeded", times=DELETE_ATTEMPTS)
    store = FakeStore()
    outcome = prune_instance(job, settings=config, ec2=ec2, store=store)
    assert outcome.status == "backed_up" and outcome.deleted == ()
    # The first deletion is deferred after its attempts; the rest is not even tried this run.
    assert [(d.snapshot_id, d.reason) for d in outcome.deferred_deletes] == [
        (b, "deferred:RequestLimitExceeded"),
        (c, "deferred:RequestLimitExceeded"),
    ]
    assert ec2.calls["ec2:DeleteSnapshot"] == DELETE_ATTEMPTS
    # The next attempt (the next run) deletes them
    again = prune_instance(job, settings=config, ec2=ec2, store=store)
    assert {d.snapshot_id for d in again.deleted} == {b, c} and again.deferred_deletes == ()


def test_dry_run_reports_what_would_go_and_deletes_nothing(ec2):
    config = settings()
    web = ec2.add_instance("web-1")
    for days in (9, 10, 11):
        old(ec2, web, days=days)
    before = set(ec2.snapshots)
    outcome = prune_instance(backed_up(ec2, web, config, dry_run=True), settings=config, ec2=ec2, store=FakeStore())
    assert outcome.status == "skipped" and outcome.dry_run
    # This run's would-be snapshot counts toward keep_min 2, as in the real run: 10 and 11 go.
    assert len(outcome.would_delete) == 2
    assert set(ec2.snapshots) == before and ec2.calls["ec2:DeleteSnapshot"] == 0


@pytest.mark.parametrize(
    ("overrides", "limit"),
    [
        ({"keep_min": 1, "max_delete_fraction": 0.5}, "max_delete_fraction"),
        ({"keep_min": 1, "max_delete_fraction": 1.0, "max_deletes_per_run": 2}, "max_deletes_per_run"),
    ],
)
def test_the_circuit_breaker_stops_the_volumes_deletes(ec2, overrides, limit):
    config = settings(**overrides)
    web = ec2.add_instance("web-1")
    doomed = {old(ec2, web, days=d) for d in (10, 11, 12)}
    outcome = prune_instance(backed_up(ec2, web, config), settings=config, ec2=ec2, store=FakeStore())
    assert outcome.deleted == () and limit in (outcome.breaker or "")
    (tripped,) = outcome.breakers
    assert set(tripped.would_delete) == doomed and limit in tripped.reason
    assert doomed <= set(ec2.snapshots) and ec2.calls["ec2:DeleteSnapshot"] == 0


def test_a_volume_without_a_completed_snapshot_this_run_keeps_everything(ec2):
    config = settings(keep_min=1, max_delete_fraction=1.0)
    web = ec2.add_instance("web-1", volumes=[("/dev/xvda", 8), ("/dev/sdf", 10)])
    root_old, data_old = old(ec2, web, "/dev/xvda", days=30), old(ec2, web, "/dev/sdf", days=30)
    job = backed_up(ec2, web, config)
    only_root = tuple(s for s in job.backup.snapshots if s.device == "/dev/xvda")
    job = replace(job, backup=replace(job.backup, snapshots=only_root))
    outcome = prune_instance(job, settings=config, ec2=ec2, store=FakeStore())
    assert [d.snapshot_id for d in outcome.deleted] == [root_old]
    assert data_old in ec2.snapshots
    assert outcome.backup_gib == 8


def test_a_skipped_backup_prunes_nothing_and_makes_no_call(ec2):
    config = settings()
    web = ec2.add_instance("web-1")
    old(ec2, web, days=30)
    job = replace(job_for(ec2, web), backup=BackupState(status="skipped", reason="instance gone"))
    outcome = prune_instance(job, settings=config, ec2=ec2, store=FakeStore())
    assert outcome.status == "skipped" and outcome.reason == "instance gone"
    assert not ec2.calls


def test_snapshot_record_reads_datetimes_and_iso_strings(ec2):
    raw = {"SnapshotId": "snap-1", "VolumeId": "vol-1", "State": "completed", "Tags": [{"Key": "a", "Value": "b"}]}
    from_dt = snapshot_record({**raw, "StartTime": CLOCK})
    from_text = snapshot_record({**raw, "StartTime": "2026-11-26T03:00:00.000Z"})
    assert from_dt == from_text and from_dt.tags == {"a": "b"}


def test_the_outcome_record_lands_where_notify_reads_it(ec2):
    config = settings()
    web = ec2.add_instance("web-1")
    job = backed_up(ec2, web, config)
    store = FakeStore()
    save_outcome(prune_instance(job, settings=config, ec2=ec2, store=store), job.run, store)
    record = store.get_json(f"runs/20261126T030000Z/exec-1/instances/{web}.json")
    assert record["status"] == "backed_up" and record["instance_id"] == web
