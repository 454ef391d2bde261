"""EBS snapshot lock in the emulated account: moto has no LockSnapshot or DescribeLockedSnapshots.

Lock state lives here, on the simulator's virtual clock (``now``), and answers the product's
LockSnapshot / DescribeLockedSnapshots requests before they reach moto (a botocore ``before-call``
handler returns the parsed response, as the service would). DeleteSnapshot of a locked snapshot
is refused, whoever asks. Rules, from the EC2 API Reference (LockSnapshot, LockedSnapshotsInfo)
and the Amazon EBS User Guide ("Snapshot lock concepts", "Considerations for Amazon EBS snapshot
lock"):
- only a ``pending`` or ``completed`` snapshot can be locked; a lock on a pending snapshot starts
  its duration when the snapshot completes, and is cancelled if the snapshot fails;
- LockDuration (1-36,500 days) or ExpirationDate, not both; CoolOffPeriod 1-72 hours, compliance
  mode only;
- governance and compliance-cooloff locks may be changed freely; after the cooling-off period a
  compliance lock may only be extended (no mode change, no shorter expiry, no CoolOffPeriod);
- a lock whose expiry has passed is ``expired``: the snapshot can be deleted again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from smart_vault_sim import fleet
from smart_vault_sim.answering import AnsweredApi, Handlers
from smart_vault_sim.aws_tap import aws_error

# The code DeleteSnapshot answers for a locked snapshot. The EC2 API Reference documents none
# (DeleteSnapshot, "Error codes for the Amazon EC2 API"), so this is the emulator's own and the
# product matches no code: it re-checks the lock on any refusal (tests/sim vary this code).
SNAPSHOT_LOCKED_ERROR = "SnapshotLocked"
MAX_DAYS = 36_500
COOL_OFF_HOURS = (1, 72)
_PARAMS = "smart_vault_sim.lock_params"  # request-context key: the API parameters of this call


@dataclass
class Lock:
    mode: str  # governance | compliance
    created_on: datetime
    days: int | None  # LockDuration, or None with an ExpirationDate
    expiration_date: datetime | None
    cool_off_hours: int | None
    started: datetime | None  # when the duration started (the snapshot completed)

    @property
    def cool_off_expires(self) -> datetime | None:
        if self.mode != "compliance" or not self.cool_off_hours:
            return None
        return self.created_on + timedelta(hours=self.cool_off_hours)

    @property
    def expires(self) -> datetime | None:
        if self.expiration_date is not None:
            return self.expiration_date
        if self.started is None or self.days is None:
            return None  # pending: the duration has not started
        return self.started + timedelta(days=self.days)

    def state(self, now: datetime) -> str:
        expires = self.expires
        if expires is not None and now >= expires:
            return "expired"
        if self.mode == "governance":
            return "governance"
        cool_off = self.cool_off_expires
        return "compliance-cooloff" if cool_off is not None and now < cool_off else "compliance"


class _Response:
    """What botocore needs of an HTTP response that a before-call handler answers with."""

    status_code = 200
    headers: dict[str, str] = {}
    content = b""


class SnapshotLocks(AnsweredApi):
    """Install on a boto3 session before its clients are created."""

    def __init__(self, region: str, now: Callable[[], datetime]) -> None:
        self.region = region
        self.other_regions: tuple[str, ...] = ()  # copy destinations (off-site copies)
        self.now = now
        self.locks: dict[str, Lock] = {}
        self.locked_error = SNAPSHOT_LOCKED_ERROR  # what DeleteSnapshot of a locked one answers

    def handlers(self) -> Handlers:
        remember = [
            (f"before-parameter-build.ec2.{op}", self._remember)
            for op in ("LockSnapshot", "DescribeLockedSnapshots", "DeleteSnapshot")
        ]
        return [
            *remember,
            ("before-call.ec2.LockSnapshot", self._lock),
            ("before-call.ec2.DescribeLockedSnapshots", self._describe),
            ("before-call.ec2.DeleteSnapshot", self._delete),
        ]

    # -- state ------------------------------------------------------------------------------
    def _snapshot(self, snapshot_id: str) -> Any:
        """The snapshot in the account's Region, or in a copy destination (``other_regions``)."""
        for region in (self.region, *self.other_regions):
            snapshot = fleet.ec2_backend(region).snapshots.get(snapshot_id)
            if snapshot is not None:
                return snapshot
        return None

    def _settle(self, snapshot_id: str) -> Lock | None:
        """The snapshot's lock after what happened to the snapshot since it was locked."""
        lock = self.locks.get(snapshot_id)
        if lock is None:
            return None
        snapshot = self._snapshot(snapshot_id)
        if snapshot is None or snapshot.status == "error":
            del self.locks[snapshot_id]  # a failed snapshot's lock is cancelled
            return None
        if lock.started is None and snapshot.status == "completed":
            # "If you lock a snapshot that is in the pending state, the lock duration starts only
            # once the snapshot enters the completed state" (EC2 API Reference, LockedSnapshotsInfo,
            # https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_LockedSnapshotsInfo.html):
            # when it completed (fleet.mark_completed), not when this model first looks.
            lock.started = getattr(snapshot, "completed_on", None) or self.now()
        return lock

    def active(self, snapshot_id: str) -> Lock | None:
        lock = self._settle(snapshot_id)
        return lock if lock is not None and lock.state(self.now()) != "expired" else None

    def locked_until(self, snapshot_id: str) -> datetime | None:
        """Expiry of the snapshot's lock while it holds (None: unlocked, or pending and unknown)."""
        lock = self.active(snapshot_id)
        return lock.expires if lock is not None else None

    def info(self, snapshot_id: str) -> dict[str, Any] | None:
        """The LockedSnapshotsInfo record (EC2 API Reference) of a snapshot with a lock."""
        lock = self._settle(snapshot_id)
        if lock is None:
            return None
        record: dict[str, Any] = {
            "OwnerId": fleet.ACCOUNT_ID,
            "SnapshotId": snapshot_id,
            "LockState": lock.state(self.now()),
            "LockCreatedOn": lock.created_on,
        }
        if lock.days is not None:
            record["LockDuration"] = lock.days
        if lock.cool_off_hours:
            record["CoolOffPeriod"] = lock.cool_off_hours
            record["CoolOffPeriodExpiresOn"] = lock.cool_off_expires
        if lock.started is not None:
            record["LockDurationStartTime"] = lock.started
        if lock.expires is not None:
            record["LockExpiresOn"] = lock.expires
        return record

    def lock(self, params: dict[str, Any]) -> dict[str, Any]:
        """LockSnapshot: validate as EC2 does, then create or modify the lock."""
        snapshot_id = str(params.get("SnapshotId") or "")
        snapshot = self._snapshot(snapshot_id)
        if snapshot is None:
            raise aws_error("InvalidSnapshot.NotFound", "LockSnapshot", f"The snapshot '{snapshot_id}' does not exist.")
        if snapshot.status not in ("pending", "completed"):
            raise aws_error(
                "IncorrectState",
                "LockSnapshot",
                f"The snapshot '{snapshot_id}' is in state {snapshot.status}; only pending or completed "
                "snapshots can be locked.",
            )
        mode = params.get("LockMode")
        if mode not in ("governance", "compliance"):
            raise _invalid(f"Value ({mode}) for parameter LockMode is invalid.")
        days, until = params.get("LockDuration"), params.get("ExpirationDate")
        if isinstance(until, str):
            until = datetime.fromisoformat(until.replace("Z", "+00:00"))
        if (days is None) == (until is None):
            raise aws_error(
                "InvalidParameterCombination",
                "LockSnapshot",
                "Specify either LockDuration or ExpirationDate, but not both.",
            )
        if days is not None and not 1 <= int(days) <= MAX_DAYS:
            raise _invalid(f"LockDuration must be between 1 and {MAX_DAYS} days, got {days}.")
        cool_off = params.get("CoolOffPeriod")
        if cool_off is not None:
            if mode != "compliance":
                raise aws_error(
                    "InvalidParameterCombination", "LockSnapshot", "CoolOffPeriod is valid only in compliance mode."
                )
            low, high = COOL_OFF_HOURS
            if not low <= int(cool_off) <= high:
                raise _invalid(f"CoolOffPeriod must be between {low} and {high} hours, got {cool_off}.")
        now = self.now()
        new = Lock(
            mode=str(mode),
            created_on=now,
            days=int(days) if days is not None else None,
            expiration_date=until,
            cool_off_hours=int(cool_off) if cool_off is not None else None,
            started=now if snapshot.status == "completed" else None,
        )
        old = self._settle(snapshot_id)
        if old is not None and old.state(now) == "compliance":
            new = _extend_compliance(snapshot_id, old, new, now)
        elif old is not None and old.state(now) != "expired":
            # Modifying a governance / cooling-off lock keeps its creation and cooling-off clock.
            new.created_on, new.started = old.created_on, old.started
            if new.mode == "compliance" and new.cool_off_hours is None:
                new.cool_off_hours = old.cool_off_hours if old.mode == "compliance" else None
        self.locks[snapshot_id] = new
        record = self.info(snapshot_id) or {}
        record.pop("OwnerId", None)
        return record

    # -- botocore handlers ------------------------------------------------------------------
    def _remember(self, params: dict[str, Any], context: Any = None, **_: Any) -> None:
        if context is not None:
            context[_PARAMS] = dict(params)

    def _params(self, context: Any) -> dict[str, Any]:
        return dict((context or {}).get(_PARAMS) or {})

    def _lock(self, context: Any = None, **_: Any) -> tuple[_Response, dict[str, Any]]:
        return _Response(), self.lock(self._params(context))

    def _describe(self, context: Any = None, **_: Any) -> tuple[_Response, dict[str, Any]]:
        params = self._params(context)
        max_results = params.get("MaxResults")
        if max_results is not None and not 5 <= int(max_results) <= 1000:
            raise _invalid(f"MaxResults must be between 5 and 1000, got {max_results}.", "DescribeLockedSnapshots")
        ids: Iterable[str] = params.get("SnapshotIds") or list(self.locks)
        states = {v for f in params.get("Filters") or () if f.get("Name") == "lock-state" for v in f.get("Values", ())}
        records = [r for r in (self.info(sid) for sid in ids) if r is not None]
        if states:
            records = [r for r in records if r["LockState"] in states]
        return _Response(), {"Snapshots": records}

    def _delete(self, context: Any = None, **_: Any) -> None:
        snapshot_id = str(self._params(context).get("SnapshotId") or "")
        lock = self.active(snapshot_id)
        if lock is not None:
            expires = lock.expires
            raise aws_error(
                self.locked_error,
                "DeleteSnapshot",
                f"The snapshot '{snapshot_id}' is locked in {lock.state(self.now())} mode"
                + (f" until {expires.isoformat()}" if expires else "")
                + " and cannot be deleted.",
            )


def _invalid(message: str, operation: str = "LockSnapshot") -> ClientError:
    return aws_error("InvalidParameterValue", operation, message)


def _extend_compliance(snapshot_id: str, old: Lock, new: Lock, now: datetime) -> Lock:
    """After the cooling-off period a compliance lock may only be extended."""
    if new.mode != "compliance":
        raise _invalid(f"The snapshot '{snapshot_id}' is locked in compliance mode; its lock mode cannot change.")
    if new.cool_off_hours is not None:
        raise _invalid(f"The cooling-off period of the snapshot '{snapshot_id}' has expired; omit CoolOffPeriod.")
    new.created_on, new.cool_off_hours = old.created_on, old.cool_off_hours
    new.started = old.started
    old_expiry, new_expiry = old.expires, new.expires
    if old_expiry is not None and new_expiry is not None and new_expiry < old_expiry:
        raise _invalid(
            f"The snapshot '{snapshot_id}' is locked in compliance mode until {old_expiry.isoformat()}; "
            "the lock can only be extended."
        )
    if old_expiry is None and new.days is not None and old.days is not None and new.days < old.days:
        raise _invalid(f"The snapshot '{snapshot_id}' is locked in compliance mode; the lock can only be extended.")
    return new
