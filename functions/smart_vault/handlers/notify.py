from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from smart_vault.aws import Alerts, Ec2, Store, redrive_count
from smart_vault.consistency.outcome import outcome_fields
from smart_vault.models import ErrorInfo, InstanceJob, RunContext
from smart_vault.observability import correlate, lambda_handler
from smart_vault.preflight.steps import answers_preflight
from smart_vault.redrive.attempts import Hold, await_redrive, save_resume_point
from smart_vault.reporting.run_report import alert_run_failure, record_failure, summarize_run
from smart_vault.settings import get_settings
from smart_vault.validation import read_action, read_int, read_str, require_mapping

ACTIONS = ("record_failure", "summarize", "run_failed", "await_redrive")


@lambda_handler
@answers_preflight("notify")
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    event, action = read_action(event, ACTIONS)
    settings = get_settings()
    alerts = Alerts(settings.topic_arn) if settings.topic_arn else None

    if action == "record_failure":
        job_data = require_mapping(event.get("job"), "job")
        failure = require_mapping(job_data.get("failure"), "job.failure")
        job = InstanceJob.from_dict(job_data)
        correlate(job.run.execution_name, job.instance.instance_id)
        step = read_str(failure, "step", path="job.failure.")
        store = Store(settings.require_bucket())
        outcome = record_failure(
            job,
            step=step,
            error=ErrorInfo.from_catch(failure.get("error")),
            settings=settings,
            store=store,
            ec2=Ec2(),
            consistency=outcome_fields(job_data),
        )
        save_resume_point(store, job.run, job.instance.instance_id, step, job_data)
        return outcome.to_dict()

    if action == "await_redrive":
        execution_arn = read_str(event, "execution_arn")
        correlate(execution_arn.rsplit(":", 1)[-1])
        return await_redrive(Hold.from_dict(event.get("hold")), redrive_count(execution_arn))

    if action == "summarize":
        run = RunContext.from_dict(event.get("run"))
        inventory = require_mapping(event.get("inventory"), "inventory")
        correlate(run.execution_name)
        summary = summarize_run(
            run,
            inventory_key=read_str(inventory, "key", path="inventory."),
            skipped_key=read_str(inventory, "skipped_key", path="inventory.", default=None),
            settings=settings,
            store=Store(read_str(inventory, "bucket", path="inventory.")),
            alerts=alerts,
            ec2=Ec2(),
            orphan_step=require_mapping(event["orphans"], "orphans") if event.get("orphans") is not None else None,
            attempt=read_int(event, "redrive_count", default=0, minimum=0),
            retry_inventory=inventory.get("redrive") is not None,
        )
        return summary.to_dict()

    failure = require_mapping(event.get("failure"), "failure")
    execution_name = read_str(event, "execution_name")
    correlate(execution_name)
    return alert_run_failure(
        execution_arn=read_str(event, "execution_arn"),
        execution_name=execution_name,
        step=read_str(failure, "step", path="failure."),
        error=ErrorInfo.from_catch(failure.get("error")),
        alerts=alerts,
    )
