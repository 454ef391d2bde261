"""The Freeze, CheckFreeze, Thaw and CheckThaw steps (smart_vault.consistency)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from smart_vault.aws import Ssm
from smart_vault.consistency.commands import check, freeze, thaw
from smart_vault.consistency.state import ConsistencyState
from smart_vault.errors import InvalidInputError
from smart_vault.models import InstanceJob
from smart_vault.observability import correlate, lambda_handler
from smart_vault.preflight.steps import answers_preflight
from smart_vault.settings import get_settings
from smart_vault.validation import read_action, require_mapping

ACTIONS = ("freeze", "check", "thaw")


@lambda_handler
@answers_preflight("consistency")
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    event, action = read_action(event, ACTIONS)
    data = require_mapping(event.get("job"), "job")
    job = InstanceJob.from_dict(data)
    correlate(job.run.execution_name, job.instance.instance_id)
    settings, ssm = get_settings(), Ssm()
    recorded = data.get("consistency")
    state = ConsistencyState.from_dict(recorded) if recorded is not None else None
    if action == "freeze":
        return freeze(job, settings=settings, ssm=ssm).to_dict()
    if action == "thaw":
        return thaw(job, state, settings=settings, ssm=ssm).to_dict()
    if state is None:
        raise InvalidInputError("job.consistency", "is required by the check (what Freeze or Thaw returned)")
    return check(job, state, settings=settings, ssm=ssm).to_dict()
