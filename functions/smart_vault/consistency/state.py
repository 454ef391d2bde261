"""Where an instance's freeze and thaw stand: written by the Freeze/Thaw steps, advanced by Check."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from smart_vault.errors import InvalidInputError
from smart_vault.validation import read_bool, read_int, read_str, require_mapping

# freezing/thawing: a command runs (polled); frozen: the pre script succeeded, snapshot now;
# refused: the freeze failed and the instance's backup fails; fallback: it failed and the backup
# goes on crash-consistent; thawed: the post script succeeded (or nothing was ever sent);
# thaw_failed: the post script failed (the instance's watchdog is what thaws it now).
Status = Literal["freezing", "frozen", "refused", "fallback", "thawing", "thawed", "thaw_failed"]
Mode = Literal["application", "crash"]


@dataclass(frozen=True, kw_only=True)
class ConsistencyState:
    status: Status
    mode: Mode  # what the snapshots are (or will be)
    pre_document: str | None = None
    post_document: str | None = None
    fallback: bool = False
    pre_command_id: str | None = None
    post_command_id: str | None = None
    wait_seconds: int = 0
    waited_seconds: int = 0
    checks: int = 0
    ssm_calls: int = 0  # SendCommand and GetCommandInvocation requests: the cost, per instance
    freeze_ended: str | None = None  # the pre script's ExecutionEndDateTime (SSM's clock)
    frozen_seconds: float | None = None
    # Why the freeze or thaw failed (refused, fallback, thaw_failed): what the alert says.
    error: str | None = None
    cause: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, path: str = "consistency.") -> ConsistencyState:
        data = require_mapping(data, path.rstrip("."))
        status = read_str(data, "status", path=path)
        if status not in get_args(Status):
            raise InvalidInputError(f"{path}status", f"must be one of {', '.join(get_args(Status))}, got {status!r}")
        mode = read_str(data, "mode", path=path, default="application")
        if mode not in get_args(Mode):
            raise InvalidInputError(f"{path}mode", f"must be application or crash, got {mode!r}")
        frozen = data.get("frozen_seconds")
        return cls(
            status=status,
            mode=mode,
            pre_document=read_str(data, "pre_document", path=path, default=None),
            post_document=read_str(data, "post_document", path=path, default=None),
            fallback=read_bool(data, "fallback", path=path, default=False),
            pre_command_id=read_str(data, "pre_command_id", path=path, default=None),
            post_command_id=read_str(data, "post_command_id", path=path, default=None),
            wait_seconds=read_int(data, "wait_seconds", path=path, default=0, minimum=0),
            waited_seconds=read_int(data, "waited_seconds", path=path, default=0, minimum=0),
            checks=read_int(data, "checks", path=path, default=0, minimum=0),
            ssm_calls=read_int(data, "ssm_calls", path=path, default=0, minimum=0),
            freeze_ended=read_str(data, "freeze_ended", path=path, default=None),
            frozen_seconds=float(frozen) if isinstance(frozen, int | float) and not isinstance(frozen, bool) else None,
            error=read_str(data, "error", path=path, default=None),
            cause=read_str(data, "cause", path=path, default=None),
        )
