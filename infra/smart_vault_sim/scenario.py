"""The simulator's scenario file (contract: docs/scenarios.md), validated field by field.

One reader per section (settings, instances, existing snapshots, faults, runs); each names a
bad field by its path (``instances[0].volumes[1].size_gib``) and rejects keys it does not know,
so a typo can never produce a scenario that silently tests nothing.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from smart_vault.constants import FUNCTION_HANDLERS
from smart_vault.errors import InvalidInputError
from smart_vault.settings import Settings
from smart_vault.validation import (
    json_typed,
    parse_time,
    read_bool,
    read_int,
    read_list,
    read_str,
    require_mapping,
)
from smart_vault_sim import sar
from smart_vault_sim.ebs_direct import FILESYSTEMS
from smart_vault_sim.run_command import OUTCOMES, SsmDef
from smart_vault_sim.scenario_checks import ScenarioError as ScenarioError  # re-exported: callers import it from here
from smart_vault_sim.scenario_checks import refuse_inert as _refuse_inert

INSTANCE_STATES = ("running", "stopped", "terminated")
SNAPSHOT_STATES = ("completed", "pending", "error")
FAULT_OPERATIONS = (
    "DescribeInstances",
    "DescribeVolumes",
    "CreateSnapshots",
    "DescribeSnapshots",
    "DescribeImages",
    "DeleteSnapshot",
    "CopySnapshot",
    "DescribeKey",
    "Publish",
    "PutObject",
    "GetObject",
    "ListObjectsV2",
    # The restore (smart-vault restore; the drill): an instance's fault matches requests that
    # name its snapshots, or an image registered from them.
    "CreateVolume",
    "RegisterImage",
    "RunInstances",
    # The restore drill's other calls.
    "DescribeAvailabilityZones",
    "DeleteVolume",
    "CreateTags",
    "LockSnapshot",
    "DescribeLockedSnapshots",
    # Application consistency (SSM Run Command).
    "SendCommand",
    "GetCommandInvocation",
    # A Lambda function's own failure, by function key (faults[].function), such as a timeout:
    # the handler runs (its AWS calls happen), then Lambda reports the error instead of its result.
    "Invoke",
)
# Operations the contract lets a fault name but the product does not call yet: a fault on
# them would never fire, so it is refused instead of silently testing nothing.
PLANNED_OPERATIONS: tuple[str, ...] = ()
# Settings the simulator owns: each run gets its own emulated bucket, topic and deployment.
SIMULATOR_OWNED = ("bucket_name", "topic_arn", "deployment_id")
# Settings of the contract's additions that the product does not implement yet.
PLANNED_SETTINGS: dict[str, str] = {}  # every setting of the additions is built
WORKFLOWS = ("backup", "drill", "preflight")
# A runs[] entry with "redrive": true redrives the backup run before it (RedriveExecution).
REDRIVE = "redrive"
# The emulated account's time window: EBS snapshots exist since 2008, and an end well inside
# datetime's range keeps every derived time (age, schedule) representable.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_RUNS = 1000
MAX_AGE_DAYS = 36_500
MAX_STEP = timedelta(days=366)

_TOP_KEYS = (
    "name",
    "region",
    "settings",
    "instances",
    "existing_snapshots",
    "faults",
    "runs",
    "ec2_api_limits",
    "emulator",
    "deny",
    "alert_subscriptions",
)
_EMULATOR_KEYS = ("eventual_consistency",)
_DENY_KEYS = ("role", "action", "resource")
_SUBSCRIPTION_KEYS = ("protocol", "endpoint", "status")
SUBSCRIPTION_STATUSES = ("confirmed", "pending")
# Roles a scenario may deny actions to: the stack's functions and the state machines.
DENY_ROLES = (*FUNCTION_HANDLERS, "state_machine", "drill_state_machine")
_INSTANCE_KEYS = (
    "name",
    "state",
    "tags",
    "volumes",
    "snapshot_checks_until_complete",
    "snapshot_error",
    "terminated_at",
    "snapshot_seconds",
    "ssm",
)
_SSM_KEYS = ("managed", "pre", "post", "seconds")
_VOLUME_KEYS = ("device", "size_gib", "tags", "type", "kms_key", "filesystem")
# EBS volume types (CreateVolume API reference, VolumeType).
VOLUME_TYPES = ("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")
_LIMIT_KEYS = ("capacity", "refill_per_second")
_SNAPSHOT_KEYS = (
    "label",
    "instance",
    "device",
    "age_days",
    "managed",
    "used_by_ami",
    "state",
    "deployment",
    "detached",
)
_FAULT_KEYS = ("operation", "instance", "snapshot", "error", "count", "function")
_RUN_KEYS = ("at", "every", "count", "workflow", "redrive")


def _fail(field: str, problem: str) -> ScenarioError:
    return ScenarioError(field, problem)


@dataclass(frozen=True, kw_only=True)
class VolumeDef:
    device: str
    size_gib: int
    tags: dict[str, str]
    type: str = "gp3"
    # Encrypted with this customer managed key of the scenario's Region (alias/...; the emulator
    # creates its key): None, unencrypted.
    kms_key: str | None = None
    # What its snapshots' blocks hold (smart_vault_sim.ebs_direct.FILESYSTEMS): ext4, xfs, ntfs,
    # gpt-ext4 (a GPT-partitioned disk), raw, blank (all zero), corrupt (checksums fail).
    filesystem: str = "ext4"


@dataclass(frozen=True, kw_only=True)
class InstanceDef:
    name: str
    state: str
    tags: dict[str, str]
    volumes: tuple[VolumeDef, ...]
    snapshot_checks_until_complete: int = 0
    snapshot_error: bool = False
    terminated_at: datetime | None = None
    # Virtual seconds a new snapshot stays pending (on the fleet clock); 0: the checks model.
    snapshot_seconds: int = 0
    # How SSM Run Command answers for it (run_command); None: managed, every script succeeds.
    ssm: SsmDef | None = None


@dataclass(frozen=True, kw_only=True)
class ExistingSnapshot:
    label: str
    instance: str
    device: str
    age_days: float
    managed: bool
    used_by_ami: bool
    state: str = "completed"
    deployment: str | None = None  # managed marker value; None: this deployment
    detached: bool = False


@dataclass(frozen=True, kw_only=True)
class FaultDef:
    operation: str
    error: str
    instance: str | None = None
    snapshot: str | None = None
    count: int | None = None
    function: str | None = None  # operation Invoke: the function key (FUNCTION_HANDLERS)


@dataclass(frozen=True, kw_only=True)
class DenyDef:
    role: str  # a function key (FUNCTION_HANDLERS) or state_machine / drill_state_machine
    action: str  # an IAM action the emulator knows (smart_vault_sim.sar), e.g. ec2:CopySnapshot
    resource: str = "*"  # an ARN pattern


@dataclass(frozen=True, kw_only=True)
class SubscriptionDef:
    protocol: str
    endpoint: str
    status: str  # confirmed | pending (SNS lists a pending one as "PendingConfirmation")


DEFAULT_SUBSCRIPTIONS = (SubscriptionDef(protocol="email", endpoint="alerts@example.com", status="confirmed"),)


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str
    region: str
    settings: Settings
    instances: tuple[InstanceDef, ...]
    existing_snapshots: tuple[ExistingSnapshot, ...] = ()
    faults: tuple[FaultDef, ...] = ()
    runs: tuple[datetime, ...] = ()
    # The workflow of each run (same order as runs): backup or drill; empty: every run a backup.
    workflows: tuple[str, ...] = ()
    # Simulator-only: authorize every call against the synthesized stack's IAM (default on).
    enforce_iam: bool = True
    # The account's EC2 request limits where they differ from the documented defaults
    # (action -> (bucket capacity, refill per second)), e.g. after a limit increase.
    ec2_api_limits: dict[str, tuple[float, float]] = field(default_factory=dict)
    # Model EC2's eventual consistency (snapshot_lag): new resources missing from their first Describe.
    eventual_consistency: bool = False
    # What an SCP or permission boundary would add: an explicit Deny on a role (preflight).
    deny: tuple[DenyDef, ...] = ()
    # The alert topic's subscriptions; default one confirmed e-mail subscription.
    alert_subscriptions: tuple[SubscriptionDef, ...] = ()


def parse_scenario(data: Any) -> Scenario:
    try:
        with json_typed():  # a JSON document: "keep_min": "3" is a mistake, not a number
            scenario = _parse(data)
    except ScenarioError:
        raise
    except InvalidInputError as error:
        raise ScenarioError(error.field, str(error).split(": ", 1)[-1]) from None
    _refuse_inert(scenario)
    return scenario


def _parse(data: Any) -> Scenario:
    data = _object(data, "scenario", _TOP_KEYS, prefix="")
    instances = _instances(data)
    existing = _existing_snapshots(data, instances)
    return Scenario(
        name=read_str(data, "name", default="unnamed scenario"),
        region=_region(data),
        settings=_settings(data),
        instances=instances,
        existing_snapshots=existing,
        faults=_faults(data, instances, existing),
        runs=_runs(data),
        workflows=_workflows(data),
        enforce_iam=read_bool(_raw_settings(data), "enforce_iam", path="settings.", default=True),
        ec2_api_limits=_ec2_api_limits(data),
        eventual_consistency=read_bool(
            _object(data.get("emulator") or {}, "emulator", _EMULATOR_KEYS),
            "eventual_consistency",
            path="emulator.",
            default=False,
        ),
        deny=_deny(data, enforce_iam=read_bool(_raw_settings(data), "enforce_iam", path="settings.", default=True)),
        alert_subscriptions=_subscriptions(data),
    )


def _deny(data: Mapping[str, Any], *, enforce_iam: bool) -> tuple[DenyDef, ...]:
    entries = []
    if data.get("deny") and not enforce_iam:
        raise _fail("deny", "needs settings.enforce_iam (a Deny is judged by the emulated IAM)")
    for i, raw in enumerate(read_list(data, "deny", default=[])):
        path = f"deny[{i}]"
        entry = _object(raw, path, _DENY_KEYS)
        role = read_str(entry, "role", path=f"{path}.")
        if role not in DENY_ROLES:
            raise _fail(f"{path}.role", f"must be one of {', '.join(DENY_ROLES)}, got {role!r}")
        action = read_str(entry, "action", path=f"{path}.")
        if not sar.actions_matching(action):
            raise _fail(f"{path}.action", f"is not an IAM action the emulator authorizes, got {action!r}")
        resource = read_str(entry, "resource", path=f"{path}.", default="*")
        if resource != "*" and not resource.startswith("arn:"):
            raise _fail(f"{path}.resource", f"must be an ARN pattern or *, got {resource!r}")
        entries.append(DenyDef(role=role, action=action, resource=resource))
    return tuple(entries)


def _subscriptions(data: Mapping[str, Any]) -> tuple[SubscriptionDef, ...]:
    if "alert_subscriptions" not in data:
        return DEFAULT_SUBSCRIPTIONS
    entries = []
    for i, raw in enumerate(read_list(data, "alert_subscriptions")):
        path = f"alert_subscriptions[{i}]"
        entry = _object(raw, path, _SUBSCRIPTION_KEYS)
        status = read_str(entry, "status", path=f"{path}.", default="confirmed")
        if status not in SUBSCRIPTION_STATUSES:
            raise _fail(f"{path}.status", f"must be confirmed or pending, got {status!r}")
        protocol = read_str(entry, "protocol", path=f"{path}.", default="email")
        if protocol != "email":
            raise _fail(f"{path}.protocol", f"only email is modelled, got {protocol!r}")
        endpoint = read_str(entry, "endpoint", path=f"{path}.", default=f"alerts-{i}@example.com")
        entries.append(SubscriptionDef(protocol=protocol, endpoint=endpoint, status=status))
    return tuple(entries)


def _ec2_api_limits(data: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    raw = require_mapping(data.get("ec2_api_limits") or {}, "ec2_api_limits")
    limits = {}
    for action, limit in raw.items():
        path = f"ec2_api_limits.{action}"
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]{1,127}", str(action)):
            raise _fail(path, "must be an EC2 API action name like CreateSnapshots")
        limit = _object(limit, path, _LIMIT_KEYS)
        limits[str(action)] = (
            float(read_int(limit, "capacity", path=f"{path}.", minimum=1, maximum=1_000_000)),
            float(read_int(limit, "refill_per_second", path=f"{path}.", minimum=1, maximum=1_000_000)),
        )
    return limits


# -- helpers ------------------------------------------------------------------------------
def _object(value: Any, field: str, allowed: Sequence[str], *, prefix: str | None = None) -> Mapping[str, Any]:
    """A JSON object with only the keys ``allowed``; unknown keys are named by their path."""
    data = require_mapping(value, field)
    base = f"{field}." if prefix is None else prefix
    for key in data:
        if key not in allowed:
            raise _fail(f"{base}{key}", f"is not a known field (expected one of: {', '.join(allowed)})")
    return data


def _str_map(value: Any, field: str) -> dict[str, str]:
    """Tags as EC2 accepts them (Tag your Amazon EC2 resources, "Tag restrictions"): at most 50
    per resource, keys of 1-127 characters not starting with ``aws:``, values of at most 256."""
    data = require_mapping(value if value is not None else {}, field)
    if len(data) > 49:  # the simulator adds Name
        raise _fail(field, f"may have at most 49 tags, got {len(data)}")
    for key, val in data.items():
        if not isinstance(key, str) or not isinstance(val, str):
            raise _fail(f"{field}.{key}", "tag keys and values must be strings")
        if not 0 < len(key) <= 127 or key.lower().startswith("aws:"):
            raise _fail(f"{field}.{key}", "tag keys have 1-127 characters and do not start with aws:")
        if len(val) > 256:
            raise _fail(f"{field}.{key}", f"tag values have at most 256 characters, got {len(val)}")
    return dict(data)


def _time(data: Mapping[str, Any], key: str, path: str) -> datetime:
    field = f"{path}.{key}"
    moment = parse_time(read_str(data, key, path=f"{path}."), field)
    if not EARLIEST <= moment < LATEST:
        raise _fail(field, f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}, got {moment:%Y-%m-%d}")
    return moment


@functools.cache
def ec2_regions() -> tuple[str, ...]:
    """Regions of the standard AWS partition that offer EC2, from botocore's bundled endpoint data."""
    return tuple(sorted(boto3.session.Session().get_available_regions("ec2")))


def _region(data: Mapping[str, Any]) -> str:
    region = str(read_str(data, "region", default="us-east-1"))
    known = ec2_regions()
    if region in known:
        return region
    hint = next((r for r in known if r == region.strip().lower()), None)
    advice = f" (did you mean {hint!r}?)" if hint else " (the simulator emulates the standard aws partition)"
    raise _fail("region", f"is not an AWS region with EC2: {region!r}{advice}")


# -- sections -----------------------------------------------------------------------------
def _raw_settings(data: Mapping[str, Any]) -> Mapping[str, Any]:
    return require_mapping(data.get("settings") or {}, "settings")


def _settings(data: Mapping[str, Any]) -> Settings:
    raw = dict(_raw_settings(data))
    raw.pop("enforce_iam", None)  # the simulator's own setting, read by _parse
    for owned in SIMULATOR_OWNED:
        if owned in raw:
            raise _fail(f"settings.{owned}", "is set by the simulator")
    for planned, feature in PLANNED_SETTINGS.items():
        if planned in raw:
            raise _fail(f"settings.{planned}", f"is not supported yet ({feature} is planned)")
    settings = Settings.from_mapping(raw, path="settings.")
    known = ec2_regions()
    for i, dest in enumerate(settings.copy_regions):
        if dest.region not in known:
            raise _fail(f"settings.copy_regions[{i}].region", f"is not an AWS region with EC2: {dest.region!r}")
    settings.check_source_region(_region(data), path="settings.")
    return settings


def _instances(data: Mapping[str, Any]) -> tuple[InstanceDef, ...]:
    instances: list[InstanceDef] = []
    for i, raw in enumerate(read_list(data, "instances")):
        spec = _instance(raw, f"instances[{i}]")
        if any(known.name == spec.name for known in instances):
            raise _fail(f"instances[{i}].name", f"duplicates another instance: {spec.name!r}")
        instances.append(spec)
    return tuple(instances)


def _instance(raw: Any, path: str) -> InstanceDef:
    raw = _object(raw, path, _INSTANCE_KEYS)
    state = read_str(raw, "state", path=f"{path}.", default="running")
    if state not in INSTANCE_STATES:
        raise _fail(f"{path}.state", f"must be one of {', '.join(INSTANCE_STATES)}, got {state!r}")
    if state == "terminated" and raw.get("terminated_at") is not None:
        raise _fail(f"{path}.terminated_at", "cannot be combined with state terminated")
    raw_volumes = read_list(raw, "volumes", path=f"{path}.")
    if not raw_volumes:
        raise _fail(f"{path}.volumes", "must list at least the root volume")
    volumes: list[VolumeDef] = []
    for j, vol in enumerate(raw_volumes):
        volume = _volume(vol, f"{path}.volumes[{j}]")
        if any(v.device == volume.device for v in volumes):
            raise _fail(f"{path}.volumes[{j}].device", f"duplicates another volume: {volume.device!r}")
        volumes.append(volume)
    return InstanceDef(
        name=read_str(raw, "name", path=f"{path}."),
        state=state,
        tags=_str_map(raw.get("tags"), f"{path}.tags"),
        volumes=tuple(volumes),
        snapshot_checks_until_complete=read_int(
            raw, "snapshot_checks_until_complete", path=f"{path}.", default=0, minimum=0, maximum=1000
        ),
        snapshot_error=read_bool(raw, "snapshot_error", path=f"{path}.", default=False),
        terminated_at=_time(raw, "terminated_at", path) if raw.get("terminated_at") is not None else None,
        snapshot_seconds=read_int(raw, "snapshot_seconds", path=f"{path}.", default=0, minimum=0, maximum=7 * 86400),
        ssm=_ssm(raw.get("ssm"), f"{path}.ssm") if raw.get("ssm") is not None else None,
    )


def _ssm(raw: Any, path: str) -> SsmDef:
    raw = _object(raw, path, _SSM_KEYS)
    outcomes = {}
    for key in ("pre", "post"):
        outcome = read_str(raw, key, path=f"{path}.", default="success")
        if outcome not in OUTCOMES:
            raise _fail(f"{path}.{key}", f"must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
        outcomes[key] = outcome
    return SsmDef(
        managed=read_bool(raw, "managed", path=f"{path}.", default=True),
        pre=outcomes["pre"],
        post=outcomes["post"],
        seconds=read_int(raw, "seconds", path=f"{path}.", default=1, minimum=0, maximum=3600),
    )


def _volume(raw: Any, path: str) -> VolumeDef:
    raw = _object(raw, path, _VOLUME_KEYS)
    # EBS volume sizes: 1 GiB to 64 TiB (io2 Block Express), per the CreateVolume API reference.
    return VolumeDef(
        device=read_str(raw, "device", path=f"{path}."),
        size_gib=read_int(raw, "size_gib", path=f"{path}.", default=8, minimum=1, maximum=65536),
        tags=_str_map(raw.get("tags"), f"{path}.tags"),
        type=_volume_type(raw, path),
        kms_key=_volume_key(raw, path),
        filesystem=_filesystem(raw, path),
    )


def _filesystem(raw: Mapping[str, Any], path: str) -> str:
    kind = str(read_str(raw, "filesystem", path=f"{path}.", default="ext4"))
    if kind not in FILESYSTEMS:
        raise _fail(f"{path}.filesystem", f"must be one of {', '.join(FILESYSTEMS)}, got {kind!r}")
    return kind


def _volume_key(raw: Mapping[str, Any], path: str) -> str | None:
    """An alias: the emulator creates its key in the scenario's Region (moto chooses key ids)."""
    key = read_str(raw, "kms_key", path=f"{path}.", default=None)
    if key is not None and not re.match(r"^alias/[A-Za-z0-9/_-]{1,250}$", str(key)):
        raise _fail(f"{path}.kms_key", f"must be a KMS alias name (alias/...), got {key!r}")
    if key is not None and str(key).startswith("alias/aws/"):
        raise _fail(f"{path}.kms_key", f"names an AWS managed key; give a customer managed key's alias, got {key!r}")
    return None if key is None else str(key)


def _volume_type(raw: Mapping[str, Any], path: str) -> str:
    kind = str(read_str(raw, "type", path=f"{path}.", default="gp3"))
    if kind not in VOLUME_TYPES:
        raise _fail(f"{path}.type", f"must be one of {', '.join(VOLUME_TYPES)}, got {kind!r}")
    return kind


def _existing_snapshots(data: Mapping[str, Any], instances: Sequence[InstanceDef]) -> tuple[ExistingSnapshot, ...]:
    by_name = {i.name: i for i in instances}
    snapshots: list[ExistingSnapshot] = []
    for i, raw in enumerate(read_list(data, "existing_snapshots", default=[])):
        snapshot = _existing_snapshot(raw, f"existing_snapshots[{i}]", by_name)
        if any(s.label == snapshot.label for s in snapshots):
            raise _fail(f"existing_snapshots[{i}].label", f"duplicates another snapshot: {snapshot.label!r}")
        snapshots.append(snapshot)
    return tuple(snapshots)


def _existing_snapshot(raw: Any, path: str, by_name: Mapping[str, InstanceDef]) -> ExistingSnapshot:
    raw = _object(raw, path, _SNAPSHOT_KEYS)
    instance = read_str(raw, "instance", path=f"{path}.")
    if instance not in by_name:
        raise _fail(f"{path}.instance", f"names no instance of the scenario: {instance!r}")
    detached = read_bool(raw, "detached", path=f"{path}.", default=False)
    device = read_str(raw, "device", path=f"{path}.", default=by_name[instance].volumes[0].device)
    if not detached and device not in {v.device for v in by_name[instance].volumes}:
        raise _fail(f"{path}.device", f"is not a volume of {instance}: {device!r} (a deleted volume needs detached)")
    state = read_str(raw, "state", path=f"{path}.", default="completed")
    if state not in SNAPSHOT_STATES:
        raise _fail(f"{path}.state", f"must be one of {', '.join(SNAPSHOT_STATES)}, got {state!r}")
    managed = read_bool(raw, "managed", path=f"{path}.", default=True)
    deployment = read_str(raw, "deployment", path=f"{path}.", default=None)
    if deployment is not None and not managed:
        raise _fail(f"{path}.deployment", "only applies to a managed snapshot (managed: true)")
    return ExistingSnapshot(
        label=read_str(raw, "label", path=f"{path}."),
        instance=instance,
        device=device,
        age_days=_age_days(raw.get("age_days", 0), f"{path}.age_days"),
        managed=managed,
        used_by_ami=read_bool(raw, "used_by_ami", path=f"{path}.", default=False),
        state=state,
        deployment=deployment,
        detached=detached,
    )


def _age_days(age: Any, field: str) -> float:
    # JSON parsers accept Infinity and NaN; neither is an age.
    if isinstance(age, bool) or not isinstance(age, int | float) or not math.isfinite(age):
        raise _fail(field, f"must be a finite number of days, got {age!r}")
    if not 0 <= age <= MAX_AGE_DAYS:
        raise _fail(field, f"must be between 0 and {MAX_AGE_DAYS}, got {age!r}")
    return float(age)


def _faults(
    data: Mapping[str, Any], instances: Sequence[InstanceDef], snapshots: Sequence[ExistingSnapshot]
) -> tuple[FaultDef, ...]:
    names = {i.name for i in instances}
    labels = {s.label for s in snapshots}
    return tuple(
        _fault(raw, f"faults[{i}]", names, labels) for i, raw in enumerate(read_list(data, "faults", default=[]))
    )


def _fault(raw: Any, path: str, names: set[str], labels: set[str]) -> FaultDef:
    raw = _object(raw, path, _FAULT_KEYS)
    operation = read_str(raw, "operation", path=f"{path}.")
    if operation in PLANNED_OPERATIONS:
        raise _fail(f"{path}.operation", f"{operation} is not called by Smart Vault yet (planned)")
    if operation not in FAULT_OPERATIONS:
        raise _fail(f"{path}.operation", f"must be one of {', '.join(FAULT_OPERATIONS)}, got {operation!r}")
    instance = read_str(raw, "instance", path=f"{path}.", default=None)
    if instance is not None and instance not in names:
        raise _fail(f"{path}.instance", f"names no instance of the scenario: {instance!r}")
    snapshot = read_str(raw, "snapshot", path=f"{path}.", default=None)
    if snapshot is not None and snapshot not in labels:
        raise _fail(f"{path}.snapshot", f"names no existing snapshot label: {snapshot!r}")
    function = read_str(raw, "function", path=f"{path}.", default=None)
    if (operation == "Invoke") != (function is not None):
        raise _fail(f"{path}.function", "names the function of an Invoke fault, and only of one")
    if function is not None and function not in FUNCTION_HANDLERS:
        raise _fail(f"{path}.function", f"must be one of {', '.join(FUNCTION_HANDLERS)}, got {function!r}")
    error = read_str(raw, "error", path=f"{path}.")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9.]{0,127}", error):
        raise _fail(f"{path}.error", f"must be an AWS error code, got {error!r}")
    return FaultDef(
        operation=operation,
        error=error,
        instance=instance,
        snapshot=snapshot,
        count=read_int(raw, "count", path=f"{path}.", default=None, minimum=1, maximum=1_000_000)
        if raw.get("count") is not None
        else None,
        function=function,
    )


def _duration(raw: Any, field: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([mhd])", raw) if isinstance(raw, str) else None
    if not match or int(match.group(1)) == 0:
        raise _fail(field, f"must be a duration like 1d, 12h or 30m, got {raw!r}")
    amount, unit = int(match.group(1)), {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    # Compare before building the timedelta: 9999999999d would overflow it.
    if timedelta(**{unit: 1}) * min(amount, 10**6) > MAX_STEP:
        raise _fail(field, f"must be at most {MAX_STEP.days} days, got {raw!r}")
    return timedelta(**{unit: amount})


def _runs(data: Mapping[str, Any]) -> tuple[datetime, ...]:
    entries = read_list(data, "runs")
    if not entries:
        raise _fail("runs", "must list at least one run")
    times: list[datetime] = []
    for i, entry in enumerate(entries):
        times.extend(_run_entry(entry, f"runs[{i}]", times))
    return tuple(times)


def _run_entry(entry: Any, path: str, earlier: Sequence[datetime]) -> list[datetime]:
    """The run times one entry adds: its ``at``, or ``count`` steps of ``every`` after ``earlier``."""
    entry = _object(entry, path, _RUN_KEYS)
    workflow = read_str(entry, "workflow", path=f"{path}.", default="backup")
    if workflow not in WORKFLOWS:
        raise _fail(f"{path}.workflow", f"must be backup, drill or preflight, got {workflow!r}")
    redrive = read_bool(entry, "redrive", path=f"{path}.", default=False)
    if redrive and (workflow != "backup" or "every" in entry or "at" not in entry):
        raise _fail(f"{path}.redrive", "redrives the backup run before it: give it an 'at', no workflow, no 'every'")
    if "at" in entry:
        if "every" in entry or "count" in entry:
            raise _fail(path, "has 'at' and 'every'/'count': use one form per entry")
        moment = _time(entry, "at", path)
        if earlier and moment < earlier[-1]:
            # The emulated account has one clock (snapshot times, locks, request buckets): it
            # cannot go back. The same `at` twice is allowed: a scheduled event delivered again.
            raise _fail(
                f"{path}.at",
                f"is before the run scheduled before it ({earlier[-1]:%Y-%m-%dT%H:%M:%SZ}): runs go forward in time",
            )
        return [moment]
    if "every" not in entry:
        raise _fail(path, "must have 'at' or 'every'")
    if not earlier:
        raise _fail(f"{path}.every", "needs an earlier run with 'at' to continue from")
    step = _duration(entry["every"], f"{path}.every")
    count = read_int(entry, "count", path=f"{path}.", minimum=1, maximum=MAX_RUNS)
    if len(earlier) + count > MAX_RUNS:
        raise _fail(f"{path}.count", f"the scenario may schedule at most {MAX_RUNS} runs")
    last = earlier[-1]
    if last + step * count >= LATEST:
        raise _fail(f"{path}.count", f"the schedule would run past {LATEST:%Y-%m-%d}")
    return [last + step * (n + 1) for n in range(count)]


def _workflows(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The workflow of every run _runs schedules (an ``every`` entry repeats its own)."""
    workflows: list[str] = []
    for i, entry in enumerate(read_list(data, "runs")):
        if entry.get("redrive") is True:
            if "backup" not in workflows and REDRIVE not in workflows:
                raise _fail(f"runs[{i}].redrive", "there is no backup run before it to redrive")
            workflows.append(REDRIVE)
            continue
        times = 1 if "at" in entry else int(entry["count"])
        workflows += [str(entry.get("workflow") or "backup")] * times
    return tuple(workflows)
