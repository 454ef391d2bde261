"""Discover's KMS key checks: the fleet's own keys (a problem stops the run before any snapshot)
and each copy destination's key (a problem fails only the copies to that Region).

A key EBS can use is enabled, symmetric and for ENCRYPT_DECRYPT ("Amazon EBS does not support
asymmetric KMS keys", EC2 API Reference, CreateVolume and CopySnapshot, KmsKeyId). DescribeKey
shows the state (KMS Developer Guide, "Key states of AWS KMS keys": Disabled, PendingDeletion,
PendingImport and Unavailable keys cannot be used in cryptographic operations).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from smart_vault.aws import Kms
from smart_vault.errors import FleetKeyError, SmartVaultError, ThrottledError, TransientAwsError
from smart_vault.settings import Settings

KmsFor = Callable[[str], Kms]


def key_problem(kms: Kms, key: str) -> tuple[str, str | None] | None:
    """Why EBS cannot use ``key`` (and KMS's error code), or None when it can."""
    try:
        meta = kms.describe_key(key)
    except (ThrottledError, TransientAwsError):
        raise  # Discover's Retry waits these out: a throttle says nothing about the key
    except SmartVaultError as error:
        return f"cannot be used: {error}", error.aws_code
    problem = _unusable(meta)
    return (problem, None) if problem else None


def _unusable(meta: Mapping[str, Any]) -> str | None:
    state = meta.get("KeyState")
    if state != "Enabled":
        deletion = f" (deletion on {meta['DeletionDate']})" if meta.get("DeletionDate") else ""
        return f"is {state}{deletion}: EBS cannot encrypt or decrypt with it"
    if meta.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
        return f"has key usage {meta.get('KeyUsage')}: EBS needs ENCRYPT_DECRYPT"
    if meta.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
        return f"is asymmetric ({meta.get('KeySpec')}): EBS needs a symmetric key"
    return None


def key_region(key: str, default: str) -> str:
    """The Region a key ARN or alias ARN names (arn:aws:kms:<region>:...), else ``default``."""
    return key.split(":")[3] if key.startswith("arn:") else default


def check_fleet_keys(settings: Settings, kms_for: KmsFor, source_region: str) -> None:
    """Every key in ``fleet_kms_keys`` must exist in the source Region and be usable by EBS,
    or the run stops now with one message listing every problem: with the volumes' key gone,
    the snapshots could be taken but never copied, archived or restored."""
    problems: list[str] = []
    code: str | None = None
    for i, key in enumerate(settings.fleet_kms_keys):
        where = f"fleet_kms_keys[{i}] {key!r}"
        region = key_region(key, source_region)
        if region != source_region:
            problems.append(f"{where} is a key of {region}; the fleet's volumes are in {source_region}")
            continue
        found = key_problem(kms_for(region), key)
        if found is not None:
            problems.append(f"{where} in {region} {found[0]}")
            code = code or found[1]
    if problems:
        raise FleetKeyError(
            "the fleet's KMS keys cannot be used, so nothing was snapshotted: " + "; ".join(problems),
            aws_code=code,
            operation="kms:DescribeKey",
        )


def unusable_copy_keys(settings: Settings, kms_for: KmsFor) -> dict[str, str]:
    """Destination Region -> why its key cannot encrypt copies. Those copies fail (with this
    text); the local backups and the other destinations go on (a bad destination key, as AWS Backup and
    DLM fail the copy, not the backup)."""
    found: dict[str, str] = {}
    for i, dest in enumerate(settings.copy_regions):
        problem = key_problem(kms_for(dest.region), dest.kms_key)
        if problem is not None:
            found[dest.region] = f"copy_regions[{i}].kms_key {dest.kms_key!r} in {dest.region} {problem[0]}"
    return found
