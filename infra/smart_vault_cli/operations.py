"""What the operator verbs do against a deployed stack (run, rerun, status, plan)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from smart_vault.aws import Ec2
from smart_vault.constants import TAG_MANAGED, TAG_RUN_ID
from smart_vault.discovery import find_targets
from smart_vault.models import RunContext
from smart_vault.pruning import snapshot_record
from smart_vault.retention import RetentionPolicy, SnapshotRecord, plan_retention
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
    description = dep.describe(execution)
    if description["status"] == "RUNNING":
        raise CliError(f"execution {description['name']} is still running")
    if redrive:
        try:
            dep.client("stepfunctions").redrive_execution(executionArn=description["executionArn"])
        except Exception as error:  # not redrivable, or not supported where this runs
            raise CliError(f"cannot redrive {description['name']}: {error}") from None
        return str(description["executionArn"])
    return dep.start(json.loads(description.get("input") or "{}"), kind="rerun")


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
                "backed_up": summary.get("backed_up"),
                "failed": summary.get("failed"),
                "created": summary.get("snapshots_created"),
                "deleted": summary.get("snapshots_deleted"),
            }
        )
    return rows


def execution_detail(dep: Deployment, execution: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    description = dep.describe(execution)
    outcomes = dep.outcomes(description)
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
                "detail": (
                    f"{outcome.get('step')}: {error.get('type')}: {error.get('message')}"
                    if error
                    else outcome.get("breaker") or outcome.get("reason") or ""
                ),
            }
        )
    return description, rows


def deployed_settings(dep: Deployment) -> Settings:
    """The settings the deployed functions run with (their environment)."""
    definition = json.loads(
        dep.client("stepfunctions").describe_state_machine(stateMachineArn=dep.state_machine_arn)["definition"]
    )
    discover_arn = definition["States"]["Discover"]["Resource"]
    config = dep.client("lambda").get_function_configuration(FunctionName=discover_arn)
    return Settings.from_env(config.get("Environment", {}).get("Variables", {}))


def plan(dep: Deployment, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """What a run now would back up and prune: discovery and retention code, read-only calls."""
    settings = deployed_settings(dep)
    moment = now or datetime.now(UTC)
    run_id = RunContext.run_id_for(moment)
    ec2 = Ec2(session=dep.session)
    targets = find_targets(settings=settings, ec2=ec2)
    policy = RetentionPolicy(
        retention_days=settings.retention_days,
        keep_min=settings.keep_min,
        max_delete_fraction=settings.max_delete_fraction,
        max_deletes_per_run=settings.max_deletes_per_run,
    )
    rows = []
    for target in targets:
        existing = [snapshot_record(s) for s in ec2.managed_snapshots(settings.deployment_id, target.instance_id)]
        # Assume this run's backup succeeds: its snapshots count toward keep_min, as in Prune.
        upcoming = [
            SnapshotRecord(
                snapshot_id=f"(new {v.device})",
                volume_id=v.volume_id,
                start_time=moment,
                state="completed",
                tags={TAG_MANAGED: settings.deployment_id, TAG_RUN_ID: run_id},
            )
            for v in target.volumes
        ]
        result = plan_retention(
            existing + upcoming, policy=policy, now=moment, deployment_id=settings.deployment_id, current_run_id=run_id
        )
        rows.append(
            {
                "name": target.name,
                "instance_id": target.instance_id,
                "volumes": [f"{v.device} ({v.size_gib} GiB)" for v in target.volumes],
                "excluded": list(target.excluded_volume_ids),
                "would_delete": [s.snapshot_id for s in result.candidates],
                "breaker": result.breaker,
            }
        )
    return rows
