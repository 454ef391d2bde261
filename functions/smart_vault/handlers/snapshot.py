from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from smart_vault.aws import Ec2
from smart_vault.backup.snapshots import start_backup
from smart_vault.consistency.outcome import freeze_first
from smart_vault.models import BackupState, InstanceJob
from smart_vault.observability import correlate, lambda_handler
from smart_vault.preflight.steps import answers_preflight
from smart_vault.redrive.attempts import resumed_backup
from smart_vault.settings import get_settings


@lambda_handler
@answers_preflight("snapshot")
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    job = InstanceJob.from_dict(event)
    correlate(job.run.execution_name, job.instance.instance_id)
    resumed = resumed_backup(event.get("instance"))  # a redrive attempt of an instance past Snapshot
    if resumed is not None:
        return resumed.to_dict()
    if freeze_first(job, event.get("consistency")):
        return BackupState(status="freeze", reason="application-consistent: freeze first").to_dict()
    # An opted-in instance: its snapshots are tagged with what they are (application while
    # frozen, crash after a fallback); crash-consistent by default, untagged.
    consistency = (event.get("consistency") or {}).get("mode")
    return start_backup(job, settings=get_settings(), ec2=Ec2(), consistency=consistency).to_dict()
