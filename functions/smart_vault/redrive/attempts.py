"""The failed instances of one attempt, kept so that a Redrive re-attempts exactly them.

RecordFailure keeps each failed instance's resume point: the step it failed at and the input that
step had. Notify turns the failed outcomes into the next attempt's retry inventory, which the
Distributed Map reads when the execution is redriven (``ResumeOrStart`` in the ASL routes each
item to its step). The original attempt's records are never overwritten: attempt ``k`` writes
under ``redrive-<k>/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from smart_vault.aws import Store
from smart_vault.models import InstanceOutcome, InstanceTarget, RunContext, run_prefix

# The child's steps a failed instance resumes at (the ASL's ResumeOrStart choices); an instance
# that failed anywhere else (no outcome recorded) starts again from the beginning.
RESUMABLE_STEPS = ("Snapshot", "CheckSnapshots", "Copy", "Prune")
# Fields the Catch and the failure label add to a step's input: not part of what the step had.
_CATCH_FIELDS = ("error", "failure")


def resume_key(run: RunContext, instance_id: str) -> str:
    return f"{run_prefix(run)}/resume/{instance_id}.json"


def attempt_prefix(prefix: str, attempt: int) -> str:
    """Where attempt ``attempt`` (0: the first) of the execution at ``prefix`` (``run_prefix``)
    writes its audit record, and where the retry inventory it re-attempts is."""
    return prefix if attempt == 0 else f"{prefix}/redrive-{attempt}"


def save_resume_point(store: Store, run: RunContext, instance_id: str, step: str, job: Mapping[str, Any]) -> None:
    """The step ``instance_id`` failed at and the input it had, for the next attempt."""
    if step not in RESUMABLE_STEPS:
        return
    state_input = {k: v for k, v in job.items() if k not in _CATCH_FIELDS}
    store.put_json(resume_key(run, instance_id), {"resume_at": step, "resume_input": state_input})


def write_retry_inventory(
    store: Store,
    run: RunContext,
    failed: Sequence[InstanceOutcome],
    targets: Mapping[str, InstanceTarget],
    attempt: int,
) -> dict[str, Any]:
    """The items of attempt ``attempt``: each failed instance's target, with its resume point
    when RecordFailure kept one. Returns the ItemReader location (with ``redrive``: the attempt)."""
    resume_points = {
        o.instance_id: store.get_optional(resume_key(run, o.instance_id)) for o in failed if o.step in RESUMABLE_STEPS
    }
    items = []
    for outcome in failed:
        target = targets.get(outcome.instance_id)
        if target is None:  # not an inventory item (a skipped instance): nothing to re-attempt
            continue
        items.append({**target.to_dict(), **(resume_points.get(outcome.instance_id) or {})})
    key = f"{attempt_prefix(run_prefix(run), attempt)}/inventory.json"
    store.put_json(key, items)
    return {"bucket": store.bucket, "key": key, "redrive": attempt, "instances": len(items)}


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """A redrive attempt: its number and the instances it re-attempted."""

    number: int
    redriven: tuple[str, ...]

    def header(self, run_id: str, outcomes: Sequence[InstanceOutcome]) -> str:
        """'Redrive 1 of run R: 3 of 4 recovered; still failing: web-1 (i-...) at Snapshot'."""
        mine = [o for o in outcomes if o.instance_id in set(self.redriven)]
        still = [o for o in mine if o.status == "failed"]
        text = f"Redrive {self.number} of run {run_id}: {len(mine) - len(still)} of {len(mine)} recovered"
        if still:
            names = ", ".join(f"{o.name or o.instance_id} ({o.instance_id}) at {o.step}" for o in still[:20])
            more = f" and {len(still) - 20} more" if len(still) > 20 else ""
            text += f"; still failing: {names}{more}"
        return text


# Counts an attempt adds to the run (each attempt created, deleted and copied its own).
_SUMMED = ("snapshots_created", "snapshots_deleted", "copies_completed", "copies_deleted", "locks_added")


def merged_audit(records: Sequence[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """The run as it stands after its attempts (``records``: attempt 0's audit record first):
    each instance as its latest attempt left it, the statuses counted again, the counts each
    attempt adds summed. Every attempt stays in ``attempts`` as it was recorded."""
    present = [r for r in records if r]
    if not present:
        return None
    instances: dict[str, Any] = {}
    for record in present:
        instances.update({i["instance_id"]: i for i in record.get("instances") or ()})
    statuses = [i.get("status") for i in instances.values()]
    summary = dict(present[0].get("summary") or {})
    summary.update({status: statuses.count(status) for status in ("backed_up", "failed", "skipped")})
    summary["instances"] = len(instances)
    for key in _SUMMED:
        summary[key] = sum(int((r.get("summary") or {}).get(key) or 0) for r in present)
    breakers = {(b.get("volume_id"), b.get("region")): b for r in present for b in r.get("breakers") or ()}
    return {
        **present[0],
        "summary": summary,
        "instances": list(instances.values()),
        "breakers": list(breakers.values()),
        "attempts": [r.get("summary") for r in present],
    }
