"""Per-state outcomes from Step Functions history events (parent and child executions)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

HISTORY_PAGE = 1000  # GetExecutionHistory's largest page (maxResults)


def read_history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    """Every event of an execution: GetExecutionHistory answers in pages of at most 1,000."""
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": HISTORY_PAGE}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def retries(events: list[tuple[str, str]]) -> int:
    """Retry attempts: Lambda invocations beyond the first of each Task state entry."""
    scheduled = sum(1 for t, _ in events if t == "LambdaFunctionScheduled")
    entered = sum(1 for t, _ in events if t == "TaskStateEntered")
    return max(0, scheduled - entered)


def state_outcomes(
    history: list[dict[str, Any]], child_sequences: list[list[tuple[str, str]]]
) -> dict[str, dict[str, int]]:
    """Per state: how often it was entered, exited, retried, and failed (caught or not)."""
    table: dict[str, Counter[str]] = {}
    sequences = [_attributed(history), *child_sequences]
    for sequence in sequences:
        current = ""
        for event_type, name in sequence:
            if event_type.endswith("StateEntered") and name:
                current = name
                table.setdefault(name, Counter())["entered"] += 1
            elif event_type.endswith("StateExited") and name:
                table.setdefault(name, Counter())["exited"] += 1
            elif event_type == "LambdaFunctionScheduled" and (name or current):
                table.setdefault(name or current, Counter())["attempts"] += 1
            elif event_type in ("LambdaFunctionFailed", "LambdaFunctionTimedOut") and (name or current):
                table.setdefault(name or current, Counter())["errors"] += 1
    for counts in table.values():
        counts["retries"] = max(0, counts["attempts"] - counts["entered"]) if counts["attempts"] else 0
        # An entry that never exited failed uncaught; errors beyond the retries were caught.
        counts["failed"] = max(0, counts["errors"] - counts["retries"])
    return {name: dict(sorted(c.items())) for name, c in sorted(table.items())}


def _entries(history: list[dict[str, Any]]) -> dict[int, int]:
    """Event id -> the id of the StateEntered event of the state it belongs to. The iterations
    of an inline Map (and the branches of a Parallel) interleave in one history, so "the state
    entered last" may be another iteration's: each event's previousEventId leads back to its own."""
    entry: dict[int, int] = {}
    for event in history:
        own = event.get("id", 0)
        if event["type"].endswith("StateEntered"):
            entry[own] = own
        else:
            entry[own] = entry.get(event.get("previousEventId", -1), 0)
    return entry


def _attributed(history: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(type, state) per event, a Lambda event given the state it ran for."""
    entry = _entries(history)
    names = {e.get("id", 0): state_name(e) for e in history if e["type"].endswith("StateEntered")}
    found = []
    for event in history:
        name = state_name(event)
        if event["type"].startswith("LambdaFunction") and not name:
            name = names.get(entry[event.get("id", 0)], "")
        found.append((event["type"], name))
    return found


def failed_tasks(history: list[dict[str, Any]]) -> list[str]:
    """Each state entry whose last Lambda attempt failed, as "who: State: error", who being the
    instance its input names (a drill's target, a backup child's instance)."""
    entry = _entries(history)
    entered = {e.get("id", 0): e for e in history if e["type"].endswith("StateEntered")}
    failed: dict[int, str] = {}
    for event in history:
        own = entry[event.get("id", 0)]
        if event["type"] in ("LambdaFunctionFailed", "LambdaFunctionTimedOut"):
            details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            failed[own] = _error_text(details)
        elif event["type"] == "LambdaFunctionSucceeded":
            failed.pop(own, None)  # a retry that succeeded
    return [f"{_who(entered[e])}: {state_name(entered[e])}: {error}" for e, error in failed.items() if e in entered]


def _error_text(details: dict[str, Any]) -> str:
    """A Lambda failure's message: the handler's errorMessage inside the cause, else the error."""
    try:
        cause = json.loads(details.get("cause") or "")
    except ValueError:
        cause = None
    if isinstance(cause, dict) and cause.get("errorMessage"):
        return str(cause["errorMessage"])
    return str(details.get("error") or details.get("cause") or "failed")


def _who(entered: dict[str, Any]) -> str:
    """The instance a state entry's input names: itself, or one of its objects (target, instance)."""
    try:
        data = json.loads(next(v for k, v in entered.items() if k.endswith("EventDetails"))["input"])
    except (StopIteration, KeyError, TypeError, ValueError):
        return "?"
    candidates = [data, *data.values()] if isinstance(data, dict) else []
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get("instance_id"):
            return str(candidate.get("name") or candidate["instance_id"])
    return "?"


def state_name(event: dict[str, Any]) -> str:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict) and "name" in value:
            return str(value["name"])
    return ""
