"""Hooks into moto's Step Functions interpreter: a virtual clock for Wait states and retry
intervals, and per-child history accounting for Distributed Map children.

moto runs a Distributed Map's children inside the parent, all writing to one event manager per
Map Run; AWS gives each child its own execution history. We give each child (Map item) its own
event manager, as AWS gives it its own history, and count each one's events.

AWS errors the interpreter meets surface as Step Functions surfaces them:
- a Lambda task whose Invoke AWS refuses fails with ``Lambda.<SDK exception>`` (for an access
  denial ``Lambda.AWSLambdaException``) and a cause in the SDK's "(Service: AWSLambda; Status
  Code: 403; Error Code: AccessDeniedException; ...)" shape, where moto says ``Exception``;
- a refused ItemReader read fails the Map with ``States.ItemReaderFailed``, a refused ResultWriter
  write with ``States.ResultWriterFailed`` (Step Functions Developer Guide, "Error names");
- a Map Run that may not start its child executions (states:StartExecution denied) fails with
  ``States.Runtime`` before any child starts (see docs/decisions.md: modelled, not observed).
One virtual clock runs through the whole run (fleet_clock.FleetClock): Wait states, retry
intervals and Lambda durations advance the time of the execution (or Map worker) that spends
them, and Map workers run one at a time in virtual-time order, so the emulated account sees
the fleet's requests in the order AWS would.

These are moto internals: moto is pinned exactly in pyproject.toml.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.api import HistoryEventType, LambdaFunctionFailedEventDetails, MapRunFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.program import program as program_module
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader import item_reader_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
    distributed_iteration_component,
    inline_iteration_component,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
    distributed_item_processor_worker as child_worker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.max_concurrency import (
    DEFAULT_MAX_CONCURRENCY_VALUE,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer import result_writer_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branch_worker
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils, state_task_lambda
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
from moto.stepfunctions.parser.asl.eval.event import event_manager
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import boto_client
from moto.stepfunctions.parser.backend import execution_worker

from smart_vault_sim.aws_tap import running_machine
from smart_vault_sim.fleet_clock import FleetClock
from smart_vault_sim.moto_speed import replaced

PAYLOAD_LIMIT = 256 * 1024
# Lambda error codes with their own exception class in the SDK Step Functions uses; any other
# code surfaces as the generic Lambda.AWSLambdaException.
_LAMBDA_EXCEPTIONS = {
    "ResourceNotFoundException",
    "TooManyRequestsException",
    "ServiceException",
    "InvalidRequestContentException",
    "RequestTooLargeException",
}


def sdk_cause(error: ClientError, service: str) -> str:
    """An AWS SDK exception's text as Step Functions shows it in a cause."""
    info = error.response.get("Error", {})
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
    return (
        f"{info.get('Message', '')} (Service: {service}; Status Code: {status}; Error Code: {info.get('Code')}; "
        f"Request ID: {error.response.get('ResponseMetadata', {}).get('RequestId', '')}; Proxy: null)"
    )


def lambda_error_name(error: ClientError) -> str:
    code = str(error.response.get("Error", {}).get("Code", ""))
    return f"Lambda.{code}" if code in _LAMBDA_EXCEPTIONS else "Lambda.AWSLambdaException"


def _map_failure(env: Any, error: StatesErrorNameType, cause: str) -> FailureEventException:
    name = StatesErrorName(typ=error)
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=name,
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(  # type: ignore[typeddict-item]
                mapRunFailedEventDetails=MapRunFailedEventDetails(error=name.error_name, cause=cause)
            ),
        )
    )


@dataclass
class ChildHistory:
    events: int = 0
    types: Counter[str] = field(default_factory=Counter)
    states: list[tuple[str, str]] = field(default_factory=list)  # (event type, state name)


@dataclass
class RunEvents:
    """Everything the interpreter recorded for one execution, parent and children."""

    children: dict[tuple[int, int], ChildHistory] = field(default_factory=lambda: defaultdict(ChildHistory))
    virtual_wait_seconds: float = 0.0
    retry_wait_seconds: float = 0.0
    largest_payload: int = 0
    largest_payload_state: str = ""


class _VirtualTime:
    """Stands in for the ``time`` module inside the retrier: sleeping is bookkeeping."""

    def __init__(self, hooks: InterpreterHooks) -> None:
        self._hooks = hooks

    def sleep(self, seconds: float) -> None:
        self._hooks.current.retry_wait_seconds += seconds
        self._hooks.clock.advance(seconds)

    def __getattr__(self, name: str) -> Any:
        import time

        return getattr(time, name)


class _ThreadingWith:
    """The ``threading`` module, with its Thread replaced (for moto modules that import it)."""

    def __init__(self, thread: type[threading.Thread]) -> None:
        self.Thread = thread

    def __getattr__(self, name: str) -> Any:
        return getattr(threading, name)


class _StubberOn:
    """What moto's boto_client_for reads to decide whether to aim at a local server."""

    enabled = True


def _machine_thread(base: type[threading.Thread]) -> type[threading.Thread]:
    """A Thread that runs for the state machine whose thread created it (aws_tap.running_machine)."""

    class MachineThread(base):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._machine_arn = getattr(running_machine, "arn", None)

        def run(self) -> None:
            running_machine.arn = self._machine_arn
            super().run()

    return MachineThread


class InterpreterHooks:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = RunEvents()
        self._child_managers: dict[int, tuple[int, int]] = {}
        # Asked before a Distributed Map starts its children: the error AWS would refuse with.
        self.authorize_children: Callable[[], ClientError | None] | None = None
        self.clock = FleetClock()
        # Seconds the Lambda invocation that just returned on this thread took (modelled).
        self.lambda_seconds: Callable[[], float] = lambda: 0.0
        self._lambda_clients: dict[tuple[str, str], Any] = {}
        self._programs: dict[str, Any] = {}  # definition -> parsed program (copied per execution)
        # Executions ended so far, under a condition the simulator waits on (instead of polling).
        self.executions_ended = 0
        self.execution_ended = threading.Condition()

    def wait_for_execution_end(self, seen: int, timeout: float) -> None:
        """Until an execution ends after ``seen`` of them had, or ``timeout`` seconds."""
        with self.execution_ended:
            self.execution_ended.wait_for(lambda: self.executions_ended != seen, timeout=timeout)

    def new_run(self) -> RunEvents:
        self.current = RunEvents()
        self.clock.reset()
        self._lambda_clients.clear()  # a run sees the event handlers registered before it
        return self.current

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        hooks = self
        original_add = event_manager.EventManager.add_event
        original_job = child_worker.DistributedItemProcessorWorker._eval_job
        original_lambda_error = state_task_lambda.StateTaskLambda._from_error
        original_reader = item_reader_decl.ItemReader._eval_body
        original_writer = result_writer_decl.ResultWriter._eval_body
        original_map_run = distributed_iteration_component.DistributedIterationComponent._map_run
        original_worker_eval = child_worker.DistributedItemProcessorWorker.eval
        original_client_for = lambda_eval_utils.boto_client_for  # type: ignore[attr-defined]
        original_execution_logic = execution_worker.ExecutionWorker._execution_logic

        def parsed_program(self: Any) -> Any:
            # moto parses the definition again for every execution (ANTLR, ~60 ms); the parsed
            # program is plain data, so each execution gets a deep copy of one parse instead.
            definition = self._evaluation_details.state_machine_details.definition
            program = hooks._programs.get(definition)
            if program is None:
                program = hooks._programs[definition] = AmazonStateLanguageParser.parse(definition)[0]
            return copy.deepcopy(program)

        def execution_logic(self: Any) -> None:
            running_machine.arn = self._evaluation_details.state_machine_details.arn
            try:
                original_execution_logic(self)  # type: ignore[no-untyped-call]
            finally:
                with hooks.execution_ended:
                    hooks.executions_ended += 1
                    hooks.execution_ended.notify_all()

        def lambda_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
            # moto builds a new boto3 client for every Lambda task (a third of a fleet run's
            # CPU); one client per Region serves them all, as one SDK client does in AWS's
            # service. Per run, so that it carries the event handlers installed for the run.
            key = (region, service)
            client = hooks._lambda_clients.get(key)
            if client is None:
                # moto points the client at a local moto server when its in-process stubber is
                # off at that moment (another mock context of the same process ended); the Lambda
                # host answers Invoke before any request is sent, so the client must never leave
                # the process: no endpoint of its own.
                with mock.patch.object(boto_client, "botocore_stubber", _StubberOn()):
                    client = hooks._lambda_clients[key] = original_client_for(region, service, state_credentials)
            return client

        def add_event(self: Any, context: Any, event_type: Any, event_details: Any = None, **kw: Any) -> Any:
            key = hooks._child_managers.get(id(self))
            hooks._record(str(getattr(event_type, "value", event_type)), event_details, key)
            return original_add(self, context, event_type, event_details, **kw)

        def eval_job(self: Any, env: Any, job: Any) -> Any:
            child_events = event_manager.EventManager()
            with hooks._lock:
                hooks._child_managers[id(child_events)] = (id(self._job_pool), job.job_index)
            env.event_manager = child_events
            try:
                return original_job(self, env, job)
            finally:
                hooks.clock.job_done()
                with hooks._lock:
                    hooks._child_managers.pop(id(child_events), None)

        def worker_eval(self: Any) -> None:
            hooks.clock.enter_worker()
            try:
                original_worker_eval(self)
            finally:
                hooks.clock.leave_worker()

        def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
            with hooks._lock:
                hooks.current.virtual_wait_seconds += wait_seconds
            hooks.clock.advance(wait_seconds)

        def lambda_returned(**_: Any) -> None:
            hooks.clock.advance(hooks.lambda_seconds())

        def lambda_error(self: Any, env: Any, ex: Exception) -> Any:
            if not isinstance(ex, ClientError):
                return original_lambda_error(self, env, ex)
            error, cause = lambda_error_name(ex), sdk_cause(ex, "AWSLambda")
            return FailureEvent(
                env=env,
                error_name=CustomErrorName(error),
                event_type=HistoryEventType.LambdaFunctionFailed,
                event_details=EventDetails(  # type: ignore[typeddict-item]
                    lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(error=error, cause=cause)
                ),
            )

        def read_items(self: Any, env: Any) -> None:
            try:
                original_reader(self, env)
            except ClientError as ex:
                raise _map_failure(env, StatesErrorNameType.StatesItemReaderFailed, sdk_cause(ex, "Amazon S3")) from ex

        def write_results(self: Any, env: Any) -> None:
            try:
                original_writer(self, env)
            except ClientError as ex:
                raise _map_failure(
                    env, StatesErrorNameType.StatesResultWriterFailed, sdk_cause(ex, "Amazon S3")
                ) from ex

        def map_run(self: Any, env: Any, eval_input: Any) -> None:
            refused = hooks.authorize_children() if hooks.authorize_children else None
            if refused is not None:
                raise _map_failure(env, StatesErrorNameType.StatesRuntime, sdk_cause(refused, "AWSStepFunctions"))
            # moto starts MaxConcurrency worker threads even for fewer items; AWS never runs
            # more children than items, and each idle worker would be a thread for nothing.
            record = eval_input.map_run_record
            items = len(env.stack[-1])
            declared = record.max_concurrency
            workers = items if declared == DEFAULT_MAX_CONCURRENCY_VALUE else min(declared, items)
            record.max_concurrency = max(workers, 1)
            hooks.clock.open_map(record.max_concurrency)
            try:
                original_map_run(self, env, eval_input)
            finally:
                record.max_concurrency = declared
                hooks.clock.close_map()

        patches: list[tuple[Any, str, Any]] = [
            (event_manager.EventManager, "add_event", add_event),
            (child_worker.DistributedItemProcessorWorker, "_eval_job", eval_job),
            (wait_function.WaitFunction, "_wait_interval", wait_interval),
            (retrier_decl, "time", _VirtualTime(self)),
            (state_task_lambda.StateTaskLambda, "_from_error", lambda_error),
            (item_reader_decl.ItemReader, "_eval_body", read_items),
            (result_writer_decl.ResultWriter, "_eval_body", write_results),
            (distributed_iteration_component.DistributedIterationComponent, "_map_run", map_run),
            (child_worker.DistributedItemProcessorWorker, "eval", worker_eval),
            (program_module, "threading", _ThreadingWith(_machine_thread(self.clock.thread_class()))),
            (execute_state, "Thread", _machine_thread(self.clock.thread_class())),
            # An inline Map's iterations and a Parallel's branches run on threads of their own.
            (inline_iteration_component, "threading", _ThreadingWith(_machine_thread(threading.Thread))),
            (branch_worker, "threading", _ThreadingWith(_machine_thread(threading.Thread))),
            (lambda_eval_utils, "boto_client_for", lambda_client_for),
            (execution_worker.ExecutionWorker, "_get_evaluation_entrypoint", parsed_program),
            (execution_worker.ExecutionWorker, "_execution_logic", execution_logic),
        ]
        events = boto3._get_default_session().events
        with replaced(patches):
            events.register("after-call.lambda.Invoke", lambda_returned)
            try:
                yield
            finally:
                self._lambda_clients.clear()
                events.unregister("after-call.lambda.Invoke", lambda_returned)

    def _record(self, event_type: str, details: Any, key: tuple[int, int] | None) -> None:
        state_name = ""
        if isinstance(details, dict):
            for detail in details.values():
                if not isinstance(detail, dict):
                    continue
                state_name = detail.get("name", state_name) or state_name
                for field_name in ("input", "output"):
                    payload = detail.get(field_name)
                    if isinstance(payload, str) and len(payload) > self.current.largest_payload:
                        self.current.largest_payload = len(payload.encode())
                        self.current.largest_payload_state = state_name or event_type
        with self._lock:
            if key is None:  # the parent's history comes from GetExecutionHistory
                return
            child = self.current.children[key]
            child.events += 1
            child.types[event_type] += 1
            if state_name or event_type.startswith("LambdaFunction"):
                child.states.append((event_type, state_name))
