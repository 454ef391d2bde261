"""The simulator's scenario file (contract: shared/spec/simulation.md), validated field by field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from smart_vault.errors import InvalidInputError
from smart_vault.settings import Settings
from smart_vault.validation import (
    parse_time,
    read_bool,
    read_int,
    read_list,
    read_str,
    require_mapping,
)

INSTANCE_STATES = ("running", "stopped", "terminated")
FAULT_OPERATIONS = (
    "DescribeInstances",
    "DescribeVolumes",
    "CreateSnapshots",
    "DescribeSnapshots",
    "DeleteSnapshot",
    "Publish",
    "PutObject",
    "GetObject",
    "ListObjectsV2",
)
# Settings the simulator owns: each run gets its own emulated bucket, topic and deployment.
SIMULATOR_OWNED = ("bucket_name", "topic_arn", "deployment_id")


class ScenarioError(InvalidInputError):
    """An invalid scenario: the CLI exits 2 with this message."""


def _fail(field: str, problem: str) -> ScenarioError:
    return ScenarioError(field, problem)


@dataclass(frozen=True, kw_only=True)
class VolumeDef:
    device: str
    size_gib: int
    tags: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class InstanceDef:
    name: str
    state: str
    tags: dict[str, str]
    volumes: tuple[VolumeDef, ...]
    snapshot_checks_until_complete: int = 0
    snapshot_error: bool = False


@dataclass(frozen=True, kw_only=True)
class ExistingSnapshot:
    label: str
    instance: str
    device: str
    age_days: float
    managed: bool
    used_by_ami: bool


@dataclass(frozen=True, kw_only=True)
class FaultDef:
    operation: str
    error: str
    instance: str | None = None
    snapshot: str | None = None
    count: int | None = None


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str
    region: str
    settings: Settings
    instances: tuple[InstanceDef, ...]
    existing_snapshots: tuple[ExistingSnapshot, ...] = ()
    faults: tuple[FaultDef, ...] = ()
    runs: tuple[datetime, ...] = ()
    # Simulator-only: authorize every call against the synthesized stack's IAM (default on).
    enforce_iam: bool = True


def _str_map(value: Any, field: str) -> dict[str, str]:
    data = require_mapping(value if value is not None else {}, field)
    for key, val in data.items():
        if not isinstance(key, str) or not isinstance(val, str):
            raise _fail(f"{field}.{key}", "tag keys and values must be strings")
    return dict(data)


def _duration(raw: Any, field: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([mhd])", str(raw)) if isinstance(raw, str) else None
    if not match or int(match.group(1)) == 0:
        raise _fail(field, f"must be a duration like 1d, 12h or 30m, got {raw!r}")
    unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


def _runs(data: Mapping[str, Any]) -> tuple[datetime, ...]:
    entries = read_list(data, "runs")
    if not entries:
        raise _fail("runs", "must list at least one run")
    times: list[datetime] = []
    for i, entry in enumerate(entries):
        path = f"runs[{i}]"
        entry = require_mapping(entry, path)
        if "at" in entry:
            times.append(parse_time(read_str(entry, "at", path=f"{path}."), f"{path}.at"))
        elif "every" in entry:
            if not times:
                raise _fail(f"{path}.every", "needs an earlier run with 'at' to continue from")
            step = _duration(entry["every"], f"{path}.every")
            count = read_int(entry, "count", path=f"{path}.", minimum=1, maximum=1000)
            last = times[-1]
            times.extend(last + step * (n + 1) for n in range(count))
        else:
            raise _fail(path, "must have 'at' or 'every'")
    if len(times) > 1000:
        raise _fail("runs", "may schedule at most 1000 runs")
    return tuple(times)


def parse_scenario(data: Any) -> Scenario:
    try:
        return _parse(data)
    except ScenarioError:
        raise
    except InvalidInputError as error:
        raise ScenarioError(error.field, str(error).split(": ", 1)[-1]) from None


def _parse(data: Any) -> Scenario:
    data = require_mapping(data, "scenario")
    raw_settings = dict(require_mapping(data.get("settings") or {}, "settings"))
    for owned in SIMULATOR_OWNED:
        if owned in raw_settings:
            raise _fail(f"settings.{owned}", "is set by the simulator")
    enforce_iam = read_bool(raw_settings, "enforce_iam", path="settings.", default=True)
    raw_settings.pop("enforce_iam", None)
    settings = Settings.from_mapping(raw_settings, path="settings.")

    instances: list[InstanceDef] = []
    names: set[str] = set()
    for i, raw in enumerate(read_list(data, "instances")):
        path = f"instances[{i}]."
        raw = require_mapping(raw, path.rstrip("."))
        name = read_str(raw, "name", path=path)
        if name in names:
            raise _fail(f"{path}name", f"duplicates another instance: {name!r}")
        names.add(name)
        state = read_str(raw, "state", path=path, default="running")
        if state not in INSTANCE_STATES:
            raise _fail(f"{path}state", f"must be one of {', '.join(INSTANCE_STATES)}, got {state!r}")
        volumes = []
        devices: set[str] = set()
        raw_volumes = read_list(raw, "volumes", path=path)
        if not raw_volumes:
            raise _fail(f"{path}volumes", "must list at least the root volume")
        for j, vol in enumerate(raw_volumes):
            vpath = f"{path}volumes[{j}]."
            vol = require_mapping(vol, vpath.rstrip("."))
            device = read_str(vol, "device", path=vpath)
            if device in devices:
                raise _fail(f"{vpath}device", f"duplicates another volume: {device!r}")
            devices.add(device)
            volumes.append(
                VolumeDef(
                    device=device,
                    size_gib=read_int(vol, "size_gib", path=vpath, default=8, minimum=1, maximum=65536),
                    tags=_str_map(vol.get("tags"), f"{vpath}tags"),
                )
            )
        instances.append(
            InstanceDef(
                name=name,
                state=state,
                tags=_str_map(raw.get("tags"), f"{path}tags"),
                volumes=tuple(volumes),
                snapshot_checks_until_complete=read_int(
                    raw,
                    "snapshot_checks_until_complete",
                    path=path,
                    default=0,
                    minimum=0,
                    maximum=1000,
                ),
                snapshot_error=read_bool(raw, "snapshot_error", path=path, default=False),
            )
        )
    by_name = {i.name: i for i in instances}

    existing: list[ExistingSnapshot] = []
    labels: set[str] = set()
    for i, raw in enumerate(read_list(data, "existing_snapshots", default=[])):
        path = f"existing_snapshots[{i}]."
        raw = require_mapping(raw, path.rstrip("."))
        label = read_str(raw, "label", path=path)
        if label in labels:
            raise _fail(f"{path}label", f"duplicates another snapshot: {label!r}")
        labels.add(label)
        instance = read_str(raw, "instance", path=path)
        if instance not in by_name:
            raise _fail(f"{path}instance", f"names no instance of the scenario: {instance!r}")
        device = read_str(raw, "device", path=path, default=by_name[instance].volumes[0].device)
        if device not in {v.device for v in by_name[instance].volumes}:
            raise _fail(f"{path}device", f"is not a volume of {instance}: {device!r}")
        age = raw.get("age_days", 0)
        if isinstance(age, bool) or not isinstance(age, int | float) or age < 0:
            raise _fail(f"{path}age_days", f"must be a number of days >= 0, got {age!r}")
        existing.append(
            ExistingSnapshot(
                label=label,
                instance=instance,
                device=device,
                age_days=float(age),
                managed=read_bool(raw, "managed", path=path, default=True),
                used_by_ami=read_bool(raw, "used_by_ami", path=path, default=False),
            )
        )

    faults: list[FaultDef] = []
    for i, raw in enumerate(read_list(data, "faults", default=[])):
        path = f"faults[{i}]."
        raw = require_mapping(raw, path.rstrip("."))
        operation = read_str(raw, "operation", path=path)
        if operation not in FAULT_OPERATIONS:
            raise _fail(
                f"{path}operation",
                f"must be one of {', '.join(FAULT_OPERATIONS)}, got {operation!r}",
            )
        instance = raw.get("instance")
        if instance is not None and instance not in by_name:
            raise _fail(f"{path}instance", f"names no instance of the scenario: {instance!r}")
        snapshot = raw.get("snapshot")
        if snapshot is not None and snapshot not in labels:
            raise _fail(f"{path}snapshot", f"names no existing snapshot label: {snapshot!r}")
        error = read_str(raw, "error", path=path)
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9.]*", error):
            raise _fail(f"{path}error", f"must be an AWS error code, got {error!r}")
        faults.append(
            FaultDef(
                operation=operation,
                error=error,
                instance=instance,
                snapshot=snapshot,
                count=read_int(raw, "count", path=path, minimum=1) if raw.get("count") is not None else None,
            )
        )

    return Scenario(
        name=read_str(data, "name", default="unnamed scenario"),
        region=read_str(data, "region", default="us-east-1"),
        settings=settings,
        instances=tuple(instances),
        existing_snapshots=tuple(existing),
        faults=tuple(faults),
        runs=_runs(data),
        enforce_iam=enforce_iam,
    )
