"""`smart-vault preflight`: start the deployed workflow with {"preflight": true}, wait for it, and
turn its report into the operator's table (denials decoded when the operator may)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from smart_vault.preflight.checks import Check
from smart_vault_cli.conventions import Exit
from smart_vault_cli.deployment import CliError, Deployment
from smart_vault_cli.operations import TERMINAL

# EC2's UnauthorizedOperation carries the reason encoded (EC2 API Reference, "Common client error
# codes"); sts:DecodeAuthorizationMessage turns it into the policy evaluation that denied it.
_ENCODED = re.compile(r"Encoded authorization failure message: (\S+)")


def start_and_wait(dep: Deployment, *, notify: bool, timeout: float = 900, interval: float = 1.0) -> dict[str, Any]:
    """The preflight execution's report (its output); CliError when the execution itself failed."""
    arn = dep.start({"preflight": True, "notify": notify}, kind="preflight")
    deadline = time.monotonic() + timeout
    while True:
        description = dep.describe(arn)
        if description["status"] in TERMINAL:
            break
        if time.monotonic() > deadline:
            raise CliError(f"the preflight execution {arn} did not end within {int(timeout)} s")
        time.sleep(interval)
    if description["status"] != "SUCCEEDED":
        raise CliError(
            f"the preflight execution {arn} ended {description['status']}: "
            f"{description.get('error') or ''} {str(description.get('cause') or '')[:500]}".strip()
        )
    report: dict[str, Any] = json.loads(description.get("output") or "{}")
    report["execution_arn"] = arn
    return report


def rows(dep: Deployment, report: dict[str, Any]) -> list[Check]:
    """The report's checks, each denial's reason decoded (or the command to decode it)."""
    checks = [Check.from_dict(c, f"checks[{i}].") for i, c in enumerate(report.get("checks") or ())]
    return [replace(c, reason=decoded(dep, c.reason)) if c.result == "denied" else c for c in checks]


def decoded(dep: Deployment, reason: str) -> str:
    """The denial's encoded message decoded with the operator's credentials, or the command to
    decode it (sts:DecodeAuthorizationMessage is often not granted to operators)."""
    found = _ENCODED.search(reason)
    if not found:
        return reason
    message = found.group(1)
    try:
        answer = dep.client("sts").decode_authorization_message(EncodedMessage=message)
    except (ClientError, BotoCoreError, NotImplementedError):
        short = reason[: found.start()].strip()
        return f"{short} (decode: aws sts decode-authorization-message --encoded-message {message})"
    return f"{reason[: found.start()].strip()} decoded: {answer.get('DecodedMessage', '')}"


def exit_code(report: dict[str, Any]) -> int:
    """0 only when nothing was denied or failed."""
    return Exit.OK if report.get("status") == "passed" else Exit.FAILED
