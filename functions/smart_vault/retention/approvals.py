"""Operator approvals that release a volume's tripped circuit breaker in one Region for exactly
one plan.

``smart-vault approve RUN_ID [--volume VOL] [--in-region REGION]`` writes
``approvals/<region>/<volume id>.json`` with the snapshot ids that run's breaker stopped in that
Region (the source Region, or a destination of off-site copies: the same volume can trip in
both, each with its own plan). The next run deletes them only if its plan for that volume in
that Region is exactly the same set of snapshots; any other plan stays stopped, and the alert
says the approval no longer matches.

Approvals written before breakers were per Region (``approvals/<volume id>.json``) are still
read, as a fallback when a Region has none of its own: snapshot ids are unique to a Region, so
such an approval can only ever match the plan of the Region it was made for.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from smart_vault.aws import Store
from smart_vault.constants import APPROVALS_PREFIX


@dataclass(frozen=True, kw_only=True)
class Approval:
    run_id: str
    volume_id: str
    snapshot_ids: tuple[str, ...]
    approved_at: str
    approved_by: str = ""
    region: str = ""  # "" only in approvals written before breakers were per Region

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Approval:
        return cls(
            run_id=str(data["run_id"]),
            volume_id=str(data["volume_id"]),
            snapshot_ids=tuple(sorted(str(s) for s in data["snapshot_ids"])),
            approved_at=str(data.get("approved_at") or ""),
            approved_by=str(data.get("approved_by") or ""),
            region=str(data.get("region") or ""),
        )


def approval_key(volume_id: str, region: str) -> str:
    return f"{APPROVALS_PREFIX}/{region}/{volume_id}.json"


def legacy_approval_key(volume_id: str) -> str:
    """Where approvals were written before breakers were per Region (read, never written)."""
    return f"{APPROVALS_PREFIX}/{volume_id}.json"


def approvals_for(
    store: Store, volume_ids: Iterable[str], region: str, known_ids: Collection[str]
) -> dict[str, Approval]:
    """Volume id -> the operator's approval for it in ``region`` (only volumes with one).

    A legacy approval (no Region) counts here only if it names one of ``known_ids``, this
    Region's snapshots: otherwise it was made for the same volume's plan in another Region and
    must not be reported as an approval this Region's plan no longer matches."""
    found: dict[str, Approval] = {}
    for volume_id in sorted(set(volume_ids)):
        body = store.get_optional(approval_key(volume_id, region))
        if not body:
            body = store.get_optional(legacy_approval_key(volume_id))
        if not body:
            continue
        approval = Approval.from_dict(body)
        if approval.region == region or (not approval.region and not set(approval.snapshot_ids).isdisjoint(known_ids)):
            found[volume_id] = approval
    return found
