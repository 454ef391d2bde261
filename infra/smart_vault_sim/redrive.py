"""RedriveExecution for moto's Step Functions interpreter, for any ASL, as AWS documents it.

moto 5.2.5 runs ASL but has no RedriveExecution (NotImplementedError), no redrive fields and no
``$$.Execution.RedriveCount``. While ``Redrives.installed()`` is active (inside
``InterpreterHooks.installed()``):

- ``sfn.redrive_execution(executionArn=...)`` restarts an unsuccessful Standard execution under
  its own ARN from its unsuccessful top-level state, with that state's original input, its
  history kept and an ``ExecutionRedriven`` event appended;
- DescribeExecution and ListExecutions carry ``redriveCount``/``redriveDate`` (DescribeExecution
  also ``redriveStatus``/``redriveStatusReason``), DescribeMapRun ``redriveCount``/``redriveDate``;
- every execution's Context object has ``Execution.RedriveCount`` (and ``RedriveTime`` once
  redriven), a Distributed Map child its own;
- a redriven Distributed Map redrives its Map Run (same ARN, ``MapRunRedriven``): children that
  succeeded keep their output and do not run, the others restart from their failed state;
- a redriven Parallel or inline Map reruns only its failed or aborted branches or iterations,
  each from its own unsuccessful state with that state's input (not from the branch's StartAt);
- a Distributed Map fails with ``States.ExceedToleratedFailureThreshold`` when its failed
  children exceed the tolerated failures (moto counts them but never fails the Map).

Use (the simulator): ``redrives = Redrives(now=lambda: <virtual datetime>)`` and enter
``redrives.installed()`` right after ``hooks.installed()``. Stop times are taken on ``now`` when
an execution ends (``record_stop`` sets one); call ``hooks.new_run()`` before a redrive so
RunEvents holds that attempt's children only, and bill the parent with ``this_attempt(history)``.

Pages cited below:
- DG-redrive: "Restarting state machine executions with redrive in Step Functions",
  https://docs.aws.amazon.com/step-functions/latest/dg/redrive-executions.html
- DG-maprun: "Redriving Map Runs in Step Functions executions",
  https://docs.aws.amazon.com/step-functions/latest/dg/redrive-map-run.html
- API-Redrive: "RedriveExecution",
  https://docs.aws.amazon.com/step-functions/latest/apireference/API_RedriveExecution.html
- API-Describe: "DescribeExecution",
  https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html
- DG-context: "Accessing execution data from the Context object in Step Functions",
  https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html

These are moto internals: moto is pinned exactly in pyproject.toml.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.core import responses as moto_responses
from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult
from moto.core.utils import iso_8601_datetime_with_milliseconds
from moto.stepfunctions.parser.api import (
    ExecutionRedrivenEventDetails,
    ExecutionStatus,
    HistoryEventType,
    MapRunRedrivenEventDetails,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.common.flow.start_at import StartAt
from moto.stepfunctions.parser.asl.component.state.exec.state_map import state_map
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
    distributed_iteration_component,
    inline_iteration_component,
    iteration_worker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
    distributed_item_processor_worker as child_worker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.map_run_record import (
    MapRunRecord,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.tolerated_failure import (
    ToleratedFailureCountDecl,
    ToleratedFailurePercentageDecl,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branch_worker, branches_decl
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext
from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded, ProgramStopped, ProgramTimedOut
from moto.stepfunctions.parser.backend import execution as execution_module
from moto.stepfunctions.parser.backend import execution_worker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

from smart_vault_sim.moto_speed import json_deepcopy, replaced
from smart_vault_sim.sfn_hooks import _map_failure

# API-Redrive, eligibility: "Your workflow execution has not exceeded the redrivable period of
# 14 days. ... This period starts from the day a state machine completes its execution."
REDRIVABLE_PERIOD = timedelta(days=14)
# API-Redrive: "The workflow execution has not exceeded the maximum open time of one year."
MAX_OPEN_TIME = timedelta(days=365)
# API-Redrive: "The execution event history count is less than 24,999."
HISTORY_LIMIT = 24_999
# API-Redrive, clientToken: "The API will return idempotent responses for the last 10 client
# tokens used to successfully redrive the execution. These client tokens are valid for up to 15
# minutes after they are first used."
CLIENT_TOKENS = 10
CLIENT_TOKEN_LIFETIME = timedelta(minutes=15)

# redriveStatusReason strings, as the botocore model (DescribeExecutionOutput) lists them.
RUNNING = "Execution is RUNNING and cannot be redriven."
SUCCEEDED = "Execution is SUCCEEDED and cannot be redriven."
HISTORY_EXCEEDED = "Execution history event limit exceeded."
MAX_TIME_EXCEEDED = "Execution has exceeded the max execution time."
PERIOD_EXCEEDED = "Execution redrivable period exceeded."
# API-Redrive: "This API action is not supported by EXPRESS state machines." (no reason string
# is listed for it, so the refusal says what the API reference says).
EXPRESS = "This API action is not supported by EXPRESS state machines."

_UNSUCCESSFUL = {"FAILED", "TIMED_OUT", "ABORTED"}
# DG-redrive: "If the state failed because of a States.DataLimitExceeded error, the Parallel state
# is rerun, including the branches that were successful" (the same for Inline and Distributed
# Map); DG-maprun: a new Map Run is started when the "Map Run failed because of the JSON data
# interpolation error, States.Runtime".
_RERUN_WHOLE = "States.DataLimitExceeded"
_NEW_MAP_RUN = {_RERUN_WHOLE, "States.Runtime"}


class ExecutionNotRedrivable(AWSError):
    """API-Redrive, Errors: "The execution Amazon Resource Name (ARN) that you specified for
    executionArn cannot be redriven." (HTTP 400)."""

    TYPE = "ExecutionNotRedrivable"
    STATUS = 400


def _wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Restart:
    """Where a redrive resumes: a state and the input it was entered with."""

    state: str
    input: Any


def restart_point(history: Sequence[Mapping[str, Any]], states: set[str]) -> Restart | None:
    """The last of ``states`` with a ``<Type>StateEntered`` event and no matching
    ``<Type>StateExited``, with its entered input. DG-maprun: "A parent workflow redrives
    unsuccessful states if there's no <stateType>Exited event corresponding to the
    <stateType>Entered event for a state when the parent workflow completed its execution."
    ``states`` are the names of one level (the top level, or a child's ItemProcessor), so the
    inner states of a Parallel or inline Map, logged in the same history, are not restart points."""
    open_states: dict[str, tuple[int, Any]] = {}
    for position, event in enumerate(history):
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            details = event.get("stateEnteredEventDetails", {})
            if details.get("name") in states:
                open_states[details["name"]] = (position, json.loads(details.get("input") or "null"))
        elif kind.endswith("StateExited"):
            open_states.pop(event.get("stateExitedEventDetails", {}).get("name"), None)
    if not open_states:
        return None
    name, (_, state_input) = max(open_states.items(), key=lambda item: item[1][0])
    return Restart(name, state_input)


def this_attempt(history: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The events of the latest attempt (from its ExecutionStarted or ExecutionRedriven on):
    what a redrive is billed for. DG-redrive: "Execution redrives are considered as state
    transitions"; the steps that are not rerun are not transitions of this attempt."""
    starts = [i for i, e in enumerate(history) if e.get("type") in ("ExecutionStarted", "ExecutionRedriven")]
    return list(history[starts[-1] :]) if starts else list(history)


@dataclass
class ChildRecord:
    """One Distributed Map child (by item index), as its last attempt left it."""

    status: str
    output: Any = None
    restart: Restart | None = None  # its last unsuccessful state and that state's input
    redrive_count: int = 0
    runs: int = 1


@dataclass
class MapRunMemory:
    arn: str
    state_machine_arn: str
    redrive_count: int = 0
    redrive_date: datetime | None = None
    children: dict[int, ChildRecord] = field(default_factory=dict)


@dataclass
class Trail:
    """The events one Parallel branch or inline Map iteration logged in one run (they share the
    execution's history with the other branches, so each is recorded apart as it is logged)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    earlier: Restart | None = None  # where that run resumed it (kept if it never got further)

    def restart(self, states: set[str]) -> Restart | None:
        return restart_point(self.events, states) or self.earlier


@dataclass
class PartialRun:
    """One run of a Parallel or inline Map state, by branch or iteration index: the successful
    outputs, and what the others logged."""

    outputs: dict[int, Any] = field(default_factory=dict)
    trails: dict[int, Trail] = field(default_factory=dict)


@dataclass
class ExecutionRecord:
    started_at: datetime
    stopped_at: datetime | None = None
    redrive_count: int = 0
    redrive_date: datetime | None = None
    map_runs: dict[str, MapRunMemory] = field(default_factory=dict)  # by Map state name
    # The state whose unsuccessful parts (Map Run children, Parallel branches, inline Map
    # iterations) this attempt redrives, until it starts; None: it reruns whole.
    pending_state: str | None = None
    pending_error: str | None = None  # the error the attempt before ended with
    partials: dict[str, PartialRun] = field(default_factory=dict)  # by Parallel / inline Map state name
    tokens: OrderedDict[str, datetime] = field(default_factory=OrderedDict)  # client token -> its redrive


@dataclass
class _Plan:
    """What a redriven attempt's worker resumes from."""

    record: ExecutionRecord
    old_env: Any
    restart: Restart | None


class _FirstEventAs:
    """Stands in for an event manager for one event: the first event added is written as
    ``kind``/``details`` instead, then the real manager is put back on the environment."""

    def __init__(self, env: Any, manager: Any, replaced_type: HistoryEventType, kind: Any, details: Any) -> None:
        self._env, self._manager = env, manager
        self._replaced, self._kind, self._details = replaced_type, kind, details

    def add_event(self, context: Any, event_type: Any, event_details: Any = None, **kw: Any) -> Any:
        self._env.event_manager = self._manager
        if event_type == self._replaced:
            return self._manager.add_event(context, self._kind, self._details)
        return self._manager.add_event(context, event_type, event_details, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)


@dataclass
class _ActiveMapRun:
    memory: MapRunMemory
    redriving: bool
    date: datetime | None


@dataclass
class _Partial:
    """One run of a Parallel or inline Map state: the run before it, if this one redrives it, and
    this run, as it is recorded."""

    previous: PartialRun | None
    current: PartialRun

    def resuming(self, index: int, program: Any) -> tuple[Any, Trail]:
        """The program a branch or iteration runs (``program``, or a ``_Resumed`` one), and the
        trail where its events are recorded.

        DG-redrive: redrive "continues the failed execution from the unsuccessful step and uses
        the same input"; DG-maprun: "A parent workflow redrives unsuccessful states if there's
        no <stateType>Exited event corresponding to the <stateType>Entered event". Inside a
        branch or iteration that is its own unsuccessful state, so a Fail is re-entered ("Fail
        workflow state: Reenters the Fail state and fails again") and the Choice before it is not
        evaluated again, and the successful states before it are not rerun (DG-redrive)."""
        old = self.previous.trails.get(index) if self.previous is not None else None
        restart = old.restart(set(program.states.states)) if old is not None else None
        trail = Trail(earlier=restart)
        self.current.trails[index] = trail
        return (program if restart is None else _Resumed(program, restart)), trail


class _Recording:
    """An event manager that also writes each event it adds to one branch's or iteration's trail
    (shared by the frames opened inside it)."""

    def __init__(self, manager: Any, trail: Trail) -> None:
        self._manager, self._trail = manager, trail

    def add_event(self, context: Any, event_type: Any, event_details: Any = None, **kw: Any) -> Any:
        event_id = self._manager.add_event(context, event_type, event_details, **kw)
        self._trail.events.append({"type": getattr(event_type, "value", event_type), **(event_details or {})})
        return event_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)


class _Resumed:
    """Stands in for a branch's or iteration's program: it runs from ``restart.state`` with the
    input that state was entered with."""

    def __init__(self, program: Any, restart: Restart) -> None:
        self._program, self._restart = _starting_at(program, restart.state), restart

    def eval(self, env: Any) -> None:
        env.states.reset(json_deepcopy(self._restart.input))
        self._program.eval(env)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._program, name)


class _Finished:
    """Stands in for a Parallel branch's program that succeeded before: it ends with that output."""

    def __init__(self, output: Any) -> None:
        self.output = output

    def eval(self, env: Any) -> None:
        env.states.reset(self.output)
        env.set_ended()


def _starting_at(program: Any, state: str) -> Any:
    """The program with another StartAt (a shallow copy: the states are shared, as moto shares
    one parsed ItemProcessor between all children)."""
    restarted = copy.copy(program)
    restarted.start_at = StartAt(start_at_name=state)
    return restarted


def _status_of(env: Any) -> str:
    state = env.program_state()
    if isinstance(state, ProgramEnded):
        return "SUCCEEDED"
    if isinstance(state, ProgramStopped):
        return "ABORTED"
    if isinstance(state, ProgramTimedOut):
        return "TIMED_OUT"
    return "FAILED"


class Redrives:
    """Redrive state of every execution, on a clock the simulator can set (``now``): stop times
    are taken from it when an execution ends, and the 14 days are measured on it."""

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self.now: Callable[[], datetime] = now or _wall_clock
        self.executions: dict[str, ExecutionRecord] = {}
        self._lock = threading.Lock()
        self._plans: dict[int, _Plan] = {}  # id(worker) -> the attempt it resumes
        self._map_runs: dict[int, _ActiveMapRun] = {}  # id(MapRunRecord) -> its memory
        self._by_map_arn: dict[str, MapRunMemory] = {}
        self._child_inputs: dict[int, Any] = {}  # id(child env) -> input of its restart state
        self._inline_runs: dict[int, _Partial] = {}  # id(inline Map state env) -> its run

    # -- what the simulator calls ---------------------------------------------------------
    def record_stop(self, execution_arn: str, at: datetime) -> None:
        """Sets when an execution stopped (the redrivable period is measured from it)."""
        self.executions[execution_arn].stopped_at = at

    def not_redrivable(self, execution: Any) -> str | None:
        """Why RedriveExecution would refuse ``execution`` now (None: it is redrivable)."""
        record = self.executions.get(execution.exec_arn)
        status = execution.exec_status.value if execution.exec_status else "RUNNING"
        # API-Redrive: "The execution status isn't SUCCEEDED."; a RUNNING one has no
        # unsuccessful step yet (botocore reason: "Execution is RUNNING and cannot be redriven.").
        if status == "RUNNING":
            return RUNNING
        if status == "SUCCEEDED":
            return SUCCEEDED
        if str(getattr(execution.state_machine, "type", "STANDARD")) == "EXPRESS":
            return EXPRESS
        # API-Redrive: "less than 24,999 ... to accommodate the ExecutionRedriven history event
        # and at least one other history event."
        env = execution.exec_worker.env if execution.exec_worker else None
        if env is not None and len(env.event_manager.get_event_history()) >= HISTORY_LIMIT:
            return HISTORY_EXCEEDED
        now = self.now()
        stopped = (record.stopped_at if record else None) or execution.stop_date
        if stopped is not None and now - stopped > REDRIVABLE_PERIOD:
            return PERIOD_EXCEEDED
        if record is not None and now - record.started_at > MAX_OPEN_TIME:
            return MAX_TIME_EXCEEDED
        return None

    def redrive(self, execution: Any, client_token: str | None = None) -> datetime:
        """RedriveExecution: the same execution ARN, RUNNING again from its unsuccessful state."""
        record = self.executions.setdefault(execution.exec_arn, ExecutionRecord(started_at=execution.start_date))
        now = self.now()
        first_used = record.tokens.get(client_token or "")
        if first_used is not None and now - first_used <= CLIENT_TOKEN_LIFETIME:
            return first_used  # the redrive that token made (its redriveDate is its first use)
        reason = self.not_redrivable(execution)
        if reason is not None:
            raise ExecutionNotRedrivable(reason)
        old_env = execution.exec_worker.env
        # DG-redrive: "Redriven executions use the same state machine definition and execution
        # ARN that was used for the original execution attempt."
        top_level = set(json.loads(execution.state_machine.definition)["States"])
        restart = restart_point(old_env.event_manager.get_event_history(), top_level)
        # API-Describe, redriveCount: "This count is only updated if you successfully redrive".
        record.redrive_count += 1
        record.redrive_date = now
        record.stopped_at = None
        record.pending_state, record.pending_error = (restart.state if restart else None), execution.error
        if client_token:
            record.tokens[client_token] = now
            while len(record.tokens) > CLIENT_TOKENS:
                record.tokens.popitem(last=False)
        worker = execution._get_start_execution_worker()
        self._plans[id(worker)] = _Plan(record=record, old_env=old_env, restart=restart)
        worker.env = old_env  # its history until the worker's own environment takes over
        execution.exec_worker = worker
        execution.exec_status = ExecutionStatus.RUNNING
        execution.stop_date = execution.error = execution.cause = execution.output = None
        worker.start()
        return now

    def describe_fields(self, execution: Any) -> dict[str, Any]:
        """The redrive fields of DescribeExecution (API-Describe)."""
        record = self.executions.get(execution.exec_arn)
        fields: dict[str, Any] = {"redriveCount": record.redrive_count if record else 0}
        if record is not None and record.redrive_date is not None:
            fields["redriveDate"] = record.redrive_date
        # API-Describe: "redriveStatus is NOT_REDRIVABLE if calling the RedriveExecution API
        # action would return the ExecutionNotRedrivable error."
        reason = self.not_redrivable(execution)
        fields["redriveStatus"] = "REDRIVABLE" if reason is None else "NOT_REDRIVABLE"
        if reason is not None:
            fields["redriveStatusReason"] = reason
        return fields

    # -- the interpreter's side ------------------------------------------------------------
    def _entrypoint(self, worker: Any, program: Any) -> Any:
        plan = self._plans.get(id(worker))
        if plan is None or plan.restart is None:
            # No state was left unfinished (it failed between states): the documents name no
            # restart point for that, so the emulator starts it again at StartAt.
            return program
        # DG-redrive: "Step Functions continues the failed execution from the unsuccessful step
        # and uses the same input." The state machine timeout starts again ("reset to 0").
        return _starting_at(program, plan.restart.state)

    def _environment(self, worker: Any, env: Any) -> Any:
        execution_data = env.states.context_object.context_object_data["Execution"]
        arn = worker._evaluation_details.execution_details.arn
        plan = self._plans.pop(id(worker), None)
        # DG-context: "The value of the RedriveCount context object is 0, if you've not yet
        # redriven an execution. Further, the RedriveTime context object is only available if
        # you've redriven an execution."
        if plan is None:
            with self._lock:
                self.executions[arn] = ExecutionRecord(started_at=self.now())
            execution_data["RedriveCount"] = 0
            return env
        record = plan.record
        execution_data["RedriveCount"] = record.redrive_count
        execution_data["RedriveTime"] = iso_8601_datetime_with_milliseconds(record.redrive_date)
        # API-Redrive: "Redriven executions append their event history to the existing event
        # history." The ExecutionStarted moto writes next becomes ExecutionRedriven; event ids
        # continue after the last one.
        manager = plan.old_env.event_manager
        env.event_history_context = EventHistoryContext(previous_event_id=len(manager.get_event_history()))
        env.event_manager = _FirstEventAs(
            env,
            manager,
            HistoryEventType.ExecutionStarted,
            HistoryEventType.ExecutionRedriven,
            EventDetails(  # type: ignore[typeddict-item]
                executionRedrivenEventDetails=ExecutionRedrivenEventDetails(redriveCount=record.redrive_count)
            ),
        )
        env.map_run_record_pool_manager = plan.old_env.map_run_record_pool_manager
        if plan.restart is not None:
            env.states.reset(plan.restart.input)
        return env

    def _stopped(self, execution: Any) -> None:
        record = self.executions.get(execution.exec_arn)
        if record is not None:
            record.stopped_at = self.now()

    def _map_run_starting(self, env: Any, eval_input: Any) -> _ActiveMapRun:
        record = eval_input.map_run_record
        arn = env.states.context_object.context_object_data["Execution"]["Id"]
        execution = self.executions.get(arn)
        memory = None
        if execution is not None and execution.pending_state == eval_input.state_name:
            execution.pending_state = None
            if execution.pending_error not in _NEW_MAP_RUN:
                memory = execution.map_runs.get(eval_input.state_name)
        if memory is None:
            memory = MapRunMemory(arn=record.map_run_arn, state_machine_arn=record.map_state_machine_arn)
            if execution is not None:
                execution.map_runs[eval_input.state_name] = memory
            self._by_map_arn[memory.arn] = memory
            return _ActiveMapRun(memory, redriving=False, date=None)
        # DG-maprun: "A redriven parent workflow redrives all the unsuccessful states, including
        # Distributed Map." The Map Run keeps its ARN; its records are this attempt's.
        pool = env.map_run_record_pool_manager
        pool._pool.pop(record.map_run_arn, None)
        record.map_run_arn, record.map_state_machine_arn = memory.arn, memory.state_machine_arn
        pool.add(record)
        memory.redrive_count += 1
        memory.redrive_date = self.now()
        return _ActiveMapRun(memory, redriving=True, date=memory.redrive_date)

    def _child_starting(self, run: _ActiveMapRun, env: Any, job: Any) -> ChildRecord | None:
        """Prepares a child's run; returns its record instead when it is not to run again."""
        previous = run.memory.children.get(job.job_index) if run.redriving else None
        context = env.states.context_object.context_object_data
        execution_data = {k: v for k, v in context["Execution"].items() if k != "RedriveTime"}
        execution_data["RedriveCount"] = 0
        if previous is not None:
            # DG-maprun, Standard children: "All child workflow executions that failed, timed
            # out, or canceled" are "redriven from the last state in ItemProcessor that resulted
            # in their unsuccessful execution"; the successful ones are not rerun.
            if previous.status not in _UNSUCCESSFUL:
                return previous
            execution_data["RedriveCount"] = previous.redrive_count + 1
            execution_data["RedriveTime"] = iso_8601_datetime_with_milliseconds(run.date)
            if previous.restart is not None:
                job.job_program = _starting_at(job.job_program, previous.restart.state)
                with self._lock:
                    self._child_inputs[id(env)] = previous.restart.input
        # A Standard child is an execution of its own, with its own redrive count (DG-maprun:
        # "Standard child workflow executions ... redriven using the RedriveExecution API").
        context["Execution"] = execution_data
        return None

    def _child_ended(self, run: _ActiveMapRun, env: Any, job: Any) -> None:
        previous = run.memory.children.get(job.job_index)
        status = _status_of(env)
        restart = None
        if status != "SUCCEEDED":
            names = set(job.job_program.states.states)
            restart = restart_point(env.event_manager.get_event_history(), names)
            if restart is None and previous is not None:
                restart = previous.restart
        run.memory.children[job.job_index] = ChildRecord(
            status=status,
            output=json_deepcopy(job.job_output),
            restart=restart,
            redrive_count=env.states.context_object.context_object_data["Execution"]["RedriveCount"],
            runs=(previous.runs + 1) if previous else 1,
        )

    def _partial_starting(self, env: Any) -> _Partial | None:
        """A Parallel or inline Map state starting: the successful outputs of its last run if this
        attempt redrives it, and where to record this run's."""
        context = env.states.context_object.context_object_data
        record = self.executions.get(context["Execution"]["Id"])
        name = (context.get("State") or {}).get("Name")
        if record is None or name is None:
            return None
        previous = None
        if record.pending_state == name:
            record.pending_state = None
            if record.pending_error != _RERUN_WHOLE:
                previous = record.partials.get(name) or PartialRun()
        current = PartialRun()
        record.partials[name] = current
        return _Partial(previous, current)

    def _threshold_exceeded(self, component: Any, run: _ActiveMapRun, record: MapRunRecord, items: int) -> str | None:
        """Why the Map Run fails on its children's failures (None: within tolerance).

        "The maximum number of failed items before the Map Run fails" / "The maximum percentage
        of failed items before the Map Run fails" (API "UpdateMapRun",
        https://docs.aws.amazon.com/step-functions/latest/apireference/API_UpdateMapRun.html).
        A declared threshold applies; with neither declared no failure is tolerated (both
        default to 0). On a redrive the thresholds are evaluated on the children's statuses
        after the redrive: a child that recovered no longer counts as failed. AWS does not
        document whether the counts reset or accumulate (DG-maprun is silent); this is the
        emulator's choice, so that a Map Run whose failures were all redriven succeeds."""
        failed = sum(1 for child in run.memory.children.values() if child.status in _UNSUCCESSFUL)
        declared = getattr(component, "_redrive_tolerance_declared", None)
        if failed == 0 or declared is None:  # None: parsed before install, thresholds unknown
            return None
        breached = []
        if declared[0] and failed > record.tolerated_failure_count:
            breached.append(f"{failed} failed items exceed ToleratedFailureCount {record.tolerated_failure_count}")
        percentage, tolerated = 100.0 * failed / max(items, 1), record.tolerated_failure_percentage
        if declared[1] and percentage > tolerated:
            breached.append(f"{percentage:g}% failed items exceed ToleratedFailurePercentage {tolerated:g}")
        if not any(declared):
            breached.append(f"{failed} failed items, none tolerated")
        return "; ".join(breached) or None

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Enter inside ``InterpreterHooks.installed()`` (it wraps the hooks' own patches)."""
        redrives = self
        original_entrypoint = execution_worker.ExecutionWorker._get_evaluation_entrypoint
        original_environment = execution_worker.ExecutionWorker._get_evaluation_environment
        original_terminated = execution_module.BaseExecutionWorkerCommunication.terminated
        original_describe = StepFunctionResponse.describe_execution
        original_list = StepFunctionResponse.list_executions
        original_map_body = distributed_iteration_component.DistributedIterationComponent._eval_body
        original_map_run = distributed_iteration_component.DistributedIterationComponent._map_run
        original_job = child_worker.DistributedItemProcessorWorker._eval_job
        original_child_input = child_worker.DistributedItemProcessorWorker._eval_input
        original_map_props = state_map.StateMap.from_state_props
        original_map_describe = MapRunRecord.describe
        original_branches = branches_decl.BranchesDecl._eval_body
        original_branch_worker = branch_worker.BranchWorker.__init__
        original_inline_body = inline_iteration_component.InlineIterationComponent._eval_body
        original_inline_job = iteration_worker.IterationWorker._eval_job
        branch_workers = threading.local()  # the BranchWorkers the Parallel on this thread starts

        def entrypoint(self: Any) -> Any:
            return redrives._entrypoint(self, original_entrypoint(self))

        def environment(self: Any) -> Any:
            return redrives._environment(self, original_environment(self))

        def terminated(self: Any) -> None:
            original_terminated(self)
            redrives._stopped(self.execution)

        def redrive_execution(self: Any) -> ActionResult:
            backend = self.stepfunction_backend
            if not isinstance(backend, StepFunctionsParserBackend):
                raise NotImplementedError("RedriveExecution needs stepfunctions.execute_state_machine")
            execution = backend.describe_execution(self._get_param("executionArn"))  # ExecutionDoesNotExist
            return ActionResult({"redriveDate": redrives.redrive(execution, self._get_param("clientToken"))})

        def describe_execution(self: Any) -> ActionResult:
            result = original_describe(self)
            backend = self.stepfunction_backend
            if isinstance(backend, StepFunctionsParserBackend):
                execution = backend.describe_execution(self._get_param("executionArn"))
                result.result.update(redrives.describe_fields(execution))  # type: ignore[attr-defined]
            return result

        def list_executions(self: Any) -> ActionResult:
            result = original_list(self)
            listed: dict[str, Any] = result.result  # type: ignore[assignment]
            for item in listed.get("executions", []):
                record = redrives.executions.get(item["executionArn"])
                # ExecutionListItem: redriveCount "only updated when you successfully redrive".
                item["redriveCount"] = record.redrive_count if record else 0
                if record is not None and record.redrive_date is not None:
                    item["redriveDate"] = record.redrive_date
            # ListExecutions, redriveFilter: "Sets a filter to list executions based on whether or
            # not they have been redriven." (applied to the page moto returns)
            wanted = self._get_param("redriveFilter")
            if wanted in ("REDRIVEN", "NOT_REDRIVEN"):
                listed["executions"] = [
                    item for item in listed["executions"] if (item["redriveCount"] > 0) == (wanted == "REDRIVEN")
                ]
            return result

        def map_props(self: Any, state_props: Any) -> None:
            original_map_props(self, state_props)
            self.iteration_component._redrive_tolerance_declared = (
                state_props.get(ToleratedFailureCountDecl) is not None,
                state_props.get(ToleratedFailurePercentageDecl) is not None,
            )

        def map_body(self: Any, env: Any) -> None:
            eval_input = env.stack[-1]
            run = redrives._map_run_starting(env, eval_input)
            if run.redriving:
                # DG-maprun: the redriven Map Run is logged as MapRunRedriven ("The redrive count
                # for a redriven Map Run is always greater than 0"), in place of MapRunStarted.
                env.event_manager = _FirstEventAs(
                    env,
                    env.event_manager,
                    HistoryEventType.MapRunStarted,
                    HistoryEventType.MapRunRedriven,
                    EventDetails(  # type: ignore[typeddict-item]
                        mapRunRedrivenEventDetails=MapRunRedrivenEventDetails(
                            mapRunArn=run.memory.arn, redriveCount=run.memory.redrive_count
                        )
                    ),
                )
            key = id(eval_input.map_run_record)
            redrives._map_runs[key] = run
            try:
                original_map_body(self, env)
            finally:
                redrives._map_runs.pop(key, None)

        def map_run(self: Any, env: Any, eval_input: Any) -> None:
            items = len(env.stack[-1])
            original_map_run(self, env, eval_input)
            run = redrives._map_runs.get(id(eval_input.map_run_record))
            if run is None:
                return
            reason = redrives._threshold_exceeded(self, run, eval_input.map_run_record, items)
            if reason is not None:
                raise _map_failure(env, StatesErrorNameType.StatesExceedToleratedFailureThreshold, reason)

        def eval_job(self: Any, env: Any, job: Any) -> Any:
            run = redrives._map_runs.get(id(self._map_run_record))
            if run is None:
                return original_job(self, env, job)
            kept = redrives._child_starting(run, env, job)
            if kept is not None:
                # Not rerun: counted as the success it was, its recorded output in its place.
                record = self._map_run_record
                for counter in (record.item_counter, record.execution_counter):
                    counter.total.count()
                    counter.succeeded.count()
                    counter.results_written.count()
                job.job_output = json_deepcopy(kept.output)
                return None
            try:
                return original_job(self, env, job)
            finally:
                with redrives._lock:
                    redrives._child_inputs.pop(id(env), None)
                redrives._child_ended(run, env, job)

        def child_input(self: Any, env_frame: Any) -> None:
            original_child_input(self, env_frame)
            restart_input = redrives._child_inputs.get(id(env_frame))
            if restart_input is not None:
                env_frame.states.reset(restart_input)

        def map_describe(self: Any) -> Any:
            described = original_map_describe(self)
            memory = redrives._by_map_arn.get(self.map_run_arn)
            # DescribeMapRunOutput: "If you have not yet redriven a Map Run, the redriveCount is 0"
            described["redriveCount"] = memory.redrive_count if memory else 0
            if memory is not None and memory.redrive_date is not None:
                described["redriveDate"] = memory.redrive_date
            return described

        def branches(self: Any, env: Any) -> None:
            # DG-redrive, Parallel: "Reschedules and redrives only those branches that failed or
            # aborted."
            run = redrives._partial_starting(env)
            programs = self.programs
            outer = getattr(branch_workers, "started", None), getattr(branch_workers, "run", None)
            if run is not None and run.previous is not None:
                kept = run.previous.outputs
                self.programs = [_Finished(kept[i]) if i in kept else p for i, p in enumerate(programs)]
            started: list[Any] = []
            branch_workers.started, branch_workers.run = started, run
            try:
                original_branches(self, env)
            finally:
                self.programs = programs
                branch_workers.started, branch_workers.run = outer
                for index, worker in enumerate(started):
                    if run is not None and isinstance(worker.env.program_state(), ProgramEnded):
                        run.current.outputs[index] = worker.env.states.get_input()

        def branch_worker_init(self: Any, branch_worker_comm: Any, program: Any, env: Any) -> None:
            started, run = getattr(branch_workers, "started", None), getattr(branch_workers, "run", None)
            if started is not None and run is not None and not isinstance(program, _Finished):
                program, trail = run.resuming(len(started), program)
                env.event_manager = _Recording(env.event_manager, trail)
            original_branch_worker(self, branch_worker_comm=branch_worker_comm, program=program, env=env)
            if started is not None:
                started.append(self)

        def inline_body(self: Any, env: Any) -> None:
            # DG-redrive, Inline Map: "Reschedules and redrives only those iterations that failed
            # or aborted."
            run = redrives._partial_starting(env)
            if run is None:
                return original_inline_body(self, env)
            redrives._inline_runs[id(env)] = run
            try:
                original_inline_body(self, env)
            finally:
                redrives._inline_runs.pop(id(env), None)

        def inline_job(self: Any, env: Any, job: Any) -> None:
            run = redrives._inline_runs.get(id(self._env))
            if run is None:
                return original_inline_job(self, env, job)
            index = job.job_index
            if run.previous is not None and index in run.previous.outputs:
                job.job_output = json_deepcopy(run.previous.outputs[index])
            else:
                job.job_program, trail = run.resuming(index, job.job_program)
                env.event_manager = _Recording(env.event_manager, trail)  # env: this job's own frame
                original_inline_job(self, env, job)
            if not isinstance(job.job_output, Exception):
                run.current.outputs[index] = json_deepcopy(job.job_output)

        patches: list[tuple[Any, str, Any]] = [
            (execution_worker.ExecutionWorker, "_get_evaluation_entrypoint", entrypoint),
            (execution_worker.ExecutionWorker, "_get_evaluation_environment", environment),
            (execution_module.BaseExecutionWorkerCommunication, "terminated", terminated),
            (StepFunctionResponse, "describe_execution", describe_execution),
            (StepFunctionResponse, "list_executions", list_executions),
            (distributed_iteration_component.DistributedIterationComponent, "_eval_body", map_body),
            (distributed_iteration_component.DistributedIterationComponent, "_map_run", map_run),
            (child_worker.DistributedItemProcessorWorker, "_eval_job", eval_job),
            (child_worker.DistributedItemProcessorWorker, "_eval_input", child_input),
            (state_map.StateMap, "from_state_props", map_props),
            (MapRunRecord, "describe", map_describe),
            (branches_decl.BranchesDecl, "_eval_body", branches),
            (branch_worker.BranchWorker, "__init__", branch_worker_init),
            (inline_iteration_component.InlineIterationComponent, "_eval_body", inline_body),
            (iteration_worker.IterationWorker, "_eval_job", inline_job),
        ]
        StepFunctionResponse.redrive_execution = redrive_execution  # type: ignore[attr-defined]
        _forget_methods()  # moto_speed caches each response class's method names
        try:
            with replaced(patches):
                yield
        finally:
            del StepFunctionResponse.redrive_execution  # type: ignore[attr-defined]
            _forget_methods()


def _forget_methods() -> None:
    cache_clear = getattr(getattr(moto_responses, "method_names_from_class"), "cache_clear", None)  # noqa: B009
    if cache_clear is not None:
        cache_clear()
