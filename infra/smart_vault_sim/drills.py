"""Drill runs in the simulator: a run with ``"workflow": "drill"`` starts the restore drill's
state machine (statemachine/drill.asl.json, substituted like the backup one) with the scheduled
event of its ``at``, and reports ``runs[].drill`` from the record the drill wrote to the audit
bucket (contract: docs/scenarios.md, Report)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from smart_vault.constants import DRILL_SUBSTITUTION_FUNCTION_ARNS, SUBSTITUTION_TOPIC
from smart_vault.models import RunContext
from smart_vault.recovery.drill import record_key
from smart_vault.validation import format_time
from smart_vault_infra.paths import drill_definition_path
from smart_vault_sim import fleet
from smart_vault_sim.aws_tap import DRILL_MACHINE, STATE_MACHINE
from smart_vault_sim.history import state_outcomes
from smart_vault_sim.workflow_io import readable, scheduled_event, substitute

if TYPE_CHECKING:
    from datetime import datetime

    from smart_vault_sim.simulator import Simulation

DRILL_SESSION = "StepFunctionsSession"


def definition(values: dict[str, str]) -> str:
    """The drill's ASL with its placeholders filled as CloudFormation fills them."""
    return substitute(drill_definition_path().read_text(), values)


def substitutions(sim: Simulation, topic_arn: str) -> dict[str, str]:
    values = {name: sim.host.arn(key) for name, key in DRILL_SUBSTITUTION_FUNCTION_ARNS.items()}
    values[SUBSTITUTION_TOPIC] = topic_arn
    return values


def identity(template: dict[str, Any] | None, deployment_id: str) -> tuple[str, str]:
    """The drill state machine's name and role name as the stack deploys them."""
    if template is None:
        return "smart-vault-drill", "smart-vault-drill-state-machine"
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::StepFunctions::StateMachine" and str(
            props.get("StateMachineName") or ""
        ).endswith("-drill"):
            role = props["RoleArn"]["Fn::GetAtt"][0]
            return str(props["StateMachineName"]), f"{template.get('StackName')}-{role}"[:64]
    raise ValueError("the synthesized stack has no drill state machine")


def run_drill(sim: Simulation, index: int, at: datetime) -> dict[str, Any]:
    """One drill execution at ``at``; the report row of a drill run."""
    account = sim.account
    sim.clock = at
    sim._terminate_due(at)
    events = sim.hooks.new_run()
    sim.tap.reset_counts()
    denied_before = len(sim.authorizer.denied) if sim.authorizer else 0
    sim.host.metrics.clear()
    topic = sim._topic()
    sent_before = len(topic.sent_notifications)
    regions = (sim.scenario.region, *sim.copying_regions())  # a drill may restore in a destination
    volumes_before = {v for r in regions for v in fleet.ec2_backend(r).volumes}

    event = scheduled_event(at, sim.scenario.region, fleet.ACCOUNT_ID)
    drill_id = RunContext.run_id_for(at)
    name = f"sv-drill-{drill_id}-{index:04d}"
    sim.tap.machine = DRILL_MACHINE
    started = time.monotonic()
    try:
        arn = account.sfn.start_execution(
            stateMachineArn=account.drill_state_machine_arn, name=name, input=json.dumps(event)
        )["executionArn"]
        description = sim._wait_for(arn)
    finally:
        sim.tap.machine = STATE_MACHINE
    history = sim._history(arn)
    execution = sim._execution_figures(description, history, events)
    execution["wall_seconds"] = round(time.monotonic() - started, 3)
    record = sim._read(record_key(drill_id, name)) or {}
    left = sorted({v for r in regions for v in fleet.ec2_backend(r).volumes} - volumes_before)

    return {
        "at": format_time(at),
        "workflow": "drill",
        "execution": execution,
        "drill": drill_section(sim, record, execution["status"]),
        "volumes_left": left,
        **side_run_fields(sim, topic, sent_before=sent_before, denied_before=denied_before),
        # Per-state counts of the drill's machine and its Map children (`smart-vault graph --report`).
        "states": state_outcomes(history, [c.states for c in events.children.values()]),
    }


def side_run_fields(sim: Simulation, topic: Any, *, sent_before: int, denied_before: int) -> dict[str, Any]:
    """What a run that backs up nothing (a drill, a preflight) reports like a backup run: empty
    backup rows, its own alerts, metrics, API calls and IAM denials."""
    return {
        "instances": [],
        "created": [],
        "deleted": [],
        "skipped_deletes": [],
        "orphans": [],
        "breakers": [],
        "alerts": [
            {"subject": n[2] or "", "message": readable(n[1]), "message_bytes": len(n[1].encode())}
            for n in topic.sent_notifications[sent_before:]
        ],
        "metrics": dict(sorted(sim.host.metrics.items())),
        "api_calls": dict(sorted(sim.tap.calls.items())),
        "state_machine_api_calls": dict(sorted(sim.tap.state_machine_calls.items())),
        "iam_enforced": sim.authorizer is not None,
        "iam_denied": sim.authorizer.denied[denied_before:] if sim.authorizer else [],
        "faults_injected": dict(sorted(sim.tap.injected.items())),
    }


def volume_rows(row: dict[str, Any]) -> list[dict[str, Any]]:
    """``runs[].drill.instances[].volumes[]``: each restored volume with what its snapshot's
    verification found (the Verify step's checks come in the order of the restored volumes)."""
    checks = list(row.get("checks") or ())
    initialized = {r.get("volume_id"): r.get("seconds_to_initialized") for r in row.get("initialization") or ()}
    rows = []
    for i, volume_id in enumerate(row.get("volumes") or ()):
        check = checks[i] if i < len(checks) else {}
        rows.append(
            {
                "volume_id": volume_id,
                "snapshot_id": check.get("snapshot_id"),
                "device": check.get("device"),
                "filesystem_found": check.get("filesystem_found"),
                "blocks_read": check.get("blocks_read"),
                "checksum_failures": check.get("checksum_failures"),
                "seconds_to_initialized": initialized.get(volume_id),
            }
        )
    return rows


def drill_section(sim: Simulation, record: dict[str, Any], execution_status: str) -> dict[str, Any]:
    """``runs[].drill``: the drill's status and one row per instance in scope (drilled, or
    ``no_restorable_point`` with ``not_drilled_reason``)."""
    names = {i: n for n, i in sim.account.instance_ids.items()}
    status = record.get("status") or ("failed" if execution_status != "SUCCEEDED" else "passed")
    return {
        "status": status,
        "reason": record.get("reason"),
        # The Region the drill restored in, from its own snapshots there (drill.regions).
        "region": record.get("region"),
        "availability_zone": record.get("availability_zone"),
        "candidates": record.get("candidates", 0),
        "instances": [
            {
                "name": names.get(r["instance_id"]) or r.get("name") or r["instance_id"],
                "instance_id": r["instance_id"],
                "recovery_point": r["recovery_point"],
                "snapshots": list(r.get("snapshot_ids") or ()),
                "volumes": volume_rows(r),
                "seconds_to_available": r.get("seconds_to_available"),
                "seconds_to_initialized": r.get("seconds_to_initialized"),
                "status": r["status"],
                "cleaned_up": r["cleaned_up"],
                "step": r.get("step"),
                "aws_code": (r.get("error") or {}).get("aws_code"),
                "error": (r.get("error") or {}).get("message"),
                "not_drilled_reason": r.get("reason"),
            }
            for r in record.get("instances") or ()
        ],
        "verified_snapshots": list(record.get("verified_snapshots") or ()),
        # Earlier drills' volumes this drill swept or found still present (leftovers).
        "leftovers": [
            {
                "volume_id": v["volume_id"],
                "instance_id": v.get("instance_id"),
                "execution": v.get("execution_name"),
                "state": v.get("state"),
                "status": v["status"],
                "reason": v.get("reason"),
            }
            for v in record.get("leftovers") or ()
        ],
        "sweep_error": record.get("sweep_error"),
    }
