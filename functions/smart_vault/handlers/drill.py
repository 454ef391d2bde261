"""The restore drill's three functions (statemachine/drill.asl.json).

``handler`` selects, restores, checks and verifies (it may create volumes, never delete them;
it reads the snapshots' blocks with the EBS direct APIs);
``cleanup_handler`` deletes the drill's volumes (and sweeps earlier drills' leftovers);
``report_handler`` tags what passed, writes the record and alerts. Three roles, so each holds only its own permissions.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from smart_vault.aws import Alerts, EbsBlocks, Ec2, Store
from smart_vault.models import RunRequest
from smart_vault.observability import correlate, lambda_handler
from smart_vault.preflight.steps import answers_preflight
from smart_vault.recovery import drill
from smart_vault.settings import get_settings
from smart_vault.validation import read_action, read_str, require_mapping
from smart_vault.verification.point import verify_point

ACTIONS = ("select", "restore", "check", "verify")


@lambda_handler
@answers_preflight("drill")
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    event, action = read_action(event, ACTIONS)
    settings = get_settings()
    if action == "select":
        execution_name = read_str(event, "execution_name")
        correlate(execution_name)
        return drill.select(
            drill_time=RunRequest.from_event(event.get("event")).time,
            execution_name=execution_name,
            settings=settings,
            ec2=Ec2(),
            store=Store(settings.require_bucket()),
            ec2_for=lambda region: Ec2(region=region),
        )
    context_ = drill.DrillContext.from_dict(event.get("drill"))
    target = drill.DrillTarget.from_dict(event.get("target"))
    correlate(context_.execution_name, target.instance_id)
    ec2 = Ec2(region=context_.region)  # the Region whose turn it is (None: the source)
    if action == "restore":
        return drill.restore(context_, target, settings=settings, ec2=ec2).to_dict()
    state = drill.RestoreState.from_dict(event.get("restore"))
    if action == "verify":
        devices = [(v.snapshot_id, v.device) for v in state.volumes]
        return verify_point(devices, ec2=ec2, blocks=EbsBlocks(region=context_.region))
    return drill.check(state, settings=settings, ec2=ec2).to_dict()


@lambda_handler
@answers_preflight("drill_cleanup")
def cleanup_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    event = require_mapping(event, "input")
    context_ = drill.DrillContext.from_dict(event.get("drill"))
    ec2 = Ec2(region=context_.region)
    if event.get("action") == "sweep":  # SweepLeftovers: earlier drills' volumes, before restoring
        correlate(context_.execution_name)
        return drill.sweep(context_, settings=get_settings(), ec2=ec2)
    target = drill.DrillTarget.from_dict(event.get("target"))
    correlate(context_.execution_name, target.instance_id)
    return drill.cleanup(context_, target, settings=get_settings(), ec2=ec2, made=drill.made_volumes(event))


@lambda_handler
@answers_preflight("drill_report")
def report_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    event = require_mapping(event, "input")
    execution_name = read_str(event, "execution_name")
    correlate(execution_name)
    settings = get_settings()
    state = require_mapping(event.get("state"), "state")
    selection = state.get("selection") if isinstance(state.get("selection"), dict) else {}
    region = ((selection or {}).get("drill") or {}).get("region")  # tag verified-at where it restored
    result = drill.report(
        drill_time=RunRequest.from_event(event.get("event")).time,
        execution_name=execution_name,
        state=state,
        settings=settings,
        ec2=Ec2(region=region),
        store=Store(settings.require_bucket()),
        alerts=Alerts(settings.topic_arn) if settings.topic_arn else None,
    )
    return {"status": result.status, "instances": len(result.instances)}
