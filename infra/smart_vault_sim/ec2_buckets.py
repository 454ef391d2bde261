"""EC2's request throttling and per-volume snapshot rules, on the fleet's virtual clock.

An AwsTap check: every EC2 request a function makes takes a token from its action's bucket at
the caller's virtual time (fleet_clock), and is refused with ``RequestLimitExceeded`` when the
bucket is empty, as EC2 does. Buckets belong to the account and region, so all Map children
share them, and they refill between runs. Snapshot creation also obeys the per-volume rules.

Sources (checked against the AWS documentation, which wins over the issue text):
- Amazon EC2 Developer Guide / API Reference, "Request throttling for the Amazon EC2 API":
  token buckets per account and Region, per API action; a request takes one token; tables
  "Request token bucket sizes and refill rates" (categories, and "Uncategorized actions" with
  their own sizes: CreateSnapshot(s) and DeleteSnapshot 100 / 5 per s, CreateTags 100 / 10).
  CopySnapshot, LockSnapshot and ModifySnapshotTier are not listed, so they are *mutating
  actions* (50 / 5). Resource-rate buckets exist only for Run/Start/Stop/TerminateInstances:
  there is none for snapshots (the issue's "snapshot-specific resource buckets" are these
  request buckets).
- Amazon EBS User Guide, "Create Amazon EBS snapshots": at most five ``pending`` snapshots per
  volume, one for st1 and sc1 (``ConcurrentSnapshotLimitExceeded``).
- Amazon EC2 API Reference, "Error codes": ``SnapshotCreationPerVolumeRateExceeded`` - "Wait at
  least 15 seconds between concurrent volume snapshots".
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from smart_vault_sim import fleet
from smart_vault_sim.aws_tap import DRILL_MACHINE, OPERATOR, STATE_MACHINE, ApiCall, aws_error

NOT_FUNCTIONS = (STATE_MACHINE, DRILL_MACHINE, OPERATOR)  # callers whose requests are not modelled

# (bucket maximum capacity, refill tokens per second), "Request throttling for the Amazon EC2 API".
NON_MUTATING = (100.0, 20.0)  # Describe*, List*, Search*, Get*
UNFILTERED_NON_MUTATING = (50.0, 10.0)  # the actions below without a filter and without pagination
MUTATING = (50.0, 5.0)
UNFILTERED_ACTIONS = frozenset(
    {
        "DescribeInstances",
        "DescribeInstanceStatus",
        "DescribeNetworkInterfaces",
        "DescribeSecurityGroups",
        "DescribeSnapshots",
        "DescribeSpotInstanceRequests",
        "DescribeVolumes",
    }
)
# "Uncategorized actions" this product or its emulator's neighbours call.
UNCATEGORIZED = {
    "CreateSnapshot": (100.0, 5.0),
    "CreateSnapshots": (100.0, 5.0),
    "DeleteSnapshot": (100.0, 5.0),
    "CreateTags": (100.0, 10.0),
    "DeleteTags": (100.0, 10.0),
    "CreateVolume": (100.0, 5.0),
    "DeleteVolume": (100.0, 5.0),
    "DeregisterImage": (100.0, 5.0),
    "ModifySnapshotAttribute": (100.0, 5.0),
    "RunInstances": (5.0, 2.0),
    "StartInstances": (5.0, 2.0),
    "TerminateInstances": (100.0, 5.0),
}
PENDING_PER_VOLUME = 5
PENDING_PER_VOLUME_HDD = 1  # st1, sc1
HDD_TYPES = frozenset({"st1", "sc1"})
SECONDS_BETWEEN_VOLUME_SNAPSHOTS = 15.0
CREATE_ACTIONS = ("CreateSnapshots", "CreateSnapshot")


def bucket_limits(action: str, params: Mapping[str, Any]) -> tuple[str, tuple[float, float]]:
    """The bucket a request draws from: its name and (capacity, refill per second)."""
    if action in UNCATEGORIZED:
        return action, UNCATEGORIZED[action]
    if action.startswith(("Describe", "List", "Search", "Get")):
        paginated = "MaxResults" in params or "NextToken" in params
        if action in UNFILTERED_ACTIONS and not params.get("Filters") and not paginated:
            return f"{action} (unfiltered)", UNFILTERED_NON_MUTATING
        return action, NON_MUTATING
    return action, MUTATING


@dataclass
class TokenBucket:
    capacity: float
    refill: float
    tokens: float = -1.0  # starts full
    stamp: float = 0.0

    def take(self, now: float) -> bool:
        if self.tokens < 0:
            self.tokens, self.stamp = self.capacity, now
        elif now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.refill)
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class Timeline:
    """What the run did over virtual time (run-relative seconds), for benchmarks and plots."""

    creates: list[float] = field(default_factory=list)  # one per snapshot created
    create_requests: list[float] = field(default_factory=list)  # one per CreateSnapshots accepted
    completions: list[float] = field(default_factory=list)
    throttled: list[tuple[float, str]] = field(default_factory=list)


class Ec2Load:
    """The AwsTap check for EC2's buckets and per-volume rules, and the snapshot duration model."""

    def __init__(
        self,
        *,
        backend: Callable[[], Any],
        relative_now: Callable[[], float],
        overrides: Mapping[str, tuple[float, float]] | None = None,
        enabled: bool = True,
    ) -> None:
        self._backend = backend  # moto's EC2 backend of the region
        self._relative_now = relative_now  # virtual seconds since the run's start
        self._overrides = dict(overrides or {})
        self.enabled = enabled
        self.run_epoch = 0.0
        # Per account and Region (off-site copies call the destination Region's endpoint).
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._pending: dict[str, list[Any]] = {}  # volume id -> its snapshots created pending
        self._last_create: dict[str, float] = {}  # volume id -> absolute virtual time
        self._due: list[tuple[float, str]] = []  # (absolute completion time, snapshot id)
        self.throttled: Counter[str] = Counter()
        self.timeline = Timeline()

    def start_run(self, epoch: float) -> None:
        self.run_epoch = epoch
        self.throttled = Counter()
        self.timeline = Timeline()
        self.complete_due()
        # Pending snapshots made outside the workflow (a scenario's existing ones) count too.
        self._pending = {}
        for snapshot in self._backend().snapshots.values():
            if snapshot.status == "pending":
                self._pending.setdefault(snapshot.volume.id, []).append(snapshot)

    def now(self) -> float:
        return self.run_epoch + self._relative_now()

    # -- the tap check -----------------------------------------------------------------------
    def __call__(self, call: ApiCall) -> None:
        if not self.enabled or call.service != "ec2" or call.caller in NOT_FUNCTIONS:
            return
        now = self.now()
        name, (capacity, refill) = bucket_limits(call.operation, call.params)
        capacity, refill = self._overrides.get(call.operation, (capacity, refill))
        bucket = self._buckets.setdefault((call.region, name), TokenBucket(capacity, refill))
        if not bucket.take(now):
            self._refuse(call, "RequestLimitExceeded", now)
        if call.operation in CREATE_ACTIONS:
            self._volume_rules(call, now)
            self.timeline.create_requests.append(now - self.run_epoch)

    def _refuse(self, call: ApiCall, code: str, now: float) -> None:
        self.throttled[code] += 1
        self.timeline.throttled.append((now - self.run_epoch, call.operation))
        raise aws_error(code, call.operation)

    def _volume_rules(self, call: ApiCall, now: float) -> None:
        self.complete_due()
        for volume in self._volumes_of(call.params):
            last = self._last_create.get(volume.id)
            if last is not None and now - last < SECONDS_BETWEEN_VOLUME_SNAPSHOTS:
                self._refuse(call, "SnapshotCreationPerVolumeRateExceeded", now)
            pending = [s for s in self._pending.get(volume.id, ()) if s.status == "pending"]
            self._pending[volume.id] = pending
            limit = PENDING_PER_VOLUME_HDD if volume.volume_type in HDD_TYPES else PENDING_PER_VOLUME
            if len(pending) >= limit:
                self._refuse(call, "ConcurrentSnapshotLimitExceeded", now)

    def _volumes_of(self, params: Mapping[str, Any]) -> list[Any]:
        backend = self._backend()
        if "VolumeId" in params:
            volume = backend.volumes.get(params["VolumeId"])
            return [volume] if volume is not None else []
        spec = params.get("InstanceSpecification") or {}
        try:
            instance = backend.get_instance(spec.get("InstanceId", ""))
        except Exception:  # an unknown instance: moto answers InvalidInstanceID.NotFound
            return []
        excluded = set(spec.get("ExcludeDataVolumeIds") or ())
        volumes = []
        for device, mapping in dict(instance.get_block_device_mapping).items():
            root = device == instance.root_device_name
            if (root and spec.get("ExcludeBootVolume")) or mapping.volume_id in excluded:
                continue
            volume = backend.volumes.get(mapping.volume_id)
            if volume is not None:
                volumes.append(volume)
        return volumes

    # -- snapshot lifecycle ------------------------------------------------------------------
    def on_created(self, snapshot: Any, seconds_to_complete: float) -> None:
        """A snapshot was created: it stays pending ``seconds_to_complete`` virtual seconds."""
        now = self.now()
        relative = now - self.run_epoch
        self.timeline.creates.append(relative)
        self._last_create[snapshot.volume.id] = now
        if seconds_to_complete > 0 and snapshot.status != "error":
            snapshot.status = "pending"
            heapq.heappush(self._due, (now + seconds_to_complete, snapshot.id))
        if snapshot.status == "pending":
            self._pending.setdefault(snapshot.volume.id, []).append(snapshot)
        elif snapshot.status == "completed":
            self.timeline.completions.append(relative)

    def completed(self, snapshot_id: str) -> None:
        """A pending snapshot completed now (the completion-checks model)."""
        self.timeline.completions.append(self.now() - self.run_epoch)

    def complete_due(self) -> None:
        """Every snapshot whose modelled duration has passed is completed (at its due time)."""
        now = self.now()
        snapshots = None
        while self._due and self._due[0][0] <= now:
            due, snapshot_id = heapq.heappop(self._due)
            snapshots = snapshots or self._backend().snapshots
            snapshot = snapshots.get(snapshot_id)
            if snapshot is not None and snapshot.status == "pending":
                fleet.mark_completed(snapshot, datetime.fromtimestamp(due, UTC))
                self.timeline.completions.append(due - self.run_epoch)
