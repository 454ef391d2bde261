"""Hooks into moto's Step Functions interpreter: a virtual clock for Wait states and retry
intervals, and per-child history accounting for Distributed Map children.

moto runs a Distributed Map's children inside the parent, all writing to one event manager per
Map Run; AWS gives each child its own execution history. We give each child (Map item) its own
event manager, as AWS gives it its own history, and count each one's events.
These are moto internals: moto is pinned exactly in pyproject.toml.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
    distributed_item_processor_worker as child_worker,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
from moto.stepfunctions.parser.asl.eval.event import event_manager

PAYLOAD_LIMIT = 256 * 1024


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

    def __getattr__(self, name: str) -> Any:
        import time

        return getattr(time, name)


class InterpreterHooks:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = RunEvents()
        self._child_managers: dict[int, tuple[int, int]] = {}

    def new_run(self) -> RunEvents:
        self.current = RunEvents()
        return self.current

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        hooks = self
        original_add = event_manager.EventManager.add_event
        original_job = child_worker.DistributedItemProcessorWorker._eval_job
        original_wait = wait_function.WaitFunction._wait_interval
        # The retrier imports ``time`` as a module global; patch.object swaps and restores it.
        virtual_time = mock.patch.object(retrier_decl, "time", _VirtualTime(self))

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
                with hooks._lock:
                    hooks._child_managers.pop(id(child_events), None)

        def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
            with hooks._lock:
                hooks.current.virtual_wait_seconds += wait_seconds

        event_manager.EventManager.add_event = add_event  # type: ignore[method-assign,assignment]
        child_worker.DistributedItemProcessorWorker._eval_job = eval_job  # type: ignore[method-assign]
        wait_function.WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign]
        virtual_time.start()
        try:
            yield
        finally:
            event_manager.EventManager.add_event = original_add  # type: ignore[method-assign]
            child_worker.DistributedItemProcessorWorker._eval_job = original_job  # type: ignore[method-assign]
            wait_function.WaitFunction._wait_interval = original_wait  # type: ignore[method-assign]
            virtual_time.stop()

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
