"""Where the backup steps meet consistency: the branch to the freeze, and what the outcome says."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smart_vault.consistency.state import ConsistencyState
from smart_vault.models import InstanceJob


def freeze_first(job: InstanceJob, recorded: Any) -> bool:
    """Does the Snapshot step send this instance to its freeze instead of snapshotting? An
    opted-in instance, the first time (no freeze recorded yet), in a real run, still there."""
    target = job.instance
    return target.consistency == "application" and recorded is None and not job.run.dry_run and not target.skip_reason


def outcome_fields(job: Mapping[str, Any]) -> dict[str, Any]:
    """``consistency``, ``frozen_seconds`` and ``consistency_error`` (a fallback's reason) of the
    child's state; an instance that never opted in is crash-consistent, at no cost."""
    raw = job.get("consistency")
    if raw is None:
        return {"consistency": "crash", "frozen_seconds": None, "consistency_error": None}
    state = ConsistencyState.from_dict(raw)
    fell_back = state.mode == "crash" and state.error is not None
    return {
        "consistency": state.mode,
        "frozen_seconds": state.frozen_seconds,
        "consistency_error": f"{state.error}: {state.cause}" if fell_back else None,
    }
