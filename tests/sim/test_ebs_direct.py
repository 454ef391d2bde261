"""The emulated EBS direct APIs (smart_vault_sim.ebs_direct cites the pages): blocks of EC2
snapshots that moto's own ebs backend does not know, with real signatures, checksums, a version
per block that changes between a volume's snapshots, the documented limits and errors."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from smart_vault_sim import fleet
from smart_vault_sim.ebs_direct import BLOCK_SIZE, EbsDirect
from tests.conftest import REGION, Account

T0 = datetime(2026, 11, 26, 3, tzinfo=UTC)


class _Clock:
    def __init__(self) -> None:
        self.at = T0
        self.seconds = 0.0


@pytest.fixture
def ebs(account: Account) -> tuple[EbsDirect, Any, _Clock]:
    clock = _Clock()
    direct = EbsDirect(now=lambda: clock.at, seconds=lambda: clock.seconds)
    session = boto3.Session(region_name=REGION)
    direct.install(session.events)
    return direct, session.client("ebs"), clock


def _snapshots(account: Account, count: int = 1, size_gib: int = 1) -> tuple[str, list[str]]:
    volume = account.ec2.create_volume(Size=size_gib, AvailabilityZone=f"{REGION}a")["VolumeId"]
    ids = []
    for n in range(count):
        sid = account.ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
        snap = fleet.ec2_backend(REGION).snapshots[sid]
        snap.status, snap.start_time = "completed", T0 + timedelta(days=n)
        ids.append(sid)
    return volume, ids


def _all_blocks(client: Any, snapshot_id: str) -> list[dict[str, Any]]:
    blocks, token = [], None
    while True:
        page = client.list_snapshot_blocks(SnapshotId=snapshot_id, **({"NextToken": token} if token else {}))
        blocks += page["Blocks"]
        token = page.get("NextToken")
        if not token:
            return blocks


def _read(client: Any, snapshot_id: str, block: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    got = client.get_snapshot_block(
        SnapshotId=snapshot_id, BlockIndex=block["BlockIndex"], BlockToken=block["BlockToken"]
    )
    return got["BlockData"].read(), got


def test_an_ext4_snapshot_lists_written_blocks_and_serves_its_superblock_with_checksums(account, ebs):
    _, client, _ = ebs
    _, (snapshot_id,) = _snapshots(account)
    blocks = _all_blocks(client, snapshot_id)
    indexes = [b["BlockIndex"] for b in blocks]
    assert indexes == sorted(set(indexes)) and indexes[0] == 0
    assert 0 < len(blocks) < 2048  # only written blocks of the 1 GiB volume
    data, got = _read(client, snapshot_id, blocks[0])
    assert len(data) == BLOCK_SIZE == got["DataLength"]
    assert data[1024 + 56 : 1024 + 58] == b"\x53\xef"  # s_magic 0xEF53, little-endian
    assert got["ChecksumAlgorithm"] == "SHA256"
    assert got["Checksum"] == base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.mark.parametrize(
    ("filesystem", "offset", "signature"),
    [("xfs", 0, b"XFSB"), ("ntfs", 3, b"NTFS    "), ("gpt-ext4", 512, b"EFI PART")],
)
def test_each_file_system_has_its_documented_signature(account, ebs, filesystem, offset, signature):
    direct, client, _ = ebs
    volume, (snapshot_id,) = _snapshots(account)
    direct.set_filesystem(volume, filesystem)
    blocks = _all_blocks(client, snapshot_id)
    data, _ = _read(client, snapshot_id, blocks[0])
    assert data[offset : offset + len(signature)] == signature
    if filesystem == "gpt-ext4":  # the partition at LBA 2048 (block 2) holds an ext4 superblock
        partition = next(b for b in blocks if b["BlockIndex"] == 2)
        data, _ = _read(client, snapshot_id, partition)
        assert data[1024 + 56 : 1024 + 58] == b"\x53\xef"


def test_corrupt_blocks_fail_their_checksum_and_blank_ones_are_zero(account, ebs):
    direct, client, _ = ebs
    corrupt_volume, (corrupt,) = _snapshots(account)
    blank_volume, (blank,) = _snapshots(account)
    direct.set_filesystem(corrupt_volume, "corrupt")
    direct.set_filesystem(blank_volume, "blank")
    data, got = _read(client, corrupt, _all_blocks(client, corrupt)[0])
    assert got["Checksum"] != base64.b64encode(hashlib.sha256(data).digest()).decode()
    data, got = _read(client, blank, _all_blocks(client, blank)[0])
    assert data == bytes(BLOCK_SIZE)


def test_list_changed_blocks_diffs_two_snapshots_of_a_volume_by_the_changed_percent(account, ebs):
    direct, client, _ = ebs
    volume, (first, second) = _snapshots(account, count=2, size_gib=4)
    written = len(_all_blocks(client, second))

    def changed() -> list[dict[str, Any]]:
        blocks, token = [], None
        while True:
            extra = {"NextToken": token} if token else {}
            page = client.list_changed_blocks(FirstSnapshotId=first, SecondSnapshotId=second, **extra)
            blocks += page["ChangedBlocks"]
            token = page.get("NextToken")
            if not token:
                return blocks

    default = changed()
    assert 0.01 * written < len(default) < 0.03 * written  # 2 % by default
    assert all(b["FirstBlockToken"] != b["SecondBlockToken"] for b in default)
    direct.set_changed_percent(volume, 20)
    assert 0.15 * written < len(changed()) < 0.25 * written
    # A changed block reads differently in the two snapshots, each with its own token.
    block = default[0]
    old = client.get_snapshot_block(
        SnapshotId=first, BlockIndex=block["BlockIndex"], BlockToken=block["FirstBlockToken"]
    )
    new = client.get_snapshot_block(
        SnapshotId=second, BlockIndex=block["BlockIndex"], BlockToken=block["SecondBlockToken"]
    )
    assert old["Checksum"] != new["Checksum"]
    # Without a first snapshot: every written block of the second.
    assert len(client.list_changed_blocks(SecondSnapshotId=second, MaxResults=10_000)["ChangedBlocks"]) == written


def test_pages_follow_max_results_and_starting_block_index(account, ebs):
    _, client, _ = ebs
    _, (snapshot_id,) = _snapshots(account, size_gib=2)
    page = client.list_snapshot_blocks(SnapshotId=snapshot_id, MaxResults=100)
    assert len(page["Blocks"]) == 100 and page["NextToken"]
    assert page["BlockSize"] == BLOCK_SIZE and page["VolumeSize"] == 2
    later = client.list_snapshot_blocks(SnapshotId=snapshot_id, MaxResults=100, StartingBlockIndex=1000)
    assert later["Blocks"][0]["BlockIndex"] >= 1000
    # NextToken wins over StartingBlockIndex (EBS direct APIs FAQ).
    resumed = client.list_snapshot_blocks(
        SnapshotId=snapshot_id, MaxResults=100, NextToken=page["NextToken"], StartingBlockIndex=1000
    )
    assert resumed["Blocks"][0]["BlockIndex"] > page["Blocks"][-1]["BlockIndex"]
    assert resumed["Blocks"][0]["BlockIndex"] < 1000


def _code(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return error.value.response["Error"]["Code"], error.value.response["Reason"]


def test_documented_errors(account, ebs):
    _, client, clock = ebs
    _, (other,) = _snapshots(account)
    _, (first, second) = _snapshots(account, count=2)
    with pytest.raises(ClientError) as missing:
        client.list_snapshot_blocks(SnapshotId="snap-0123456789abcdef0")
    assert _code(missing) == ("ResourceNotFoundException", "SNAPSHOT_NOT_FOUND")
    with pytest.raises(ClientError) as too_many:
        client.list_snapshot_blocks(SnapshotId=first, MaxResults=10_001)
    assert _code(too_many) == ("ValidationException", "INVALID_PARAMETER_VALUE")
    with pytest.raises(ClientError) as unrelated:
        client.list_changed_blocks(FirstSnapshotId=other, SecondSnapshotId=second)
    assert _code(unrelated) == ("ValidationException", "UNRELATED_SNAPSHOTS")
    block = client.list_snapshot_blocks(SnapshotId=first)["Blocks"][0]
    with pytest.raises(ClientError) as wrong_token:
        client.get_snapshot_block(SnapshotId=second, BlockIndex=block["BlockIndex"] + 1, BlockToken=block["BlockToken"])
    assert _code(wrong_token)[0] == "ValidationException"
    page = client.list_snapshot_blocks(SnapshotId=first, MaxResults=100)
    clock.at += timedelta(minutes=61)  # next tokens last 60 minutes
    with pytest.raises(ClientError) as stale:
        client.list_snapshot_blocks(SnapshotId=first, NextToken=page["NextToken"])
    assert _code(stale) == ("ValidationException", "INVALID_PAGE_TOKEN")


@pytest.mark.parametrize("state", ["pending", "archived"])
def test_only_completed_standard_tier_snapshots_can_be_read(account, ebs, state):
    _, client, _ = ebs
    _, (snapshot_id,) = _snapshots(account)
    snap = fleet.ec2_backend(REGION).snapshots[snapshot_id]
    if state == "pending":
        snap.status = "pending"
    else:
        snap.storage_tier = "archive"
    with pytest.raises(ClientError) as refused:
        client.list_snapshot_blocks(SnapshotId=snapshot_id)
    assert _code(refused) == ("ValidationException", "INVALID_SNAPSHOT_ID")


def test_request_rate_quota_per_account_on_the_virtual_clock(account, ebs):
    direct, client, clock = ebs
    _, (snapshot_id,) = _snapshots(account)
    for _ in range(50):  # ListSnapshotBlocks: 50 requests per second per account
        client.list_snapshot_blocks(SnapshotId=snapshot_id, MaxResults=100)
    with pytest.raises(ClientError) as throttled:
        client.list_snapshot_blocks(SnapshotId=snapshot_id, MaxResults=100)
    assert _code(throttled) == ("RequestThrottledException", "ACCOUNT_THROTTLED")
    clock.seconds += 1.0
    client.list_snapshot_blocks(SnapshotId=snapshot_id, MaxResults=100)
    assert direct.throttled == 1


def test_a_copy_in_another_region_holds_its_source_content(account, ebs):
    direct, client, _ = ebs
    _, (source,) = _snapshots(account)
    west = boto3.client("ec2", region_name="us-west-2")
    copy = west.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION)["SnapshotId"]
    fleet.ec2_backend("us-west-2").snapshots[copy].status = "completed"
    direct.source_of = lambda sid: (REGION, source) if sid == copy else None
    session = boto3.Session(region_name="us-west-2")
    direct.install(session.events)
    west_ebs = session.client("ebs")
    here, there = _all_blocks(client, source), _all_blocks(west_ebs, copy)
    assert [b["BlockIndex"] for b in here] == [b["BlockIndex"] for b in there]
    assert _read(client, source, here[5])[1]["Checksum"] == _read(west_ebs, copy, there[5])[1]["Checksum"]


def test_iam_sees_the_snapshots_resource_tags_and_only_the_keys_the_sar_lists(account):
    from smart_vault.constants import TAG_MANAGED
    from smart_vault_sim.authorization import Authorizer
    from smart_vault_sim.aws_tap import ApiCall
    from smart_vault_sim.iam import Policy
    from smart_vault_sim.stack_iam import Role, StackIam

    _, (tagged, untagged) = _snapshots(account, count=2)
    account.ec2.create_tags(Resources=[tagged], Tags=[{"Key": TAG_MANAGED, "Value": "vault"}])
    statements = [
        {
            "Effect": "Allow",
            "Action": ["ebs:ListSnapshotBlocks", "ebs:GetSnapshotBlock"],
            "Resource": "arn:aws:ec2:*::snapshot/*",
            "Condition": {"StringEquals": {f"aws:ResourceTag/{TAG_MANAGED}": "vault"}},
        },
        {  # ebs:VolumeSize is the created snapshot's key (StartSnapshot): never in a read's context
            "Effect": "Allow",
            "Action": "ebs:ListChangedBlocks",
            "Resource": "*",
            "Condition": {"NumericLessThan": {"ebs:VolumeSize": "100"}},
        },
    ]
    policy = Policy.parse("drill", {"Version": "2012-10-17", "Statement": statements})
    role = Role("DrillRole", f"arn:aws:iam::{fleet.ACCOUNT_ID}:role/drill", "drill", (policy,))
    authorizer = Authorizer(StackIam(roles={"drill": role}), region=REGION, account=fleet.ACCOUNT_ID, sessions={})

    def call(operation: str, **params: Any) -> None:
        authorizer(ApiCall(service="ebs", operation=operation, params=params, caller="drill", region=REGION))

    call("ListSnapshotBlocks", SnapshotId=tagged)
    call("GetSnapshotBlock", SnapshotId=tagged, BlockIndex=0, BlockToken="x")
    with pytest.raises(ClientError) as denied:
        call("GetSnapshotBlock", SnapshotId=untagged, BlockIndex=0, BlockToken="x")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert f"ebs:GetSnapshotBlock on resource: arn:aws:ec2:{REGION}::snapshot/{untagged}" in str(denied.value)
    with pytest.raises(ClientError):
        call("ListChangedBlocks", SecondSnapshotId=tagged)
