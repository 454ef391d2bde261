"""The retention and lock policies a deployment is configured with, as values: GFS tier counts
and the snapshot lock setting. They sit below both the settings that read them and the
retention code that applies them.

Snapshot lock limits: EC2 API Reference, LockSnapshot (LockDuration 1-36,500 days;
CoolOffPeriod 1-72 hours, compliance mode only)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from smart_vault.errors import InvalidInputError
from smart_vault.validation import read_int, read_str, refuse_text

GFS_TIERS = ("daily", "weekly", "monthly", "yearly")
MAX_GFS_COUNT = 1000


@dataclass(frozen=True, kw_only=True)
class Gfs:
    """Grandfather-father-son counts: how many picks of each tier a volume keeps."""

    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0

    def __str__(self) -> str:
        return ",".join(f"{t}={getattr(self, t)}" for t in GFS_TIERS if getattr(self, t))

    @classmethod
    def parse(cls, value: object) -> Gfs:
        """From ``{"daily": 7, ...}`` or ``"daily=7,weekly=4"`` (the tag and environment form).

        Raises ValueError saying what is wrong; unknown tiers, repeats, non-integers and an
        all-zero policy (which would keep nothing but ``keep_min``) are refused, never guessed."""
        if isinstance(value, str):
            pairs: list[tuple[str, object]] = []
            for part in value.split(","):
                name, sep, text = part.partition("=")
                if not sep:
                    raise ValueError(f"expected tier=count pairs separated by commas, got {part.strip()!r}")
                pairs.append((name.strip(), text.strip()))
        elif isinstance(value, Mapping):
            pairs = [(str(k), v) for k, v in value.items()]
        else:
            raise ValueError(f"must be a mapping or a string like 'daily=7,weekly=4', got {type(value).__name__}")
        counts: dict[str, int] = {}
        for name, raw in pairs:
            if name not in GFS_TIERS:
                raise ValueError(f"unknown tier {name!r} (tiers: {', '.join(GFS_TIERS)})")
            if name in counts:
                raise ValueError(f"tier {name!r} is given twice")
            if isinstance(raw, bool) or not (isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit())):
                raise ValueError(f"{name} must be a whole number, got {raw!r}")
            number = int(raw)
            if not 0 <= number <= MAX_GFS_COUNT:
                raise ValueError(f"{name} must be between 0 and {MAX_GFS_COUNT}, got {number}")
            counts[name] = number
        gfs = cls(**counts)
        if not any(counts.values()):
            raise ValueError("keeps nothing: give at least one tier a count above 0")
        return gfs


LockMode = Literal["governance", "compliance"]
LOCK_MODES = ("governance", "compliance")
MAX_LOCK_DAYS = 36_500  # LockSnapshot LockDuration: 1-36,500 days
COOL_OFF_HOURS = (1, 72)  # LockSnapshot CoolOffPeriod: 1-72 hours


@dataclass(frozen=True, kw_only=True)
class LockSettings:
    mode: LockMode
    days: int
    cool_off_hours: int | None = None

    @classmethod
    def read(cls, value: Any, *, path: str) -> LockSettings | None:
        """``{mode, days, cool_off_hours?}``, also as JSON text (environment, CDK context)."""
        if value is None or value == "":
            return None
        field = f"{path}lock"
        refuse_text(value, field, "an object")
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as error:
                raise InvalidInputError(field, f"must be an object or its JSON text: {error}") from error
        if not isinstance(value, Mapping):
            raise InvalidInputError(field, f"must be an object, got {type(value).__name__}")
        unknown = sorted(set(value) - {"mode", "days", "cool_off_hours"})
        if unknown:
            raise InvalidInputError(f"{field}.{unknown[0]}", "is not a lock setting")
        mode = read_str(value, "mode", path=f"{field}.")
        if mode not in LOCK_MODES:
            raise InvalidInputError(f"{field}.mode", f"must be governance or compliance, got {mode!r}")
        days = read_int(value, "days", path=f"{field}.", minimum=1, maximum=MAX_LOCK_DAYS)
        low, high = COOL_OFF_HOURS
        cool_off = (
            None
            if value.get("cool_off_hours") is None
            else read_int(value, "cool_off_hours", path=f"{field}.", minimum=low, maximum=high)
        )
        if mode == "governance" and cool_off is not None:
            raise InvalidInputError(f"{field}.cool_off_hours", "is for compliance mode only (AWS rejects it otherwise)")
        if mode == "compliance" and cool_off is None:
            # Without a cooling-off period a compliance lock is final the moment it is set: a
            # wrong `days` could then never be undone. AWS allows that; Smart Vault does not.
            raise InvalidInputError(
                f"{field}.cool_off_hours",
                f"is required in compliance mode ({low}-{high} hours), so a mistake can be undone",
            )
        return cls(mode=mode, days=days, cool_off_hours=cool_off)

    def to_text(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}, separators=(",", ":"))

    def request(self, snapshot_id: str) -> dict[str, Any]:
        """LockSnapshot parameters: a duration (it starts when the snapshot completes), never an
        ExpirationDate, which would start counting at once even for a pending snapshot."""
        params: dict[str, Any] = {"SnapshotId": snapshot_id, "LockMode": self.mode, "LockDuration": self.days}
        if self.cool_off_hours is not None:
            params["CoolOffPeriod"] = self.cool_off_hours
        return params
