"""EC2's ``DryRun`` parameter in the emulated account.

Amazon EC2 API Reference, every mutating action's ``DryRun`` parameter: "Checks whether you have
the required permissions for the action, without actually making the request, and provides an
error response. If you have the required permissions, the error response is
``DryRunOperation``. Otherwise, it is ``UnauthorizedOperation``." ("Common client error codes":
``DryRunOperation``, "The user has the required permissions, so the request would have
succeeded, but the DryRun parameter was used"; HTTP 412.)

moto honours DryRun in some EC2 responses but not before the emulator's own models (snapshot
locks, archive tiers, copies, restore rules, request buckets) have acted, so the answer is given
here, as a tap check placed right after the IAM check: a denied request has already failed with
``UnauthorizedOperation`` and its encoded message (authorization.py); an allowed one answers
``DryRunOperation`` and never reaches anything that could change the account.
"""

from __future__ import annotations

from smart_vault_sim.aws_tap import ApiCall, aws_error

DRY_RUN_OPERATION = "DryRunOperation"
DRY_RUN_MESSAGE = "Request would have succeeded, but DryRun flag is set."


def is_dry_run(call: ApiCall) -> bool:
    return call.service == "ec2" and bool(call.params.get("DryRun"))


def answer_dry_run(call: ApiCall) -> None:
    """The tap check: an EC2 request sent with DryRun=True that IAM allowed."""
    if is_dry_run(call):
        raise aws_error(DRY_RUN_OPERATION, call.operation, DRY_RUN_MESSAGE, status=412)
