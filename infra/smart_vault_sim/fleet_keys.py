"""Fleet volumes encrypted with a customer managed key, and what EBS does when the caller cannot
use that key (moto encrypts nothing with a chosen key and checks no KMS permission).

- A snapshot of an encrypted volume is encrypted with the volume's key, and a volume restored
  from it with the snapshot's key unless another is named (Amazon EBS User Guide, "How EBS
  encryption works"); moto drops the key on both, here they keep it.
- EBS uses the key on the caller's behalf and needs the caller's permission for it ("Requirements
  for Amazon EBS encryption": kms:CreateGrant, kms:Decrypt, kms:DescribeKey,
  kms:GenerateDataKeyWithoutPlaintext, kms:ReEncrypt*; archiving: "Required IAM permissions for
  archiving Amazon EBS snapshots": kms:CreateGrant, kms:Decrypt, kms:DescribeKey). How each
  call fails when it has not:
  - CopySnapshot of an encrypted source: asynchronously, the copy ends in state ``error``
    (Snapshot.StateMessage: "Encrypted Amazon EBS snapshots are copied asynchronously. If a
    snapshot copy operation fails (for example, if the proper KMS permissions are not
    obtained) this field displays error state details"); see regions.CopyEmulation;
  - CreateVolume: asynchronously, the volume is ``creating`` and then fails ("Creation will
    fail if an invalid AWS KMS key was provided", "Amazon EventBridge events for Amazon EBS",
    createVolume, result ``failed``; CreateVolume KmsKeyId: "the action can appear to
    complete, but eventually fails"): here it ends in state ``error``;
  - ModifySnapshotTier: the docs do not say. The emulator refuses the call (UnauthorizedOperation
    for a key the role may not use, InvalidKMSKey.InvalidState for a key not enabled), the form
    the caller sees at once (docs/decisions.md, "Fleets on their own KMS keys").
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from moto.ec2.models.elastic_block_store import EBSBackend, Volume

from smart_vault_sim import fleet, regions
from smart_vault_sim.aws_tap import DRILL_MACHINE, OPERATOR, STATE_MACHINE, ApiCall, aws_error

# What EBS asks of the caller's key per use (the EBS User Guide pages above).
COPY_SOURCE_ACTIONS = ("kms:DescribeKey", "kms:CreateGrant", "kms:Decrypt")
ARCHIVE_ACTIONS = ("kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey")
RESTORE_ACTIONS = regions.KEY_ACTIONS  # a new volume: a data key, decrypted under a grant

# (caller, key Region, key ARN, actions, via Region) -> may the caller's role use it?
KeyAllowed = Callable[[str, str, str, tuple[str, ...], str], bool]


def create_keys(region: str, names: Iterable[str]) -> dict[str, str]:
    """The fleet's keys the operator created (an alias gets a new key): name -> key ARN."""
    arns: dict[str, str] = {}
    for name in sorted(set(names)):
        arn = regions.key_arn(region, name) or regions.create_named_key(region, name, f"fleet volumes ({name})")
        arns[name] = arn
    return arns


@dataclass
class FleetKeys:
    """The AwsTap check for ModifySnapshotTier and CreateVolume, and the source-key problem of a
    CopySnapshot (asked by regions.CopyEmulation). ``allowed`` is None when IAM is not enforced."""

    allowed: KeyAllowed | None = None
    doomed: set[str] = field(default_factory=set)  # volume ids that end in state error
    _pending: dict[tuple[str, str], str] = field(default_factory=dict)  # (region, snapshot) -> problem

    def problem(self, caller: str, region: str, key: str | None, actions: tuple[str, ...], via: str) -> str | None:
        """Why EBS cannot use ``key`` for the caller, or None (also for an unencrypted resource)."""
        if not key or caller in (STATE_MACHINE, DRILL_MACHINE, OPERATOR):
            return None
        arn = regions.key_arn(region, key)
        if arn is None:
            return f"{regions.UNUSABLE_KEY_MESSAGE}: {key} does not exist in {region}"
        state = regions.kms_backend(region).describe_key(arn).key_state
        if state != "Enabled":
            return f"{regions.UNUSABLE_KEY_MESSAGE}: {arn} is {state}"
        if self.allowed is not None and not self.allowed(caller, region, arn, actions, via):
            return f"{regions.UNUSABLE_KEY_MESSAGE}: the role may not use {arn} ({', '.join(actions)}) for EBS"
        return None

    def copy_source_problem(self, call: ApiCall) -> str | None:
        source_region = str(call.params.get("SourceRegion") or "")
        snap = fleet.ec2_backend(source_region).snapshots.get(str(call.params.get("SourceSnapshotId")))
        key = getattr(snap, "kms_key_id", None)
        return self.problem(call.caller, source_region, key, COPY_SOURCE_ACTIONS, call.region or source_region)

    def __call__(self, call: ApiCall) -> None:
        if call.service != "ec2" or call.operation not in ("ModifySnapshotTier", "CreateVolume"):
            return
        region = call.region or ""
        snapshot_id = str(call.params.get("SnapshotId") or "")
        snap = fleet.ec2_backend(region).snapshots.get(snapshot_id)
        key = getattr(snap, "kms_key_id", None)
        if call.operation == "ModifySnapshotTier":
            problem = self.problem(call.caller, region, key, ARCHIVE_ACTIONS, region)
            if problem:
                code = "UnauthorizedOperation" if "may not use" in problem else "InvalidKMSKey.InvalidState"
                raise aws_error(code, call.operation, f"Cannot archive {snapshot_id}: {problem}.")
            return
        if call.params.get("KmsKeyId"):
            key = str(call.params["KmsKeyId"])
        problem = self.problem(call.caller, region, key, RESTORE_ACTIONS, region)
        if problem:
            self._pending[(region, snapshot_id)] = problem
        else:
            self._pending.pop((region, snapshot_id), None)

    def created(self, backend: Any, volume: Any, snapshot_id: str | None) -> None:
        if not snapshot_id:
            return
        snap = backend.snapshots.get(snapshot_id)
        if snap is not None and getattr(snap, "kms_key_id", None) and not volume.kms_key_id:
            volume.kms_key_id = snap.kms_key_id
        if self._pending.pop((backend.region_name, snapshot_id), None):
            self.doomed.add(volume.id)


@contextlib.contextmanager
def patched(keys: FleetKeys) -> Iterator[None]:
    """Snapshots keep their volume's key, restored volumes their snapshot's, and a volume whose
    key EBS could not use leaves ``creating`` for ``error``. Installed after restore_rules, whose
    Volume.status (``creating`` for a while) it wraps."""
    create_snapshot = EBSBackend.create_snapshot
    create_volume = EBSBackend.create_volume
    status = Volume.status

    def patched_create_snapshot(self: Any, volume_id: str, *args: Any, **kwargs: Any) -> Any:
        snapshot = create_snapshot(self, volume_id, *args, **kwargs)
        snapshot.kms_key_id = snapshot.kms_key_id or getattr(self.get_volume(volume_id), "kms_key_id", None)
        return snapshot

    def patched_create_volume(self: Any, *args: Any, **kwargs: Any) -> Any:
        volume = create_volume(self, *args, **kwargs)
        keys.created(self, volume, kwargs.get("snapshot_id"))
        return volume

    def volume_status(self: Any) -> str:
        shown = str(status.fget(self))  # type: ignore[attr-defined]
        return "error" if self.id in keys.doomed and shown not in ("creating", "deleted") else shown

    EBSBackend.create_snapshot = patched_create_snapshot  # type: ignore[method-assign]
    EBSBackend.create_volume = patched_create_volume  # type: ignore[method-assign]
    Volume.status = property(volume_status)  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        EBSBackend.create_snapshot = create_snapshot  # type: ignore[method-assign]
        EBSBackend.create_volume = create_volume  # type: ignore[method-assign]
        Volume.status = status  # type: ignore[method-assign]
