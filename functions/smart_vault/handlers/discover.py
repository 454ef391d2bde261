from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from smart_vault.aws import Ec2, Kms, Store
from smart_vault.backup.discovery import discover
from smart_vault.models import RunRequest
from smart_vault.observability import correlate, lambda_handler
from smart_vault.preflight.steps import answers_preflight
from smart_vault.settings import get_settings
from smart_vault.validation import read_str, require_mapping


@lambda_handler
@answers_preflight("discover")
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    event = require_mapping(event, "input")
    execution_name = read_str(event, "execution_name")
    execution_arn = read_str(event, "execution_arn")
    request = RunRequest.from_event(event.get("event"))
    settings = get_settings()
    correlate(execution_name)
    result = discover(
        request,
        execution_arn=execution_arn,
        execution_name=execution_name,
        settings=settings,
        ec2=Ec2(),
        store=Store(settings.require_bucket()),
        source_region=os.environ.get("AWS_REGION"),
        kms_for=Kms,
    )
    return result.to_dict()
