"""The Copy step and the destinations' retention, against in-memory EC2 accounts per Region."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from smart_vault.constants import (
    TAG_INSTANCE_ID,
    TAG_MANAGED,
    TAG_RUN_ID,
    TAG_RUN_TIME,
    TAG_SOURCE_REGION,
    TAG_SOURCE_SNAPSHOT,
    TAG_SOURCE_VOLUME,
)
from smart_vault.copies.offsite import advance_copies, destination_copies, prune_copies
from smart_vault.errors import CopyFailedError, InvalidRequestError
from smart_vault.models import BackupState, CopyRef, CopyState, InstanceJob, SnapshotRef
from smart_vault.validation import format_time
from tests.unit.domain.conftest import DEPLOYMENT, job_for, settings
from tests.unit.domain.fakes import CLOCK, FakeEc2

DR = {"region": "us-west-2", "kms_key": "alias/smart-vault-dr", "retention_days": 3, "keep_min": 1}
CONFIG = settings(copy_regions=[DR])


@pytest.fixture
def west() -> FakeEc2:
    return FakeEc2()


def completed_job(ec2: FakeEc2, volumes: int = 2) -> InstanceJob:
    """An instance whose snapshots of this run have completed (what SnapshotsComplete hands Copy)."""
    devices = [("/dev/xvda", 8), ("/dev/sdf", 100)][:volumes]
    instance_id = ec2.add_instance("web-1", volumes=devices)
    job = job_for(ec2, instance_id, config=CONFIG)
    refs = tuple(
        SnapshotRef(
            snapshot_id=ec2.add_snapshot(v.volume_id, start_time=CLOCK, tags={TAG_MANAGED: DEPLOYMENT}),
            volume_id=v.volume_id,
            device=v.device,
            state="completed",
            progress=100,
        )
        for v in job.instance.volumes
    )
    return replace(job, backup=BackupState(status="completed", snapshots=refs, created=True))


def advance(job: InstanceJob, west: FakeEc2, config=CONFIG) -> CopyState:
    return advance_copies(job, settings=config, source_region="us-east-1", ec2_for={"us-west-2": west}.__getitem__)


def tags_of(record: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in record["Tags"]}


def test_each_completed_snapshot_is_copied_once_tagged_at_creation_and_followed_to_completion(ec2, west):
    job = completed_job(ec2)
    first = advance(job, west)
    assert first.status == "pending" and west.calls["ec2:CopySnapshot"] == 2
    copies = list(west.snapshots.values())
    assert {c["VolumeId"] for c in copies} == {"vol-ffffffff"}  # EC2's placeholder
    source = {s.snapshot_id: s for s in job.backup.snapshots}
    for copy in copies:
        tags = tags_of(copy)
        assert tags[TAG_MANAGED] == DEPLOYMENT and tags[TAG_INSTANCE_ID] == job.instance.instance_id
        assert tags[TAG_RUN_ID] == job.run.run_id and tags[TAG_RUN_TIME] == job.run.run_time
        assert tags[TAG_SOURCE_VOLUME] == source[tags[TAG_SOURCE_SNAPSHOT]].volume_id
        assert tags[TAG_SOURCE_REGION] == "us-east-1" and copy["KmsKeyId"] == "alias/smart-vault-dr"
    # Next turn of the loop: the copies are found by tag, none is started again.
    second = advance(replace(job, copies=first), west)
    assert second.status == "pending" and west.calls["ec2:CopySnapshot"] == 2
    assert second.wait_seconds >= first.wait_seconds
    for copy_id in list(west.snapshots):
        west.set_state(copy_id, "completed")
    done = advance(replace(job, copies=second), west)
    assert done.status == "completed" and {c.state for c in done.copies} == {"completed"}


def test_a_full_destination_or_a_refused_copy_waits_for_a_slot(ec2, west):
    job = completed_job(ec2, volumes=2)
    for i in range(19):  # 19 copies of other instances in flight: one slot left
        west.add_snapshot(
            "vol-ffffffff", start_time=CLOCK, tags={TAG_SOURCE_SNAPSHOT: f"snap-{i:08x}"}, state="pending"
        )
    state = advance(job, west)
    assert west.calls["ec2:CopySnapshot"] == 1
    assert state.status == "pending" and state.slot_waits == 1
    assert sorted(c.state for c in state.copies) == ["pending", "waiting"]
    # EC2 refuses the next one (another deployment took the slot) and then throttles: still waiting.
    west.fail("ec2:CopySnapshot", "ResourceLimitExceeded")
    west.set_state(next(iter(west.snapshots)), "completed")
    state = advance(replace(job, copies=state), west)
    assert state.status == "pending" and state.slot_waits == 2
    west.fail("ec2:CopySnapshot", "RequestLimitExceeded")
    state = advance(replace(job, copies=state), west)
    assert state.status == "pending" and state.slot_waits == 3
    state = advance(replace(job, copies=state), west)
    assert sorted(c.state for c in state.copies) == ["pending", "pending"]


def test_another_copy_error_names_the_region_and_fails(ec2, west):
    job = completed_job(ec2, volumes=1)
    west.fail("ec2:CopySnapshot", "InvalidParameterValue")
    with pytest.raises(InvalidRequestError, match=r"InvalidParameterValue.*to us-west-2"):
        advance(job, west)


def test_a_copy_that_ends_in_error_fails_its_instance_but_a_rerun_copies_again(ec2, west):
    job = completed_job(ec2, volumes=1)
    started = advance(job, west)
    (copy_id,) = west.snapshots
    west.set_state(copy_id, "error")
    with pytest.raises(CopyFailedError, match=rf"{copy_id} .* to us-west-2 ended in state error"):
        advance(replace(job, copies=started), west)
    # A re-run of the slot (a new execution: no state of the failed one) starts a fresh copy.
    rerun = advance(job, west)
    assert rerun.status == "pending" and west.calls["ec2:CopySnapshot"] == 2


def test_nothing_is_pruned_in_a_destination_whose_copy_of_this_run_did_not_complete(ec2, west, store):
    job = completed_job(ec2, volumes=1)
    base = {TAG_MANAGED: DEPLOYMENT, TAG_INSTANCE_ID: job.instance.instance_id}
    base[TAG_SOURCE_VOLUME] = job.instance.volumes[0].volume_id
    for i in range(3):
        west.add_snapshot(
            "vol-ffffffff",
            start_time=CLOCK - timedelta(days=10 + i),
            tags={**base, TAG_SOURCE_SNAPSHOT: f"snap-{i:08x}"},
        )
    ec2_for = {"us-west-2": west}.__getitem__
    copies = destination_copies(CONFIG, job.instance.instance_id, ec2_for)
    (pruned,) = prune_copies(job, settings=CONFIG, copies=copies, ec2_for=ec2_for, store=store)
    assert pruned.deleted == () and west.calls["ec2:DeleteSnapshot"] == 0


def test_a_destination_keeps_its_newest_completed_copy_while_a_newer_one_is_pending(ec2, west, store):
    job = completed_job(ec2, volumes=1)
    volume = job.instance.volumes[0].volume_id
    instance_id = job.instance.instance_id
    old = CLOCK - timedelta(days=10)
    base = {TAG_MANAGED: DEPLOYMENT, TAG_INSTANCE_ID: instance_id, TAG_SOURCE_VOLUME: volume}
    expired = [
        west.add_snapshot(
            "vol-ffffffff",
            start_time=old + timedelta(days=i),
            tags={**base, TAG_SOURCE_SNAPSHOT: f"snap-{i:08x}", TAG_RUN_ID: f"r{i}", TAG_RUN_TIME: format_time(old)},
        )
        for i in range(3)
    ]
    # A newer copy is still pending there (say a later run's); this run's own copy step is done.
    west.add_snapshot(
        "vol-ffffffff", start_time=CLOCK, tags={**base, TAG_SOURCE_SNAPSHOT: "snap-0000ffff"}, state="pending"
    )
    ec2_for = {"us-west-2": west}.__getitem__
    copies = destination_copies(CONFIG, instance_id, ec2_for)
    done = CopyRef(source_snapshot_id="snap-0000fffe", source_volume_id=volume, region="us-west-2", state="completed")
    job = replace(job, copies=CopyState(status="completed", copies=(done,)))
    (pruned,) = prune_copies(job, settings=CONFIG, copies=copies, ec2_for=ec2_for, store=store)
    assert sorted(d.snapshot_id for d in pruned.deleted) == expired[:2]
    assert expired[2] in west.snapshots  # keep_min 1 counts completed copies only
