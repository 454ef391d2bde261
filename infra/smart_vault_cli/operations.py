"""What the operator verbs do against a deployed stack (run, rerun, status, plan)."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from smart_vault.aws import Ec2
from smart_vault.backup.discovery import find_targets
from smart_vault.constants import OUTPUT_DRILL_STATE_MACHINE_ARN, TAG_INSTANCE_ID, TAG_INSTANCE_NAME
from smart_vault.copies.offsite import all_destination_copies, copy_holds, destination_copies, destination_policy
from smart_vault.errors import InvalidInputError
from smart_vault.models import InstanceTarget, RunContext
from smart_vault.recovery.drill import record_key
from smart_vault.retention.approvals import Approval, approval_key
from smart_vault.retention.orphans import held_for_copies, orphan_snapshots, plan_orphans, skip_reason
from smart_vault.retention.overrides import OverrideError, with_override
from smart_vault.retention.pruning import (
    kept_snapshots,
    locked_snapshots,
    pinned_snapshots,
    retention_policy,
    safe_plan,
    snapshot_record,
    tripped,
    upcoming_snapshots,
)
from smart_vault.retention.rules import SnapshotRecord
from smart_vault.settings import Settings
from smart_vault.validation import format_time, parse_time
from smart_vault_cli.deployment import CliError, Deployment

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


@dataclass
class Progress:
    status: str
    total: int | None
    done: int
    failed: int


def progress(dep: Deployment, arn: str) -> Progress:
    description = dep.describe(arn)
    inventory = dep.inventory(description)
    outcomes = dep.outcomes(description)
    return Progress(
        status=description["status"],
        total=len(inventory) if inventory is not None else None,
        done=sum(1 for o in outcomes.values() if o["status"] != "failed"),
        failed=sum(1 for o in outcomes.values() if o["status"] == "failed"),
    )


def follow(
    dep: Deployment,
    arn: str,
    *,
    on_update: Callable[[Progress], None],
    interval: float = 2.0,
    timeout: float = 24 * 3600,
) -> Progress:
    deadline = time.monotonic() + timeout
    while True:
        state = progress(dep, arn)
        on_update(state)
        if state.status in TERMINAL or time.monotonic() > deadline:
            return state
        time.sleep(interval)


def rerun(dep: Deployment, execution: str, *, redrive: bool) -> str:
    if redrive:
        return redrive_execution(dep, execution)
    description = dep.describe(execution)
    if description["status"] == "RUNNING":
        raise CliError(f"execution {description['name']} is still running")
    return dep.start(json.loads(description.get("input") or "{}"), kind="rerun")


def redrive_execution(dep: Deployment, execution: str) -> str:
    """Redrive EXECUTION as the console's Redrive does: same ARN, same input, only what failed.

    DescribeExecution says whether it can be (``redriveStatus``, with AWS's reason when not:
    succeeded, older than 14 days, too many history events); the RedriveExecution error is
    shown as AWS words it when the status changed in between."""
    description = dep.describe(execution)
    name = description["name"]
    if description["status"] == "RUNNING":
        raise CliError(f"execution {name} is still running")
    if description.get("redriveStatus") == "NOT_REDRIVABLE":
        reason = description.get("redriveStatusReason") or "AWS says it is not redrivable"
        raise CliError(f"cannot redrive {name}: {reason}. Start a new execution instead: smart-vault rerun {name}")
    try:
        dep.client("stepfunctions").redrive_execution(executionArn=description["executionArn"])
    except ClientError as error:
        raise CliError(f"cannot redrive {name}: {error.response['Error'].get('Message') or error}") from None
    return str(description["executionArn"])


SINCE = re.compile(r"^(\d+)([mhd])$")


def parse_since(raw: str, now: datetime | None = None) -> datetime:
    """``--since``: an ISO 8601 time with its zone, or an age (``30m``, ``24h``, ``7d``)."""
    age = SINCE.match(raw.strip())
    if age:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[age.group(2)]
        return (now or datetime.now(UTC)) - timedelta(**{unit: int(age.group(1))})
    try:
        return parse_time(raw, "--since")
    except InvalidInputError:
        raise CliError(
            f"--since must be an ISO 8601 time with its zone or an age like 24h or 7d, got {raw!r}"
        ) from None


def approve_command(run_id: str | None, breaker: dict[str, Any]) -> str:
    return f"smart-vault approve {run_id} --volume {breaker['volume_id']} --in-region {breaker['region']}"


def run_breakers(dep: Deployment, audit: dict[str, Any]) -> list[dict[str, Any]]:
    """The volumes a run's breaker stopped, each with its Region and the command releasing it
    (rows written before breakers named their Region are the source's)."""
    source = audit.get("region") or dep.session.region_name
    return [
        {
            **b,
            "region": b.get("region") or source,
            "approve": approve_command(audit.get("run_id"), {**b, "region": b.get("region") or source}),
        }
        for b in audit.get("breakers") or ()
    ]


def orphans_summary(audit: dict[str, Any]) -> dict[str, Any] | None:
    """The orphan step of a run: pruned, kept, or what a dry run would delete; None before it ran."""
    orphans = audit.get("orphans")
    if not orphans:
        return None
    volumes = orphans.get("volumes") or ()
    return {
        "status": orphans.get("status"),
        "reason": orphans.get("reason"),
        "volumes": len(volumes),
        "deleted": sum(len(v.get("deleted") or ()) for v in volumes),
        "kept": sum(len(v.get("kept") or ()) for v in volumes),
        "would_delete": sum(len(v.get("would_delete") or ()) for v in volumes),
    }


def status_rows(
    dep: Deployment, limit: int, *, status: str | None = None, since: datetime | None = None
) -> list[dict[str, Any]]:
    rows = []
    for execution in dep.recent(limit, status=status, since=since):
        description = dep.describe(execution["executionArn"])
        audit = dep.audit(description) or {}
        summary = audit.get("summary") or {}
        dry_run = bool(audit.get("dry_run")) if audit else None
        rows.append(
            {
                "name": execution["name"],
                "workflow": "backup",
                "start": execution["startDate"],
                "status": execution["status"],
                "redrives": description.get("redriveCount") or 0,
                "backed_up": summary.get("backed_up"),
                "failed": summary.get("failed"),
                "created": summary.get("snapshots_created"),
                "deleted": summary.get("snapshots_deleted"),
                # Snapshots retention would have deleted but their lock kept, and the first expiry.
                "locked": sum(len(i.get("kept_locked") or ()) for i in audit.get("instances") or ()),
                "next_unlock": min(
                    (p["locked_until"] for i in audit.get("instances") or () for p in i.get("kept_locked") or ()),
                    default=None,
                ),
                "copies": summary.get("copies_completed"),
                "copies_deleted": summary.get("copies_deleted"),
                # Breakers are per volume and Region (rows before that named none: the source's).
                "breakers": [f"{b['volume_id']} in {b['region']}" for b in run_breakers(dep, audit)],
                # What the operator must act on: each stopped volume's approve command.
                "approve": [b["approve"] for b in run_breakers(dep, audit)],
                "dry_run": dry_run,
                # A dry run deletes nothing: what it would have deleted (instances' and orphans').
                "would_delete": (
                    sum(len(i.get("would_delete") or ()) for i in audit.get("instances") or ())
                    + ((orphans_summary(audit) or {}).get("would_delete") or 0)
                    if dry_run
                    else None
                ),
                "orphans": orphans_summary(audit),
                "copy_problems": copy_problems(audit),
                "drill": None,
            }
        )
    return rows


def instance_label(record: dict[str, Any]) -> str:
    """ "web-1 (i-0abc...)" for a record with a name, else the instance id."""
    return f"{record['name']} ({record['instance_id']})" if record.get("name") else str(record["instance_id"])


def copy_problems(audit: dict[str, Any]) -> list[str]:
    """Off-site copies an operator must look at: an instance whose Copy step failed (its local
    snapshots are kept, none pruned), and copies a run left not completed, per Region and state."""
    lines = []
    not_done: Counter[tuple[str, str]] = Counter()
    for instance in audit.get("instances") or ():
        label = instance_label(instance)
        if instance.get("status") == "failed" and instance.get("step") == "Copy":
            error = instance.get("error") or {}
            lines.append(f"copy failed for {label}: {error.get('type')}: {error.get('message')}")
        for copy in instance.get("copies") or ():
            if copy.get("state") != "completed":
                not_done[(str(copy.get("region")), str(copy.get("state")))] += 1
    lines += [f"copies not completed in {region}: {n} {state}" for (region, state), n in sorted(not_done.items())]
    return lines


# The keys of a `status` row (docs/operations.md, "JSON output").
STATUS_KEYS = (
    "name",
    "workflow",
    "start",
    "status",
    "redrives",
    "backed_up",
    "failed",
    "created",
    "deleted",
    "locked",
    "next_unlock",
    "copies",
    "copies_deleted",
    "breakers",
    "approve",
    "dry_run",
    "would_delete",
    "orphans",
    "copy_problems",
    "drill",
)


def kept_rows(name: str, kept: Any) -> list[dict[str, Any]]:
    """One row per kept snapshot: which rule kept it (GFS tiers, keep_min...) and its tier."""
    return [
        {
            "instance": name,
            "volume_id": k["volume_id"],
            "snapshot_id": k["snapshot_id"],
            "start_time": k["start_time"],
            "kept_by": k["reason"],
            "storage_tier": k["storage_tier"],
            "archive": bool(k.get("archive")),
        }
        for k in kept
    ]


def copies_text(outcome: dict[str, Any]) -> str:
    """Per destination: completed copies of this run / all, and copies pruned there."""
    regions: dict[str, list[int]] = {}
    for c in outcome.get("copies") or ():
        done = regions.setdefault(c["region"], [0, 0, 0])
        done[0] += c["state"] == "completed"
        done[1] += 1
    for r in outcome.get("copy_pruning") or ():
        regions.setdefault(r["region"], [0, 0, 0])[2] += len(r.get("deleted") or ())
    return ", ".join(f"{region} {d}/{n} (pruned {p})" for region, (d, n, p) in sorted(regions.items()))


def execution_detail(
    dep: Deployment, execution: str
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The execution, a row per instance, and a row per snapshot its pruning kept."""
    description = dep.describe(execution)
    outcomes = dep.outcomes(description)
    kept: list[dict[str, Any]] = []
    rows = []
    for outcome in sorted(outcomes.values(), key=lambda o: (o["status"] != "failed", o.get("name") or "")):
        error = outcome.get("error") or {}
        rows.append(
            {
                "name": outcome.get("name") or "",
                "instance_id": outcome["instance_id"],
                "status": outcome["status"],
                "snapshots": len(outcome.get("snapshots") or ()),
                "deleted": len(outcome.get("deleted") or ()),
                "locked_until": [
                    f"kept {p['snapshot_id']}: locked until {p['locked_until']}"
                    for p in outcome.get("kept_locked") or ()
                ],
                "copies": copies_text(outcome),
                "detail": (
                    f"{outcome.get('step')}: {error.get('type')}: {error.get('message')}"
                    if error
                    else outcome.get("breaker") or outcome.get("retention_error") or outcome.get("reason") or ""
                ),
            }
        )
        kept += kept_rows(outcome.get("name") or outcome["instance_id"], outcome.get("kept") or ())
    return description, rows, kept


def _discover_configuration(dep: Deployment) -> dict[str, Any]:
    """Discover's function configuration, as the stack deployed it (its ARN from the state machine)."""
    definition = json.loads(
        dep.client("stepfunctions").describe_state_machine(stateMachineArn=dep.state_machine_arn)["definition"]
    )
    discover_arn = definition["States"]["Discover"]["Resource"]
    return dict(dep.client("lambda").get_function_configuration(FunctionName=discover_arn))


def deployed_settings(dep: Deployment) -> Settings:
    """The settings the deployed functions run with (their environment)."""
    return Settings.from_env(_discover_configuration(dep).get("Environment", {}).get("Variables", {}))


def settings_in_force(dep: Deployment) -> dict[str, Any]:
    """`settings`: every setting as the functions read it (defaults filled in), and which
    function's environment it came from (the stack gives every function the same)."""
    config = _discover_configuration(dep)
    variables = config.get("Environment", {}).get("Variables", {})
    return {
        "source": config["FunctionArn"],
        "settings": asdict(Settings.from_env(variables)),
        "environment": dict(sorted(variables.items())),
    }


def wait_for(dep: Deployment, arn: str, *, interval: float = 2.0, timeout: float = 24 * 3600) -> dict[str, Any]:
    """DescribeExecution until the execution ends (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        description = dep.describe(arn)
        if description["status"] in TERMINAL or time.monotonic() > deadline:
            return description
        time.sleep(interval)


@dataclass
class Plan:
    instances: list[dict[str, Any]]
    orphans: list[dict[str, Any]]
    orphans_note: str | None
    kept: list[dict[str, Any]] = field(default_factory=list)  # kept_rows() of every instance
    copies: list[dict[str, Any]] = field(default_factory=list)


def _fixed(ec2: Ec2) -> Callable[[str], Ec2]:
    return lambda _region: ec2


def plan_copies(
    target: InstanceTarget, *, settings: Settings, dep: Deployment, run_id: str, moment: datetime, store: Any
) -> tuple[list[dict[str, Any]], dict[str, list[SnapshotRecord]]]:
    """Per destination: what a run now would copy there and prune there (its own retention;
    this run's copies assumed completed, as the real Prune only runs after they are)."""
    rows: list[dict[str, Any]] = []
    listed: dict[str, list[SnapshotRecord]] = {}
    for dest in settings.copy_regions:
        ec2 = Ec2(session=dep.session, region=dest.region)
        copies = destination_copies(replace(settings, copy_regions=(dest,)), target.instance_id, _fixed(ec2))
        records = [c for c in copies[dest.region] if c.volume_id in target.included_volume_ids]
        listed[dest.region] = records
        upcoming = upcoming_snapshots(target, run_id, moment, settings.deployment_id, records)
        result = safe_plan(
            records + upcoming,
            policy=destination_policy(dest.retention_days, dest.keep_min, settings),
            now=moment,
            settings=settings,
            run_id=run_id,
            ec2=ec2,
            store=store,
        )
        rows.append(
            {
                "name": target.name,
                "instance_id": target.instance_id,
                "region": dest.region,
                "copies": len(records),
                "would_copy": [v.device for v in target.volumes],
                "would_delete": [s.snapshot_id for s in result.to_delete],
                "breakers": [asdict(b) | {"region": dest.region} for b in tripped(result)],
            }
        )
    return rows, listed


def plan(dep: Deployment, *, now: datetime | None = None) -> Plan:
    """What a run now would back up and prune: discovery and retention code, read-only calls
    (DescribeInstances/Volumes/Snapshots/Images, S3 GetObject of approvals)."""
    settings = deployed_settings(dep)
    moment = now or datetime.now(UTC)
    run_id = RunContext.run_id_for(moment)
    ec2 = Ec2(session=dep.session)
    source = ec2.region_name()
    store = dep.store()
    targets = find_targets(settings=settings, ec2=ec2)
    rows: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    copy_rows: list[dict[str, Any]] = []
    for target in targets:
        listed = [snapshot_record(s) for s in ec2.managed_snapshots(settings.deployment_id, target.instance_id)]
        existing = [s for s in listed if s.volume_id in target.included_volume_ids]
        # Assume this run's backup succeeds: its snapshots count toward keep_min, as in Prune.
        upcoming = upcoming_snapshots(target, run_id, moment, settings.deployment_id, existing)
        try:
            policy = with_override(retention_policy(settings), target.retention_tags)
        except OverrideError as error:
            rows.append(
                {
                    "name": target.name,
                    "instance_id": target.instance_id,
                    "volumes": [f"{v.device} ({v.size_gib} GiB)" for v in target.volumes],
                    "excluded": list(target.excluded_volume_ids),
                    "would_delete": [],
                    "would_archive": [],
                    "breaker": None,
                    "breakers": [],
                    "kept_by_ami": [],
                    "retention_error": str(error),
                }
            )
            continue
        held = None
        if settings.copy_regions:
            rows_of_copies, listed_copies = plan_copies(
                target, settings=settings, dep=dep, run_id=run_id, moment=moment, store=store
            )
            copy_rows += rows_of_copies
            # Prune-after-copy, as in Prune: this run's own copies are not made yet, so only
            # snapshots superseded off-site by completed copies may go.
            held = copy_holds(existing, listed_copies)
        result = safe_plan(
            existing + upcoming,
            policy=policy,
            now=moment,
            settings=settings,
            run_id=run_id,
            ec2=ec2,
            store=store,
            held=held,
        )
        rows.append(
            {
                "name": target.name,
                "instance_id": target.instance_id,
                "volumes": [f"{v.device} ({v.size_gib} GiB)" for v in target.volumes],
                "excluded": list(target.excluded_volume_ids),
                "would_delete": [s.snapshot_id for s in result.to_delete],
                "breaker": result.breaker,
                "breakers": [asdict(b) | {"region": source} for b in tripped(result)],
                "kept_by_ami": [asdict(p) for p in pinned_snapshots(result)],
                "kept_locked": [asdict(p) for p in locked_snapshots(result)],
                "would_archive": [
                    s.snapshot_id for s in result.to_archive if s.volume_id not in result.tripped_volumes
                ],
                "retention_error": None,
            }
        )
        kept += kept_rows(target.name or target.instance_id, [asdict(k) for k in kept_snapshots(result)])
    note = skip_reason(targets, scoped=False)
    orphan_rows: list[dict[str, Any]] = []
    if note is None:
        orphans = orphan_snapshots(ec2.all_managed_snapshots(settings.deployment_id), targets)
        # Held for their off-site copies as in the orphan step (prune-after-copy).
        all_copies = (
            all_destination_copies(settings, lambda r: Ec2(session=dep.session, region=r))
            if settings.copy_regions
            else {}
        )
        records, result, problems = plan_orphans(
            orphans,
            settings=settings,
            run_id=run_id,
            now=moment,
            ec2=ec2,
            store=store,
            hold=(lambda local: copy_holds(local, all_copies)) if all_copies else None,
        )
        breakers = {b.volume_id: b for b in tripped(result)}
        pins = pinned_snapshots(result)
        held_orphans = held_for_copies(result)
        for volume_id in sorted({r.volume_id for r in records}):
            mine = [r for r in records if r.volume_id == volume_id]
            doomed = [s.snapshot_id for s in result.to_delete if s.volume_id == volume_id]
            orphan_rows.append(
                {
                    "instance_id": mine[0].tags.get(TAG_INSTANCE_ID, ""),
                    "name": mine[0].tags.get(TAG_INSTANCE_NAME, ""),
                    "volume_id": volume_id,
                    "region": source,
                    "snapshots": len(mine),
                    "would_delete": doomed,
                    "breaker": breakers[volume_id].reason if volume_id in breakers else None,
                    "breakers": [asdict(breakers[volume_id]) | {"region": source}] if volume_id in breakers else [],
                    "held_for_copies": [asdict(h) for h in held_orphans if h.volume_id == volume_id],
                    "kept_by_ami": [asdict(p) for p in pins if p.volume_id == volume_id],
                    "retention_error": problems.get(volume_id),
                }
            )
    return Plan(instances=rows, orphans=orphan_rows, orphans_note=note, kept=kept, copies=copy_rows)


RUN_ID = re.compile(r"^\d{8}T\d{6}Z$")


def approve(
    dep: Deployment, run_id: str, *, volume: str | None = None, in_region: str | None = None, write: bool = True
) -> list[Approval]:
    """Release the volumes RUN_ID's circuit breaker stopped, for exactly the plan it stopped.

    A breaker is per volume and Region (the source, or a destination of copies, each with its
    own plan): ``volume`` and ``in_region`` narrow the choice, and a volume stopped in several
    Regions needs ``in_region`` (an approval is for one plan someone looked at). Reads that run's audit record (the
    latest execution of the run when it was re-run) and writes approvals/<region>/<volume>.json,
    which the next run's Prune or orphan step honours in that Region only if it would delete
    exactly the same snapshots there."""
    if not RUN_ID.match(run_id):
        raise CliError(f"RUN_ID must look like 20261126T030000Z, got {run_id!r}")
    audit = dep.latest_audit(run_id)
    if audit is None:
        raise CliError(f"no audit record for run {run_id}: has it finished?")
    # Audit records written before breakers named their Region: a row without one is the source's.
    source = audit.get("region") or dep.session.region_name
    tripped = [{**b, "region": b.get("region") or source} for b in audit.get("breakers") or []]
    if not tripped:
        raise CliError(f"run {run_id} stopped no volume: nothing to approve")
    chosen = [
        b
        for b in tripped
        if (volume is None or b["volume_id"] == volume) and (in_region is None or b["region"] == in_region)
    ]
    if not chosen:
        wanted = " ".join(part for part in (volume, in_region and f"in {in_region}") if part)
        listed = ", ".join(f"{b['volume_id']} in {b['region']}" for b in tripped)
        raise CliError(f"run {run_id} did not stop {wanted}; it stopped: {listed}")
    regions = sorted({b["region"] for b in chosen})
    if volume is not None and len(regions) > 1:
        # Each Region has its own plan (different snapshot ids): releasing both takes two choices.
        raise CliError(
            f"run {run_id} stopped {volume} in {len(regions)} Regions ({', '.join(regions)}), each with its "
            "own plan: name one with --in-region REGION"
        )
    who = dep.caller()
    approved_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    approvals = [
        Approval(
            run_id=run_id,
            volume_id=b["volume_id"],
            region=b["region"],
            snapshot_ids=tuple(sorted(b["would_delete"])),
            approved_at=approved_at,
            approved_by=who,
        )
        for b in chosen
    ]
    for approval in approvals if write else ():  # --dry-run: the records, not written
        dep.write_json(approval_key(approval.volume_id, approval.region), approval.to_dict())
    return approvals


def open_breakers(dep: Deployment, *, look_back: int = 20) -> list[dict[str, Any]]:
    """The breakers still open: those of the newest backup execution that wrote an audit record
    and is not a dry run (a stopped volume trips again every run until approved, so the newest
    run holds the current list), each with whether an approval for exactly that plan is written
    (the next run then deletes them) and the command that writes it."""
    for execution in dep.recent(look_back):
        audit = dep.audit(dep.describe(execution["executionArn"]))
        if not audit or audit.get("dry_run"):
            continue
        rows = []
        for b in run_breakers(dep, audit):
            written = dep.read_json(approval_key(b["volume_id"], b["region"])) or {}
            approved = written.get("run_id") == audit.get("run_id") and sorted(
                written.get("snapshot_ids") or ()
            ) == sorted(b.get("would_delete") or ())
            rows.append(
                {
                    "run_id": audit.get("run_id"),
                    "execution": execution["name"],
                    "instance": b.get("instance"),
                    "volume_id": b["volume_id"],
                    "region": b["region"],
                    "orphan": bool(b.get("orphan")),
                    "reason": b.get("reason"),
                    "would_delete": list(b.get("would_delete") or ()),
                    "approved": approved,
                    "approve": b["approve"],
                }
            )
        return rows
    return []


def drill_machine(dep: Deployment) -> str:
    if not dep.drill_state_machine_arn:
        raise CliError(
            f"stack {dep.stack} has no restore drill (no output {OUTPUT_DRILL_STATE_MACHINE_ARN}): update it"
        )
    return dep.drill_state_machine_arn


def start_drill(dep: Deployment, *, now: datetime | None = None) -> str:
    """Start the restore drill's state machine now, with the input its schedule gives it (the time)."""
    return dep.start({"time": format_time(now or datetime.now(UTC))}, kind="drill", machine=drill_machine(dep))


def is_drill(dep: Deployment, description: dict[str, Any]) -> bool:
    return bool(dep.drill_state_machine_arn) and description.get("stateMachineArn") == dep.drill_state_machine_arn


def drill_record(dep: Deployment, description: dict[str, Any]) -> dict[str, Any] | None:
    """What a drill execution's Report step wrote (drills/<drill id>/<execution>.json)."""
    try:
        moment = parse_time(json.loads(description.get("input") or "{}").get("time", ""), "time")
    except (InvalidInputError, ValueError, AttributeError):
        return None
    record = dep.read_json(record_key(RunContext.run_id_for(moment), description["name"]))
    return dict(record) if isinstance(record, dict) else None


def drill_detail(dep: Deployment, description: dict[str, Any]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """`status DRILL_EXECUTION`: the drill's result in short and a row per drilled instance."""
    record = drill_record(dep, description)
    rows = [
        {
            "name": i.get("name") or "",
            "instance_id": i["instance_id"],
            "status": i.get("status"),
            "recovery_point": i.get("recovery_point"),
            "volumes": len(i.get("volumes") or ()),
            "seconds_to_available": i.get("seconds_to_available"),
            "detail": i.get("reason")
            or (f"{i.get('step')}: {(i.get('error') or {}).get('message')}" if i.get("step") else ""),
        }
        for i in (record or {}).get("instances") or ()
    ]
    return _drill_summary(record), rows


def drill_result(dep: Deployment, description: dict[str, Any]) -> dict[str, Any] | None:
    """What a drill execution's Report step wrote, in short."""
    return _drill_summary(drill_record(dep, description))


def _drill_summary(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if not record:
        return None
    instances = record.get("instances") or ()
    return {
        "drill_id": record.get("drill_id"),
        "status": record.get("status"),
        "reason": record.get("reason"),
        "instances": len(instances),
        "passed": sum(1 for i in instances if i.get("status") == "passed"),
        # Every instance not restored, and why (the step and AWS error, or no restorable point).
        "problems": [
            {
                "label": instance_label(i),
                "status": i.get("status"),
                "reason": i.get("reason")
                or (f"{i.get('step')}: {(i.get('error') or {}).get('message')}" if i.get("step") else None),
            }
            for i in instances
            if i.get("status") != "passed"
        ],
        "leftovers": len(record.get("leftovers") or ()),
        # What the drill proved: where, which file systems it found, how many blocks it read.
        "region": record.get("region"),
        "filesystems": sorted(
            {
                str(c.get("filesystem_found"))
                for i in instances
                for c in i.get("checks") or ()
                if c.get("filesystem_found")
            }
        ),
        "blocks_read": sum(int(c.get("blocks_read") or 0) for i in instances for c in i.get("checks") or ()),
    }


def drill_rows(
    dep: Deployment, limit: int, *, status: str | None = None, since: datetime | None = None
) -> list[dict[str, Any]]:
    """The drill executions as `status` rows: the backup columns empty, ``drill`` its result."""
    if not dep.drill_state_machine_arn:
        return []
    rows = []
    for execution in dep.recent(limit, status=status, since=since, machine=dep.drill_state_machine_arn):
        description = dep.describe(execution["executionArn"])
        row: dict[str, Any] = dict.fromkeys(STATUS_KEYS)
        row |= {
            "name": execution["name"],
            "workflow": "drill",
            "start": execution["startDate"],
            "status": execution["status"],
            "redrives": description.get("redriveCount") or 0,
            "breakers": [],
            "approve": [],
            "copy_problems": [],
            "drill": drill_result(dep, description),
        }
        rows.append(row)
    return rows
