"""Per-state outcomes from Step Functions history events (parent and child executions)."""

from __future__ import annotations

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


def _attributed(history: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(type, state) per event, a Lambda event given the state it ran for. The iterations of an
    inline Map interleave in one history, so "the state entered last" may be another
    iteration's: each event's previousEventId leads back to its own state's entry."""
    owner: dict[int, str] = {}
    found = []
    for event in history:
        name = state_name(event)
        if event["type"].endswith("StateEntered") and name:
            owner[event.get("id", 0)] = name
        else:
            owner[event.get("id", 0)] = owner.get(event.get("previousEventId", -1), "")
        if event["type"].startswith("LambdaFunction") and not name:
            name = owner[event.get("id", 0)]
        found.append((event["type"], name))
    return found


def state_name(event: dict[str, Any]) -> str:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict) and "name" in value:
            return str(value["name"])
    return ""
