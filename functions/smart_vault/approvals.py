"""Operator approvals that release a volume's tripped circuit breaker for exactly one plan.

``smart-vault approve RUN_ID [--volume VOL]`` writes ``approvals/<volume id>.json`` with the
snapshot ids that run's breaker stopped. The next run deletes them only if its plan for that
volume is exactly the same set of snapshots; any other plan stays stopped.
"""

from __future__ import annotations

from collections.abc import Iterable
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
        )


def approval_key(volume_id: str) -> str:
    return f"{APPROVALS_PREFIX}/{volume_id}.json"


def approved_plans(store: Store, volume_ids: Iterable[str]) -> dict[str, frozenset[str]]:
    """Volume id -> the snapshot ids an operator released (only volumes with an approval)."""
    found: dict[str, frozenset[str]] = {}
    for volume_id in sorted(set(volume_ids)):
        body = store.get_optional(approval_key(volume_id))
        if body:
            found[volume_id] = frozenset(Approval.from_dict(body).snapshot_ids)
    return found
