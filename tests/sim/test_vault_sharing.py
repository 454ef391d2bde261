"""Two accounts in one emulation: the source shares its snapshots with the vault account, the vault
copies them with its own key, and what the vault holds no longer depends on the source
(vault_account; Amazon EBS User Guide, "Share an Amazon EBS snapshot with other AWS accounts")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from smart_vault_sim import vault_account
from smart_vault_sim.authorization import Authorizer, Requests
from smart_vault_sim.aws_tap import ApiCall
from smart_vault_sim.iam import Decision, Policy
from smart_vault_sim.stack_iam import Role, StackIam
from smart_vault_sim.vault_account import VAULT_ACCOUNT_ID, Sharing
from tests.conftest import REGION, Account

SOURCE = "123456789012"


def key_policy(*, share_with: str | None) -> str:
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{SOURCE}:root"}, "Action": "kms:*", "Resource": "*"}
    ]
    if share_with:
        statements.append(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{share_with}:root"},
                "Action": ["kms:DescribeKey", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
                "Resource": "*",
            }
        )
        statements.append(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{share_with}:root"},
                "Action": "kms:CreateGrant",
                "Resource": "*",
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


@pytest.fixture
def sharing(account: Account) -> Iterator[Sharing]:
    with vault_account.patched(Sharing()) as emulated:
        yield emulated


@pytest.fixture
def vault(sharing: Sharing) -> Any:
    return vault_account.session(VAULT_ACCOUNT_ID, "smart-vault-vault-copy", REGION)


def snapshot_of(account: Account, *, key: str | None = None, encrypted: bool = True) -> str:
    extra: dict[str, Any] = {"Encrypted": True, **({"KmsKeyId": key} if key else {})} if encrypted else {}
    volume = account.ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8, **extra)["VolumeId"]
    return str(
        account.ec2.create_snapshot(
            VolumeId=volume,
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "smart-vault:managed", "Value": "x"}]}],
        )["SnapshotId"]
    )


def share(account: Account, snapshot_id: str, operation: str = "add") -> None:
    account.ec2.modify_snapshot_attribute(
        SnapshotId=snapshot_id,
        Attribute="createVolumePermission",
        OperationType=operation,
        UserIds=[VAULT_ACCOUNT_ID],
    )


def shared_with_vault(vault: Any) -> list[dict[str, Any]]:
    return vault.client("ec2").describe_snapshots(OwnerIds=[SOURCE], RestorableByUserIds=["self"])["Snapshots"]


def test_the_vault_sees_what_is_shared_with_it_without_the_sources_tags_until_the_share_is_withdrawn(
    account: Account, vault: Any
):
    source_key = boto3.client("kms").create_key(Policy=key_policy(share_with=VAULT_ACCOUNT_ID))["KeyMetadata"]["Arn"]
    shared, kept = snapshot_of(account, key=source_key), snapshot_of(account, key=source_key)
    assert shared_with_vault(vault) == []
    share(account, shared)

    seen = shared_with_vault(vault)
    assert [(s["SnapshotId"], s["OwnerId"], s["Tags"]) for s in seen] == [(shared, SOURCE, [])]
    # Its own snapshots are not the source's: OwnerIds=self lists none of them.
    assert vault.client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    assert kept not in {s["SnapshotId"] for s in vault.client("ec2").describe_snapshots()["Snapshots"]}

    share(account, shared, "remove")
    assert shared_with_vault(vault) == []


def test_a_snapshot_on_the_aws_managed_key_cannot_be_shared(account: Account, sharing: Sharing):
    on_default_key = snapshot_of(account)  # Encrypted without a key: EBS uses aws/ebs

    with pytest.raises(ClientError) as refused:
        share(account, on_default_key)

    assert refused.value.response["Error"]["Code"] == "OperationNotPermitted"
    assert "default key" in refused.value.response["Error"]["Message"]
    unencrypted = snapshot_of(account, encrypted=False)
    share(account, unencrypted)  # nothing to decrypt: an unencrypted snapshot can be shared


def copy_into_vault(vault: Any, snapshot_id: str, key: str) -> dict[str, Any]:
    ec2 = vault.client("ec2")
    copy_id = ec2.copy_snapshot(SourceSnapshotId=snapshot_id, SourceRegion=REGION, Encrypted=True, KmsKeyId=key)[
        "SnapshotId"
    ]
    return dict(ec2.describe_snapshots(SnapshotIds=[copy_id])["Snapshots"][0])


def test_the_vault_copy_is_its_own_and_outlives_the_source_snapshot_and_key(account: Account, vault: Any):
    kms = boto3.client("kms")
    source_key = kms.create_key(Policy=key_policy(share_with=VAULT_ACCOUNT_ID))["KeyMetadata"]["Arn"]
    vault_key = vault.client("kms").create_key()["KeyMetadata"]["Arn"]
    original = snapshot_of(account, key=source_key)
    share(account, original)

    copy = copy_into_vault(vault, original, vault_key)

    assert (copy["State"], copy["OwnerId"], copy["KmsKeyId"]) == ("completed", VAULT_ACCOUNT_ID, vault_key)
    assert copy["VolumeId"] == vault_account.PLACEHOLDER_VOLUME  # "an arbitrary source volume ID"
    # The source's administrator deletes the original and schedules its key for deletion; the
    # copy is the vault's, out of the source account's reach.
    account.ec2.delete_snapshot(SnapshotId=original)
    kms.schedule_key_deletion(KeyId=source_key.rsplit("/", 1)[-1], PendingWindowInDays=7)  # moto: by key id
    with pytest.raises(ClientError) as unknown:
        account.ec2.delete_snapshot(SnapshotId=copy["SnapshotId"])
    assert unknown.value.response["Error"]["Code"] == "InvalidSnapshot.NotFound"
    kept = vault.client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert [(s["SnapshotId"], s["State"]) for s in kept] == [(copy["SnapshotId"], "completed")]


@pytest.mark.parametrize("how", ["key not shared", "key pending deletion"])
def test_a_copy_ends_in_error_when_the_vault_may_not_use_the_source_key(account: Account, vault: Any, how: str):
    kms = boto3.client("kms")
    shared_key = how != "key not shared"
    source_key = kms.create_key(Policy=key_policy(share_with=VAULT_ACCOUNT_ID if shared_key else None))["KeyMetadata"][
        "Arn"
    ]
    vault_key = vault.client("kms").create_key()["KeyMetadata"]["Arn"]
    original = snapshot_of(account, key=source_key)
    share(account, original)
    if how == "key pending deletion":
        kms.schedule_key_deletion(KeyId=source_key.rsplit("/", 1)[-1], PendingWindowInDays=7)  # moto: by key id

    copy = copy_into_vault(vault, original, vault_key)

    assert copy["State"] == "error"
    assert source_key in copy["StateMessage"]


def test_the_vaults_copies_count_against_twenty_in_flight_per_destination_region(account: Account, vault: Any):
    vault_key = vault.client("kms").create_key()["KeyMetadata"]["Arn"]
    ec2 = vault.client("ec2")
    originals = [snapshot_of(account, encrypted=False) for _ in range(21)]
    for snapshot_id in originals:
        share(account, snapshot_id)
    for snapshot_id in originals[:20]:
        ec2.copy_snapshot(SourceSnapshotId=snapshot_id, SourceRegion=REGION, Encrypted=True, KmsKeyId=vault_key)

    with pytest.raises(ClientError) as refused:
        ec2.copy_snapshot(SourceSnapshotId=originals[20], SourceRegion=REGION, Encrypted=True, KmsKeyId=vault_key)

    assert refused.value.response["Error"]["Code"] == "ResourceLimitExceeded"


def share_decisions(account: Account, snapshot_id: str, params: dict[str, Any]) -> list[Decision]:
    """How IAM judges a ModifySnapshotAttribute of a role that may share only with the vault."""
    policy = Policy.parse(
        "share",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "ec2:ModifySnapshotAttribute",
                    "Resource": f"arn:aws:ec2:{REGION}::snapshot/*",
                    "Condition": {
                        "StringEquals": {"ec2:Attribute": "createVolumePermission"},
                        "ForAllValues:StringEquals": {
                            "ec2:Add/userId": [VAULT_ACCOUNT_ID],
                            "ec2:Remove/userId": [VAULT_ACCOUNT_ID],
                        },
                        "Null": {"ec2:Add/group": "true"},
                    },
                }
            ],
        },
    )
    role = Role("ShareRole", f"arn:aws:iam::{SOURCE}:role/share", "share", (policy,))
    authorizer = Authorizer(StackIam(roles={"share": role}), region=REGION, account=SOURCE, sessions={})
    call = ApiCall(
        service="ec2", operation="ModifySnapshotAttribute", params={"SnapshotId": snapshot_id, **params}, caller="share"
    )
    return [
        authorizer.decide("share", n.action, n.resource, n.context, region=REGION)
        for n in Requests(region=REGION, account=SOURCE).needs(call)
    ]


def test_a_role_conditioned_on_ec2_add_userid_shares_with_the_vault_only(account: Account):
    snapshot_id = snapshot_of(account, encrypted=False)
    legacy = {"Attribute": "createVolumePermission", "OperationType": "add"}

    assert share_decisions(account, snapshot_id, {**legacy, "UserIds": [VAULT_ACCOUNT_ID]}) == [Decision.ALLOW]
    assert share_decisions(account, snapshot_id, {**legacy, "UserIds": ["999999999999"]}) == [Decision.IMPLICIT_DENY]
    withdraw = {"CreateVolumePermission": {"Remove": [{"UserId": VAULT_ACCOUNT_ID}]}}
    assert share_decisions(account, snapshot_id, withdraw) == [Decision.ALLOW]
    public = {"CreateVolumePermission": {"Add": [{"Group": "all"}]}}
    assert share_decisions(account, snapshot_id, public) == [Decision.IMPLICIT_DENY]


def test_the_source_cannot_delete_unlock_or_retag_a_vault_copy_and_the_vault_cannot_touch_the_source(
    account: Account, vault: Any
):
    """EC2 snapshots have no resource policy: a call reaches only the caller's own account, so
    even the source's administrator never reaches the vault's copy, and the vault, beyond copying
    what is shared, reaches nothing of the source."""
    vault_key = vault.client("kms").create_key()["KeyMetadata"]["Arn"]
    original = snapshot_of(account, encrypted=False)
    share(account, original)
    copy = copy_into_vault(vault, original, vault_key)["SnapshotId"]
    vault.client("ec2").create_tags(Resources=[copy], Tags=[{"Key": "smart-vault:managed-by", "Value": "vault"}])

    for attempt in (
        lambda: account.ec2.delete_snapshot(SnapshotId=copy),
        lambda: account.ec2.modify_snapshot_attribute(
            SnapshotId=copy, Attribute="createVolumePermission", OperationType="add", UserIds=[SOURCE]
        ),
        lambda: account.ec2.create_tags(Resources=[copy], Tags=[{"Key": "smart-vault:managed-by", "Value": "x"}]),
        lambda: vault.client("ec2").delete_snapshot(SnapshotId=original),
        lambda: vault.client("ec2").modify_snapshot_attribute(
            SnapshotId=original, Attribute="createVolumePermission", OperationType="remove", UserIds=[VAULT_ACCOUNT_ID]
        ),
    ):
        with pytest.raises(ClientError) as refused:
            attempt()
        assert refused.value.response["Error"]["Code"] == "InvalidSnapshot.NotFound"
    [held] = vault.client("ec2").describe_snapshots(SnapshotIds=[copy])["Snapshots"]
    assert held["Tags"] == [{"Key": "smart-vault:managed-by", "Value": "vault"}]
    assert [s["SnapshotId"] for s in shared_with_vault(vault)] == [original]
