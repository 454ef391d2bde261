from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from smart_vault.aws import Ec2, Store
from smart_vault.errors import InvalidInputError
from smart_vault.models import InstanceJob, InstanceTarget, RunContext, RunRequest
from smart_vault.observability import correlate, lambda_handler
from smart_vault.orphans import prune_orphans
from smart_vault.pruning import prune_instance, save_outcome
from smart_vault.settings import get_settings
from smart_vault.validation import read_str, require_mapping


@lambda_handler
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
    outcome = prune_instance(job, settings=settings, ec2=Ec2(), store=store)
    save_outcome(outcome, job.run, store)
    return outcome.to_dict()


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
    report = prune_orphans(
        run, targets, scoped=request.instance_ids is not None, settings=settings, ec2=Ec2(), store=store
    )
    # The state output stays small for any fleet: the report itself is in S3.
    return {
        "status": report.status,
        "volumes": len(report.volumes),
        "deleted": sum(len(v.deleted) for v in report.volumes),
        "breakers": sum(1 for v in report.volumes if v.breaker),
    }
