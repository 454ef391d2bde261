"""The readable per-run summary the simulator prints."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click

from smart_vault.errors import shorten_error


def _instance_line(row: dict[str, Any]) -> str:
    mark = {"backed_up": "ok  ", "failed": "FAIL", "skipped": "skip"}[row["status"]]
    detail = f"{len(row['snapshots'])} snapshot(s)"
    if row["pruned"]:
        detail += f", pruned {len(row['pruned'])}"
    if row.get("would_prune"):
        detail += f", would prune {len(row['would_prune'])}"
    if row.get("circuit_breaker"):
        detail += f", circuit breaker: {row['circuit_breaker']}"
    if row["error"]:
        detail = shorten_error(row["error"])  # the report keeps it whole
    return f"    {mark} {row['name']:<16} {row['instance_id']:<21} {detail}"


def _drill_lines(run: dict[str, Any]) -> None:
    drill = run["drill"]
    drilled = [r for r in drill["instances"] if r["status"] != "no_restorable_point"]
    click.echo(
        f"\nDrill {run['at']}: {run['execution']['status']}  drill {drill['status']}, "
        f"{len(drilled)} of {drill['candidates']} instance(s) with a recovery point; "
        f"{run['execution']['state_transitions']} state transitions, {sum(run['api_calls'].values())} AWS API calls"
    )
    if drill.get("reason"):
        click.echo(f"    {drill['reason']}")
    for row in drill["instances"]:
        if row["status"] == "no_restorable_point":
            click.echo(f"    WARN {row['name']:<16} not drilled: {row['not_drilled_reason']}")
            continue
        mark = "ok  " if row["status"] == "passed" else "FAIL"
        detail = (
            f"{len(row['volumes'])} volume(s) available after {row['seconds_to_available']} s"
            if row["seconds_to_available"] is not None
            else f"step {row['step']}: {shorten_error(row['error'] or '')}"
        )
        cleaned = "cleaned up" if row["cleaned_up"] else "NOT cleaned up"
        click.echo(f"    {mark} {row['name']:<16} point {row['recovery_point']}  {detail}, {cleaned}")
    for volume in drill.get("leftovers") or ():
        detail = "swept" if volume["status"] == "swept" else f"still present: {volume['reason']}"
        click.echo(f"    WARN leftover {volume['volume_id']} of {volume['execution']}: {detail}")
    for alert in run["alerts"]:
        click.echo(f"  ALERT: {alert['subject']}")


def _preflight_lines(run: dict[str, Any]) -> None:
    """The preflight: its status, its counts, and every check that did not pass."""
    result = run["preflight"]
    counts = Counter(c["result"] for c in result["checks"])
    unchanged = "account unchanged" if run.get("account_unchanged") else "ACCOUNT CHANGED"
    click.echo(
        f"\nPreflight {run['at']}: {run['execution']['status']}  preflight {result['status']}; "
        + ", ".join(f"{n} {r}" for r, n in sorted(counts.items()))
        + f"; {unchanged}"
    )
    if result.get("cause"):
        click.echo(f"    {result['cause'][:300]}")
    for check in result["checks"]:
        if check["result"] != "passed":
            mark = "    --  " if check["result"] == "not_checked" else "    FAIL"
            click.echo(
                f"{mark} {check['role']:<14} {check['action']:<30} {check['resource'][:50]}: {check['reason'][:160]}"
            )
    for alert in run["alerts"]:
        click.echo(f"  ALERT: {alert['subject']}")


def _copies_line(run: dict[str, Any]) -> str:
    made = Counter((c["region"], c["state"]) for c in run.get("copies") or ())
    parts = [f"{n} {state} in {region}" for (region, state), n in sorted(made.items())]
    pruned = Counter(c["region"] for c in run.get("copies_deleted") or ())
    parts += [f"{n} pruned in {region}" for region, n in sorted(pruned.items())]
    peak = run.get("copies_peak_in_flight") or {}
    if peak:
        parts.append("peak in flight " + ", ".join(f"{r} {n}" for r, n in sorted(peak.items())))
    return "; ".join(parts)


def print_summary(report: dict[str, Any], report_path: Path | None) -> None:
    click.echo(f"Smart Vault simulation: {report['scenario']}")
    labels = {s["snapshot_id"]: s["label"] for s in report["final_snapshots"] if s.get("label")}
    for run in report["runs"]:
        execution = run["execution"]
        if run.get("workflow") == "drill":
            _drill_lines(run)
            continue
        if run.get("workflow") == "preflight":
            _preflight_lines(run)
            continue
        statuses = [r["status"] for r in run["instances"]]
        created = (
            f"snapshots that would be created {run['would_create']}"
            if "would_create" in run  # a dry run
            else f"snapshots created {len(run['created'])}"
        )
        click.echo(
            f"\nRun {run['at']}: {execution['status']}  "
            f"backed up {statuses.count('backed_up')}, failed {statuses.count('failed')}, "
            f"skipped {statuses.count('skipped')}; {created}, "
            f"deleted {len(run['deleted'])}, deletions skipped {len(run['skipped_deletes'])}"
        )
        click.echo(
            f"  {execution['state_transitions']} state transitions, {execution['history_events']} "
            f"history events (longest child {execution['max_child_history_events']}), "
            f"{sum(run['api_calls'].values())} AWS API calls"
        )
        if run.get("copies") or run.get("copies_deleted"):
            click.echo(f"  off-site copies: {_copies_line(run)}")
        if len(report["runs"]) <= 5:
            for row in run["instances"]:
                click.echo(_instance_line(row))
            for skipped in run["skipped_deletes"]:
                click.echo(f"    kept {skipped['label'] or skipped['snapshot_id']}: {skipped['reason']}")
            for row in run["instances"]:
                for pin in row.get("kept_by_ami") or ():
                    name = labels.get(pin["snapshot_id"]) or pin["snapshot_id"]
                    click.echo(f"    kept {name}: used by {pin['image_id']}")
                for held in row.get("kept_locked") or ():
                    name = labels.get(held["snapshot_id"]) or held["snapshot_id"]
                    click.echo(f"    kept {name}: locked until {held['locked_until']}")
            for orphan in run.get("orphans") or ():
                acted = orphan["deleted"] or orphan["would_delete"]
                if acted or orphan["circuit_breaker"]:
                    verb = "pruned" if orphan["deleted"] else "would prune"
                    click.echo(
                        f"    orphan {orphan['name'] or orphan['instance_id']} {orphan['volume_id']}: "
                        f"{verb} {len(acted)}, kept {len(orphan['kept'])}"
                    )
        for breaker in run.get("breakers") or ():
            click.echo(f"  BREAKER {breaker['instance']} {breaker['volume_id']}: {breaker['reason']}")
            click.echo(f"    release: {breaker['release']}")
        for alert in run["alerts"]:
            click.echo(f"  ALERT: {alert['subject']}")
            if len(report["runs"]) <= 5:
                for line in alert["message"].splitlines():
                    click.echo(f"    | {line}")
        if execution.get("error") and execution["status"] != "SUCCEEDED":
            click.echo(f"  execution error: {execution['error']}: {execution.get('cause') or ''}")
    managed = [s for s in report["final_snapshots"] if s["managed"]]
    regions = Counter(s.get("region") for s in report["final_snapshots"])
    where = ", ".join(f"{n} in {r}" for r, n in sorted(regions.items(), key=lambda i: str(i[0])))
    click.echo(
        f"\nAfter {len(report['runs'])} run(s): {len(report['final_snapshots'])} snapshots of the "
        f"scenario's volumes ({len(managed)} managed by Smart Vault; {where})"
    )
    if report_path:
        click.echo(f"Report: {report_path}")
