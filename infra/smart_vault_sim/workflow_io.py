"""What the simulator sends into and reads out of the workflow, as AWS shapes it: the ASL's
placeholders filled, the schedule's event, an SNS message's readable text. Below the simulator,
its drill and preflight runs alike (no import cycle)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from smart_vault.validation import format_time


def substitute(definition: str, values: Mapping[str, str]) -> str:
    """Fill ``${Name}`` placeholders as CloudFormation's DefinitionSubstitutions does."""
    for name, value in values.items():
        definition = definition.replace("${" + name + "}", value)
    return definition


def scheduled_event(at: datetime, region: str, account: str) -> dict[str, Any]:
    """The event an EventBridge schedule delivers; a re-delivery of a slot is identical."""
    when = format_time(at)
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"smart-vault/{when}")),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": when,
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/smart-vault-schedule"],
        "detail": {},
    }


def readable(message: str) -> str:
    """An SNS message's e-mail text (the ``default`` of a MessageStructure json message)."""
    try:
        return str(json.loads(message).get("default", message))
    except (ValueError, AttributeError):
        return message
