"""Freeze, check and thaw one instance with SSM Run Command (SendCommand, GetCommandInvocation).

The workflow calls ``freeze`` before CreateSnapshots and ``thaw`` after it on every path (its
success, its Catch, a Lambda timeout): a post script for every pre script that may have been
sent. Both are polled by ``check`` from a Wait state, so no Lambda sleeps while a script runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from smart_vault.consistency.plan import ConsistencyPlan, ConsistencyTagError, plan_for
from smart_vault.consistency.state import ConsistencyState, Status
from smart_vault.errors import SmartVaultError
from smart_vault.models import InstanceJob
from smart_vault.observability import logger
from smart_vault.settings import Settings

# GetCommandInvocation's Status (SSM API Reference): still running, or ended.
RUNNING = ("Pending", "InProgress", "Delayed", "Cancelling")
# Polling: the first check soon (a freeze takes about a second, and the instance is frozen while
# the workflow waits to notice), doubling up to a few seconds.
FIRST_WAIT_SECONDS = 1
MAX_WAIT_SECONDS = 4
UNMANAGED = "InvalidInstanceId"
# SendCommand's InvalidInstanceId (SSM API Reference): the instance is not running, or SSM does
# not manage it (agent not running, no instance profile, no route to SSM's endpoints).
UNMANAGED_FIX = (
    "Fix: install and start the SSM Agent, give the instance an instance profile with the "
    "AmazonSSMManagedInstanceCore policy, and let it reach the ssm, ssmmessages and ec2messages "
    "endpoints (docs/consistency.md); until then tag it smart-vault:consistency=crash."
)
MAX_OUTPUT = 400  # of a script's error output, in the alert


class Ssm(Protocol):
    def send_command(self, *, instance_id: str, document: str, comment: str, timeout_seconds: int) -> str: ...
    def invocation(self, command_id: str, instance_id: str) -> dict[str, Any]: ...


def _wait(checks: int, waited: int, timeout: int) -> int:
    return max(1, min(FIRST_WAIT_SECONDS << min(checks, 8), MAX_WAIT_SECONDS, timeout - waited))


def _failed(plan: ConsistencyPlan, state: ConsistencyState, error: str, cause: str) -> ConsistencyState:
    """A freeze that did not hold: the instance fails, or (fallback) is snapshotted crash-consistent."""
    logger.warning("freeze failed", extra={"error": error, "cause": cause, "fallback": plan.fallback})
    if plan.fallback:
        return replace(state, status="fallback", mode="crash", error=error, cause=cause, wait_seconds=0)
    return replace(state, status="refused", error=error, cause=cause, wait_seconds=0)


def _started(plan: ConsistencyPlan, status: Status) -> ConsistencyState:
    """An application-consistent instance's state as the plan's documents set it out."""
    return ConsistencyState(
        status=status,
        mode="application",
        pre_document=plan.pre_document,
        post_document=plan.post_document,
        fallback=plan.fallback,
    )


def freeze(job: InstanceJob, *, settings: Settings, ssm: Ssm) -> ConsistencyState:
    """Send the pre script (SendCommand of the instance's pre document)."""
    try:
        plan = plan_for(job.instance.consistency_tags, settings)
    except ConsistencyTagError as invalid:
        return ConsistencyState(status="refused", mode="application", error="InvalidConsistencyTag", cause=str(invalid))
    state = _started(plan, "freezing")
    try:
        command = ssm.send_command(
            instance_id=job.instance.instance_id,
            document=plan.pre_document,
            comment=f"Smart Vault freeze {job.run.run_id}",
            timeout_seconds=settings.consistency_timeout_seconds,
        )
    except SmartVaultError as error:
        if error.aws_code != UNMANAGED:
            raise  # throttled: retried; denied: the Freeze step fails (and the instance is thawed)
        return _failed(plan, replace(state, ssm_calls=1), "UnmanagedInstance", f"{error} {UNMANAGED_FIX}")
    return replace(state, pre_command_id=command, ssm_calls=1, wait_seconds=FIRST_WAIT_SECONDS)


def check(job: InstanceJob, state: ConsistencyState, *, settings: Settings, ssm: Ssm) -> ConsistencyState:
    """One GetCommandInvocation of the running pre (freezing) or post (thawing) script."""
    thawing = state.status == "thawing"
    command = state.post_command_id if thawing else state.pre_command_id
    if state.status not in ("freezing", "thawing") or command is None:
        return state
    waited = state.waited_seconds + state.wait_seconds
    try:
        invocation = ssm.invocation(command, job.instance.instance_id)
    except SmartVaultError as unlisted:
        if unlisted.aws_code != "InvocationDoesNotExist":
            raise
        # Just sent: SSM may not list the invocation yet (eventually consistent); still pending.
        invocation = {"Status": "Pending"}
    state = replace(state, checks=state.checks + 1, ssm_calls=state.ssm_calls + 1, waited_seconds=waited)
    status = str(invocation.get("Status"))
    if status == "Success":
        return _thawed(state, invocation) if thawing else _frozen(state, invocation)
    document = state.post_document if thawing else state.pre_document
    if status in RUNNING and waited < settings.consistency_timeout_seconds:
        return replace(state, wait_seconds=_wait(state.checks, waited, settings.consistency_timeout_seconds))
    if status in RUNNING:
        error = "ThawTimedOut" if thawing else "FreezeTimedOut"
        cause = f"{document} still {status} after {waited} s (consistency_timeout_seconds)"
    else:
        error = "ThawFailed" if thawing else "FreezeFailed"
        cause = _ended(document, status, invocation)
    if thawing:
        logger.error("thaw failed", extra={"error": error, "cause": cause})
        return replace(state, status="thaw_failed", error=error, cause=cause, wait_seconds=0)
    plan = ConsistencyPlan(
        pre_document=state.pre_document or "", post_document=state.post_document or "", fallback=state.fallback
    )
    return _failed(plan, state, error, cause)


def _ended(document: str | None, status: str, invocation: Mapping[str, Any]) -> str:
    details = invocation.get("StatusDetails") or status
    output = str(invocation.get("StandardErrorContent") or invocation.get("StandardOutputContent") or "").strip()
    code = invocation.get("ResponseCode")
    return f"{document} ended {status} ({details}, exit code {code}): {output[:MAX_OUTPUT] or 'no output'}"


def _frozen(state: ConsistencyState, invocation: Mapping[str, Any]) -> ConsistencyState:
    return replace(state, status="frozen", freeze_ended=invocation.get("ExecutionEndDateTime"), wait_seconds=0)


def _thawed(state: ConsistencyState, invocation: Mapping[str, Any]) -> ConsistencyState:
    """Frozen from the end of the pre script to the end of the post script, on SSM's clock."""
    start, end = _time(state.freeze_ended), _time(invocation.get("ExecutionEndDateTime"))
    frozen = round((end - start).total_seconds(), 3) if start and end else None
    return replace(state, status="thawed", frozen_seconds=frozen, wait_seconds=0)


def _time(raw: Any) -> datetime | None:
    if isinstance(raw, datetime):
        return raw
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")) if raw else None
    except ValueError:
        return None


def thaw(job: InstanceJob, state: ConsistencyState | None, *, settings: Settings, ssm: Ssm) -> ConsistencyState:
    """Send the post script, unless no pre script was ever sent. ``state`` None: the Freeze step
    itself failed (a Lambda timeout after SendCommand, say), so the pre may have run: thaw."""
    if state is not None and state.pre_command_id is None:
        return replace(state, status="thawed", wait_seconds=0)
    if state is None:
        try:
            plan = plan_for(job.instance.consistency_tags, settings)
        except ConsistencyTagError:
            return ConsistencyState(status="thawed", mode="crash")  # the freeze was refused: never sent
        state = _started(plan, "thawing")
    try:
        command = ssm.send_command(
            instance_id=job.instance.instance_id,
            document=state.post_document or settings.consistency_post_document,
            comment=f"Smart Vault thaw {job.run.run_id}",
            timeout_seconds=settings.consistency_timeout_seconds,
        )
    except SmartVaultError as error:
        if error.aws_code != UNMANAGED:
            raise
        return replace(state, status="thaw_failed", error="ThawFailed", cause=str(error), ssm_calls=state.ssm_calls + 1)
    return replace(
        state,
        status="thawing",
        post_command_id=command,
        ssm_calls=state.ssm_calls + 1,
        waited_seconds=0,
        wait_seconds=FIRST_WAIT_SECONDS,
    )
