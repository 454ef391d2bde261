"""Each function's preflight step: ``@answers_preflight(role)`` on its handler sends an event
that carries ``preflight`` here, so the check runs in that function, with that function's role."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from smart_vault.aws import Alerts, EbsBlocks, Ec2, Kms, Ssm, Store, redrive_count
from smart_vault.backup.snapshots import start_backup
from smart_vault.constants import SCHEDULE_NAME_ENV, construct_name
from smart_vault.copies.offsite import copy_tags
from smart_vault.errors import InvalidInputError
from smart_vault.preflight.checks import (
    Check,
    PreflightContext,
    check_checks,
    consistency_checks,
    copy_checks,
    drill_checks,
    drill_cleanup_checks,
    drill_report_checks,
    prune_checks,
    read_checks,
    real,
    snapshot_checks,
)
from smart_vault.preflight.report import account_checks, discover_targets, finish
from smart_vault.recovery.drill import DrillContext, DrillTarget, restore
from smart_vault.settings import Settings, get_settings
from smart_vault.validation import parse_time, read_bool, read_str, require_mapping

# The per-instance steps, in the order the preflight Map child runs them.
INSTANCE_STEPS = ("snapshot", "check", "copy", "prune", "consistency")
DRILL_STEPS = ("drill", "drill_cleanup", "drill_report")


def answers_preflight(role: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def inner(event: Any, context: Any) -> Any:
            if isinstance(event, Mapping) and "preflight" in event:
                return STEPS[role](event, get_settings())
            return handler(event, context)

        return inner

    return wrap


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def _dry(region: str | None = None) -> Ec2:
    return Ec2(region=region, dry_run=True)


def _context(event: Mapping[str, Any]) -> PreflightContext:
    return PreflightContext.from_dict(event.get("preflight"), "preflight.")


def _rows(checks: list[Check]) -> list[dict[str, Any]]:
    return [c.to_dict() for c in checks]


def discover_step(event: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    request = require_mapping(event.get("preflight"), "preflight")
    context, checks = discover_targets(
        started=parse_time(read_str(event, "started"), "started"),
        execution_arn=read_str(event, "execution_arn"),
        execution_name=read_str(event, "execution_name"),
        notify=read_bool(request, "notify", default=False),
        settings=settings,
        ec2=Ec2(),
        ec2_for=lambda region: Ec2(region=region),
        kms_for=Kms,
        source_region=_region(),
    )
    # One Map item: the Distributed Map starts one child, which runs the per-instance steps.
    return {"context": context.to_dict(), "items": [{"preflight": context.to_dict()}], "checks": _rows(checks)}


def snapshot_step(event: Mapping[str, Any], settings: Settings) -> list[dict[str, Any]]:
    return _rows(snapshot_checks(_context(event), settings=settings, ec2=_dry(), start=start_backup))


def check_step(event: Mapping[str, Any], settings: Settings) -> list[dict[str, Any]]:
    return _rows(check_checks(_context(event), settings=settings, ec2=_dry()))


def copy_step(event: Mapping[str, Any], settings: Settings) -> list[dict[str, Any]]:
    return _rows(
        copy_checks(_context(event), settings=settings, source_region=_region(), ec2_for=_dry, copy_tags=copy_tags)
    )


def prune_step(event: Mapping[str, Any], settings: Settings) -> list[dict[str, Any]]:
    store = Store(settings.require_bucket())
    return _rows(prune_checks(_context(event), settings=settings, ec2=_dry(), ec2_for=_dry, store=store))


def consistency_step(event: Mapping[str, Any], settings: Settings) -> list[dict[str, Any]]:
    return _rows(consistency_checks(_context(event), settings=settings, managed=Ssm().managed))


def drill_step(event: Mapping[str, Any], settings: Settings) -> list[dict[str, Any]]:
    context = _context(event)
    ec2 = _dry()

    def restore_point(instance_id: str, name: str, run_id: str, snapshot_id: str) -> object:
        zone = settings.drill.availability_zone or ec2.availability_zones(healthy_only=True)[0]
        drill = DrillContext(
            drill_id=context.run.run_id,
            drill_time=context.run.run_time,
            execution_name=context.run.execution_name,
            availability_zone=zone,
        )
        target = DrillTarget(instance_id=instance_id, name=name, run_id=run_id, snapshot_ids=(snapshot_id,))
        return restore(drill, target, settings=settings, ec2=ec2)

    return _rows(drill_checks(context, settings=settings, ec2=ec2, restore=restore_point, blocks=EbsBlocks()))


def drill_cleanup_step(event: Mapping[str, Any], settings: Settings) -> list[dict[str, Any]]:
    return _rows(drill_cleanup_checks(_context(event), ec2=_dry()))


def drill_report_step(event: Mapping[str, Any], settings: Settings) -> list[dict[str, Any]]:
    store = Store(settings.require_bucket())
    return _rows(drill_report_checks(_context(event), ec2=_dry(), store=store, now=datetime.now(UTC)))


def report_step(event: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """PreflightReport (the notify function): every step's checks, the account facts, the record."""
    context = _context(event)
    results = require_mapping(event.get("results"), "results")
    checks = read_checks(results.get("discover"), role="discover", step="PreflightDiscover")
    instances = results.get("instances")
    if isinstance(instances, Mapping):  # the Map's Catch: no child ran
        checks += read_checks(instances, role="state_machine", step="PreflightInstances (Distributed Map)")
    else:
        for child in instances or ():
            for step in INSTANCE_STEPS:
                checks += read_checks(child.get(step), role=step, step=f"Preflight{construct_name(step)}")
        checks.append(
            Check(
                role="state_machine",
                action="states:StartExecution",
                resource="Distributed Map child",
                result="passed",
                reason=f"{len(instances or ())} child execution(s) ran and returned",
            )
        )
    for step in DRILL_STEPS:
        checks += read_checks(results.get(step), role=step, step=f"Preflight{construct_name(step)}")
    if not settings.topic_arn:
        raise InvalidInputError("setting topic_arn", "is required for the preflight report")
    alerts = Alerts(settings.topic_arn)
    checks += account_checks(
        settings=settings,
        ec2=Ec2(),
        alerts=alerts,
        volumes=context.fleet_volumes,
        schedule_name=os.environ.get(SCHEDULE_NAME_ENV),
    )
    # The redrive gate (AwaitRedrive) reads its execution's redriveCount: read this one's.
    arn = context.run.execution_arn
    checks.append(real("notify", "states:DescribeExecution", arn, lambda: redrive_count(arn)))

    def publish(subject: str, text: str) -> None:
        alerts.publish(
            Alerts.request(
                subject=subject, text=text, document={"preflight": True}, attributes={"event_type": "preflight_test"}
            )
        )

    return finish(context, checks, store=Store(settings.require_bucket()), publish=publish)


STEPS: dict[str, Callable[[Mapping[str, Any], Settings], Any]] = {
    "discover": discover_step,
    "snapshot": snapshot_step,
    "check": check_step,
    "copy": copy_step,
    "prune": prune_step,
    "consistency": consistency_step,
    "notify": report_step,
    "drill": drill_step,
    "drill_cleanup": drill_cleanup_step,
    "drill_report": drill_report_step,
}
