"""Per-state outcomes from Step Functions history events (parent and child executions)."""

from __future__ import annotations

from collections import Counter
from typing import Any


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
    sequences = [[(e["type"], state_name(e)) for e in history]]
    sequences += child_sequences
    for sequence in sequences:
        current = ""
        for event_type, name in sequence:
            if event_type.endswith("StateEntered") and name:
                current = name
                table.setdefault(name, Counter())["entered"] += 1
            elif event_type.endswith("StateExited") and name:
                table.setdefault(name, Counter())["exited"] += 1
            elif event_type == "LambdaFunctionScheduled" and current:
                table[current]["attempts"] += 1
            elif event_type in ("LambdaFunctionFailed", "LambdaFunctionTimedOut") and current:
                table[current]["errors"] += 1
    for counts in table.values():
        counts["retries"] = max(0, counts["attempts"] - counts["entered"]) if counts["attempts"] else 0
        # An entry that never exited failed uncaught; errors beyond the retries were caught.
        counts["failed"] = max(0, counts["errors"] - counts["retries"])
    return {name: dict(sorted(c.items())) for name, c in sorted(table.items())}


def state_name(event: dict[str, Any]) -> str:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict) and "name" in value:
            return str(value["name"])
    return ""
