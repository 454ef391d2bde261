"""The failed instances of one attempt, kept so that a Redrive re-attempts exactly them.

RecordFailure keeps each failed instance's resume point: the step it failed at and the input that
step had. Notify turns the failed outcomes into the next attempt's retry inventory, which the
Distributed Map reads when the execution is redriven; the Snapshot step hands an instance that
failed after it its recorded backup (``resumed_backup``), so it goes on from there. The original
attempt's records are never overwritten: attempt ``k`` writes under ``redrive-<k>/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from smart_vault.aws import Store
from smart_vault.errors import InvalidInputError, SmartVaultError
from smart_vault.models import BackupState, InstanceOutcome, InstanceTarget, RunContext, run_prefix
from smart_vault.validation import read_int, read_str, require_mapping

# The child's steps a failed instance resumes at; an instance that failed anywhere else (no
# outcome recorded) starts again from the beginning.
RESUMABLE_STEPS = ("Snapshot", "CheckSnapshots", "Copy", "Prune")
# Fields the Catch and the failure label add to a step's input: not part of what the step had.
_CATCH_FIELDS = ("error", "failure")


# The errors a held run ends with: the same as before Redrive existed, so alarms, dashboards and
# anyone reading the console see what they saw.
HELD_ERRORS = ("SmartVault.InstancesFailed", "SmartVault.RunFailed")


class RunHeld(SmartVaultError):
    """The run failed and waits for a Redrive. Never retried: it ends the execution FAILED."""


def _held_error(name: str) -> type[RunHeld]:
    # Lambda reports a Python exception's class name as its errorType, which Step Functions makes
    # the Task's error and, uncaught, the execution's (Lambda Developer Guide, "AWS Lambda
    # function errors in Python"); so the class is named as the error.
    return type(name, (RunHeld,), {})


@dataclass(frozen=True, kw_only=True)
class Hold:
    """What BackupFailed / RunFailed recorded: the error to end with, its cause, where a Redrive
    resumes, and the execution's redrive count when it was held."""

    error: str
    cause: str
    retry_from: str
    redrive_count: int

    @classmethod
    def from_dict(cls, data: object) -> Hold:
        data = require_mapping(data, "hold")
        error = read_str(data, "error", path="hold.")
        if error not in HELD_ERRORS:
            raise InvalidInputError("hold.error", f"must be one of {', '.join(HELD_ERRORS)}, got {error!r}")
        return cls(
            error=error,
            cause=read_str(data, "cause", path="hold.", default=""),
            retry_from=read_str(data, "retry_from", path="hold."),
            redrive_count=read_int(data, "redrive_count", path="hold.", minimum=0),
        )


def await_redrive(hold: Hold, redrive_count: int) -> dict[str, Any]:
    """The redrive gate (AwaitRedrive): pass once the execution has been redriven since it was
    held; until then fail with the run's own error. A Task, because a redriven Task is started
    again, while a redriven Fail state "fails again" (Step Functions Developer Guide, "Redriving
    executions"); the count comes from DescribeExecution, not from the Context object, because
    the guide does not say a redriven state's Parameters are evaluated again."""
    if redrive_count > hold.redrive_count:
        return {"redriven": redrive_count, "retry_from": hold.retry_from}
    raise _held_error(hold.error)(hold.cause or hold.error)


def resumed_backup(instance_item: object) -> BackupState | None:
    """For the Snapshot step of a redrive attempt: the backup an instance that failed after
    Snapshot (at CheckSnapshots, Copy or Prune) already has, so it goes on from there with no
    new snapshot (Check confirms it, then Copy or Prune runs). None: snapshot as usual (a first
    attempt, or an instance that failed at Snapshot, whose retry finds this run's snapshots by
    tag first)."""
    if not isinstance(instance_item, Mapping) or instance_item.get("resume_at") in (None, "Snapshot"):
        return None
    recorded = require_mapping(instance_item.get("resume_input"), "instance.resume_input")
    backup = BackupState.from_dict(recorded.get("backup"), "instance.resume_input.backup.")
    # Nothing is created in this attempt, and nothing to wait for before Check looks.
    return replace(backup, created=False, wait_seconds=0)


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
    *,
    pacing: tuple[int, int] = (4, 1000),
) -> dict[str, Any]:
    """The items of attempt ``attempt``: each failed instance's target, with its resume point
    when RecordFailure kept one. Returns the ItemReader location (with ``redrive``: the attempt)."""
    resume_points = {
        o.instance_id: store.get_optional(resume_key(run, o.instance_id)) for o in failed if o.step in RESUMABLE_STEPS
    }
    items: list[dict[str, Any]] = []
    for outcome in failed:
        target = targets.get(outcome.instance_id)
        if target is None:  # not an inventory item (a skipped instance): nothing to re-attempt
            continue
        # Paced again from 0 among the retried (``pacing``: create_rate_per_second,
        # map_concurrency), not with the delay the instance had in the whole fleet.
        rate, wave = pacing
        delay = (len(items) % wave) // rate
        items.append(
            {**target.to_dict(), "start_delay_seconds": delay, **(resume_points.get(outcome.instance_id) or {})}
        )
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
