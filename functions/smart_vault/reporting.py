"""Notify: record instance failures, summarise the run, alert on SNS, write the audit record."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smart_vault.aws import SNS_MAX_MESSAGE_BYTES, Alerts, Store
from smart_vault.constants import METRIC_DIMENSION_STEP, METRIC_SNAPSHOTS_FAILED, METRIC_STEP_FAILED
from smart_vault.models import (
    ErrorInfo,
    InstanceJob,
    InstanceOutcome,
    InstanceTarget,
    RunContext,
    outcomes_prefix,
    run_prefix,
)
from smart_vault.observability import count, count_by, logger
from smart_vault.pruning import save_outcome
from smart_vault.settings import Settings

MAX_LISTED = 50  # failures spelled out in one alert; the audit record has them all
MAX_ERROR_CHARS = 400  # of each error message in an alert; the audit record keeps the full text
# The alert must fit one SNS message (262,144 bytes with its attributes); the margin leaves
# room for anything SNS counts that we do not (it documents message and attributes).
ALERT_BUDGET_BYTES = SNS_MAX_MESSAGE_BYTES - 6_144
ENCODED_AUTH_MARKER = "Encoded authorization failure message: "


def record_failure(
    job: InstanceJob, *, step: str, error: ErrorInfo, settings: Settings, store: Store
) -> InstanceOutcome:
    outcome = InstanceOutcome(
        instance_id=job.instance.instance_id,
        name=job.instance.name,
        status="failed",
        run_id=job.run.run_id,
        execution_name=job.run.execution_name,
        step=step,
        error=error,
        snapshots=job.backup.snapshots if job.backup else (),
        created=job.backup.created if job.backup else False,
        dry_run=job.run.dry_run,
    )
    save_outcome(outcome, job.run, store)
    count(METRIC_SNAPSHOTS_FAILED, max(1, len(job.instance.volumes)))
    # A step that failed after all its retries: what the stack alarms on (Lambda Errors also
    # counts errors a retry then fixed).
    count_by(METRIC_STEP_FAILED, {METRIC_DIMENSION_STEP: step})
    logger.error(
        "instance backup failed",
        extra={"step": step, "error_type": error.type, "error_message": error.message},
    )
    return outcome


@dataclass(kw_only=True)
class RunSummary:
    run: RunContext
    outcomes: list[InstanceOutcome]
    audit_key: str | None = None
    alert_subject: str | None = None

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
    def breakers(self) -> list[InstanceOutcome]:
        return [o for o in self.outcomes if o.breaker]

    def to_dict(self) -> dict[str, Any]:
        failed = self.failed
        return {
            "run_id": self.run.run_id,
            "execution_name": self.run.execution_name,
            "dry_run": self.run.dry_run,
            "instances": len(self.outcomes),
            "backed_up": len(self._with("backed_up")),
            "failed": len(failed),
            "skipped": len(self._with("skipped")),
            "snapshots_created": sum(len(o.snapshots) for o in self.outcomes if o.created),
            "snapshots_deleted": sum(len(o.deleted) for o in self.outcomes),
            "deletes_skipped": sum(len(o.skipped_deletes) for o in self.outcomes),
            "circuit_breakers": len(self.breakers),
            "failed_instance_ids": [o.instance_id for o in failed][:MAX_LISTED],
            "skipped_instances": [
                {"instance_id": o.instance_id, "name": o.name, "reason": o.reason}
                for o in self._with("skipped")
                if not o.dry_run
            ][:MAX_LISTED],
            "audit_key": self.audit_key,
            "alert": self.alert_subject,
            # The Fail state's cause when instances failed: short, readable in the console.
            "cause": _cause(failed),
        }


def _cause(failed: list[InstanceOutcome]) -> str:
    if not failed:
        return ""
    listed = ", ".join(f"{o.name or o.instance_id} at {o.step}" for o in failed[:10])
    more = f" and {len(failed) - 10} more" if len(failed) > 10 else ""
    return f"{len(failed)} instance(s) failed: {listed}{more}"


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
) -> RunSummary:
    inventory = [InstanceTarget.from_dict(i) for i in store.get_json(inventory_key)]
    prefix = outcomes_prefix(run_prefix(run))
    records = {o.instance_id: o for o in (InstanceOutcome.from_dict(r) for r in store.get_many(store.keys(prefix)))}
    outcomes: list[InstanceOutcome] = []
    for target in inventory:
        outcome = records.get(target.instance_id)
        if outcome is None:
            # A child that died without recording (its own Catch failed too) still counts.
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
            )
            count(METRIC_SNAPSHOTS_FAILED, max(1, len(target.volumes)))
        outcomes.append(outcome)
    if skipped_key:  # instances Discover found but did not select (a near-miss tag value)
        outcomes.extend(InstanceOutcome.from_dict(r) for r in store.get_json(skipped_key))
    summary = RunSummary(run=run, outcomes=outcomes)
    summary.audit_key = f"{run_prefix(run)}/audit.json"
    store.put_json(summary.audit_key, _audit_record(summary, inventory))
    if alerts is not None and (summary.failed or summary.breakers or _warnings(summary) or settings.notify_on_success):
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


def shorten_error(message: str, limit: int = MAX_ERROR_CHARS) -> str:
    """An error message short enough for an alert; the audit record keeps it whole.

    EC2's UnauthorizedOperation carries ~1,600 opaque characters after "Encoded authorization
    failure message: "; they only help once decoded, so the alert says how to get them."""
    head, marker, encoded = message.partition(ENCODED_AUTH_MARKER)
    if marker:
        message = (
            f"{head}{marker}[{len(encoded.strip())} characters in the audit record; "
            "decode with aws sts decode-authorization-message]"
        )
    if len(message) > limit:
        message = f"{message[:limit]}... [{len(message) - limit} more characters in the audit record]"
    return message


def _summary_alert(summary: RunSummary, bucket: str, listed: int, settings: Settings) -> dict[str, Any]:
    subject, text = _alert_text(summary, bucket, listed, settings)
    failed = summary.failed
    audit = f"s3://{bucket}/{summary.audit_key}"
    # Machine subscribers get counts, which instances failed where and with which code, and the
    # audit record for the rest: the error texts are in the e-mail text and in the audit record.
    counts = {k: v for k, v in summary.to_dict().items() if k != "cause" and not isinstance(v, list | dict)}
    document = {
        "type": _event_type(summary),
        "summary": counts,
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
        },
    )


def _warnings(summary: RunSummary) -> bool:
    """Nothing selected, or instances skipped (a near-miss tag, vanished): say so, not silence."""
    return summary.nothing_selected or bool(summary.skipped)


def _event_type(summary: RunSummary) -> str:
    if summary.failed:
        return "backup_failed"
    if summary.breakers:
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
    failed = summary.failed
    if failed:
        subject = f"Smart Vault: {len(failed)} of {data['instances']} instance backups FAILED"
    elif summary.breakers:
        subject = "Smart Vault: pruning stopped by the circuit breaker"
    elif summary.nothing_selected:
        subject = "Smart Vault WARNING: no instance selected for backup"
    elif summary.skipped:
        subject = f"Smart Vault WARNING: {len(summary.skipped)} instance(s) skipped, {data['backed_up']} backed up"
    else:
        subject = f"Smart Vault: {data['backed_up']} instances backed up"
    lines = [
        f"Smart Vault backup run {run.run_time} (execution {run.execution_name})",
        f"Backed up: {data['backed_up']}  Failed: {data['failed']}  Skipped: {data['skipped']}",
        f"Snapshots created: {data['snapshots_created']}  deleted: {data['snapshots_deleted']}"
        f"  deletions skipped: {data['deletes_skipped']}",
        "",
    ]
    if failed:
        lines.append("Failed instances (their old snapshots were not pruned):")
        for o in failed[:listed]:
            err = o.error or ErrorInfo(type="Unknown", message="")
            code = f" [{err.aws_code}]" if err.aws_code else ""
            lines.append(
                f"- {o.name or '-'} {o.instance_id}: step {o.step}: {err.type}{code}: {shorten_error(err.message)}"
            )
        if len(failed) > listed:
            lines.append(
                f"... and {len(failed) - listed} more failed instance(s) left out of this alert "
                "to keep it under the SNS size limit: all are in the audit record below."
            )
        ids = ", ".join(f'"{o.instance_id}"' for o in failed[:listed])
        lines += [
            "",
            "To retry "
            + ("only these instances" if listed >= len(failed) else "the instances listed")
            + ", start a new execution with the input:",
            f'{{"time": "{run.run_time}", "instance_ids": [{ids}]}}',
        ]
    skipped = data["skipped_instances"]
    if skipped:
        lines.append("")
        lines.append("Skipped instances:")
        lines += [f"- {s['name'] or '-'} {s['instance_id']}: {s['reason']}" for s in skipped[:10]]
        if len(skipped) > 10:
            lines.append(f"... and {len(skipped) - 10} more in the audit record")
    for o in summary.breakers:
        lines.append(f"Circuit breaker on {o.name or o.instance_id}: {o.breaker}")
    lines += _warning_lines(summary, settings)
    lines += [
        "",
        f"Execution: {console_link(run.execution_arn)}",
        f"Audit record: s3://{bucket}/{summary.audit_key}",
    ]
    return subject, "\n".join(lines)


def _warning_lines(summary: RunSummary, settings: Settings) -> list[str]:
    lines = []
    if summary.nothing_selected:
        lines.append(
            f"WARNING: no instance carries the tag {settings.backup_tag_key}={settings.backup_tag_value} "
            "exactly: nothing was backed up."
        )
    if summary.skipped:
        lines += ["", "Skipped instances (not backed up, nothing pruned):"]
        lines += [f"- {o.name or '-'} {o.instance_id}: {o.reason}" for o in summary.skipped[:MAX_LISTED]]
        if len(summary.skipped) > MAX_LISTED:
            lines.append(f"... and {len(summary.skipped) - MAX_LISTED} more in the audit record")
    return lines


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
                "breaker": o.breaker,
                "step": o.step,
                "reason": o.reason,
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
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
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
