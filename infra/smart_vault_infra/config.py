"""Deployment configuration from CDK context, validated at synth with errors that name the key.

The function settings share their names (and validation) with smart_vault.settings.Settings,
so the README's configuration table, the Lambda environment and the simulator agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from smart_vault.errors import InvalidInputError
from smart_vault.settings import Settings
from smart_vault.validation import read_int, read_str
from smart_vault_infra.schedules import schedule_problem, time_zone_problem

LOG_LEVELS = ("ALL", "ERROR", "FATAL", "OFF")
# Retention values CloudWatch Logs accepts, in days, and CDK's name for each: the one list.
LOG_RETENTION = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    3653: "TEN_YEARS",
}
LOG_RETENTION_DAYS = tuple(LOG_RETENTION)
STACK_KEYS = (
    "schedule",
    "time_zone",
    "expected_interval_hours",
    "alarm_email",
    "log_retention_days",
    "state_machine_log_level",
    "kms_key_arn",
    "audit_retention_days",
    "powertools_version",
    "drill_schedule",
    "drill_interval_hours",
    "preflight_schedule",
    "stack_name",
)
# CloudFormation stack names: letters, digits and hyphens, starting with a letter, at most 128
# characters (AWS CloudFormation User Guide, "Create a stack from the CloudFormation console").
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
# The Powertools layer's SSM parameter ends in a release number (functions.py).
_POWERTOOLS_VERSION = re.compile(r"\d+\.\d+\.\d+")
# The no-successful-run alarm counts hourly periods: expected_interval_hours + 2 of them, and
# PutMetricAlarm allows at most 7 days (604,800 s) of Period x EvaluationPeriods.
MAX_EXPECTED_INTERVAL_HOURS = 7 * 24 - 2
# Restore drills run weekly by default (Sunday 05:00, after the nightly backup).
DEFAULT_DRILL_SCHEDULE = "cron(0 5 ? * SUN *)"
# The preflight runs weekly by default (Monday 12:00, when someone is there to read it), or "off".
DEFAULT_PREFLIGHT_SCHEDULE = "cron(0 12 ? * MON *)"


def lock_warnings(settings: Settings, *, runs_per_day: float) -> list[str]:
    """A lock longer than the retention keeps every snapshot until its lock expires: say so, with
    the arithmetic, so the extra storage is a decision and not a surprise."""
    lock, retention = settings.lock, settings.retention_days
    if lock is None or lock.days <= retention:
        return []
    extra_days = lock.days - retention
    extra = extra_days * runs_per_day
    return [
        f"lock.days ({lock.days}) is longer than retention_days ({retention}): every snapshot is kept "
        f"{lock.days} - {retention} = {extra_days} days past its retention, about {extra_days} x "
        f"{runs_per_day:g} runs/day = {extra:g} extra snapshots per volume ({lock.days * runs_per_day:g} "
        f"kept instead of {retention * runs_per_day:g}); prune deletes each one on the first run after "
        "its lock expires"
    ]


def vault_warnings(settings: Settings) -> list[str]:
    """A vault can copy only what the source can share, and EBS cannot share a snapshot encrypted
    with the AWS managed key aws/ebs (EC2 API Reference, ModifySnapshotAttribute: "Snapshots
    encrypted with your default KMS key cannot be shared with other accounts"). The volumes' keys
    are not known at synth: without fleet_kms_keys the fleet is unencrypted or on aws/ebs."""
    vault = settings.vault
    if vault is None:
        return []
    if not settings.fleet_kms_keys:
        return [
            f"vault (account {vault.account}) is set but fleet_kms_keys is empty: snapshots of volumes "
            "encrypted with the AWS managed key aws/ebs cannot be shared with the vault account "
            "(OperationNotPermitted) and will never reach it; encrypt the volumes with a customer "
            "managed key whose policy lets the vault account use it (kms:DescribeKey, kms:CreateGrant, "
            "kms:GenerateDataKey*, kms:ReEncrypt*, kms:Decrypt) and list it in fleet_kms_keys, or "
            "re-encrypt with a copy first (README, An isolated vault account)"
        ]
    return [
        f"vault (account {vault.account}): each key of fleet_kms_keys must let account {vault.account} "
        "use it (kms:DescribeKey, kms:CreateGrant, kms:GenerateDataKey*, kms:ReEncrypt*, kms:Decrypt) "
        "in its key policy, or the vault's copies end in error; preflight checks the volumes' keys"
    ]


@dataclass(frozen=True, kw_only=True)
class DeploymentConfig:
    settings: Settings
    schedule: str
    time_zone: str
    expected_interval_hours: int
    alarm_email: str | None
    log_retention_days: int
    state_machine_log_level: str
    audit_retention_days: int
    powertools_version: str
    drill_schedule: str = DEFAULT_DRILL_SCHEDULE
    drill_interval_hours: int = 168
    preflight_schedule: str | None = DEFAULT_PREFLIGHT_SCHEDULE  # None: "off"
    stack_name: str = "SmartVault"

    @property
    def deployment_id(self) -> str:
        return self.settings.deployment_id

    @property
    def warnings(self) -> list[str]:
        """Valid but costly combinations, reported at synth (they do not stop it)."""
        return lock_warnings(self.settings, runs_per_day=24 / self.expected_interval_hours)

    @property
    def state_machine_name(self) -> str:
        return f"{self.deployment_id}-backup"

    @property
    def schedule_name(self) -> str:
        """The backup schedule's name (in the default group), which preflight checks."""
        return f"{self.deployment_id}-backup"

    @property
    def drill_state_machine_name(self) -> str:
        return f"{self.deployment_id}-drill"

    def alarm_name(self, construct_id: str) -> str:
        """Alarms are named after the deployment, so the topic and key policies can name them all."""
        return f"{self.deployment_id}-{construct_id}"

    @property
    def alarm_names(self) -> str:
        """The pattern of every alarm_name() (aws:SourceArn conditions)."""
        return self.alarm_name("*")

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> DeploymentConfig:
        path = "context "
        known_settings = set(Settings.__dataclass_fields__) - {"topic_arn", "bucket_name"}
        unknown = sorted(set(context) - known_settings - set(STACK_KEYS))
        if unknown:
            raise InvalidInputError(f"{path}{unknown[0]}", "is not a Smart Vault setting")
        settings = Settings.from_mapping({k: v for k, v in context.items() if k in known_settings}, path=path)
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,30}", settings.deployment_id):
            raise InvalidInputError(f"{path}deployment_id", "must be 1-31 lower-case letters, digits or dashes")
        schedule = _schedule(context, "schedule", "cron(0 3 * * ? *)")
        drill_schedule = _schedule(context, "drill_schedule", DEFAULT_DRILL_SCHEDULE)
        preflight_schedule = (
            None
            if context.get("preflight_schedule") == "off"
            else _schedule(context, "preflight_schedule", DEFAULT_PREFLIGHT_SCHEDULE)
        )
        email = context.get("alarm_email") or None
        if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", str(email)):
            raise InvalidInputError(f"{path}alarm_email", f"is not an e-mail address: {email!r}")
        retention = read_int(context, "log_retention_days", path=path, default=90)
        if retention not in LOG_RETENTION_DAYS:
            raise InvalidInputError(
                f"{path}log_retention_days", f"must be one of {LOG_RETENTION_DAYS}, got {retention}"
            )
        level = read_str(context, "state_machine_log_level", path=path, default="ALL").upper()
        if level not in LOG_LEVELS:
            raise InvalidInputError(f"{path}state_machine_log_level", f"must be one of {LOG_LEVELS}")
        if context.get("kms_key_arn"):
            # An imported key is refused: CDK cannot add statements to its policy, and without
            # them alarms, EventBridge alerts and log encryption fail silently after deploy.
            raise InvalidInputError(
                f"{path}kms_key_arn",
                "is not supported: the stack must own its KMS key to give CloudWatch alarms, EventBridge "
                "and CloudWatch Logs the key-policy statements they need (docs/decisions.md); remove it",
            )
        return cls(
            settings=settings,
            schedule=schedule,
            time_zone=_checked(context, "time_zone", "UTC", time_zone_problem),
            expected_interval_hours=read_int(
                context,
                "expected_interval_hours",
                path=path,
                default=24,
                minimum=1,
                maximum=MAX_EXPECTED_INTERVAL_HOURS,
            ),
            alarm_email=email,
            log_retention_days=retention,
            state_machine_log_level=level,
            # S3 lifecycle Days has no documented maximum; a century is the same bound as retention_days.
            audit_retention_days=read_int(
                context, "audit_retention_days", path=path, default=400, minimum=1, maximum=36500
            ),
            powertools_version=_checked(context, "powertools_version", "3.37.0", _powertools_problem),
            drill_schedule=drill_schedule,
            preflight_schedule=preflight_schedule,
            # The NoSuccessfulDrill alarm fires after two intervals without a passed drill.
            drill_interval_hours=read_int(
                context, "drill_interval_hours", path=path, default=168, minimum=1, maximum=24 * 366
            ),
            stack_name=_checked(context, "stack_name", "SmartVault", _stack_name_problem),
        )


def _schedule(context: Mapping[str, Any], key: str, default: str) -> str:
    """An EventBridge Scheduler expression (cron(...) or rate(...)), checked at synth."""
    return _checked(context, key, default, lambda text: _with_value(schedule_problem(text), text))


def _checked(context: Mapping[str, Any], key: str, default: str, problem: Callable[[str], str | None]) -> str:
    """A text setting that ``problem`` finds nothing wrong with, or an error naming the key."""
    value = str(read_str(context, key, path="context ", default=default))
    found = problem(value)
    if found:
        raise InvalidInputError(f"context {key}", found)
    return value


def _with_value(problem: str | None, value: str) -> str | None:
    return None if problem is None else f"{problem}, got {value!r}"


def _powertools_problem(version: str) -> str | None:
    ok = _POWERTOOLS_VERSION.fullmatch(version)
    return None if ok else f"must be a Powertools release such as 3.37.0, got {version!r}"


def _stack_name_problem(name: str) -> str | None:
    ok = _STACK_NAME.fullmatch(name)
    return None if ok else f"must be 1-128 letters, digits or hyphens starting with a letter, got {name!r}"
