"""What the operator verbs do against a deployed stack (run, rerun, status, plan)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from smart_vault.aws import Ec2
from smart_vault.backup.discovery import find_targets
from smart_vault.constants import TAG_INSTANCE_ID, TAG_INSTANCE_NAME
from smart_vault.copies.offsite import all_destination_copies, copy_holds, destination_copies, destination_policy
from smart_vault.models import InstanceTarget, RunContext
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


def status_rows(dep: Deployment, limit: int) -> list[dict[str, Any]]:
    rows = []
    for execution in dep.recent(limit):
        description = dep.describe(execution["executionArn"])
        audit = dep.audit(description) or {}
        summary = audit.get("summary") or {}
        rows.append(
            {
                "name": execution["name"],
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
                "breakers": [
                    f"{b['volume_id']} in {b.get('region') or audit.get('region') or dep.session.region_name}"
                    for b in audit.get("breakers") or ()
                ],
            }
        )
    return rows


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


def deployed_settings(dep: Deployment) -> Settings:
    """The settings the deployed functions run with (their environment)."""
    definition = json.loads(
        dep.client("stepfunctions").describe_state_machine(stateMachineArn=dep.state_machine_arn)["definition"]
    )
    discover_arn = definition["States"]["Discover"]["Resource"]
    config = dep.client("lambda").get_function_configuration(FunctionName=discover_arn)
    return Settings.from_env(config.get("Environment", {}).get("Variables", {}))


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


def approve(dep: Deployment, run_id: str, *, volume: str | None = None, in_region: str | None = None) -> list[Approval]:
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
    for approval in approvals:
        dep.write_json(approval_key(approval.volume_id, approval.region), approval.to_dict())
    return approvals
