"""EventBridge Scheduler expressions and time zones, checked at synth rather than at deploy.

The grammar is the one the EventBridge Scheduler User Guide gives ("Schedule types in
EventBridge Scheduler", https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html,
and its cron table in "Cron expressions"): rate(value unit) with a positive value and minute(s),
hour(s) or day(s); cron(minutes hours day-of-month month day-of-week year), six fields, with
? in exactly one of day-of-month and day-of-week. One-time at(...) schedules are refused: a
backup, drill or preflight repeats.
"""

from __future__ import annotations

import re
import zoneinfo

_RATE = re.compile(r"rate\(([1-9]\d*) (minute|minutes|hour|hours|day|days)\)")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (field, lowest, highest, names for 1..n, the field's own special forms).
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...], str], ...] = (
    ("minutes", 0, 59, (), ""),
    ("hours", 0, 23, (), ""),
    ("day-of-month", 1, 31, (), r"\?|L|LW|\d{1,2}W"),
    ("month", 1, 12, _MONTHS, ""),
    ("day-of-week", 1, 7, _DAYS, r"\?|L|[1-7]L|[1-7]#[1-5]"),
    ("year", 1970, 2199, (), ""),
)


def schedule_problem(expression: str) -> str | None:
    """What is wrong with a recurring Scheduler expression, or None when it is valid."""
    if _RATE.fullmatch(expression):
        return None
    if expression.startswith("rate("):
        return "must be rate(VALUE UNIT) with a positive whole VALUE and minute(s), hour(s) or day(s)"
    match = re.fullmatch(r"cron\((.*)\)", expression)
    if not match:
        return "must be cron(...) or rate(...)"
    parts = match.group(1).split()
    if len(parts) != len(_FIELDS):
        return f"cron needs {len(_FIELDS)} fields (minutes hours day-of-month month day-of-week year), got {len(parts)}"
    for part, (name, low, high, names, special) in zip(parts, _FIELDS, strict=True):
        if not (special and re.fullmatch(special, part)) and not all(
            _item_ok(item, low, high, names) for item in part.split(",")
        ):
            return f"cron {name} field {part!r} is not valid (values {low}-{high})"
    if (parts[2] == "?") == (parts[4] == "?"):
        return "cron needs ? in exactly one of day-of-month and day-of-week"
    return None


def _item_ok(item: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    """One comma-separated item: *, a value, a range a-b, or either (or *) with /step."""
    base, slash, step = item.partition("/")
    if slash and not (step.isdigit() and int(step) >= 1):
        return False
    if base == "*":
        return True
    ends = base.split("-")
    values = [_value(end, names) for end in ends]
    return len(ends) <= 2 and all(v is not None and low <= v <= high for v in values)


def _value(text: str, names: tuple[str, ...]) -> int | None:
    if text.isdigit():
        return int(text)
    return names.index(text.upper()) + 1 if text.upper() in names else None


def time_zone_problem(name: str) -> str | None:
    """Scheduler takes IANA time zone names (ScheduleExpressionTimezone); so does zoneinfo."""
    zones = zoneinfo.available_timezones()
    if name == "UTC" or name in zones:
        return None
    if not zones:
        return "cannot be checked: this machine has no time zone database (install tzdata)"
    return f"is not an IANA time zone name such as UTC or Europe/Berlin, got {name!r}"
