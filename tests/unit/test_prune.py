import json
from datetime import timedelta

import pytest

from smart_vault.constants import TAG_INSTANCE_ID, TAG_MANAGED, TAG_RUN_ID
from smart_vault.errors import InvalidInputError
from smart_vault.handlers import check, prune, snapshot
from smart_vault.retention.deferral import DELETE_ATTEMPTS
from smart_vault_sim import fleet
from tests.conftest import BUCKET, DEPLOYMENT, REGION, RUN_TIME


def old(
    account,
    built,
    device="/dev/xvda",
    *,
    days,
    managed=True,
    deployment=DEPLOYMENT,
    state="completed",
):
    tags = {TAG_INSTANCE_ID: built.instance_id, TAG_RUN_ID: f"old-{days}"}
    if managed:
        tags[TAG_MANAGED] = deployment
    return fleet.add_snapshot(
        account.ec2,
        region=REGION,
        volume_id=built.volume_ids[device],
        start_time=RUN_TIME - timedelta(days=days),
        tags=tags,
        state=state,
    )


def backed_up(account, built, **run):
    job = account.job(built.instance_id, **run)
    job["backup"] = account.invoke(snapshot.handler, job)
    job["backup"] = account.invoke(check.handler, job)
    account.tap.reset_counts()
    return job


def existing_ids(account):
    return {s["SnapshotId"] for s in account.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def test_deletes_expired_but_keeps_keep_min_and_young(account):
    web = account.add_instance("web-1")
    ancient, older, recent = (
        old(account, web, days=30),
        old(account, web, days=10),
        old(account, web, days=3),
    )
    job = backed_up(account, web)

    outcome = account.invoke(prune.handler, job)

    # Newest two completed: this run's and `recent`; `older` is past 7 days, so is `ancient`.
    assert {d["snapshot_id"] for d in outcome["deleted"]} == {ancient, older}
    assert recent in existing_ids(account)
    assert outcome["status"] == "backed_up"
    assert account.tap.calls["ec2:DescribeSnapshots"] == 1
    assert account.tap.calls["ec2:DeleteSnapshot"] == 2
    # The outcome record Notify aggregates is in S3.
    key = f"runs/20261126T030000Z/exec-1/instances/{web.instance_id}.json"
    assert account.s3.head_object(Bucket=BUCKET, Key=key)


def test_never_touches_unmanaged_or_another_deployments_snapshots(account):
    web = account.add_instance("web-1")
    theirs = old(account, web, days=90, managed=False)
    other = old(account, web, days=90, deployment="other-vault")
    for days in (20, 21, 22):
        old(account, web, days=days)
    account.configure(max_delete_fraction=1.0)
    outcome = account.invoke(prune.handler, backed_up(account, web))
    assert len(outcome["deleted"]) == 2
    assert {theirs, other} <= existing_ids(account)


def test_in_use_snapshot_is_skipped_and_reported(account):
    web = account.add_instance("web-1")
    recent = old(account, web, days=2)
    ami_snap = old(account, web, days=20)
    job = backed_up(account, web)
    # EC2 refuses to delete a snapshot a registered AMI uses; moto cannot register that link.
    account.tap.fail("DeleteSnapshot", "InvalidSnapshot.InUse", targets=[ami_snap])
    outcome = account.invoke(prune.handler, job)
    assert outcome["status"] == "backed_up"
    assert outcome["deleted"] == []
    assert outcome["skipped_deletes"] == [
        {"snapshot_id": ami_snap, "volume_id": web.volume_ids["/dev/xvda"], "reason": "in_use"}
    ]
    assert {ami_snap, recent} <= existing_ids(account)


def test_a_delete_throttled_once_is_retried_within_the_function(account):
    web = account.add_instance("web-1")
    a, b = old(account, web, days=2), old(account, web, days=20)
    c = old(account, web, days=21)
    job = backed_up(account, web)
    account.tap.fail("DeleteSnapshot", "RequestLimitExceeded", count=1, targets=[c])
    account.configure(max_delete_fraction=1.0)
    outcome = account.invoke(prune.handler, job)
    assert {b, c}.isdisjoint(existing_ids(account))
    assert a in existing_ids(account)
    assert {d["snapshot_id"] for d in outcome["deleted"]} == {b, c} and outcome["deferred_deletes"] == []
    assert account.tap.calls["ec2:DeleteSnapshot"] == 3  # b, then c twice


def test_pending_backup_is_refused(account):
    web = account.add_instance("web-1")
    old(account, web, days=30)
    job = backed_up(account, web)
    job["backup"]["status"] = "pending"
    with pytest.raises(InvalidInputError, match=r"backup\.status"):
        account.invoke(prune.handler, job)
    assert account.tap.calls["ec2:DeleteSnapshot"] == 0


@pytest.mark.parametrize("bad", [None, {"status": "done"}, {"status": "completed", "snapshots": "x"}])
def test_invalid_backup_state_deletes_nothing(account, bad):
    web = account.add_instance("web-1")
    old(account, web, days=30)
    job = backed_up(account, web)
    job["backup"] = bad
    before = existing_ids(account)
    with pytest.raises(InvalidInputError, match="backup"):
        account.invoke(prune.handler, job)
    assert existing_ids(account) == before


def test_skipped_instance_prunes_nothing(account):
    web = account.add_instance("web-1")
    old(account, web, days=30)
    job = account.job(web.instance_id)
    job["backup"] = {"status": "skipped", "reason": "instance no longer exists"}
    outcome = account.invoke(prune.handler, job)
    assert outcome["status"] == "skipped"
    assert account.tap.calls["ec2:DeleteSnapshot"] == 0


def test_every_deletion_is_journaled_before_it_is_attempted(account):
    account.configure(keep_min=1, max_delete_fraction=1.0)
    web = account.add_instance("web-1")
    first, second = old(account, web, days=10), old(account, web, days=11)
    # Given the second DeleteSnapshot stays throttled through its retries (after the first succeeded)
    account.tap.fail("DeleteSnapshot", "RequestLimitExceeded", count=DELETE_ATTEMPTS, targets=[second])
    job = backed_up(account, web)
    outcome = account.invoke(prune.handler, job)
    assert outcome["status"] == "backed_up"
    assert [d["snapshot_id"] for d in outcome["deferred_deletes"]] == [second]
    key = f"runs/20261126T030000Z/exec-1/journal/{web.instance_id}.json"
    journal = json.loads(account.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert {i["snapshot_id"] for i in journal["intents"]} == {first, second}
    # When the step runs again, the first deletion is still reported and the deferred one done.
    outcome = account.invoke(prune.handler, job)
    assert {d["snapshot_id"] for d in outcome["deleted"]} == {first, second}
    assert not {first, second} & existing_ids(account)


def test_breaker_trips_per_volume_and_names_what_it_would_delete(account):
    account.configure(keep_min=1, max_delete_fraction=0.5)
    web = account.add_instance("web-1", volumes=[("/dev/xvda", 8), ("/dev/sdf", 10)])
    backlog = {old(account, web, "/dev/sdf", days=d) for d in (10, 11, 12)}
    root_old = old(account, web, "/dev/xvda", days=10)
    outcome = account.invoke(prune.handler, backed_up(account, web))
    assert [d["snapshot_id"] for d in outcome["deleted"]] == [root_old]
    (tripped,) = outcome["breakers"]
    assert tripped["volume_id"] == web.volume_ids["/dev/sdf"]
    assert set(tripped["would_delete"]) == backlog and "3 of 4" in tripped["reason"]
    assert backlog <= existing_ids(account)


def test_ami_pinned_snapshots_are_found_up_front_and_kept(account):
    account.configure(keep_min=1, max_delete_fraction=0.5)
    web = account.add_instance("web-1")
    pinned = [old(account, web, days=d) for d in (20, 21, 22)]
    images = {sid: fleet.pin_to_ami(account.ec2, region=REGION, snapshot_id=sid, name=f"img-{sid}") for sid in pinned}
    expired = old(account, web, days=10)
    outcome = account.invoke(prune.handler, backed_up(account, web))
    # Without the pins this would be 4 of 5 deletions and trip the breaker.
    assert [d["snapshot_id"] for d in outcome["deleted"]] == [expired]
    assert {p["snapshot_id"]: p["image_id"] for p in outcome["kept_by_ami"]} == images
    assert outcome["breakers"] == []
    assert account.tap.calls["ec2:DescribeImages"] == 1
    assert account.tap.calls["ec2:DeleteSnapshot"] == 1
