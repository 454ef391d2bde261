"""Count and fail the AWS calls that handler code makes, as botocore would see them.

Registered on boto3's default session (which every handler client is created from). Faults
raise the exact ``ClientError`` botocore raises for an AWS error response, before the request
is sent, so the handler's own error handling is what gets tested.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError


def _encoded_authorization_message(length: int = 1_600) -> str:
    """Stand-in for the opaque blob EC2 appends to UnauthorizedOperation (decoded on AWS with
    sts:DecodeAuthorizationMessage): deterministic, URL-safe, as long as a real one."""
    blob, seed = "", b"smart-vault"
    while len(blob) < length:
        seed = hashlib.sha256(seed).digest()
        blob += base64.urlsafe_b64encode(seed).decode().rstrip("=")
    return blob[:length]


# AWS's own messages for the codes we inject, so alerts read as they would on AWS.
_MESSAGES = {
    "RequestLimitExceeded": "Request limit exceeded.",
    "Throttling": "Rate exceeded",
    "SnapshotCreationPerVolumeRateExceeded": "The maximum per volume CreateSnapshot request rate "
    "has been exceeded. Use an increasing or variable sleep interval between requests.",
    "ConcurrentSnapshotLimitExceeded": "Maximum number of in-progress snapshots reached.",
    "InvalidSnapshot.InUse": "The snapshot is currently in use by an AMI.",
    # EC2 puts the denied action, resource and policy only inside the encoded message.
    "UnauthorizedOperation": "You are not authorized to perform this operation. Encoded authorization failure "
    f"message: {_encoded_authorization_message()}",
    "InternalError": "An internal error has occurred",
    "InvalidInstanceID.NotFound": "The instance ID does not exist",
}
_HTTP_STATUS = {"InternalError": 500, "ServiceUnavailable": 503, "Unavailable": 503}


def aws_error(code: str, operation: str, message: str | None = None) -> ClientError:
    """The ClientError botocore raises for an AWS error response with this code."""
    status = _HTTP_STATUS.get(code, 400)
    return ClientError(
        {
            "Error": {"Code": code, "Message": message or _MESSAGES.get(code, code)},
            "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "injected-fault"},
        },
        operation,
    )


@dataclass(kw_only=True)
class Fault:
    operation: str
    code: str
    remaining: int | None = None  # None: always
    targets: tuple[str, ...] = ()  # ids that must appear in the request (any of them)

    def matches(self, operation: str, params: dict[str, Any]) -> bool:
        if operation != self.operation or self.remaining == 0:
            return False
        if not self.targets:
            return True
        text = json.dumps(params, default=str)
        return any(t in text for t in self.targets)


class AwsTap:
    """Install once per emulated account; active only while handler code runs."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.faults: list[Fault] = []
        self.injected: Counter[str] = Counter()
        self._local = threading.local()

    def install(self) -> AwsTap:
        boto3._get_default_session().events.register("before-parameter-build", self._before)
        return self

    @property
    def active(self) -> bool:
        return bool(getattr(self._local, "active", False))

    def activate(self, on: bool = True) -> None:
        self._local.active = on

    def fail(self, operation: str, code: str, *, count: int | None = None, targets: Iterable[str] = ()) -> Fault:
        fault = Fault(operation=operation, code=code, remaining=count, targets=tuple(targets))
        self.faults.append(fault)
        return fault

    def reset_counts(self) -> None:
        self.calls.clear()
        self.injected.clear()

    def _before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if not self.active:
            return
        operation = model.name
        self.calls[f"{model.service_model.service_name}:{operation}"] += 1
        for fault in self.faults:
            if fault.matches(operation, params):
                if fault.remaining is not None:
                    fault.remaining -= 1
                self.injected[f"{operation}:{fault.code}"] += 1
                raise aws_error(fault.code, operation)
