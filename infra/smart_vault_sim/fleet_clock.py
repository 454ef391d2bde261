"""One virtual clock for a whole run: the parent execution and every Distributed Map child.

moto runs each Map child on a worker thread (one per concurrency slot, as many as
MaxConcurrency allows) and lets them race in wall time. AWS runs them in real time, so what
one child does at minute 5 happens after what another does at minute 1. This clock makes the
emulator do the same, as a discrete-event simulation:

- every worker (concurrency slot) has its own virtual time, starting when the Map starts; a
  child inherits its slot's time, so the next item starts when the previous one ended;
- a worker advances its time at Wait states, retry intervals and after each Lambda invocation
  (by the invocation's modelled duration), and these are the only points where it yields;
- exactly one worker runs at a time: the one with the smallest virtual time (ties by arrival),
  so AWS calls reach the emulated account - and EC2's token buckets - in virtual-time order;
- the parent's time stands still while the Map runs and resumes at the last child's end.

Inside a Lambda invocation nothing yields (the invocation holds the Lambda host's lock); its
AWS calls are stamped with the worker's time plus the modelled latency of the calls before
them. ``LATENCY`` is a model, documented in docs/scenarios.md: it is what makes Lambda
durations (and so GB-seconds) non-zero, not a measurement.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

# Modelled seconds per AWS call a function makes, by service, and per Lambda invocation
# (service overhead of a warm invoke). Typical in-region latencies; see docs/scenarios.md.
LATENCY = {"ec2": 0.15, "s3": 0.03, "sns": 0.05, "cloudwatch": 0.05}
DEFAULT_LATENCY = 0.05
INVOKE_OVERHEAD = 0.02


def call_latency(service: str) -> float:
    return LATENCY.get(service, DEFAULT_LATENCY)


@dataclass(eq=False)
class _Worker:
    time: float
    wake: threading.Event = field(default_factory=threading.Event)


class FleetClock:
    """Virtual seconds since the run's scheduled start, for whichever thread asks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self._order = itertools.count()
        self.parent = 0.0
        self._ready: list[tuple[float, int, _Worker]] = []
        self._running: _Worker | None = None
        self._expected = 0  # workers launched but not yet arrived: nobody runs before they do
        self._map_start = 0.0
        self._job_ends: list[float] = []
        self.yields = 0  # hand-offs between workers: the scheduler's cost, for profiling

    def reset(self) -> None:
        self.parent = 0.0
        self._job_ends = []

    def now(self) -> float:
        worker: _Worker | None = getattr(self._local, "worker", None)
        return worker.time if worker is not None else self.parent

    @property
    def job_ends(self) -> list[float]:
        """Virtual end times of the Map children finished so far (progress reports read it)."""
        return self._job_ends

    def in_child(self) -> bool:
        return getattr(self._local, "worker", None) is not None

    def thread_class(self) -> type[threading.Thread]:
        """A Thread that runs as the worker that created it: moto evaluates a child's program
        and each of its tasks on threads of their own, which must keep the child's time."""
        clock = self

        class WorkerThread(threading.Thread):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self._fleet_worker = getattr(clock._local, "worker", None)

            def run(self) -> None:
                clock._local.worker = self._fleet_worker
                super().run()

        return WorkerThread

    def advance(self, seconds: float) -> None:
        """Time passes for the caller; a child then lets any earlier child run first."""
        worker: _Worker | None = getattr(self._local, "worker", None)
        if worker is None:
            self.parent += seconds
            return
        worker.time += seconds
        with self._lock:
            self._push(worker)
            self._running = None
            chosen = self._dispatch()
        if chosen is not worker:
            self.yields += 1
            worker.wake.wait()
        worker.wake.clear()

    # -- a Distributed Map's workers ---------------------------------------------------------
    def open_map(self, workers: int) -> None:
        with self._lock:
            self._expected = workers
            self._map_start = self.parent
            self._job_ends = []

    def close_map(self) -> None:
        """The parent resumes when the last child ended (the Map Run's end)."""
        self.parent = max(self._job_ends, default=self._map_start)

    def enter_worker(self) -> None:
        worker = _Worker(time=self._map_start)
        self._local.worker = worker
        with self._lock:
            self._expected -= 1
            self._push(worker)
            if self._running is None:
                self._dispatch()
        worker.wake.wait()
        worker.wake.clear()

    def job_done(self) -> None:
        worker: _Worker | None = getattr(self._local, "worker", None)
        if worker is not None:
            with self._lock:
                self._job_ends.append(worker.time)

    def leave_worker(self) -> None:
        with self._lock:
            self._running = None
            self._dispatch()
        self._local.worker = None

    def _push(self, worker: _Worker) -> None:
        heapq.heappush(self._ready, (worker.time, next(self._order), worker))

    def _dispatch(self) -> _Worker | None:
        """Under the lock: wake the earliest worker, once every launched worker has arrived."""
        if self._expected > 0 or not self._ready:
            return None
        _, _, worker = heapq.heappop(self._ready)
        self._running = worker
        worker.wake.set()
        return worker
