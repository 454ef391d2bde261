"""The archive tier on the virtual clock: moto archives at once and refuses nothing; AWS takes
time and refuses snapshots it cannot archive (smart_vault_sim.tiering cites the pages)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from smart_vault_sim import fleet, tiering
from tests.conftest import Account

T0 = datetime(2026, 11, 26, 3, tzinfo=UTC)


def _snapshot(account: Account, *, state: str = "completed") -> str:
    volume = account.ec2.create_volume(Size=8, AvailabilityZone="us-east-1a")["VolumeId"]
    snapshot_id = account.ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    fleet.ec2_backend("us-east-1").snapshots[snapshot_id].status = state
    return snapshot_id


def _tier(account: Account, snapshot_id: str) -> tuple[str, str | None]:
    (snap,) = account.ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    (status,) = account.ec2.describe_snapshot_tier_status(Filters=[{"Name": "snapshot-id", "Values": [snapshot_id]}])[
        "SnapshotTierStatuses"
    ]
    return snap["StorageTier"], status.get("LastTieringOperationStatus")


def test_archiving_takes_time_on_the_virtual_clock(account: Account):
    clock = [T0]
    with tiering.patched(now=lambda: clock[0]):
        snapshot_id = _snapshot(account)
        account.ec2.modify_snapshot_tier(SnapshotId=snapshot_id, StorageTier="archive")
        assert _tier(account, snapshot_id) == ("standard", "archival-in-progress")
        clock[0] = T0 + tiering.ARCHIVE_DURATION - timedelta(seconds=1)
        assert _tier(account, snapshot_id)[0] == "standard"
        clock[0] = T0 + tiering.ARCHIVE_DURATION
        assert _tier(account, snapshot_id) == ("archive", "archival-completed")


@pytest.mark.parametrize("state", ["pending", "error"])
def test_only_completed_snapshots_can_be_archived(account: Account, state: str):
    with tiering.patched(now=lambda: T0):
        snapshot_id = _snapshot(account, state=state)
        with pytest.raises(ClientError) as refused:
            account.ec2.modify_snapshot_tier(SnapshotId=snapshot_id, StorageTier="archive")
    assert refused.value.response["Error"]["Code"] == "IncorrectState"


def test_a_snapshot_an_ami_uses_or_already_archiving_is_refused(account: Account):
    with tiering.patched(now=lambda: T0):
        pinned = _snapshot(account)
        fleet.pin_to_ami(account.ec2, region="us-east-1", snapshot_id=pinned, name="uses-it")
        busy = _snapshot(account)
        account.ec2.modify_snapshot_tier(SnapshotId=busy, StorageTier="archive")
        for snapshot_id in (pinned, busy):
            with pytest.raises(ClientError) as refused:
                account.ec2.modify_snapshot_tier(SnapshotId=snapshot_id, StorageTier="archive")
            assert refused.value.response["Error"]["Code"] == "IncorrectState"
