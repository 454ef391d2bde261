from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from smart_vault.aws import Ec2, Store
from smart_vault.errors import InvalidInputError
from smart_vault.models import InstanceJob
from smart_vault.observability import correlate, lambda_handler
from smart_vault.pruning import prune_instance, save_outcome
from smart_vault.settings import get_settings


@lambda_handler
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    job = InstanceJob.from_dict(event, need_backup=True)
    assert job.backup is not None
    if job.backup.status == "pending":
        raise InvalidInputError("backup.status", "must be completed or skipped before pruning")
    correlate(job.run.execution_name, job.instance.instance_id)
    settings = get_settings()
    store = Store(settings.require_bucket())
    outcome = prune_instance(job, settings=settings, ec2=Ec2())
    save_outcome(outcome, job.run, store)
    return outcome.to_dict()
