"""A second emulated account, the vault, and EBS snapshot sharing between accounts.

moto keeps one backend per account id and picks it by the caller's credentials: an access key
that moto's STS issued for a role (AssumeRole) selects that role's account. So the vault account
is simply the credentials of a role in it (``session``). What moto does not do across accounts is
added here, from the AWS documentation:

- ModifySnapshotAttribute shares a snapshot (createVolumePermission, by account id); a snapshot
  encrypted with the AWS managed key ``aws/ebs`` cannot be shared (EC2 API Reference,
  ModifySnapshotAttribute: "Snapshots encrypted with your default KMS key cannot be shared with
  other accounts"; Amazon EBS User Guide, "Share an Amazon EBS snapshot with other AWS accounts":
  "You can't share snapshots that are encrypted with the default AWS managed key"). EC2 answers
  ``OperationNotPermitted`` with the message below (as reported by users of the API; the API
  Reference lists no error for it).
- DescribeSnapshots without options lists every snapshot the caller may create volumes from:
  its own and those shared with it; ``OwnerIds`` (account ids, ``self``) and
  ``RestorableByUserIds`` narrow that (EC2 API Reference, DescribeSnapshots). A shared snapshot
  is listed without the owner's tags: tags belong to the account that set them.
- CopySnapshot of a snapshot shared with the caller makes the copy in the caller's account
  (Amazon EBS User Guide, "Copy an Amazon EBS snapshot"). Its VolumeId is the placeholder
  ``vol-ffffffff`` ("Snapshots copies have an arbitrary source volume ID"). An encrypted source
  needs the owner's customer managed key to let the caller's account use it: the key policy (or a
  grant) must allow kms:DescribeKey, kms:CreateGrant, kms:GenerateDataKey*, kms:ReEncrypt* and
  kms:Decrypt ("Share the KMS key used to encrypt a shared Amazon EBS snapshot"); a key not
  enabled (disabled, pending deletion) cannot be used either. As with any encrypted copy, the
  failure shows asynchronously: the copy ends in state ``error`` (Snapshot.StateMessage).
- Concurrent copies count against the destination Region's limit of 20 in flight per account
  (EBS quotas, "Concurrent snapshot copies per destination Region"): ``ResourceLimitExceeded``.

A copy is ``pending`` until the caller's next DescribeSnapshots that names it; then it is
``completed`` (or ``error``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import boto3
from moto.backends import get_backend
from moto.ec2.exceptions import EC2ClientError, InvalidSnapshotIdError, OperationNotPermitted
from moto.ec2.models.elastic_block_store import EBSBackend
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.ec2.utils import generic_filter

from smart_vault.settings import MAX_COPIES_IN_FLIGHT
from smart_vault_sim import fleet
from smart_vault_sim.iam import glob_match
from smart_vault_sim.snapshot_locks import SnapshotLocks

VAULT_ACCOUNT_ID = "210987654321"
PLACEHOLDER_VOLUME = "vol-ffffffff"
DEFAULT_KEY_ALIAS = "alias/aws/ebs"
DEFAULT_KEY_MESSAGE = "Encrypted snapshots with EBS default key cannot be shared"
# What the recipient needs of the owner's key ("Share the KMS key used to encrypt a shared
# Amazon EBS snapshot"); ReEncrypt and GenerateDataKey as the policies write them.
SHARED_KEY_ACTIONS = (
    "kms:DescribeKey",
    "kms:CreateGrant",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:Decrypt",
)


def session(account_id: str, role: str, region: str) -> boto3.Session:
    """A session with the credentials of ``role`` in ``account_id``: moto serves its calls from
    that account's backends."""
    credentials = boto3.client("sts", region_name=region).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/{role}", RoleSessionName=f"{role}-session"[:64]
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def ec2_backend(account_id: str, region: str) -> Any:
    return get_backend("ec2")[account_id][region]


def kms_backend(account_id: str, region: str) -> Any:
    return get_backend("kms")[account_id][region]


def _key_of(arn: str) -> tuple[str, str, Any]:
    """(account, region, moto key) of a key ARN; the key is None when it does not exist."""
    parts = arn.split(":")
    if len(parts) < 6:
        return "", "", None
    account, region = parts[4], parts[3]
    return account, region, kms_backend(account, region).keys.get(parts[5].removeprefix("key/"))


def is_default_key(account_id: str, region: str, key_id: str | None) -> bool:
    """Is ``key_id`` the account's AWS managed key for EBS (alias aws/ebs)?"""
    if not key_id:
        return False
    backend = kms_backend(account_id, region)
    if not backend.alias_exists(DEFAULT_KEY_ALIAS):
        return False
    return bool(backend.describe_key(DEFAULT_KEY_ALIAS).arn == backend.describe_key(key_id).arn)


def snapshot_key(snapshot: Any) -> str | None:
    """The snapshot's KMS key: moto keeps it on the volume, not on the snapshot (fleet_keys)."""
    return snapshot.kms_key_id or getattr(snapshot.volume, "kms_key_id", None)


def _principals(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    aws = principal.get("AWS", []) if isinstance(principal, dict) else []
    return [aws] if isinstance(aws, str) else list(aws)


def _names_account(principal: str, account: str) -> bool:
    return principal in ("*", account) or principal.startswith(f"arn:aws:iam::{account}:")


def key_allows(key: Any, account: str, actions: tuple[str, ...]) -> bool:
    """Does the key's policy, or a grant, let principals of ``account`` use it for ``actions``?
    (KMS Developer Guide, "Allowing users in other accounts to use a KMS key": the key policy
    must name the other account; the other account's IAM policies must allow it too, which the
    IAM evaluator judges.) A conditioned statement counts: its conditions are the key owner's."""
    allowed: set[str] = set()
    for statement in json.loads(key.policy or "{}").get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        if not any(_names_account(p, account) for p in _principals(statement)):
            continue
        listed = statement.get("Action", [])
        for action in actions:
            if any(glob_match(pattern, action, ignore_case=True) for pattern in _as_list(listed)):
                allowed.add(action)
    for grant in getattr(key, "grants", {}).values():
        if _names_account(str(getattr(grant, "grantee_principal", "")), account):
            allowed.update(f"kms:{op}" for op in getattr(grant, "operations", ()))
    return all(action in allowed for action in actions)


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


class _SharedView:
    """A snapshot as another account sees it: the owner's tags are not its to see."""

    def __init__(self, snapshot: Any) -> None:
        self._snapshot = snapshot

    def __getattr__(self, name: str) -> Any:
        return getattr(self._snapshot, name)

    def get_tags(self) -> list[dict[str, str]]:
        return []

    @property
    def tag_set(self) -> list[dict[str, str]]:
        return []

    @property
    def tag_list(self) -> list[dict[str, str]]:
        return []

    def get_filter_value(self, filter_name: str, method_name: str | None = None) -> Any:
        if filter_name.startswith("tag"):
            return None
        return self._snapshot.get_filter_value(filter_name, method_name)


@dataclass
class Sharing:
    """Cross-account snapshot sharing and copying in one Region's emulation."""

    accounts: tuple[str, ...] = (fleet.ACCOUNT_ID, VAULT_ACCOUNT_ID)
    pending: dict[str, str | None] = field(default_factory=dict)  # copy id -> error it will end in
    copied_from: dict[str, tuple[str, str]] = field(default_factory=dict)  # copy id -> (owner, source id)

    def shared_with(self, account: str, region: str) -> list[Any]:
        """Snapshots of other accounts in ``region`` that ``account`` may create volumes from."""
        found = []
        for owner in self.accounts:
            if owner == account:
                continue
            for snapshot in list(ec2_backend(owner, region).snapshots.values()):
                if account in snapshot.create_volume_permission_userids:
                    found.append(_SharedView(snapshot))
        return found

    def visible(self, account: str, region: str, owners: list[str], restorable: list[str]) -> list[Any]:
        own = list(ec2_backend(account, region).snapshots.values())
        snapshots = own + self.shared_with(account, region)
        if owners:
            wanted = {account if o == "self" else o for o in owners}
            snapshots = [s for s in snapshots if s.owner_id in wanted]
        if restorable:
            users = {account if u == "self" else u for u in restorable}
            # Owned snapshots are restorable by their owner; shared ones by the accounts listed.
            snapshots = [
                s
                for s in snapshots
                if (s.owner_id in users) or users & set(getattr(s, "create_volume_permission_userids", ()))
            ]
        return snapshots

    def source(self, account: str, region: str, snapshot_id: str) -> Any:
        own = ec2_backend(account, region).snapshots.get(snapshot_id)
        if own is not None:
            return own
        for view in self.shared_with(account, region):
            if view.id == snapshot_id:
                return view._snapshot
        raise InvalidSnapshotIdError()

    def copy_problem(self, account: str, source: Any, kms_key_id: str | None) -> str | None:
        """Why EBS cannot make this copy in ``account`` (the copy then ends in ``error``)."""
        source_key = snapshot_key(source)
        if source.owner_id != account and source.encrypted and source_key:
            _, _, key = _key_of(source_key)
            if key is None or key.key_state != "Enabled":
                state = "missing" if key is None else key.key_state
                return f"The source snapshot's KMS key {source_key} is {state}"
            if not key_allows(key, account, SHARED_KEY_ACTIONS):
                return f"The source snapshot's KMS key {source_key} is not shared with account {account}"
        if kms_key_id:
            _, _, key = _key_of(kms_key_id) if kms_key_id.startswith("arn:") else ("", "", None)
            if key is None or key.key_state != "Enabled":
                return f"Given key ID is not accessible: {kms_key_id}"
        return None

    def in_flight(self, account: str, region: str) -> int:
        snapshots = ec2_backend(account, region).snapshots
        return sum(1 for cid in self.pending if cid in snapshots and snapshots[cid].status == "pending")

    def settle(self, account: str, region: str, named: list[str]) -> None:
        """A DescribeSnapshots naming pending copies (or naming none: listing all) ends them."""
        snapshots = ec2_backend(account, region).snapshots
        for copy_id in list(self.pending):
            if copy_id in snapshots and (not named or copy_id in named):
                error = self.pending.pop(copy_id)
                snapshots[copy_id].status = "error" if error else "completed"
                if error:
                    snapshots[copy_id].state_message = error


@contextlib.contextmanager
def patched(sharing: Sharing) -> Iterator[Sharing]:
    """Install the cross-account rules on moto's EBS backend and responses."""
    add_permission = EBSBackend.add_create_volume_permission
    copy_snapshot = EBSBackend.copy_snapshot
    describe = ElasticBlockStore.describe_snapshots

    def add_create_volume_permission(self: Any, snapshot_id: str, user_ids: list[str], groups: list[str]) -> None:
        snapshot = self.get_snapshot(snapshot_id)
        if snapshot.encrypted and is_default_key(self.account_id, self.region_name, snapshot_key(snapshot)):
            raise OperationNotPermitted(DEFAULT_KEY_MESSAGE)
        add_permission(self, snapshot_id, user_ids, groups)

    def copy(self: Any, source_snapshot_id: str, source_region: str, description: str, kms_key_id: str | None) -> Any:
        account, region = self.account_id, self.region_name
        if sharing.in_flight(account, region) >= MAX_COPIES_IN_FLIGHT:
            raise EC2ClientError(
                "ResourceLimitExceeded",
                f"You have reached the limit of {MAX_COPIES_IN_FLIGHT} concurrent snapshot copies to {region}.",
            )
        source = sharing.source(account, source_region, source_snapshot_id)
        if source.owner_id == account:
            snapshot = copy_snapshot(self, source_snapshot_id, source_region, description, kms_key_id)
        else:
            snapshot = _new_copy(self, source, description, kms_key_id)
        snapshot.volume = SimpleNamespace(id=PLACEHOLDER_VOLUME, size=source.volume.size)
        snapshot.status = "pending"
        sharing.pending[snapshot.id] = sharing.copy_problem(account, source, kms_key_id)
        sharing.copied_from[snapshot.id] = (source.owner_id, source.id)
        return snapshot

    def describe_snapshots(self: Any) -> Any:
        account, region = self.current_account, self.region
        ids = self._get_param("SnapshotIds", [])
        sharing.settle(account, region, ids)
        snapshots = sharing.visible(
            account, region, self._get_param("OwnerIds", []), self._get_param("RestorableByUserIds", [])
        )
        if ids:
            snapshots = [s for s in snapshots if s.id in ids]
            if len(snapshots) < len(set(ids)):
                raise InvalidSnapshotIdError()
        filters = self._filters_from_querystring()
        if filters:
            snapshots = generic_filter(filters, snapshots)
        return _result(snapshots)

    EBSBackend.add_create_volume_permission = add_create_volume_permission  # type: ignore[method-assign]
    EBSBackend.copy_snapshot = copy  # type: ignore[method-assign]
    ElasticBlockStore.describe_snapshots = describe_snapshots  # type: ignore[method-assign]
    try:
        yield sharing
    finally:
        EBSBackend.add_create_volume_permission = add_permission  # type: ignore[method-assign]
        EBSBackend.copy_snapshot = copy_snapshot  # type: ignore[method-assign]
        ElasticBlockStore.describe_snapshots = describe  # type: ignore[method-assign]


def _new_copy(backend: Any, source: Any, description: str, kms_key_id: str | None) -> Any:
    """The copy of another account's snapshot, in the caller's account (always encrypted when the
    source is: with the key named, else the caller's default EBS key)."""
    from moto.ec2.models.elastic_block_store import Snapshot
    from moto.ec2.utils import random_snapshot_id

    key = kms_key_id
    if source.encrypted and not key:
        key = backend._create_default_encryption_key()
    snapshot = Snapshot(backend, random_snapshot_id(), volume=source.volume, description=description, kms_key_id=key)
    snapshot.encrypted = bool(source.encrypted or key)
    backend.snapshots[snapshot.id] = snapshot
    return snapshot


def _result(snapshots: list[Any]) -> Any:
    from moto.core.responses import ActionResult

    return ActionResult({"Snapshots": snapshots})


class AccountLocks(SnapshotLocks):
    """The snapshot lock model of one account (installed on that account's session): locks are
    per snapshot, and a snapshot belongs to one account."""

    def __init__(self, account_id: str, region: str, now: Callable[[], datetime]) -> None:
        super().__init__(region, now)
        self.account_id = account_id

    def _snapshot(self, snapshot_id: str) -> Any:
        return ec2_backend(self.account_id, self.region).snapshots.get(snapshot_id)
