"""One DeleteSnapshot as pruning needs it: retried a bounded number of times, deferred after that,
and re-checked for a lock whenever EC2 refuses it.

- A throttled (or AWS server-side) refusal is retried here, after the SDK's own retries, with
  exponential backoff and jitter ("Retry behavior", AWS SDKs and Tools Reference Guide; "Request
  throttling for the Amazon EC2 API": back off and retry). When it still fails the deletion is
  *deferred*: the snapshot stays, its intent stays in the journal, the next run plans it again,
  and the backup is not failed for it. Once one deletion is deferred the caller stops deleting
  for this run: the bucket is empty, and more requests only prolong the storm.
- Any other refusal is re-checked with DescribeLockedSnapshots: a lock that appeared after the
  plan read the locks (another actor, a console user) keeps the snapshot, reported as locked.
  The EC2 API Reference documents no error code for deleting a locked snapshot, so none is
  relied on. Without a lock, the refusal is what it was (in use by an AMI: skipped; any other
  error: raised, so the step fails visibly).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from smart_vault.aws import Ec2
from smart_vault.errors import SmartVaultError, ThrottledError, TransientAwsError
from smart_vault.retention.locks import active_locks

DELETE_ATTEMPTS = 3  # DeleteSnapshot requests per snapshot (each with the SDK's own retries)
BACKOFF_SECONDS = 1.0  # before the second attempt; doubled for each later one, full jitter
DEFERRED_PREFIX = "deferred:"  # SkippedDelete.reason of a deferred deletion: deferred:<AWS code>

# Waiting between attempts. The simulator replaces it so that the wait passes on its virtual
# clock (the Lambda's modelled duration) instead of the wall clock.
pause: Callable[[float], None] = time.sleep

Result = Literal["deleted", "already_deleted", "in_use", "locked", "deferred"]


@dataclass(frozen=True, kw_only=True)
class DeleteAttempt:
    result: Result
    code: str | None = None  # the AWS code of a deferred deletion
    locked_until: datetime | None = None  # a lock found on re-check


def _backoff(snapshot_id: str, attempt: int) -> float:
    """Full jitter, seeded by the snapshot (reproducible, and different for each snapshot)."""
    return random.Random(f"{snapshot_id}:{attempt}").uniform(0, BACKOFF_SECONDS * 2**attempt)


def delete_or_defer(ec2: Ec2, snapshot_id: str, *, now: datetime, attempts: int = DELETE_ATTEMPTS) -> DeleteAttempt:
    for attempt in range(attempts):
        try:
            reason = ec2.delete_snapshot(snapshot_id)
        except (ThrottledError, TransientAwsError) as error:
            if attempt + 1 >= attempts:
                return DeleteAttempt(result="deferred", code=error.aws_code or type(error).__name__)
            pause(_backoff(snapshot_id, attempt))
            continue
        except SmartVaultError:
            until = _locked_until(ec2, snapshot_id, now)
            if until is not None:
                return DeleteAttempt(result="locked", locked_until=until)
            raise
        if reason is None:
            return DeleteAttempt(result="deleted")
        if reason == "in_use":
            until = _locked_until(ec2, snapshot_id, now)
            if until is not None:
                return DeleteAttempt(result="locked", locked_until=until)
        return DeleteAttempt(result="already_deleted" if reason == "already_deleted" else "in_use")
    raise AssertionError("unreachable: attempts must be at least 1")


def _locked_until(ec2: Ec2, snapshot_id: str, now: datetime) -> datetime | None:
    return active_locks(ec2, [snapshot_id], now).get(snapshot_id)
