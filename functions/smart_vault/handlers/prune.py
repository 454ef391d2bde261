from __future__ import annotations

from dataclasses import replace
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from smart_vault.aws import Ec2, Store
from smart_vault.consistency.outcome import outcome_fields
from smart_vault.copies.offsite import (
    all_destination_copies,
    copy_holds,
    destination_copies,
    prune_copies,
    prune_copy_orphans,
)
from smart_vault.errors import InvalidInputError
from smart_vault.models import (
    InstanceJob,
    InstanceOutcome,
    InstanceTarget,
    RunContext,
    RunRequest,
    orphans_key,
    run_prefix,
)
from smart_vault.observability import correlate, lambda_handler
from smart_vault.preflight.steps import answers_preflight
from smart_vault.retention.orphans import prune_orphans, skip_reason
from smart_vault.retention.pruning import prune_instance, save_outcome
from smart_vault.settings import Settings, get_settings
from smart_vault.validation import read_str, require_mapping


@lambda_handler
@answers_preflight("prune")
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    event = require_mapping(event, "input")
    if event.get("action") is not None:
        return _orphans(event)
    job = InstanceJob.from_dict(event, need_backup=True)
    assert job.backup is not None
    if job.backup.status == "pending":
        raise InvalidInputError("backup.status", "must be completed or skipped before pruning")
    correlate(job.run.execution_name, job.instance.instance_id)
    settings = get_settings()
    store = Store(settings.require_bucket())
    if settings.copy_regions and job.backup.status == "completed":
        outcome = _prune_with_copies(job, settings, store)
    else:
        outcome = prune_instance(job, settings=settings, ec2=Ec2(), store=store)
    outcome = replace(outcome, **outcome_fields(event))
    save_outcome(outcome, job.run, store)
    return outcome.to_dict()


def _prune_with_copies(job: InstanceJob, settings: Settings, store: Store) -> InstanceOutcome:
    """Prune-after-copy locally, then each destination's own retention (copies.py)."""

    def ec2_for(region: str) -> Ec2:
        return Ec2(region=region)

    copies = destination_copies(settings, job.instance.instance_id, ec2_for)
    outcome = prune_instance(
        job, settings=settings, ec2=Ec2(), store=store, hold=lambda local: copy_holds(local, copies)
    )
    pruned = prune_copies(job, settings=settings, copies=copies, ec2_for=ec2_for, store=store)
    return replace(outcome, copies=job.copies.copies if job.copies else (), copy_pruning=pruned)


def _orphans(event: Any) -> dict[str, Any]:
    """After the Map: prune the snapshots of volumes this run no longer backs up."""
    action = read_str(event, "action")
    if action != "orphans":
        raise InvalidInputError("action", f"must be orphans, got {action!r}")
    run = RunContext.from_dict(event.get("run"))
    inventory = require_mapping(event.get("inventory"), "inventory")
    request = RunRequest.from_event(event.get("request"))
    correlate(run.execution_name)
    settings = get_settings()
    store = Store(read_str(inventory, "bucket", path="inventory."))
    targets = [
        InstanceTarget.from_dict(item, f"inventory[{i}].")
        for i, item in enumerate(store.get_json(read_str(inventory, "key", path="inventory.")))
    ]
    scoped = request.instance_ids is not None

    def ec2_for(region: str) -> Ec2:
        return Ec2(region=region)

    # Listed once: orphans are held for their copies (prune-after-copy, as live volumes), and
    # the copies of orphans are pruned in each destination.
    listed = (
        all_destination_copies(settings, ec2_for)
        if settings.copy_regions and not skip_reason(targets, scoped=scoped)
        else {}
    )
    report = prune_orphans(
        run,
        targets,
        scoped=scoped,
        settings=settings,
        ec2=Ec2(),
        store=store,
        hold=(lambda local: copy_holds(local, listed)) if listed else None,
    )
    if settings.copy_regions and report.status != "skipped":
        copies = prune_copy_orphans(run, targets, settings=settings, ec2_for=ec2_for, store=store, listed=listed)
        if copies:
            report = replace(report, volumes=report.volumes + copies)
            store.put_json(orphans_key(run_prefix(run)), report.to_dict())
    # The state output stays small for any fleet: the report itself is in S3.
    return {
        "status": report.status,
        "volumes": len(report.volumes),
        "deleted": sum(len(v.deleted) for v in report.volumes),
        "breakers": sum(1 for v in report.volumes if v.breaker),
    }
