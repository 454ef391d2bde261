"""The source side of the vault handover: share each completed backup snapshot with the vault
account, and withdraw the share once the vault reports its copy completed (Amazon EBS User Guide,
"Share an Amazon EBS snapshot with other AWS accounts")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from smart_vault.aws import Ec2
from smart_vault.observability import logger
from smart_vault.settings import VaultSettings


def share_completed(ec2: Ec2, snapshots: Iterable[Mapping[str, Any]], vault: VaultSettings) -> list[str]:
    """Share every completed snapshot with the vault account; the ids shared. Repeating it is
    harmless (a permission already there is added again), so a re-run or a redrive shares anew
    whatever the vault has not copied yet."""
    shared = []
    for snap in snapshots:
        if snap.get("State") != "completed":
            continue  # a pending snapshot is shared by the run that sees it complete
        if ec2.share_snapshot(str(snap["SnapshotId"]), vault.account, add=True) is None:
            shared.append(str(snap["SnapshotId"]))
    logger.info("snapshots shared with the vault", extra={"shared": len(shared), "vault": vault.account})
    return shared


def withdraw(ec2: Ec2, source_snapshot_ids: Iterable[str], vault: VaultSettings) -> list[str]:
    """Remove the vault's permission from the snapshots whose vault copy completed; the ids
    withdrawn (a snapshot deleted meanwhile has nothing left to withdraw)."""
    withdrawn = []
    for snapshot_id in sorted(set(source_snapshot_ids)):
        if ec2.share_snapshot(snapshot_id, vault.account, add=False) is None:
            withdrawn.append(snapshot_id)
    return withdrawn


def unshareable_volumes(volumes: Mapping[str, Mapping[str, Any]], customer_keys: Iterable[str]) -> dict[str, str]:
    """Volume id -> its key, for encrypted volumes whose key is not one of the fleet's customer
    managed keys (key ARNs): their snapshots are on aws/ebs (or a key nobody granted the vault)
    and cannot reach the vault. An unencrypted volume's snapshots can be shared as they are."""
    known = set(customer_keys)
    return {
        volume_id: str(volume.get("KmsKeyId") or "alias/aws/ebs")
        for volume_id, volume in sorted(volumes.items())
        if volume.get("Encrypted") and str(volume.get("KmsKeyId") or "") not in known
    }
