"""The emulated account's other Regions: destination KMS keys, and CopySnapshot as strict as EC2.

moto's CopySnapshot is lenient where Smart Vault depends on EC2's behaviour; here it is not
(EC2 API Reference, CopySnapshot; Amazon EBS User Guide, "Copy an Amazon EBS snapshot"):

- a copy starts ``pending`` and completes after the same scripted number of completion checks
  as its instance's snapshots (``snapshot_checks_until_complete``), checked in its own Region;
- a copy's VolumeId is the placeholder ``vol-ffffffff`` ("Snapshots copies have an arbitrary
  source volume ID"), not the source's volume;
- at most 20 copies may be in flight per destination Region: one more is refused with
  ``ResourceLimitExceeded`` (EBS quotas: "Concurrent snapshot copies per destination Region", 20,
  not adjustable);
- the KMS key is checked asynchronously ("if you specify an ID, alias, or ARN that is not valid,
  the action can appear to complete, but eventually fails"): a key that does not exist in the
  destination, is not enabled, or that the caller's role may not use for EBS (kms:CreateGrant,
  kms:GenerateDataKeyWithoutPlaintext, kms:Decrypt, kms:DescribeKey) makes the copy end in
  state ``error``; so does a source snapshot's customer managed key the caller cannot use
  (fleet_keys: "If a snapshot copy operation fails (for example, if the proper KMS permissions
  are not obtained)", Snapshot.StateMessage).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from moto.backends import get_backend
from moto.ec2.models.elastic_block_store import EBSBackend

from smart_vault.constants import TAG_INSTANCE_ID, TAG_SOURCE_SNAPSHOT
from smart_vault.settings import MAX_COPIES_IN_FLIGHT, CopyRegion
from smart_vault_sim import fleet
from smart_vault_sim.aws_tap import STATE_MACHINE, ApiCall, aws_error

PLACEHOLDER_VOLUME = "vol-ffffffff"
# What EC2 needs of the caller to encrypt a copy with a customer managed key (Amazon EBS User
# Guide, "Permissions to use AWS KMS keys").
KEY_ACTIONS = ("kms:DescribeKey", "kms:CreateGrant", "kms:GenerateDataKeyWithoutPlaintext", "kms:Decrypt")
UNUSABLE_KEY_MESSAGE = "Given key ID is not accessible"


def kms_backend(region: str) -> Any:
    return get_backend("kms")[fleet.ACCOUNT_ID][region]


def key_arn(region: str, key_id: str) -> str | None:
    """The key ARN a key id, alias or ARN names in ``region``; None when there is no such key."""
    backend = kms_backend(region)
    try:
        return str(backend.describe_key(key_id).arn)
    except Exception:
        return None


def create_named_key(region: str, name: str, description: str) -> str:
    """A new symmetric encryption key of ``region`` that ``name`` (alias, alias ARN or key id)
    names from now on, as the operator would have created it: its ARN."""
    backend = kms_backend(region)
    key = backend.create_key(
        policy=None, key_usage="ENCRYPT_DECRYPT", key_spec="SYMMETRIC_DEFAULT", description=description, tags=None
    )
    if "alias/" in name:
        backend.create_alias(key.id, "alias/" + name.split("alias/", 1)[1])
    return str(key.arn)


def key_aliases(region: str, arn: str) -> tuple[str, ...]:
    key = kms_backend(region).keys.get(arn.rsplit("/", 1)[-1])
    return tuple(sorted(key.aliases)) if key is not None else ()


@dataclass
class Fate:
    checks_left: int
    error: str | None = None


@dataclass
class CopyEmulation:
    """Destination keys, pending copies and the in-flight limit. ``key_allowed(caller, arn)``
    says whether IAM lets the caller use the key (None: IAM is not enforced)."""

    regions: tuple[CopyRegion, ...]
    checks_for: Callable[[str], int]  # instance id -> completion checks of its snapshots
    now: Callable[[], datetime]
    key_allowed: Callable[[str, str, str], bool] | None = None
    # Why EBS cannot use the source snapshot's own key for this call (fleet_keys), or None.
    source_key_problem: Callable[[ApiCall], str | None] | None = None
    fates: dict[str, Fate] = field(default_factory=dict)  # copy id -> what its checks will see
    source_of: dict[str, tuple[str, str]] = field(default_factory=dict)  # copy id -> (region, source id)
    peak_in_flight: dict[str, int] = field(default_factory=dict)  # region -> most copies pending at once
    refused: int = 0  # CopySnapshot calls answered ResourceLimitExceeded
    _next_error: dict[tuple[str, str], str | None] = field(default_factory=dict)

    def create_keys(self) -> None:
        """The destination keys the deployment's operator created (alias or key id as configured)."""
        for dest in self.regions:
            if not key_arn(dest.region, dest.kms_key):
                create_named_key(dest.region, dest.kms_key, f"Smart Vault copies in {dest.region}")

    def new_run(self) -> None:
        """Peak and refusals are reported per run."""
        self.peak_in_flight.clear()
        self.refused = 0

    def in_flight(self, region: str) -> int:
        backend = fleet.ec2_backend(region)
        return sum(
            1
            for cid, (r, _) in self.source_of.items()
            if r == region and getattr(backend.snapshots.get(cid), "status", "") == "pending"
        )

    # -- the AwsTap check: before the request reaches moto ----------------------------------
    def __call__(self, call: ApiCall) -> None:
        if call.service != "ec2" or call.caller == STATE_MACHINE:
            return
        if call.operation == "CopySnapshot":
            self._before_copy(call)
        elif call.operation == "DescribeSnapshots" and call.region:
            self._advance(call)

    def _before_copy(self, call: ApiCall) -> None:
        region = call.region or ""
        if self.in_flight(region) >= MAX_COPIES_IN_FLIGHT:
            self.refused += 1
            raise aws_error(
                "ResourceLimitExceeded",
                call.operation,
                f"You have reached the limit of {MAX_COPIES_IN_FLIGHT} concurrent snapshot copies "
                f"to {region}. Wait for copies in progress to complete and try again.",
            )
        key = str(call.params.get("KmsKeyId") or "")
        arn = key_arn(region, key) if key else None
        error = None
        if key and arn is None:
            error = f"{UNUSABLE_KEY_MESSAGE}: {key} does not exist in {region}"
        elif arn is not None:
            state = kms_backend(region).describe_key(arn).key_state
            if state != "Enabled":
                error = f"{UNUSABLE_KEY_MESSAGE}: {key} is {state}"
            elif self.key_allowed is not None and not self.key_allowed(call.caller, region, arn):
                error = f"{UNUSABLE_KEY_MESSAGE}: the role may not use {key} for EBS encryption"
        if error is None and self.source_key_problem is not None:
            error = self.source_key_problem(call)
        self._next_error[(region, str(call.params.get("SourceSnapshotId")))] = error

    def _advance(self, call: ApiCall) -> None:
        """Each completion check of a pending copy (a DescribeSnapshots in its Region that names
        it, its source or its instance) brings it one check closer to its fate."""
        text = json.dumps(call.params, default=str)
        backend = fleet.ec2_backend(call.region or "")
        for copy_id, fate in list(self.fates.items()):
            snap = backend.snapshots.get(copy_id)
            if snap is None or self.source_of[copy_id][0] != call.region:
                continue
            tags = backend.tags.get(copy_id, {})
            named = (
                copy_id in text or tags.get(TAG_SOURCE_SNAPSHOT, "-") in text or tags.get(TAG_INSTANCE_ID, "-") in text
            )
            if not named:
                continue
            if fate.checks_left > 0:
                fate.checks_left -= 1
                continue
            if fate.error:
                snap.status, snap.state_message = "error", fate.error
            else:
                fleet.mark_completed(snap, self.now())
            del self.fates[copy_id]

    # -- inside moto: the copy itself ---------------------------------------------------------
    def created(self, backend: Any, snapshot: Any, source: Any, source_region: str) -> None:
        region = backend.region_name
        snapshot.volume = SimpleNamespace(id=PLACEHOLDER_VOLUME, size=source.volume.size)
        snapshot.start_time = self.now()
        snapshot.status = "pending"
        snapshot.encrypted = True
        tags = fleet.ec2_backend(source_region).tags.get(source.id, {})
        self.source_of[snapshot.id] = (region, source.id)
        error = self._next_error.pop((region, source.id), None)
        self.fates[snapshot.id] = Fate(checks_left=self.checks_for(tags.get(TAG_INSTANCE_ID, "")), error=error)
        self.peak_in_flight[region] = max(self.peak_in_flight.get(region, 0), self.in_flight(region))


@contextlib.contextmanager
def patched(emulation: CopyEmulation) -> Iterator[None]:
    original = EBSBackend.copy_snapshot

    def copy_snapshot(
        self: Any, source_snapshot_id: str, source_region: str, description: str, kms_key_id: str | None
    ) -> Any:
        snapshot = original(self, source_snapshot_id, source_region, description, kms_key_id)
        source = fleet.ec2_backend(source_region).snapshots[source_snapshot_id]
        emulation.created(self, snapshot, source, source_region)
        return snapshot

    EBSBackend.copy_snapshot = copy_snapshot  # type: ignore[method-assign]
    try:
        yield
    finally:
        EBSBackend.copy_snapshot = original  # type: ignore[method-assign]
