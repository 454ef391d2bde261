"""Notify: record instance failures, summarise the run, alert on SNS, write the audit record."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from smart_vault.aws import SNS_MAX_MESSAGE_BYTES, SNS_MAX_SUBJECT, Alerts, Ec2, Store
from smart_vault.constants import METRIC_DIMENSION_STEP, METRIC_SNAPSHOTS_FAILED, METRIC_STEP_FAILED
from smart_vault.errors import shorten_error
from smart_vault.models import (
    DeletedSnapshot,
    ErrorInfo,
    InstanceJob,
    InstanceOutcome,
    InstanceTarget,
    RegionPruning,
    RunContext,
    SnapshotRef,
    journal_prefix,
    orphans_key,
    outcomes_prefix,
    run_prefix,
)
from smart_vault.observability import count, count_by, logger
from smart_vault.redrive.attempts import Attempt, attempt_prefix, write_retry_inventory
from smart_vault.retention.deferral import DEFERRED_PREFIX
from smart_vault.retention.journal import ORPHANS_SUBJECT, Intent, parse
from smart_vault.retention.orphans import OrphanReport, OrphanVolume
from smart_vault.retention.pruning import save_outcome
from smart_vault.settings import Settings

MAX_LISTED = 50  # failures spelled out in one alert; the audit record has them all
MAX_IDS = 30  # snapshot ids per stopped volume in an alert; the audit record has them all
# The alert must fit one SNS message (262,144 bytes with its attributes); the margin leaves
# room for anything SNS counts that we do not (it documents message and attributes).
ALERT_BUDGET_BYTES = SNS_MAX_MESSAGE_BYTES - 6_144


def record_failure(
    job: InstanceJob,
    *,
    step: str,
    error: ErrorInfo,
    settings: Settings,
    store: Store,
    ec2: Ec2 | None = None,
    consistency: Mapping[str, Any] | None = None,
) -> InstanceOutcome:
    """``consistency``: the outcome's consistency fields (consistency.outcome.outcome_fields)."""
    consistency = consistency or {}
    backup = job.backup if job.backup and job.backup.status != "freeze" else None  # freeze: none yet
    snapshots = backup.snapshots if backup else ()
    created = backup.created if backup else False
    if backup is None and step == "Snapshot" and not job.run.dry_run and ec2 is not None:
        # The Snapshot step can fail after CreateSnapshots succeeded (a refused LockSnapshot):
        # this run's snapshots in the account are what it created (Prune locks them later).
        snapshots = _run_snapshots(ec2, settings, job.instance, job.run)
        created = bool(snapshots)
    outcome = InstanceOutcome(
        **consistency,
        instance_id=job.instance.instance_id,
        name=job.instance.name,
        status="failed",
        run_id=job.run.run_id,
        execution_name=job.run.execution_name,
        step=step,
        error=error,
        snapshots=snapshots,
        created=created,
        dry_run=job.run.dry_run,
    )
    save_outcome(outcome, job.run, store)
    # Snapshots that failed, not steps: a Copy or Prune failure after a completed backup counts 0.
    failed = failed_snapshots(job.instance, snapshots, in_time=step == "CheckSnapshots")
    if failed:
        count(METRIC_SNAPSHOTS_FAILED, failed)
    # A step that failed after all its retries: what the stack alarms on (Lambda Errors also
    # counts errors a retry then fixed).
    count_by(METRIC_STEP_FAILED, {METRIC_DIMENSION_STEP: step})
    logger.error(
        "instance backup failed",
        extra={"step": step, "error_type": error.type, "error_message": error.message},
    )
    return outcome


def failed_snapshots(target: InstanceTarget, snapshots: Sequence[SnapshotRef], *, in_time: bool) -> int:
    """SnapshotsFailed of one failed instance: its selected volumes without a good snapshot of the
    run. Good: completed, or (``in_time`` False) still pending, as after a refused LockSnapshot;
    CheckSnapshots fails a pending one that ran out of time (``in_time``)."""
    good = ("completed",) if in_time else ("completed", "pending")
    ok = {s.volume_id for s in snapshots if s.state in good}
    return sum(1 for v in target.volumes if v.volume_id not in ok)


@dataclass(kw_only=True)
class RunSummary:
    run: RunContext
    outcomes: list[InstanceOutcome]
    orphans: OrphanReport | None = None
    orphans_error: ErrorInfo | None = None
    audit_key: str | None = None
    alert_subject: str | None = None
    # A redrive attempt (None: the scheduled attempt), and the retry inventory a further
    # Redrive would read (None: nothing to re-attempt).
    attempt: Attempt | None = None
    redrive: dict[str, Any] | None = None

    def _with(self, status: str) -> list[InstanceOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def failed(self) -> list[InstanceOutcome]:
        return self._with("failed")

    @property
    def skipped(self) -> list[InstanceOutcome]:
        return self._with("skipped")

    @property
    def nothing_selected(self) -> bool:
        """No instance carries the exact backup tag (near misses Discover skipped do not count)."""
        return all(o.status == "skipped" and o.step == "Discover" for o in self.outcomes)

    @property
    def orphan_volumes(self) -> tuple[OrphanVolume, ...]:
        return self.orphans.volumes if self.orphans else ()

    def tripped_volumes(self) -> list[dict[str, Any]]:
        """Every volume the circuit breaker stopped, in which Region (the source, or a destination
        of copies: one volume can trip in both), with the command that releases it there."""
        source = source_region()
        rows = [
            {
                "instance": o.name or o.instance_id,
                "instance_id": o.instance_id,
                "orphan": False,
                "region": source,
                **asdict(b),
            }
            for o in self.outcomes
            for b in o.breakers
        ]
        rows += [
            {"instance": o.name or o.instance_id, "instance_id": o.instance_id, "orphan": False, "region": r.region}
            | asdict(b)
            for o in self.outcomes
            for r in o.copy_pruning
            for b in r.breakers
        ]
        rows += [
            {
                "instance": v.name or v.instance_id,
                "instance_id": v.instance_id,
                "orphan": True,
                "region": v.region or source,
                **asdict(v.breaker),
            }
            for v in self.orphan_volumes
            if v.breaker
        ]
        for row in rows:
            row["release"] = (
                f"smart-vault approve {self.run.run_id} --volume {row['volume_id']} --in-region {row['region']}"
            )
        return rows

    def deferred_deletes(self) -> list[dict[str, str]]:
        """Deletions left for the next run (throttled past their retries), with where they were."""
        return self._rows(lambda o: o.deferred_deletes, lambda r: r.deferred_deletes)

    def locks_added(self) -> list[dict[str, str]]:
        """Snapshots (and copies) inside the configured lock that had none, locked by this run."""
        return self._rows(lambda o: o.locks_added, lambda r: r.locks_added)

    def _rows(
        self, local: Callable[[InstanceOutcome], Iterable[Any]], remote: Callable[[RegionPruning], Iterable[Any]]
    ) -> list[dict[str, str]]:
        """One row per item of every outcome (``region`` empty) and of its destinations' pruning."""
        rows = [
            {"instance": o.name or o.instance_id, "region": "", **asdict(x)} for o in self.outcomes for x in local(o)
        ]
        rows += [
            {"instance": o.name or o.instance_id, "region": r.region, **asdict(x)}
            for o in self.outcomes
            for r in o.copy_pruning
            for x in remote(r)
        ]
        return rows

    def held_for_copies(self) -> list[OrphanVolume]:
        """Orphaned volumes with snapshots kept only until their off-site copies exist."""
        return [v for v in self.orphan_volumes if v.held_for_copies]

    def retention_errors(self) -> list[dict[str, str]]:
        """Instances and orphaned volumes whose retention override tag is invalid (nothing pruned)."""
        rows = [
            {"instance": o.name or o.instance_id, "instance_id": o.instance_id, "problem": o.retention_error}
            for o in self.outcomes
            if o.retention_error
        ]
        rows += [
            {
                "instance": v.name or v.instance_id,
                "instance_id": v.instance_id,
                "problem": f"orphaned volume {v.volume_id}: {v.retention_error}",
            }
            for v in self.orphan_volumes
            if v.retention_error
        ]
        return rows

    def consistency_fallbacks(self) -> list[InstanceOutcome]:
        """Opted-in instances backed up crash-consistent because their freeze failed (fallback)."""
        return [o for o in self.outcomes if o.consistency_error and o.status != "failed"]

    def to_dict(self) -> dict[str, Any]:
        failed = self.failed
        orphan_deleted = sum(len(v.deleted) for v in self.orphan_volumes)
        return {
            "run_id": self.run.run_id,
            "execution_name": self.run.execution_name,
            "dry_run": self.run.dry_run,
            "instances": len(self.outcomes),
            "backed_up": len(self._with("backed_up")),
            "failed": len(failed),
            "skipped": len(self._with("skipped")),
            "snapshots_created": sum(len(o.snapshots) for o in self.outcomes if o.created),
            "would_create": sum(o.would_create for o in self.outcomes),
            "snapshots_deleted": sum(len(o.deleted) for o in self.outcomes) + orphan_deleted,
            "deletes_skipped": sum(len(o.skipped_deletes) for o in self.outcomes)
            + sum(len(v.skipped_deletes) for v in self.orphan_volumes),
            "deletes_deferred": len(self.deferred_deletes()),
            "locks_added": len(self.locks_added()),
            "copies_completed": sum(1 for o in self.outcomes for c in o.copies if c.state == "completed"),
            "copies_deleted": sum(len(r.deleted) for o in self.outcomes for r in o.copy_pruning),
            "orphan_volumes": len(self.orphan_volumes),
            "orphan_snapshots_deleted": orphan_deleted,
            "orphans_failed": self.orphans_error is not None,
            "orphan_volumes_held_for_copies": len(self.held_for_copies()),
            "circuit_breakers": len(self.tripped_volumes()),
            "snapshots_archived": sum(len(o.archived) for o in self.outcomes if not o.dry_run),
            "application_consistent": sum(1 for o in self.outcomes if o.consistency == "application" and o.created),
            "consistency_fallbacks": len(self.consistency_fallbacks()),
            "retention_errors": self.retention_errors()[:MAX_LISTED],
            "failed_instance_ids": [o.instance_id for o in failed][:MAX_LISTED],
            "skipped_instances": [
                {"instance_id": o.instance_id, "name": o.name, "reason": o.reason}
                for o in self._with("skipped")
                if not (o.dry_run and o.would_create)  # a dry run lists what the real run would skip
            ][:MAX_LISTED],
            "audit_key": self.audit_key,
            "alert": self.alert_subject,
            "attempt": self.attempt.number if self.attempt else 0,
            "redriven": len(self.attempt.redriven) if self.attempt else 0,
            "redrive": self.redrive,
            # The Fail state's cause when instances failed: short, readable in the console.
            "cause": _cause(failed, self.orphans_error),
        }


def _cause(failed: list[InstanceOutcome], orphans_error: ErrorInfo | None = None) -> str:
    parts = []
    if failed:
        listed = ", ".join(f"{o.name or o.instance_id} at {o.step}" for o in failed[:10])
        more = f" and {len(failed) - 10} more" if len(failed) > 10 else ""
        parts.append(f"{len(failed)} instance(s) failed: {listed}{more}")
    if orphans_error is not None:
        parts.append(f"orphan pruning failed: {orphans_error.type}")
    return "; ".join(parts)


def source_region() -> str:
    """The Region this deployment backs up (the functions' own)."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""


def console_link(execution_arn: str) -> str:
    region = execution_arn.split(":")[3] if execution_arn.count(":") >= 3 else "us-east-1"
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


def summarize_run(
    run: RunContext,
    *,
    inventory_key: str,
    settings: Settings,
    store: Store,
    alerts: Alerts | None,
    skipped_key: str | None = None,
    ec2: Ec2,
    orphan_step: Mapping[str, Any] | None = None,
    attempt: int = 0,
    retry_inventory: bool = False,
) -> RunSummary:
    """Every inventory item gets an outcome; journaled deletions are confirmed against the
    account, so the audit record and the alert say what the account shows.

    ``attempt`` is the execution's redrive count; with ``retry_inventory`` the inventory holds
    only the instances that attempt re-attempted. Each attempt writes its own audit record and,
    when something failed, the retry inventory of the next."""
    inventory = [InstanceTarget.from_dict(i) for i in store.get_json(inventory_key)]
    prefix = outcomes_prefix(run_prefix(run))
    # Only the inventory's records: a redrive attempt reads the instances it re-attempted, not
    # the whole fleet's (its calls grow with the failed instances, not with the fleet).
    wanted = {f"{prefix}{t.instance_id}.json" for t in inventory}
    keys = [k for k in store.keys(prefix) if k in wanted]
    records = {o.instance_id: o for o in (InstanceOutcome.from_dict(r) for r in store.get_many(keys))}
    orphans, orphans_error = _orphan_result(run, store, orphan_step)
    # Prune rebuilds its own outcome from its journal; only records it did not write (a failure
    # recorded by RecordFailure, or none at all) and a failed orphan step need the journals.
    unreconciled = [t for t in inventory if records.get(t.instance_id) is None or records[t.instance_id].step]
    journals = _journals(store, run) if unreconciled or orphans_error else {}
    outcomes: list[InstanceOutcome] = []
    for target in inventory:
        outcome = records.get(target.instance_id)
        if outcome is None:
            # A child that died without recording (its own Catch failed too) still counts, with
            # what the account shows: the snapshots tagged with this run.
            outcome = InstanceOutcome(
                instance_id=target.instance_id,
                name=target.name,
                status="failed",
                run_id=run.run_id,
                execution_name=run.execution_name,
                step="BackupInstances",
                error=ErrorInfo(
                    type="NoOutcomeRecorded",
                    message="the instance's child execution ended without recording an outcome",
                ),
                snapshots=_run_snapshots(ec2, settings, target, run),
                dry_run=run.dry_run,
            )
            failed = failed_snapshots(target, outcome.snapshots, in_time=True)
            if failed:
                count(METRIC_SNAPSHOTS_FAILED, failed)
        outcomes.append(outcome)
    outcomes, orphans = _confirm_journals(outcomes, orphans, journals, ec2, run)
    if skipped_key:  # instances Discover found but did not select (a near-miss tag value)
        outcomes.extend(InstanceOutcome.from_dict(r) for r in store.get_json(skipped_key))
    redriven = Attempt(number=attempt, redriven=tuple(t.instance_id for t in inventory)) if retry_inventory else None
    summary = RunSummary(run=run, outcomes=outcomes, orphans=orphans, orphans_error=orphans_error, attempt=redriven)
    summary.audit_key = f"{attempt_prefix(run_prefix(run), attempt)}/audit.json"
    if summary.failed or orphans_error:
        targets = {t.instance_id: t for t in inventory}
        pacing = (settings.create_rate_per_second, settings.map_concurrency)
        summary.redrive = write_retry_inventory(store, run, summary.failed, targets, attempt + 1, pacing=pacing)
    store.put_json(summary.audit_key, _audit_record(summary, inventory))
    if alerts is not None and (
        summary.failed
        or summary.attempt
        or summary.tripped_volumes()
        or orphans_error
        or _warnings(summary)
        or settings.notify_on_success
    ):
        request = fit_alert(
            lambda listed: _summary_alert(summary, store.bucket, listed, settings),
            min(len(summary.failed), MAX_LISTED),
        )
        summary.alert_subject = request["Subject"]
        alerts.publish(request)
    return summary


def fit_alert(build: Callable[[int], dict[str, Any]], most: int) -> dict[str, Any]:
    """The Publish request listing as many of ``most`` failures as fit the SNS size budget.

    Each listed failure costs a line of text and an entry in the JSON document; halving the
    list until it fits keeps the alert deliverable for any fleet and any error text."""
    listed = most
    while True:
        request = build(listed)
        if listed == 0 or Alerts.request_bytes(request) <= ALERT_BUDGET_BYTES:
            return request
        listed //= 2


def _summary_alert(summary: RunSummary, bucket: str, listed: int, settings: Settings) -> dict[str, Any]:
    subject, text = _alert_text(summary, bucket, listed, settings)
    if summary.attempt:  # every attempt is heard, and says which it is
        header = summary.attempt.header(summary.run.run_id, summary.outcomes)
        subject = header.split(";")[0].replace("Redrive", "Smart Vault: redrive", 1)[:SNS_MAX_SUBJECT]
        text = f"{header}\n\n{text}"
    failed = summary.failed
    audit = f"s3://{bucket}/{summary.audit_key}"
    # Machine subscribers get counts, which instances failed where and with which code, and the
    # audit record for the rest: the error texts are in the e-mail text and in the audit record.
    counts = {k: v for k, v in summary.to_dict().items() if k != "cause" and not isinstance(v, list | dict)}
    document = {
        "type": _event_type(summary),
        "dry_run": summary.run.dry_run,
        "summary": counts,
        "breakers": [
            {k: v for k, v in b.items() if k not in ("would_delete", "approved_snapshot_ids")}
            | {"would_delete_count": len(b["would_delete"])}
            for b in summary.tripped_volumes()[:MAX_LISTED]
        ],
        "failures": [_failure_doc(o) for o in failed[:listed]],
        "failures_not_listed": len(failed) - min(listed, len(failed)),
        "audit_record": audit,
        "console": console_link(summary.run.execution_arn),
    }
    return Alerts.request(
        subject=subject,
        text=text,
        document=document,
        attributes={
            "event_type": _event_type(summary),
            "run_id": summary.run.run_id,
            "failed_count": str(len(failed)),
            "audit_record": audit,
            "attempt": str(summary.attempt.number if summary.attempt else 0),
        },
    )


def _warnings(summary: RunSummary) -> bool:
    """Nothing selected, or instances skipped (a near-miss tag, vanished): say so, not silence."""
    return (
        summary.nothing_selected
        or bool(summary.skipped)
        or bool(summary.retention_errors())
        or bool(summary.deferred_deletes())
        or bool(summary.locks_added())
        or bool(summary.held_for_copies())
        or bool(summary.consistency_fallbacks())
    )


def _orphan_result(
    run: RunContext, store: Store, orphan_step: Mapping[str, Any] | None
) -> tuple[OrphanReport | None, ErrorInfo | None]:
    """The orphan step's report from S3, or the error its Catch passed on."""
    if orphan_step and "Error" in orphan_step:
        error = ErrorInfo.from_catch(orphan_step)
        logger.error("orphan pruning failed", extra={"error_type": error.type})
        return OrphanReport(run_id=run.run_id, status="failed", reason=error.message), error
    body = store.get_optional(orphans_key(run_prefix(run)))
    return (OrphanReport.from_dict(body) if body else None), None


def _journals(store: Store, run: RunContext) -> dict[str, dict[str, Intent]]:
    prefix = journal_prefix(run_prefix(run))
    keys = store.keys(prefix)
    bodies = store.get_many(keys)
    return {key.removeprefix(prefix).removesuffix(".json"): parse(body) for key, body in zip(keys, bodies, strict=True)}


def _run_snapshots(ec2: Ec2, settings: Settings, target: InstanceTarget, run: RunContext) -> tuple[SnapshotRef, ...]:
    devices = {v.volume_id: v.device for v in target.volumes}
    return tuple(
        SnapshotRef(
            snapshot_id=s["SnapshotId"],
            volume_id=s["VolumeId"],
            device=devices.get(s["VolumeId"], ""),
            state=s.get("State", "pending"),
        )
        for s in ec2.managed_snapshots(settings.deployment_id, target.instance_id, run.run_id)
    )


def _confirm_journals(
    outcomes: list[InstanceOutcome],
    orphans: OrphanReport | None,
    journals: dict[str, dict[str, Intent]],
    ec2: Ec2,
    run: RunContext,
) -> tuple[list[InstanceOutcome], OrphanReport | None]:
    """Add journaled deletions the records miss, once the account confirms them gone."""
    if not journals:
        return outcomes, orphans

    def unknown(subject: str, reported: set[str]) -> dict[str, Intent]:
        return {sid: i for sid, i in journals.get(subject, {}).items() if sid not in reported}

    pending = {
        o.instance_id: unknown(
            o.instance_id, {d.snapshot_id for d in o.deleted} | {s.snapshot_id for s in o.skipped_deletes}
        )
        for o in outcomes
    }
    orphan_pending: dict[str, Intent] = {}
    if orphans is not None and orphans.status == "failed":
        orphan_pending = unknown(ORPHANS_SUBJECT, set())
    asked = {sid for p in pending.values() for sid in p} | set(orphan_pending)
    if not asked:
        return outcomes, orphans
    still_there = ec2.existing_snapshot_ids(asked)

    def gone(intents: dict[str, Intent]) -> tuple[DeletedSnapshot, ...]:
        return tuple(i.deleted() for sid, i in sorted(intents.items()) if sid not in still_there)

    outcomes = [replace(o, deleted=o.deleted + gone(pending[o.instance_id])) for o in outcomes]
    if orphan_pending and orphans is not None:
        deleted = gone(orphan_pending)
        owners = {i.volume_id: i.instance_id for i in orphan_pending.values()}
        orphans = replace(
            orphans,
            volumes=tuple(
                OrphanVolume(
                    volume_id=vid,
                    instance_id=owners[vid],
                    name="",
                    deleted=tuple(d for d in deleted if d.volume_id == vid),
                )
                for vid in sorted({d.volume_id for d in deleted})
            ),
        )
    return outcomes, orphans


def _event_type(summary: RunSummary) -> str:
    if summary.failed or summary.orphans_error:
        return "backup_failed"
    if summary.tripped_volumes():
        return "prune_circuit_breaker"
    if _warnings(summary):
        return "backup_warning"
    return "backup_succeeded"


def _failure_doc(o: InstanceOutcome) -> dict[str, Any]:
    return {
        "instance_id": o.instance_id,
        "name": o.name,
        "step": o.step,
        "error_type": o.error.type if o.error else None,
        "aws_code": o.error.aws_code if o.error else None,
    }


def _alert_text(summary: RunSummary, bucket: str, listed: int, settings: Settings) -> tuple[str, str]:
    run = summary.run
    data = summary.to_dict()
    lines = [
        *_headline_lines(summary, data),
        *_failure_lines(summary.failed, listed, run),
        *_capped(
            "Skipped instances:",
            [f"- {s['name'] or '-'} {s['instance_id']}: {s['reason']}" for s in data["skipped_instances"]],
            limit=10,
        ),
        *_orphan_error_lines(summary.orphans_error),
        *_breaker_lines(summary.tripped_volumes()),
        *_warning_lines(summary, settings),
        "",
        f"Execution: {console_link(run.execution_arn)}",
        f"Audit record: s3://{bucket}/{summary.audit_key}",
    ]
    return _alert_subject(summary, data), "\n".join(lines)


def _alert_subject(summary: RunSummary, data: Mapping[str, Any]) -> str:
    """The news of the run, marked as a dry run's when it is one."""
    subject = _plain_subject(summary, data)
    if summary.run.dry_run:
        return "Smart Vault (DRY RUN, nothing changed)" + subject.removeprefix("Smart Vault")
    return subject


def _plain_subject(summary: RunSummary, data: Mapping[str, Any]) -> str:
    """The worst news first: failures, then what stopped pruning, then warnings, then success."""
    failed, breakers = summary.failed, summary.tripped_volumes()
    if failed:
        return f"Smart Vault: {len(failed)} of {data['instances']} instance backups FAILED"
    if summary.orphans_error:
        return "Smart Vault: orphan snapshot pruning FAILED"
    if breakers:
        return f"Smart Vault: pruning of {len(breakers)} volume(s) stopped by the circuit breaker"
    if summary.nothing_selected:
        return "Smart Vault WARNING: no instance selected for backup"
    if summary.run.dry_run:  # every instance of a dry run is "skipped": a preview, not a warning
        return f"Smart Vault: {data['instances']} instances previewed"
    if summary.skipped:
        return f"Smart Vault WARNING: {len(summary.skipped)} instance(s) skipped, {data['backed_up']} backed up"
    if summary.retention_errors():
        return (
            f"Smart Vault WARNING: invalid retention tag on {len(summary.retention_errors())} "
            "instance(s)/volume(s), pruning skipped"
        )
    if summary.held_for_copies():
        return (
            f"Smart Vault WARNING: pruning of {len(summary.held_for_copies())} orphaned volume(s) "
            "held for off-site copies"
        )
    return f"Smart Vault: {data['backed_up']} instances backed up"


def _headline_lines(summary: RunSummary, data: Mapping[str, Any]) -> list[str]:
    """The run, its counts of instances, snapshots and off-site copies, then a blank line."""
    run = summary.run
    return [
        f"Smart Vault {'DRY RUN (a preview: nothing created or deleted)' if run.dry_run else 'backup run'} "
        f"{run.run_time} (execution {run.execution_name})",
        f"Backed up: {data['backed_up']}  Failed: {data['failed']}  Skipped: {data['skipped']}",
        (
            f"Snapshots that would be created: {data['would_create']}"
            if run.dry_run
            else f"Snapshots created: {data['snapshots_created']}"
        )
        + f"  deleted: {data['snapshots_deleted']}"
        f"  deletions skipped: {data['deletes_skipped']}"
        f"  (of orphaned volumes: {data['orphan_snapshots_deleted']} deleted on {data['orphan_volumes']} volumes)",
        *(
            [f"Off-site copies completed: {data['copies_completed']}  pruned: {data['copies_deleted']}"]
            if data["copies_completed"] or data["copies_deleted"]
            else []
        ),
        "",
    ]


def _failure_lines(failed: Sequence[InstanceOutcome], listed: int, run: RunContext) -> list[str]:
    """The first ``listed`` failed instances with their errors, and the input that retries them."""
    if not failed:
        return []
    lines = ["Failed instances:"]
    for o in failed[:listed]:
        err = o.error or ErrorInfo(type="Unknown", message="")
        code = f" [{err.aws_code}]" if err.aws_code else ""
        lines.append(
            f"- {o.name or '-'} {o.instance_id}: step {o.step}: {err.type}{code}: {shorten_error(err.message)}"
        )
        if o.deleted:
            gone = ", ".join(d.snapshot_id for d in o.deleted)
            lines.append(f"  deleted before it failed ({len(o.deleted)}): {gone}")
    if len(failed) > listed:
        lines.append(
            f"... and {len(failed) - listed} more failed instance(s) left out of this alert "
            "to keep it under the SNS size limit: all are in the audit record below."
        )
    ids = ", ".join(f'"{o.instance_id}"' for o in failed[:listed])
    return [
        *lines,
        "",
        # Step Functions keeps a failed Standard execution redrivable for 14 days after it stops
        # (Developer Guide, "Redriving executions"); a new execution works at any time.
        "To re-attempt every failed instance from the step it failed at, Redrive this execution "
        f"within 14 days (the console's Redrive button, or: smart-vault redrive {run.execution_name}).",
        "Or, at any time, retry "
        + ("only these instances" if listed >= len(failed) else "the instances listed")
        + " in a new execution with the input:",
        f'{{"time": "{run.run_time}", "instance_ids": [{ids}]}}',
    ]


def _orphan_error_lines(error: ErrorInfo | None) -> list[str]:
    return [f"Orphan snapshot pruning failed: {error.type}: {error.message}"] if error else []


def _breaker_lines(breakers: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each volume the circuit breaker stopped: what it would delete and how to release it."""
    lines = ["", "Pruning stopped by the circuit breaker (nothing of these volumes was deleted):"] if breakers else []
    for b in breakers[:MAX_LISTED]:
        kind = "orphaned volume" if b["orphan"] else "volume"
        lines += [
            f"- {b['instance']} {kind} {b['volume_id']} in {b['region']}: {b['reason']}",
            f"  would delete ({len(b['would_delete'])}): {_ids(b['would_delete'])}",
            *_unmatched_approval_lines(b),
            f"  to release exactly this plan: {b['release']}",
        ]
    return lines


def _ids(ids: Sequence[str]) -> str:
    return ", ".join(ids[:MAX_IDS]) + (" ..." if len(ids) > MAX_IDS else "")


def _unmatched_approval_lines(breaker: Mapping[str, Any]) -> list[str]:
    """An approval exists for this volume in this Region but its plan changed: say what was
    approved and what is planned now, since the approval releases nothing until renewed."""
    if not breaker.get("approved_run_id"):
        return []
    approved, planned = set(breaker["approved_snapshot_ids"]), set(breaker["would_delete"])
    lines = [
        f"  approval of run {breaker['approved_run_id']} no longer matches: it released "
        f"{len(approved)} snapshot(s), this run would delete {len(planned)}; nothing deleted"
    ]
    if planned - approved:
        lines.append(f"  planned now but not approved ({len(planned - approved)}): {_ids(sorted(planned - approved))}")
    if approved - planned:
        lines.append(
            f"  approved but no longer planned ({len(approved - planned)}): {_ids(sorted(approved - planned))}"
        )
    return lines


def _held_lines(summary: RunSummary) -> list[str]:
    """Orphaned volumes whose expired snapshots wait for their off-site copies (prune-after-copy)."""
    rows = []
    for v in summary.held_for_copies():
        regions = sorted({r for h in v.held_for_copies for r in h.regions})
        ids = [h.snapshot_id for h in v.held_for_copies]
        rows.append(
            f"- {v.name or v.instance_id or '-'} orphaned volume {v.volume_id}: {len(ids)} snapshot(s) "
            f"held for off-site copies in {', '.join(regions)}: {_ids(ids)}"
        )
    return _capped(
        "Orphan pruning held for off-site copies (kept until every destination holds a completed copy "
        "at least as new; removing a Region from copy_regions stops the wait for it):",
        rows,
    )


def _warning_lines(summary: RunSummary, settings: Settings) -> list[str]:
    lines = []
    if summary.nothing_selected:
        lines.append(
            f"WARNING: no instance carries the tag {settings.backup_tag_key}={settings.backup_tag_value} "
            "exactly: nothing was backed up."
        )
    lines += _capped(
        "Skipped instances (not backed up, nothing pruned):",
        [f"- {o.name or '-'} {o.instance_id}: {o.reason}" for o in summary.skipped],
    )
    invalid = summary.retention_errors()
    if invalid:
        lines += ["", "Pruning skipped (invalid retention override tag; fix the tag, nothing was deleted):"]
        lines += [f"- {r['instance']} {r['instance_id']}: {r['problem']}" for r in invalid[:MAX_LISTED]]
    lines += _capped(
        "Deletions deferred to the next run (still refused after their retries; the backups are fine):",
        [
            f"- {d['instance']} {d['snapshot_id']}{_in_region(d)}: {d['reason'].removeprefix(DEFERRED_PREFIX)}"
            for d in summary.deferred_deletes()
        ],
    )
    lines += _capped(
        "Locks that were missing, added by this run (the snapshot was never deleted meanwhile):",
        [
            f"- {k['instance']} {k['snapshot_id']}{_in_region(k)}: locked until {k['locked_until']}"
            for k in summary.locks_added()
        ],
    )
    lines += _held_lines(summary)
    lines += _capped(
        "Crash-consistent fallbacks (the freeze failed; snapshots tagged smart-vault:consistency=crash):",
        [f"- {o.name or '-'} {o.instance_id}: {o.consistency_error}" for o in summary.consistency_fallbacks()],
    )
    return lines


def _capped(title: str, rows: list[str], limit: int = MAX_LISTED) -> list[str]:
    """A titled list for an alert, cut at ``limit`` rows (the audit record has them all); none: nothing."""
    if not rows:
        return []
    more = [f"... and {len(rows) - limit} more in the audit record"] if len(rows) > limit else []
    return ["", title, *rows[:limit], *more]


def _in_region(row: Mapping[str, Any]) -> str:
    """ " in <region>" for a row about a copy in a destination Region, "" for the source Region's."""
    return f" in {row['region']}" if row.get("region") else ""


def _audit_record(summary: RunSummary, inventory: list[InstanceTarget]) -> dict[str, Any]:
    volumes = {t.instance_id: t.volumes for t in inventory}
    instances = []
    for o in summary.outcomes:
        snaps = {s.volume_id: s.snapshot_id for s in o.snapshots}
        instances.append(
            {
                "instance_id": o.instance_id,
                "name": o.name,
                "status": o.status,
                "volumes": [
                    {
                        "volume_id": v.volume_id,
                        "device": v.device,
                        "snapshot_id": snaps.get(v.volume_id),
                    }
                    for v in volumes.get(o.instance_id, ())
                ],
                "deleted": [d.snapshot_id for d in o.deleted],
                "would_delete": [d.snapshot_id for d in o.would_delete],
                "skipped_deletes": [{"snapshot_id": s.snapshot_id, "reason": s.reason} for s in o.skipped_deletes],
                "deferred_deletes": [asdict(d) for d in o.deferred_deletes],
                "locks_added": [asdict(k) for k in o.locks_added],
                "would_create": o.would_create,
                "breaker": o.breaker,
                "breakers": [asdict(b) for b in o.breakers],
                "kept_by_ami": [asdict(p) for p in o.kept_by_ami],
                "kept_locked": [asdict(p) for p in o.kept_locked],
                "approved_volumes": list(o.approved_volumes),
                "kept": [asdict(k) for k in o.kept],
                "archived": list(o.archived),
                "archive_skipped": [asdict(a) for a in o.archive_skipped],
                "retention_error": o.retention_error,
                "copies": [asdict(c) for c in o.copies],
                "copy_pruning": [asdict(r) for r in o.copy_pruning],
                "reason": o.reason,
                "consistency": o.consistency,
                "frozen_seconds": o.frozen_seconds,
                "consistency_error": o.consistency_error,
                "step": o.step,
                "error": o.error
                and {
                    "type": o.error.type,
                    "aws_code": o.error.aws_code,
                    "message": o.error.message,
                },
            }
        )
    return {
        "run_id": summary.run.run_id,
        "run_time": summary.run.run_time,
        "execution_arn": summary.run.execution_arn,
        "dry_run": summary.run.dry_run,
        "summary": {k: v for k, v in summary.to_dict().items() if k != "cause"},
        "instances": instances,
        "orphans": summary.orphans.to_dict() if summary.orphans else None,
        "breakers": summary.tripped_volumes(),
        "region": source_region() or None,
    }


def alert_run_failure(
    *, execution_arn: str, execution_name: str, step: str, error: ErrorInfo, alerts: Alerts | None
) -> dict[str, Any]:
    """The whole run failed before or around the Map (discovery, inventory): one alert."""
    subject = f"Smart Vault: backup run FAILED at {step}"
    code = f" [{error.aws_code}]" if error.aws_code else ""
    text = "\n".join(
        [
            f"Smart Vault execution {execution_name} failed at step {step}.",
            "No instance was backed up by this execution and nothing was pruned.",
            f"Error: {error.type}{code}: {shorten_error(error.message, limit=2000)}",
            "",
            f"Execution: {console_link(execution_arn)}",
        ]
    )
    message_id = None
    if alerts is not None:
        message_id = alerts.publish(
            Alerts.request(
                subject=subject,
                text=text,
                document={
                    "type": "run_failed",
                    "step": step,
                    "error_type": error.type,
                    "aws_code": error.aws_code,
                    "execution_arn": execution_arn,
                    "console": console_link(execution_arn),
                },
                attributes={"event_type": "run_failed", "step": step},
            )
        )
    logger.error("backup run failed", extra={"step": step, "error_type": error.type})
    return {
        "alert": subject,
        "message_id": message_id,
        "step": step,
        "cause": f"{step}: {error.type}: {error.message}"[:1000],
    }
