"""Readers that validate one field of a JSON-like mapping and name it when it is wrong."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from smart_vault.errors import InvalidInputError

_MISSING = object()
_ID_PATTERNS = {
    "instance": re.compile(r"^i-[0-9a-f]{8,17}$"),
    "volume": re.compile(r"^vol-[0-9a-f]{8,17}$"),
    "snapshot": re.compile(r"^snap-[0-9a-f]{8,17}$"),
}


# Where the values come from. The environment and CDK context (`-c keep_min=3`) carry every
# setting as text, so the readers accept "3", "true" and "a,b" for them; a JSON document (a
# scenario) has types of its own, and there a quoted number is a mistake, not a number.
_JSON_TYPED: ContextVar[bool] = ContextVar("json_typed", default=False)


@contextlib.contextmanager
def json_typed() -> Iterator[None]:
    """Read a JSON document: inside, numbers, booleans, lists and objects must be given as
    such; their text forms are refused, naming the field."""
    token = _JSON_TYPED.set(True)
    try:
        yield
    finally:
        _JSON_TYPED.reset(token)


def text_forms_allowed() -> bool:
    """False while reading a JSON document (see ``json_typed``)."""
    return not _JSON_TYPED.get()


def refuse_text(value: Any, field: str, kind: str) -> None:
    """In a JSON document, ``value`` (of a field that takes ``kind``) must not be a string."""
    if isinstance(value, str) and not text_forms_allowed():
        raise InvalidInputError(field, f"must be {kind}, not the string {value!r} (remove the quotes)")


def require_mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInputError(field, f"must be an object, got {type(value).__name__}")
    return value


def _get(data: Mapping[str, Any], key: str, field: str, default: Any) -> Any:
    value = data.get(key, _MISSING)
    if value is _MISSING or value is None:
        if default is _MISSING:
            raise InvalidInputError(field, "is required")
        return default
    return value


def read_str(data: Mapping[str, Any], key: str, *, path: str = "", default: Any = _MISSING) -> Any:
    field = f"{path}{key}"
    value = _get(data, key, field, default)
    if value is default and default is not _MISSING:
        return value
    if not isinstance(value, str) or not value:
        raise InvalidInputError(field, f"must be a non-empty string, got {value!r}")
    return value


def read_bool(data: Mapping[str, Any], key: str, *, path: str = "", default: Any = _MISSING) -> bool:
    field = f"{path}{key}"
    value = _get(data, key, field, default)
    if isinstance(value, bool):
        return value
    refuse_text(value, field, "true or false")
    # Environment variables and CDK context arrive as strings.
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise InvalidInputError(field, f"must be true or false, got {value!r}")


def read_int(
    data: Mapping[str, Any],
    key: str,
    *,
    path: str = "",
    default: Any = _MISSING,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    field = f"{path}{key}"
    value = _get(data, key, field, default)
    refuse_text(value, field, "a JSON number")
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(field, f"must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidInputError(field, f"must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InvalidInputError(field, f"must be at most {maximum}, got {value}")
    return value


def read_fraction(data: Mapping[str, Any], key: str, *, path: str = "", default: Any = _MISSING) -> float:
    field = f"{path}{key}"
    value = _get(data, key, field, default)
    refuse_text(value, field, "a JSON number")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InvalidInputError(field, f"must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(field, f"must be a number, got {value!r}")
    if not 0 < value <= 1:
        raise InvalidInputError(field, f"must be greater than 0 and at most 1, got {value}")
    return float(value)


def read_str_list(data: Mapping[str, Any], key: str, *, path: str = "", default: Any = _MISSING) -> tuple[str, ...]:
    field = f"{path}{key}"
    value = _get(data, key, field, default)
    refuse_text(value, field, "a JSON list")
    if isinstance(value, str):  # comma-separated, as in an environment variable
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise InvalidInputError(field, f"must be a list of non-empty strings, got {value!r}")
    return tuple(value)


def read_action(event: Any, actions: tuple[str, ...]) -> tuple[Mapping[str, Any], str]:
    """A multi-action handler's input and its ``action``, which must be one of ``actions``."""
    event = require_mapping(event, "input")
    action = read_str(event, "action")
    if action not in actions:
        raise InvalidInputError("action", f"must be one of {', '.join(actions)}, got {action!r}")
    return event, action


def parse_time(raw: str, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(field, f"must be an ISO 8601 time, got {raw!r}") from None
    if parsed.tzinfo is None:
        raise InvalidInputError(field, f"must include a time zone, got {raw!r}")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 shifted across the calendar's edge by its offset
        raise InvalidInputError(field, f"is out of range, got {raw!r}") from None


def read_aws_id(data: Mapping[str, Any], key: str, kind: str, *, path: str = "") -> str:
    value = read_str(data, key, path=path)
    if not _ID_PATTERNS[kind].match(value):
        raise InvalidInputError(f"{path}{key}", f"must be a {kind} id, got {value!r}")
    return str(value)


def read_list(data: Mapping[str, Any], key: str, *, path: str = "", default: Any = _MISSING) -> list[Any]:
    field = f"{path}{key}"
    value = _get(data, key, field, default)
    if not isinstance(value, list):
        raise InvalidInputError(field, f"must be a list, got {type(value).__name__}")
    return value


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, second precision: the form used in tags and run ids."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
