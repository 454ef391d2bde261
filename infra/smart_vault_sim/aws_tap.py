"""Count, check and fail the AWS calls that handler code makes, as botocore would see them.

Registered on boto3's default session (which every handler client is created from). Faults
raise the exact ``ClientError`` botocore raises for an AWS error response, before the request
is sent, so the handler's own error handling is what gets tested.

Who makes a call is decided per call, not per thread, so calls from a handler's worker threads
(Notify reads records from a thread pool) are counted, checked and faulted like any other:

- a *function* call: made while a handler runs (LambdaHost runs one at a time) by a client of
  the product (``smart_vault.aws`` marks its clients with ``user_agent_extra``) or from the
  handler's own thread;
- a *state machine* call: made by moto's Step Functions interpreter, whose clients are built
  with its own connect timeout (``moto...asl.utils.boto_client.boto_client_for``);
- anything else (the simulator's own set-up and polling) is not the product's and is ignored.

Checks (IAM, request limits) run before scripted faults: AWS authorizes and validates a request
before anything else can happen to it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

from smart_vault_sim.fleet_clock import INVOKE_OVERHEAD, call_latency


def encoded_failure(seed: str) -> str:
    """An opaque blob the size of EC2's encoded authorization message (sts:DecodeAuthorizationMessage
    decodes it on AWS); deterministic, so decisions and alerts stay reproducible."""
    raw = hashlib.shake_256(seed.encode()).digest(1152)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


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
    f"message: {encoded_failure('scripted fault')}",
    "InternalError": "An internal error has occurred",
    "InvalidInstanceID.NotFound": "The instance ID does not exist",
}
_HTTP_STATUS = {"InternalError": 500, "ServiceUnavailable": 503, "Unavailable": 503}
# Marks the clients smart_vault.aws creates (its botocore Config sets user_agent_extra).
PRODUCT_USER_AGENT = "smart-vault"
STATE_MACHINE = "state-machine"  # the caller name of calls made by the Step Functions interpreter
DRILL_MACHINE = "drill-state-machine"  # ... while it runs the restore drill's state machine
OPERATOR = "operator"  # the caller name of the operator CLI's calls (its own boto3 session)
MACHINES = (STATE_MACHINE, DRILL_MACHINE)
# The state machine whose execution this interpreter thread runs (its ARN): sfn_hooks sets it on
# the execution's thread and hands it to every thread the execution starts, so that a drill the
# operator starts is run with the drill machine's role, as on AWS.
running_machine = threading.local()
# Request-context key naming who makes the call (see caller), for handlers later in the request
# (snapshot_lag answers only the product's calls).
CALLER_KEY = "smart_vault_sim.caller"


def aws_error(
    code: str, operation: str, message: str | None = None, *, status: int | None = None, request_id: str = ""
) -> ClientError:
    """The ClientError botocore raises for an AWS error response with this code."""
    status = status or _HTTP_STATUS.get(code, 400)
    return ClientError(
        {
            "Error": {"Code": code, "Message": message or _MESSAGES.get(code, code)},
            "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": request_id or "injected-fault"},
        },
        operation,
    )


@dataclass(kw_only=True)
class Fault:
    operation: str
    code: str
    remaining: int | None = None  # None: always
    targets: tuple[str, ...] = ()  # ids that must appear in the request (any of them)
    # More target ids, looked up when a request is checked: resources made after the fault was
    # set up (an instance's snapshots, the images registered from them).
    more_targets: Callable[[], Iterable[str]] | None = None

    def matches(self, operation: str, params: dict[str, Any]) -> bool:
        if operation != self.operation or self.remaining == 0:
            return False
        if not self.targets and self.more_targets is None:
            return True
        text = json.dumps(params, default=str)
        targets = [*self.targets, *(self.more_targets() if self.more_targets else ())]
        return any(t in text for t in targets)


@dataclass(frozen=True)
class ApiCall:
    """One AWS request as the tap sees it, before it is sent."""

    service: str  # botocore service name: ec2, s3, sns, lambda, stepfunctions
    operation: str  # API operation name: CreateSnapshots, PutObject
    params: dict[str, Any]
    caller: str  # a function key (discover, ...) or STATE_MACHINE
    region: str = ""  # the client's Region: another one for off-site copies


Check = Callable[[ApiCall], None]  # raises the ClientError AWS would return, or returns


class AwsTap:
    """Install once per emulated account; active only while handler code runs."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.state_machine_calls: Counter[str] = Counter()
        self.faults: list[Fault] = []
        self.injected: Counter[str] = Counter()
        self.checks: list[Check] = []
        self.operator_checks: list[Check] = []  # request limits apply to everyone, IAM roles do not
        self._function: str | None = None
        self._handler_thread: int | None = None
        # Which state machine the interpreter is running when its thread does not say
        # (running_machine): its calls are made with that state machine's role.
        self.machine = STATE_MACHINE
        self.drill_machine_arn = ""  # the drill's state machine, once created
        # Virtual time (fleet_clock): the running invocation's modelled seconds so far, and
        # the duration of the last invocation that returned on each thread.
        self.elapsed = 0.0
        self._durations: dict[int, float] = {}
        self.invocations = 0
        self.lambda_seconds = 0.0  # summed modelled durations of the run's invocations
        self.function_seconds: Counter[str] = Counter()

    def install(self) -> AwsTap:
        boto3._get_default_session().events.register("before-parameter-build", self._before)
        return self

    @property
    def active(self) -> bool:
        return self._function is not None

    @contextlib.contextmanager
    def running(self, function: str) -> Iterator[None]:
        """Calls made while this handler runs, from any of its threads, are the function's."""
        self._function, self._handler_thread = function, threading.get_ident()
        self.elapsed = INVOKE_OVERHEAD
        try:
            yield
        finally:
            self._function, self._handler_thread = None, None
            self._durations[threading.get_ident()] = self.elapsed
            self.invocations += 1
            self.lambda_seconds += self.elapsed
            self.function_seconds[function] += self.elapsed  # type: ignore[assignment]
            self.elapsed = 0.0

    def wait(self, seconds: float) -> None:
        """A handler's own sleep (deferral.pause): time passes on the virtual clock, in the
        invocation's modelled duration, so EC2's buckets refill meanwhile."""
        self.elapsed += seconds

    def last_duration(self) -> float:
        """Modelled seconds of the invocation that last returned on this thread (once)."""
        return self._durations.pop(threading.get_ident(), 0.0)

    def activate(self, on: bool = True, function: str = "handler") -> None:
        self._function, self._handler_thread = (function, threading.get_ident()) if on else (None, None)

    def caller(self, context: dict[str, Any] | None) -> str | None:
        """Who makes the call with this botocore request context (see the module docstring)."""
        config = (context or {}).get("client_config")
        if config is not None and config.connect_timeout == TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS:
            arn = getattr(running_machine, "arn", None)
            return DRILL_MACHINE if arn and arn == self.drill_machine_arn else self.machine
        function = self._function
        if function is None:
            return None
        if PRODUCT_USER_AGENT in str(getattr(config, "user_agent_extra", "") or ""):
            return function
        return function if threading.get_ident() == self._handler_thread else None

    def fail(
        self,
        operation: str,
        code: str,
        *,
        count: int | None = None,
        targets: Iterable[str] = (),
        more_targets: Callable[[], Iterable[str]] | None = None,
    ) -> Fault:
        fault = Fault(
            operation=operation, code=code, remaining=count, targets=tuple(targets), more_targets=more_targets
        )
        self.faults.append(fault)
        return fault

    def reset_counts(self) -> None:
        self.calls.clear()
        self.state_machine_calls.clear()
        self.injected.clear()
        self.invocations = 0
        self.lambda_seconds = 0.0
        self.function_seconds.clear()

    def watch(self, session: Any) -> Any:
        """Count and fault the calls of another boto3 session (the operator CLI's credentials)
        as the operator's. The stack's IAM does not apply to them (the checks are skipped):
        the operator's own permissions are documented in docs/restore.md, not synthesized."""

        def before(params: dict[str, Any], model: Any, context: Any = None, **_: Any) -> None:
            self._apply(OPERATOR, params, model, context)

        session.events.register("before-parameter-build", before)
        return session

    def _before(self, params: dict[str, Any], model: Any, context: Any = None, **_: Any) -> None:
        caller = self.caller(context)
        if caller is None:
            return
        self._apply(caller, params, model, context)

    def _apply(self, caller: str, params: dict[str, Any], model: Any, context: Any = None) -> None:
        operation = model.name
        service = model.service_model.service_name
        if context is not None:
            context[CALLER_KEY] = caller
        counter = self.state_machine_calls if caller in MACHINES else self.calls
        counter[f"{service}:{operation}"] += 1
        region = str((context or {}).get("client_region") or "")
        call = ApiCall(service=service, operation=operation, params=params, caller=caller, region=region)
        if caller not in (*MACHINES, OPERATOR):
            self.elapsed += call_latency(service)
        for check in self.checks if caller != OPERATOR else self.operator_checks:
            check(call)
        if caller in MACHINES:
            return
        for fault in self.faults:
            if fault.matches(operation, params):
                if fault.remaining is not None:
                    fault.remaining -= 1
                self.injected[f"{operation}:{fault.code}"] += 1
                raise aws_error(fault.code, operation)
