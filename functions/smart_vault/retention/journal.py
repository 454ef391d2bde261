"""The deletion journal: every deletion is recorded in S3 before it is attempted.

Prune (and orphan pruning) write their intents here, then call DeleteSnapshot. Whatever fails
afterwards (a throttled delete, a throttled write of the outcome, a Lambda timeout, retries that
re-plan from a changed account), a journaled snapshot that no longer exists was deleted: the
outcome, the audit record and the alert are rebuilt from the journal and the account, so a
deletion can never go unreported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from smart_vault.aws import Store
from smart_vault.models import DeletedSnapshot, RunContext, journal_prefix, run_prefix

ORPHANS_SUBJECT = "orphans"


@dataclass(frozen=True, kw_only=True)
class Intent:
    snapshot_id: str
    volume_id: str
    start_time: str
    instance_id: str = ""

    def deleted(self) -> DeletedSnapshot:
        return DeletedSnapshot(snapshot_id=self.snapshot_id, volume_id=self.volume_id, start_time=self.start_time)


def journal_key(run: RunContext, subject: str) -> str:
    """One journal per execution and subject (an instance id, or ``orphans``)."""
    return f"{journal_prefix(run_prefix(run))}{subject}.json"


def parse(body: Any) -> dict[str, Intent]:
    return {i["snapshot_id"]: Intent(**i) for i in (body or {}).get("intents", ())}


class Journal:
    def __init__(self, store: Store, run: RunContext, subject: str, *, key: str | None = None) -> None:
        self.store = store
        self.key = key or journal_key(run, subject)
        self._intents: dict[str, Intent] | None = None

    def intents(self) -> dict[str, Intent]:
        if self._intents is None:
            self._intents = parse(self.store.get_optional(self.key))
        return self._intents

    def record(self, intents: Iterable[Intent]) -> None:
        """Add intents (before their DeleteSnapshot calls); earlier attempts' intents stay."""
        merged = dict(self.intents())
        new = {i.snapshot_id: i for i in intents if i.snapshot_id not in merged}
        if not new:
            return
        merged.update(new)
        self.store.put_json(self.key, {"intents": [asdict(i) for i in merged.values()]})
        self._intents = merged


def confirmed_deletions(intents: Mapping[str, Intent], existing_ids: Iterable[str]) -> list[Intent]:
    """Journaled snapshots the account no longer has: they were deleted."""
    existing = set(existing_ids)
    return [i for sid, i in sorted(intents.items()) if sid not in existing]
