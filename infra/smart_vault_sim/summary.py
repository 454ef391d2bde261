"""The readable summary `smart-vault simulate` prints: its progress while it runs (stderr), one
block per run with every instance's detail (a block identical to the one before it collapses
into "same as run N"), then what happened over the whole simulation."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from smart_vault.errors import shorten_error

# Per run, plain "ok" instance rows shown before the rest are counted (a fleet of 1,000 would
# print 1,000 lines a run); rows that failed, were skipped or tripped a breaker are always shown.
OK_ROWS = 10
# Other lists of one run (kept snapshots, orphans, failed rows) shown before they are counted.
ROWS = 50


def print_progress(line: str) -> None:
    """The simulator's progress ("synthesizing the stack…", "run 3 of 30 at …"), on stderr so
    that the summary on stdout stays the same with or without it."""
    click.echo(line, err=True)


@dataclass(frozen=True)
class Block:
    """One run's lines: ``Run N (kind) at AT: head`` then ``body``."""

    number: int
    at: str
    kind: str  # "" for a backup run, "drill", "preflight" or "redrive"
    head: str
    body: tuple[str, ...]
    key: tuple[str, ...]  # head and body with the run's own time, run id and name blanked

    def lines(self) -> list[str]:
        kind = f" ({self.kind})" if self.kind else ""
        return ["", f"Run {self.number}{kind} at {self.at}: {self.head}", *self.body]


def print_summary(report: dict[str, Any], report_path: Path | None) -> None:
    click.echo(f"Smart Vault simulation: {report['scenario']}")
    labels = {s["snapshot_id"]: s["label"] for s in report["final_snapshots"] if s.get("label")}
    alerts_shown: dict[str, int] = {}  # an alert body already printed -> the run that printed it
    blocks = [_block(n, run, labels, alerts_shown) for n, run in enumerate(report["runs"], start=1)]
    for line in _collapsed(blocks):
        click.echo(line)
    for line in what_happened(report["runs"], labels):
        click.echo(line)
    click.echo(_final_line(report))
    if report_path:
        click.echo(f"Report: {report_path}")


# -- one block per run --------------------------------------------------------------------


def _block(number: int, run: dict[str, Any], labels: dict[str, str], alerts_shown: dict[str, int]) -> Block:
    workflow = run.get("workflow")
    if workflow == "drill":
        kind, (head, body) = "drill", _drill_lines(run)
    elif workflow == "preflight":
        kind, (head, body) = "preflight", _preflight_lines(run)
    else:
        kind = "redrive" if "redriven_instances" in run else ""
        head, body = _backup_lines(run, labels)
    blank = _blanker(run)
    alerts, messages = _alert_lines(number, run, alerts_shown)
    key = (kind, blank(head), *map(blank, body), *messages)  # a message, not where it was first shown
    return Block(number, run["at"], kind, head, tuple(body + alerts), key)


def _blanker(run: dict[str, Any]) -> Callable[[str], str]:
    """Blanks what differs between two otherwise identical runs: their time, run id, name."""
    at = run["at"]
    own = [at, at.replace("-", "").replace(":", ""), (run["execution"].get("arn") or "").rpartition(":")[2]]
    own = sorted((text for text in own if text), key=len, reverse=True)  # the name holds the run id

    def blank(line: str) -> str:
        for text in own:
            line = line.replace(text, "…")
        return line

    return blank


def _collapsed(blocks: list[Block]) -> Iterator[str]:
    """Every block, except that a run identical to the one before it is only named."""
    i = 0
    while i < len(blocks):
        first = blocks[i]
        yield from first.lines()
        same = i + 1
        while same < len(blocks) and blocks[same].key == first.key:
            same += 1
        if same - i > 1:
            last = blocks[same - 1]
            runs = (
                f"Run {last.number} at {last.at}"
                if same - i == 2
                else f"Runs {blocks[i + 1].number}-{last.number} ({blocks[i + 1].at} to {last.at})"
            )
            yield ""
            yield f"{runs}: same as run {first.number}"
        i = same


def _capped(lines: list[str], what: str, limit: int = ROWS) -> list[str]:
    if len(lines) <= limit:
        return lines
    return [*lines[:limit], f"    … and {len(lines) - limit} more {what} (the report lists every one)"]


def _backup_lines(run: dict[str, Any], labels: dict[str, str]) -> tuple[str, list[str]]:
    execution = run["execution"]
    statuses = [r["status"] for r in run["instances"]]
    created = (
        f"snapshots that would be created {run['would_create']}"
        if "would_create" in run  # a dry run
        else f"snapshots created {len(run['created'])}"
    )
    head = (
        f"{execution['status']}  backed up {statuses.count('backed_up')}, failed {statuses.count('failed')}, "
        f"skipped {statuses.count('skipped')}; {created}, "
        f"deleted {len(run['deleted'])}, deletions skipped {len(run['skipped_deletes'])}"
    )
    body = [
        f"  {execution['state_transitions']} state transitions, {execution['history_events']} "
        f"history events (longest child {execution['max_child_history_events']}), "
        f"{sum(run['api_calls'].values())} AWS API calls"
    ]
    if run.get("copies") or run.get("copies_deleted"):
        body.append(f"  off-site copies: {_copies_line(run)}")
    body += _instance_rows(run["instances"])
    body += _capped(
        [f"    kept {s['label'] or s['snapshot_id']}: {s['reason']}" for s in run["skipped_deletes"]],
        "deletion(s) skipped",
    )
    body += _capped(_kept_lines(run["instances"], labels), "snapshot(s) kept")
    body += _capped(_orphan_lines(run.get("orphans") or ()), "orphaned volume(s)")
    for breaker in run.get("breakers") or ():
        body.append(f"  BREAKER {breaker['instance']} {breaker['volume_id']}: {breaker['reason']}")
        body.append(f"    release: {breaker['release']}")
    if execution.get("error") and execution["status"] != "SUCCEEDED":
        body.append(f"  execution error: {execution['error']}: {cause_text(execution.get('cause'))}")
    return head, body


def _instance_rows(rows: list[dict[str, Any]]) -> list[str]:
    notable: list[str] = []
    plain: list[str] = []
    for row in rows:
        (notable if row["status"] != "backed_up" or row.get("circuit_breaker") else plain).append(_instance_line(row))
    return _capped(notable, "failed or skipped instance(s)") + _capped(plain, "instance(s) backed up", OK_ROWS)


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


def _kept_lines(rows: list[dict[str, Any]], labels: dict[str, str]) -> list[str]:
    lines = []
    for row in rows:
        for pin in row.get("kept_by_ami") or ():
            lines.append(f"    kept {labels.get(pin['snapshot_id']) or pin['snapshot_id']}: used by {pin['image_id']}")
        for held in row.get("kept_locked") or ():
            name = labels.get(held["snapshot_id"]) or held["snapshot_id"]
            lines.append(f"    kept {name}: locked until {held['locked_until']}")
    return lines


def _orphan_lines(orphans: Iterable[dict[str, Any]]) -> list[str]:
    lines = []
    for orphan in orphans:
        acted = orphan["deleted"] or orphan["would_delete"]
        if acted or orphan["circuit_breaker"]:
            verb = "pruned" if orphan["deleted"] else "would prune"
            lines.append(
                f"    orphan {orphan['name'] or orphan['instance_id']} {orphan['volume_id']}: "
                f"{verb} {len(acted)}, kept {len(orphan['kept'])}"
            )
    return lines


def _copies_line(run: dict[str, Any]) -> str:
    made = Counter((c["region"], c["state"]) for c in run.get("copies") or ())
    parts = [f"{n} {state} in {region}" for (region, state), n in sorted(made.items())]
    pruned = Counter(c["region"] for c in run.get("copies_deleted") or ())
    parts += [f"{n} pruned in {region}" for region, n in sorted(pruned.items())]
    peak = run.get("copies_peak_in_flight") or {}
    if peak:
        parts.append("peak in flight " + ", ".join(f"{r} {n}" for r, n in sorted(peak.items())))
    return "; ".join(parts)


def _alert_lines(number: int, run: dict[str, Any], shown: dict[str, int]) -> tuple[list[str], list[str]]:
    """Each alert's subject, and its message unless an earlier run printed the same one; and
    the messages with the run's own time and name blanked (to compare runs by)."""
    blank = _blanker(run)
    lines, messages = [], []
    for alert in run["alerts"]:
        lines.append(f"  ALERT: {alert['subject']}")
        if run.get("workflow"):
            continue  # a drill or preflight block already lists what its alert says
        message = blank(alert["message"])
        messages.append(message)
        earlier = shown.setdefault(message, number)
        if earlier == number:
            lines += [f"    | {line}" for line in alert["message"].splitlines()]
        else:
            lines.append(f"    | (the same message as run {earlier})")
    return lines, messages


def _drill_lines(run: dict[str, Any]) -> tuple[str, list[str]]:
    drill = run["drill"]
    drilled = [r for r in drill["instances"] if r["status"] != "no_restorable_point"]
    head = (
        f"{run['execution']['status']}  drill {drill['status']} in {drill.get('region') or 'the source Region'}, "
        f"{len(drilled)} of {drill['candidates']} instance(s) with a recovery point; "
        f"{run['execution']['state_transitions']} state transitions, {sum(run['api_calls'].values())} AWS API calls"
    )
    body = [f"    {drill['reason']}"] if drill.get("reason") else []
    for row in drill["instances"]:
        if row["status"] == "no_restorable_point":
            body.append(f"    WARN {row['name']:<16} not drilled: {row['not_drilled_reason']}")
            continue
        mark = "ok  " if row["status"] == "passed" else "FAIL"
        found = sorted({str(v.get("filesystem_found")) for v in row["volumes"] if v.get("filesystem_found")})
        detail = (
            f"{len(row['volumes'])} volume(s) available after {row['seconds_to_available']} s"
            + (f", verified {', '.join(found)}" if found else "")
            if row["step"] is None
            else f"step {row['step']}: {shorten_error(row['error'] or '')}"
        )
        cleaned = "cleaned up" if row["cleaned_up"] else "NOT cleaned up"
        body.append(f"    {mark} {row['name']:<16} point {row['recovery_point']}  {detail}, {cleaned}")
    for volume in drill.get("leftovers") or ():
        detail = "swept" if volume["status"] == "swept" else f"still present: {volume['reason']}"
        body.append(f"    WARN leftover {volume['volume_id']} of {volume['execution']}: {detail}")
    return head, body


def _preflight_lines(run: dict[str, Any]) -> tuple[str, list[str]]:
    """The preflight: its status, its counts, and every check that did not pass."""
    result = run["preflight"]
    counts = Counter(c["result"] for c in result["checks"])
    unchanged = "account unchanged" if run.get("account_unchanged") else "ACCOUNT CHANGED"
    head = (
        f"{run['execution']['status']}  preflight {result['status']}; "
        + ", ".join(f"{n} {r}" for r, n in sorted(counts.items()))
        + f"; {unchanged}"
    )
    body = [f"    {result['cause'][:300]}"] if result.get("cause") else []
    for check in result["checks"]:
        if check["result"] != "passed":
            mark = "    --  " if check["result"] == "not_checked" else "    FAIL"
            body.append(
                f"{mark} {check['role']:<14} {check['action']:<30} {check['resource'][:50]}: {check['reason'][:160]}"
            )
    return head, body


def _final_line(report: dict[str, Any]) -> str:
    managed = [s for s in report["final_snapshots"] if s["managed"]]
    regions = Counter(s.get("region") for s in report["final_snapshots"])
    where = ", ".join(f"{n} in {r}" for r, n in sorted(regions.items(), key=lambda i: str(i[0])))
    return (
        f"\nAfter {len(report['runs'])} run(s): {len(report['final_snapshots'])} snapshots of the "
        f"scenario's volumes ({len(managed)} managed by Smart Vault; {where})"
    )


# -- what happened over the whole simulation ------------------------------------------------


def what_happened(runs: list[dict[str, Any]], labels: dict[str, str]) -> list[str]:
    """Failures, retries, scripted faults, breakers, orphans, AMI pins and refused copies over every run, each
    with the runs (numbered from 1) it happened in; "none" says it was looked for."""
    sections = {
        "failures": _failures(runs),
        "retries": _retries(runs),
        "scripted faults": _faults(runs),
        "breakers": _breakers(runs),
        "orphans": _orphans(runs),
        "AMI pins": _ami_pins(runs, labels),
        "copies refused": _copies_refused(runs),
    }
    lines = ["", f"What happened over {len(runs)} run(s):"]
    for title, found in sections.items():
        lines.append(f"  {title}: {'none' if not found else len(found)}")
        lines += _capped([f"    {line}" for line in found], title)
    return lines


def runs_text(numbers: Iterable[int]) -> str:
    """[1, 2, 3, 5] -> "runs 1-3, 5"; [4] -> "run 4"."""
    ordered = sorted(set(numbers))
    spans: list[list[int]] = []
    for n in ordered:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    text = ", ".join(f"{a}-{b}" if b > a else str(a) for a, b in spans)
    return f"{'runs' if len(ordered) > 1 else 'run'} {text}"


def _grouped(found: Iterable[tuple[str, int]]) -> list[str]:
    """(what, run number) pairs -> "what (runs 1-3)", in order of first appearance."""
    runs: dict[str, list[int]] = defaultdict(list)
    for what, number in found:
        runs[what].append(number)
    return [f"{what} ({runs_text(numbers)})" for what, numbers in runs.items()]


def cause_text(cause: str | None) -> str:
    """An execution's cause as a person reads it: a Lambda task's failure cause is Lambda's JSON
    error document (errorType, errorMessage, stackTrace); its message is what matters."""
    try:
        document = json.loads(cause or "")
    except ValueError:
        return cause or ""
    return str(document.get("errorMessage") or cause) if isinstance(document, dict) else cause or ""


def _failures(runs: list[dict[str, Any]]) -> list[str]:
    found = []
    for number, run in enumerate(runs, start=1):
        execution = run["execution"]
        if execution["status"] != "SUCCEEDED":
            cause = shorten_error(cause_text(execution.get("cause")))
            found.append((f"execution {execution['status']}: {execution.get('error') or ''} {cause}".rstrip(), number))
        for row in run["instances"]:
            if row["status"] == "failed":
                found.append((f"{row['name']}: {shorten_error(row['error'] or '')}", number))
        for row in (run.get("drill") or {}).get("instances") or ():
            if row["status"] == "failed":
                found.append((f"{row['name']} (drill) step {row['step']}: {shorten_error(row['error'] or '')}", number))
        for check in (run.get("preflight") or {}).get("checks") or ():
            if check["result"] in ("denied", "failed"):
                found.append((f"preflight {check['role']} {check['action']}: {check['result']}", number))
    return _grouped(found)


def _retries(runs: list[dict[str, Any]]) -> list[str]:
    """Step Functions retries per state, and the calls EC2's modelled buckets throttled."""
    found = []
    for number, run in enumerate(runs, start=1):
        for state, counts in sorted((run.get("states") or {}).items()):
            if counts.get("retries"):
                found.append((f"state {state} retried {counts['retries']}x", number))
        for code, n in sorted((run.get("ec2_throttling") or {}).items()):
            if n:
                found.append((f"EC2 throttled {n} call(s) with {code}", number))
    return _grouped(found)


def _faults(runs: list[dict[str, Any]]) -> list[str]:
    """The scenario's scripted faults, as answered (retried or not: `retries` says which were)."""
    found = []
    for number, run in enumerate(runs, start=1):
        for fault, n in sorted((run.get("faults_injected") or {}).items()):
            found.append((f"{fault} answered {n}x", number))
    return _grouped(found)


def _breakers(runs: list[dict[str, Any]]) -> list[str]:
    found: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    last: dict[tuple[str, str, str], dict[str, Any]] = {}
    for number, run in enumerate(runs, start=1):
        for breaker in run.get("breakers") or ():
            key = (breaker["instance"], breaker["volume_id"], breaker.get("region") or "")
            found[key].append(number)
            last[key] = breaker
    return [
        f"{instance} {volume}{f' in {region}' if region else ''} ({runs_text(numbers)}): "
        f"{last[(instance, volume, region)]['reason']}; release: {last[(instance, volume, region)]['release']}"
        for (instance, volume, region), numbers in found.items()
    ]


def _orphans(runs: list[dict[str, Any]]) -> list[str]:
    pruned: Counter[tuple[str, str]] = Counter()
    seen: dict[tuple[str, str], list[int]] = defaultdict(list)
    kept: dict[tuple[str, str], int] = {}
    for number, run in enumerate(runs, start=1):
        for orphan in run.get("orphans") or ():
            key = (orphan["name"] or orphan["instance_id"], orphan["volume_id"])
            seen[key].append(number)
            pruned[key] += len(orphan["deleted"])
            kept[key] = len(orphan["kept"])
    return [
        f"{name} {volume}: pruned {pruned[(name, volume)]}, {kept[(name, volume)]} kept at the end "
        f"(orphaned in {runs_text(numbers)})"
        for (name, volume), numbers in seen.items()
    ]


def _ami_pins(runs: list[dict[str, Any]], labels: dict[str, str]) -> list[str]:
    found = []
    for number, run in enumerate(runs, start=1):
        rows = [*run["instances"], *(run.get("orphans") or ())]
        for pin in (pin for row in rows for pin in row.get("kept_by_ami") or ()):
            name = labels.get(pin["snapshot_id"]) or pin["snapshot_id"]
            found.append((f"{name} kept: used by {pin['image_id']}", number))
    return _grouped(found)


def _copies_refused(runs: list[dict[str, Any]]) -> list[str]:
    """CopySnapshot calls refused (the 20-in-flight limit, or a scripted fault), and what the
    run that retried them copied in the end."""
    found = []
    for number, run in enumerate(runs, start=1):
        scripted = sum(n for f, n in (run.get("faults_injected") or {}).items() if f.startswith("CopySnapshot:"))
        refused = (run.get("copies_refused_limit") or 0) + scripted
        if refused:
            states = Counter(c["state"] for c in run.get("copies") or ())
            made = ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "none"
            found.append(
                f"run {number}: {refused} CopySnapshot call(s) refused "
                f"({run.get('copies_refused_limit') or 0} by the in-flight limit, {scripted} scripted) "
                f"and retried; copies made that run: {made}"
            )
    return found
