"""An isolated vault account: nightly backups are shared with the vault, the vault's own functions
copy them with the vault's key, prune and lock them by the vault's rules, the source withdraws
each share once the vault holds the copy, and after the source account is compromised the vault
still restores every device (real handlers and vault code against two emulated accounts)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from smart_vault.aws import Ec2
from smart_vault.constants import TAG_MANAGED, TAG_RUN_TIME, TAG_SOURCE_SNAPSHOT, TAG_SOURCE_VOLUME
from smart_vault.errors import SmartVaultError
from smart_vault.handlers import snapshot
from smart_vault.policy import LockSettings
from smart_vault.settings import VaultSettings
from smart_vault.validation import parse_time
from smart_vault.vault import pull, share
from smart_vault_sim import fleet, vault_account
from smart_vault_sim.vault_account import VAULT_ACCOUNT_ID, AccountLocks, Sharing
from tests.conftest import DEPLOYMENT, REGION, RUN_TIME, Account, run_context

SOURCE = fleet.ACCOUNT_ID
VAULT_DEPLOYMENT = "vault-of-test"


def shared_key_policy() -> str:
    vault_root = f"arn:aws:iam::{VAULT_ACCOUNT_ID}:root"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{SOURCE}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": vault_root},
                    "Action": ["kms:DescribeKey", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
                    "Resource": "*",
                },
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": vault_root},
                    "Action": "kms:CreateGrant",
                    "Resource": "*",
                    "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
                },
            ],
        }
    )


@dataclass
class Vault:
    """The vault account: its session (credentials of its copy role), its key, its clock."""

    session: Any
    settings: VaultSettings
    clock: list[datetime]

    @property
    def ec2(self) -> Any:
        return self.session.client("ec2")

    def run(self) -> pull.VaultRun:
        return pull.pull(
            Ec2(self.session),
            vault=self.settings,
            source_account=SOURCE,
            deployment_id=VAULT_DEPLOYMENT,
            now=self.clock[0],
        )

    def copies(self) -> list[dict[str, Any]]:
        return [
            s
            for s in self.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
            if {t["Key"]: t["Value"] for t in s.get("Tags", [])}.get(TAG_MANAGED) == VAULT_DEPLOYMENT
        ]


@pytest.fixture
def vault(account: Account) -> Iterator[Vault]:
    clock = [RUN_TIME]
    with vault_account.patched(Sharing()):
        session = vault_account.session(VAULT_ACCOUNT_ID, "smart-vault-vault-copy", REGION)
        AccountLocks(VAULT_ACCOUNT_ID, REGION, lambda: clock[0]).install(session.events)
        key = session.client("kms").create_key(Description="vault copies")["KeyMetadata"]["Arn"]
        settings = VaultSettings.from_value(
            {
                "account": VAULT_ACCOUNT_ID,
                "region": REGION,
                "kms_key": key,
                "retention_days": 7,
                "keep_min": 3,
                "lock": {"mode": "compliance", "days": 3, "cool_off_hours": 1},
            },
            path="vault.",
        )
        assert settings is not None
        yield Vault(session=session, settings=settings, clock=clock)


def protected_instance(account: Account, key: str | None) -> fleet.BuiltInstance:
    return fleet.add_instance(
        account.ec2,
        region=REGION,
        name="db-1",
        tags={"backup": "True"},
        volumes=[fleet.VolumeSpec(device="/dev/xvda", kms_key=key), fleet.VolumeSpec(device="/dev/sdf", kms_key=key)],
    )


def night(account: Account, vault: Vault, instance_id: str, at: datetime, receipt: dict[str, Any]) -> pull.VaultRun:
    """One night: the source backs up and shares the run's snapshots, withdraws the shares of
    what the vault reported held; then the vault runs."""
    vault.clock[0] = at
    run = run_context(at=at, name=f"run-{at:%d}")
    account.invoke(snapshot.handler, account.job(instance_id, run=run))
    source = Ec2()
    share.withdraw(source, receipt.get("completed", ()), vault.settings)
    share.share_completed(source, source.managed_snapshots(DEPLOYMENT, instance_id, run.run_id), vault.settings)
    return vault.run()


@pytest.mark.slow
def test_thirty_nights_then_a_compromise_and_the_vault_still_restores_every_device(account: Account, vault: Vault):
    source_key = boto3.client("kms").create_key(Policy=shared_key_policy())["KeyMetadata"]["Arn"]
    db = protected_instance(account, source_key)
    receipt: dict[str, Any] = {}
    runs = []
    for n in range(30):
        runs.append(night(account, vault, db.instance_id, RUN_TIME + timedelta(days=n), receipt))
        receipt = runs[-1].receipt(SOURCE)

    # Every night's two snapshots were copied once, and pruned only by the vault's 7 days.
    assert [len(r.copies_made) for r in runs] == [2] * 30
    assert sum(len(r.pruned) for r in runs) > 0
    copies = vault.copies()
    last = RUN_TIME + timedelta(days=29)
    kept_times = sorted({_run_time(c) for c in copies})
    assert all(last - t <= timedelta(days=7) for t in kept_times if t < last - timedelta(days=1))
    # The shares of every copy the vault reported held were withdrawn: only the last two nights'
    # remain (a copy started tonight completes by the next vault run, reported the night after).
    shared = vault.ec2.describe_snapshots(OwnerIds=[SOURCE], RestorableByUserIds=["self"])["Snapshots"]
    assert {pull.backup_time(s) for s in shared} == {last - timedelta(days=1), last}

    # The source's administrator deletes every snapshot it can and schedules its key for deletion.
    for snap in account.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]:
        account.ec2.delete_snapshot(SnapshotId=snap["SnapshotId"])
    boto3.client("kms").schedule_key_deletion(KeyId=source_key.rsplit("/", 1)[-1], PendingWindowInDays=7)
    for copy in vault.copies():
        with pytest.raises(ClientError):
            account.ec2.delete_snapshot(SnapshotId=copy["SnapshotId"])  # not the source's to see

    # The vault keeps running: nothing new, nothing of its own lost beyond its retention.
    vault.clock[0] = last + timedelta(days=1)
    after = vault.run()
    assert after.copies_made == ()
    held = vault.copies()
    by_volume: dict[str, list[dict[str, Any]]] = {}
    for copy in held:
        by_volume.setdefault(_tags(copy)[TAG_SOURCE_VOLUME], []).append(copy)
    assert set(by_volume) == set(db.volume_ids.values())
    assert all(len(v) >= vault.settings.keep_min for v in by_volume.values())
    # The latest point restores every device from the vault's copies, on the vault's own key.
    for volume_copies in by_volume.values():
        newest = max(volume_copies, key=_run_time)
        assert _run_time(newest) == last
        restored = vault.ec2.create_volume(SnapshotId=newest["SnapshotId"], AvailabilityZone=f"{REGION}a")
        assert restored["SnapshotId"] == newest["SnapshotId"] and newest["KmsKeyId"] == vault.settings.kms_key


def test_locked_copies_outlive_the_vaults_retention_until_the_lock_expires(account: Account, vault: Vault):
    db = protected_instance(account, boto3.client("kms").create_key(Policy=shared_key_policy())["KeyMetadata"]["Arn"])
    vault.settings = replace(vault.settings, lock=LockSettings(mode="compliance", days=20, cool_off_hours=1))
    receipt: dict[str, Any] = {}
    for n in range(12):
        receipt = night(account, vault, db.instance_id, RUN_TIME + timedelta(days=n), receipt).receipt(SOURCE)

    # 7 days of retention, but every copy is locked for 20 days: none has gone.
    assert len(vault.copies()) == 2 * 12
    first = min(vault.copies(), key=_run_time)
    with pytest.raises(ClientError) as refused:
        vault.ec2.delete_snapshot(SnapshotId=first["SnapshotId"])
    assert "locked" in refused.value.response["Error"]["Message"]


def test_a_rerun_copies_nothing_twice_and_a_failed_copy_is_tried_again(account: Account, vault: Vault):
    kms = boto3.client("kms")
    key = kms.create_key(Policy=shared_key_policy())["KeyMetadata"]["Arn"]
    db = protected_instance(account, key)
    first = night(account, vault, db.instance_id, RUN_TIME, {})
    again = vault.run()
    assert len(first.copies_made) == 2 and again.copies_made == ()
    assert len(again.completed) == 2

    # A copy whose source key the vault could not use ends in error; the next run replaces it.
    kms.disable_key(KeyId=key.rsplit("/", 1)[-1])
    second = night(account, vault, db.instance_id, RUN_TIME + timedelta(days=1), again.receipt(SOURCE))
    kms.enable_key(KeyId=key.rsplit("/", 1)[-1])
    retried = vault.run()
    assert len(second.copies_made) == 2
    assert len(retried.failed) == 2 and len(retried.copies_made) == 2


def test_a_fleet_on_the_aws_managed_key_cannot_share_its_backups(account: Account, vault: Vault):
    # Encrypted without a key named: EBS uses the account's AWS managed key, aws/ebs.
    volume = account.ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8, Encrypted=True)["VolumeId"]
    made = account.ec2.create_snapshot(VolumeId=volume)

    with pytest.raises(SmartVaultError) as refused:
        share.share_completed(Ec2(), [{"SnapshotId": made["SnapshotId"], "State": "completed"}], vault.settings)

    assert refused.value.aws_code == "OperationNotPermitted"


def _tags(snap: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in snap.get("Tags", [])}


def _run_time(snap: dict[str, Any]) -> datetime:
    return parse_time(_tags(snap)[TAG_RUN_TIME], TAG_RUN_TIME)


def test_a_copy_records_its_source(account: Account, vault: Vault):
    db = protected_instance(account, boto3.client("kms").create_key(Policy=shared_key_policy())["KeyMetadata"]["Arn"])
    night(account, vault, db.instance_id, RUN_TIME, {})
    copies = vault.copies()
    sources = {s["SnapshotId"]: s for s in account.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    for copy in copies:
        tags = _tags(copy)
        assert tags[TAG_SOURCE_VOLUME] == sources[tags[TAG_SOURCE_SNAPSHOT]]["VolumeId"]
        assert tags["smart-vault:instance-id"] == db.instance_id
        assert tags[TAG_RUN_TIME] == "2026-11-26T03:00:00Z"
        assert copy["VolumeId"] == vault_account.PLACEHOLDER_VOLUME
