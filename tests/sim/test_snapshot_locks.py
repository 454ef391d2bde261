"""The emulator's snapshot lock (moto has none): LockSnapshot and DescribeLockedSnapshots answered
from a model on the virtual clock, DeleteSnapshot of a locked snapshot refused as EC2 refuses it.
Rules and their AWS references: smart_vault_sim.snapshot_locks."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from smart_vault.aws import Ec2
from smart_vault.policy import LockSettings
from smart_vault.retention.deferral import delete_or_defer
from smart_vault.retention.locks import active_locks, lock_snapshots
from smart_vault.settings import CopyRegion
from smart_vault_sim import fleet, regions
from smart_vault_sim.snapshot_locks import SNAPSHOT_LOCKED_ERROR
from tests.conftest import REGION, RUN_TIME, Account


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock(account: Account) -> Clock:
    clock = Clock(RUN_TIME)
    account.locks.now = clock
    return clock


def snapshot(account: Account, state: str = "completed") -> str:
    volume_id = account.ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"]
    snapshot_id = str(account.ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"])
    fleet.set_snapshot_state(REGION, snapshot_id, state)
    return snapshot_id


def code_of(call: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return str(raised.value.response["Error"]["Code"])


def test_delete_of_a_locked_snapshot_is_refused_until_the_lock_expires(account: Account, clock: Clock):
    sid = snapshot(account)
    locked = account.ec2.lock_snapshot(SnapshotId=sid, LockMode="governance", LockDuration=10)
    assert locked["LockState"] == "governance"
    assert locked["LockExpiresOn"] == RUN_TIME + timedelta(days=10)
    clock.at = RUN_TIME + timedelta(days=10) - timedelta(seconds=1)
    assert code_of(lambda: account.ec2.delete_snapshot(SnapshotId=sid)) == SNAPSHOT_LOCKED_ERROR
    # Pruning keeps it and says why: the refusal is re-checked, whatever its code
    kept = delete_or_defer(Ec2(), sid, now=clock.at)
    assert kept.result == "locked" and kept.locked_until == RUN_TIME + timedelta(days=10)
    clock.at = RUN_TIME + timedelta(days=10)
    (info,) = account.ec2.describe_locked_snapshots(SnapshotIds=[sid])["Snapshots"]
    assert info["LockState"] == "expired"
    account.ec2.delete_snapshot(SnapshotId=sid)
    assert sid not in fleet.ec2_backend(REGION).snapshots


def test_a_pending_snapshot_can_be_locked_and_its_duration_starts_at_completion(account: Account, clock: Clock):
    sid = snapshot(account, "pending")
    locked = account.ec2.lock_snapshot(SnapshotId=sid, LockMode="governance", LockDuration=2)
    assert "LockExpiresOn" not in locked  # not started
    assert code_of(lambda: account.ec2.delete_snapshot(SnapshotId=sid)) == SNAPSHOT_LOCKED_ERROR
    clock.at = RUN_TIME + timedelta(hours=5)
    fleet.set_snapshot_state(REGION, sid, "completed")
    (info,) = account.ec2.describe_locked_snapshots(SnapshotIds=[sid])["Snapshots"]
    assert info["LockDurationStartTime"] == clock.at
    assert info["LockExpiresOn"] == clock.at + timedelta(days=2)


def test_a_failed_snapshot_cannot_be_locked_and_a_failure_cancels_a_lock(account: Account, clock: Clock):
    failed = snapshot(account, "error")
    assert code_of(lambda: account.ec2.lock_snapshot(SnapshotId=failed, LockMode="governance", LockDuration=1)) == (
        "IncorrectState"
    )
    sid = snapshot(account, "pending")
    account.ec2.lock_snapshot(SnapshotId=sid, LockMode="governance", LockDuration=1)
    fleet.set_snapshot_state(REGION, sid, "error")
    assert account.ec2.describe_locked_snapshots(SnapshotIds=[sid])["Snapshots"] == []


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"LockMode": "governance"}, "InvalidParameterCombination"),  # neither duration nor date
        (
            {"LockMode": "governance", "LockDuration": 1, "ExpirationDate": RUN_TIME + timedelta(days=1)},
            "InvalidParameterCombination",
        ),
        ({"LockMode": "governance", "LockDuration": 36501}, "InvalidParameterValue"),
        ({"LockMode": "governance", "LockDuration": 1, "CoolOffPeriod": 1}, "InvalidParameterCombination"),
        ({"LockMode": "compliance", "LockDuration": 1, "CoolOffPeriod": 73}, "InvalidParameterValue"),
    ],
)
def test_lock_parameters_are_validated_as_ec2_does(account: Account, clock: Clock, params, code):
    sid = snapshot(account)
    assert code_of(lambda: account.ec2.lock_snapshot(SnapshotId=sid, **params)) == code


def test_compliance_lock_can_be_changed_only_during_its_cooling_off_period(account: Account, clock: Clock):
    sid = snapshot(account)
    first = account.ec2.lock_snapshot(SnapshotId=sid, LockMode="compliance", LockDuration=30, CoolOffPeriod=2)
    assert first["LockState"] == "compliance-cooloff"
    # During the cooling-off period a mistake can be undone: shorten it
    clock.at = RUN_TIME + timedelta(hours=1)
    assert account.ec2.lock_snapshot(SnapshotId=sid, LockMode="compliance", LockDuration=5)["LockDuration"] == 5
    # After it: no shorter duration, no mode change, no new cooling-off period; only longer
    clock.at = RUN_TIME + timedelta(hours=3)
    assert code_of(lambda: account.ec2.lock_snapshot(SnapshotId=sid, LockMode="compliance", LockDuration=4)) == (
        "InvalidParameterValue"
    )
    assert code_of(lambda: account.ec2.lock_snapshot(SnapshotId=sid, LockMode="governance", LockDuration=9)) == (
        "InvalidParameterValue"
    )
    assert code_of(
        lambda: account.ec2.lock_snapshot(SnapshotId=sid, LockMode="compliance", LockDuration=9, CoolOffPeriod=1)
    ) == ("InvalidParameterValue")
    longer = account.ec2.lock_snapshot(SnapshotId=sid, LockMode="compliance", LockDuration=9)
    assert longer["LockState"] == "compliance"
    assert longer["LockExpiresOn"] == RUN_TIME + timedelta(days=9)
    assert code_of(lambda: account.ec2.delete_snapshot(SnapshotId=sid)) == SNAPSHOT_LOCKED_ERROR


def test_lock_snapshots_locks_once_and_a_repeat_leaves_locks_alone(account: Account, clock: Clock):
    ids = [snapshot(account) for _ in range(3)]
    lock = LockSettings(mode="compliance", days=7, cool_off_hours=1)
    account.tap.activate(True)
    try:
        first = lock_snapshots(Ec2(), ids, lock, fresh=True)
        clock.at = RUN_TIME + timedelta(hours=2)  # past the cooling-off period
        again = lock_snapshots(Ec2(), ids, lock)  # a retried step: would fail if re-sent
    finally:
        account.tap.activate(False)
    assert first == again == dict.fromkeys(ids, RUN_TIME + timedelta(days=7))
    assert account.tap.calls["ec2:LockSnapshot"] == 3
    assert account.tap.calls["ec2:DescribeLockedSnapshots"] == 1
    assert active_locks(Ec2(), ids, clock.at) == dict.fromkeys(ids, RUN_TIME + timedelta(days=7))
    assert active_locks(Ec2(), ids, RUN_TIME + timedelta(days=7)) == {}


@pytest.mark.parametrize("code", [SNAPSHOT_LOCKED_ERROR, "IncorrectState", "InvalidSnapshot.InUse", "AccessDenied"])
def test_a_lock_that_appears_after_the_plan_read_the_locks_keeps_the_snapshot_whatever_the_code(
    account: Account, code: str
):
    # Given an expired snapshot that another actor locks right after Prune read the locks, and an
    # EC2 that refuses its deletion with ``code`` (the API Reference documents none)
    from smart_vault.handlers import prune
    from tests.unit.test_prune import backed_up, existing_ids, old

    account.configure(keep_min=1, max_delete_fraction=1.0)
    web = account.add_instance("web-1")
    doomed = old(account, web, days=30)
    account.locks.locked_error = code

    def another_actor_locks(**_: Any) -> None:
        if doomed not in account.locks.locks:
            account.locks.lock({"SnapshotId": doomed, "LockMode": "governance", "LockDuration": 3})

    events = boto3._get_default_session().events
    events.register("after-call.ec2.DescribeLockedSnapshots", another_actor_locks)
    try:
        outcome = account.invoke(prune.handler, backed_up(account, web))
    finally:
        events.unregister("after-call.ec2.DescribeLockedSnapshots", another_actor_locks)
    # Then it is kept, re-checked and reported as locked, not as a skipped or failed deletion
    assert doomed in existing_ids(account)
    assert [k["snapshot_id"] for k in outcome["kept_locked"]] == [doomed]
    assert outcome["skipped_deletes"] == [] and outcome["deleted"] == [] and outcome["status"] == "backed_up"
    assert account.tap.calls["ec2:DescribeLockedSnapshots"] == 2  # the plan's read, and the re-check


def test_a_copy_locked_while_pending_starts_its_duration_when_it_completed_not_when_next_looked_at(
    account: Account, clock: Clock
):
    """A copy locked at once, completing two hours later in its Region; nothing looks at its lock
    until the next night's run. Its duration runs from the completion (LockedSnapshotsInfo)."""
    dest = CopyRegion(region="us-west-2", kms_key="alias/smart-vault-dr", retention_days=7, keep_min=1)
    copying = regions.CopyEmulation(regions=(dest,), checks_for=lambda _instance: 1, now=clock)
    copying.create_keys()
    account.locks.other_regions = (dest.region,)
    account.tap.checks.append(copying)
    west = boto3.client("ec2", region_name=dest.region)
    account.tap.activate(True, "copy")  # the calls are the copy function's
    with regions.patched(copying):
        copy_id = west.copy_snapshot(
            SourceSnapshotId=snapshot(account), SourceRegion=REGION, Encrypted=True, KmsKeyId=dest.kms_key
        )["SnapshotId"]
        locked = west.lock_snapshot(SnapshotId=copy_id, LockMode="governance", LockDuration=7)
        assert "LockDurationStartTime" not in locked  # pending: not started
        completed_at = RUN_TIME + timedelta(hours=2)
        clock.at = completed_at
        states = [west.describe_snapshots(SnapshotIds=[copy_id])["Snapshots"][0]["State"] for _check in range(3)]
        assert states[-1] == "completed"  # each completion check brought it closer
    account.tap.activate(False)
    clock.at = RUN_TIME + timedelta(days=1)
    (info,) = west.describe_locked_snapshots(SnapshotIds=[copy_id])["Snapshots"]
    assert info["LockDurationStartTime"] == completed_at
    assert info["LockExpiresOn"] == completed_at + timedelta(days=7)
