"""Orphan pruning against the in-memory EC2 and bucket."""

from __future__ import annotations

from datetime import timedelta

from smart_vault.backup.discovery import find_targets
from smart_vault.constants import TAG_INSTANCE_ID, TAG_MANAGED, TAG_RUN_ID
from smart_vault.retention.orphans import prune_orphans
from tests.unit.domain.conftest import DEPLOYMENT, run, settings
from tests.unit.domain.fakes import CLOCK, FakeEc2, FakeStore


def snap(ec2: FakeEc2, instance_id: str, *, days: float, device: str = "/dev/xvda", owner: str = DEPLOYMENT) -> str:
    tags = {TAG_MANAGED: owner, TAG_INSTANCE_ID: instance_id, TAG_RUN_ID: f"old-{days}"}
    return ec2.add_snapshot(ec2.volume_id(instance_id, device), start_time=CLOCK - timedelta(days=days), tags=tags)


def fleet(ec2: FakeEc2) -> tuple[str, list[str], str]:
    live = ec2.add_instance("web-1")
    gone = ec2.add_instance("old-1", state="terminated")
    history = [snap(ec2, gone, days=d) for d in (8, 9, 10)]  # newest first
    foreign = snap(ec2, gone, days=30, owner="another-vault")
    return live, history, foreign


def test_a_terminated_instances_snapshots_go_down_to_orphan_keep(ec2):
    _, (newest, older, oldest), foreign = fleet(ec2)
    config = settings(max_delete_fraction=1.0)
    store = FakeStore()
    report = prune_orphans(
        run(), find_targets(settings=config, ec2=ec2), scoped=False, settings=config, ec2=ec2, store=store
    )
    (volume,) = report.volumes
    assert {d.snapshot_id for d in volume.deleted} == {older, oldest}
    assert volume.kept == (newest,)
    assert newest in ec2.snapshots and foreign in ec2.snapshots  # never another deployment's
    # One scan over the managed marker, not one per instance.
    assert ec2.calls["ec2:DescribeSnapshots"] == 1
    assert store.get_json("runs/20261126T030000Z/exec-1/orphans.json")["status"] == "pruned"


def test_the_orphan_breaker_trips_per_volume(ec2):
    fleet(ec2)
    config = settings(max_delete_fraction=0.5)
    report = prune_orphans(
        run(), find_targets(settings=config, ec2=ec2), scoped=False, settings=config, ec2=ec2, store=FakeStore()
    )
    (volume,) = report.volumes
    assert volume.deleted == () and volume.breaker is not None and len(volume.breaker.would_delete) == 2
    assert ec2.calls["ec2:DeleteSnapshot"] == 0


def test_nothing_is_an_orphan_on_a_run_limited_to_some_instances_or_selecting_none(ec2):
    fleet(ec2)
    config = settings(max_delete_fraction=1.0)
    targets = find_targets(settings=config, ec2=ec2)
    ec2.calls.clear()
    scoped = prune_orphans(run(), targets, scoped=True, settings=config, ec2=ec2, store=FakeStore())
    empty = prune_orphans(run(), [], scoped=False, settings=config, ec2=ec2, store=FakeStore())
    assert scoped.status == empty.status == "skipped" and "instances it was given" in (scoped.reason or "")
    assert "no instance is selected" in (empty.reason or "")
    assert not ec2.calls  # not even the scan


def test_a_dry_run_previews_orphans_and_deletes_nothing(ec2):
    _, (_, older, oldest), _ = fleet(ec2)
    config = settings(max_delete_fraction=1.0)
    report = prune_orphans(
        run(dry_run=True),
        find_targets(settings=config, ec2=ec2),
        scoped=False,
        settings=config,
        ec2=ec2,
        store=FakeStore(),
    )
    (volume,) = report.volumes
    assert report.status == "dry_run" and set(volume.would_delete) == {older, oldest} and volume.deleted == ()
    assert ec2.calls["ec2:DeleteSnapshot"] == 0
