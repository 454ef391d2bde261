"""Preflight, first and last steps: Discover finds the targets (read-only), PreflightReport adds
the account facts no template can guarantee, then writes the record, the metric and (with
``--notify``) one test alert. See smart_vault.preflight.checks for the per-function checks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from smart_vault.aws import Alerts, Ec2, Kms, Store, recycle_bin_rules, schedule, service_quota
from smart_vault.backup.discovery import select_instances
from smart_vault.backup.keys import key_problem, key_region
from smart_vault.constants import PREFLIGHT_FAILED_METRIC, PREFLIGHT_PREFIX, TAG_DRILL, TAG_MANAGED
from smart_vault.errors import SmartVaultError
from smart_vault.models import RunContext
from smart_vault.observability import metrics
from smart_vault.preflight.checks import Check, PreflightContext, newest_copy, newest_point, not_checked, real
from smart_vault.validation import format_time
from smart_vault.vault.share import unshareable_volumes

# Service Quotas: Amazon EBS "Snapshots per Region" (service code ebs). Amazon EBS endpoints and
# quotas (AWS General Reference); the quota counts every snapshot the account owns in the Region.
SNAPSHOT_QUOTA = ("ebs", "L-309BACF6")
# A pending e-mail confirmation is listed with this SubscriptionArn (SNS API Reference,
# ListSubscriptionsByTopic; Amazon SNS Developer Guide, "Subscribing an endpoint").
PENDING = "PendingConfirmation"


def discover_targets(
    *,
    started: datetime,
    execution_arn: str,
    execution_name: str,
    notify: bool,
    settings: Any,
    ec2: Ec2,
    ec2_for: Callable[[str], Ec2],
    kms_for: Callable[[str], Kms],
    source_region: str,
) -> tuple[PreflightContext, list[Check]]:
    """The targets of every later check, with Discover's own checks (its reads and the keys)."""
    run = RunContext(
        run_id=RunContext.run_id_for(started),
        run_time=format_time(started),
        execution_arn=execution_arn,
        execution_name=execution_name,
        dry_run=False,
        copies=bool(settings.copy_regions),
    )
    found: dict[str, Any] = {"targets": [], "snapshots": [], "volumes": []}
    checks = [
        real(
            "discover",
            "ec2:DescribeInstances",
            "*",
            lambda: found["targets"].extend(
                t for t in select_instances(settings=settings, ec2=ec2).targets if not t.skip_reason and t.volumes
            ),
        ),
        real(
            "discover",
            "ec2:DescribeSnapshots",
            "*",
            lambda: found["snapshots"].extend(ec2.all_managed_snapshots(settings.deployment_id)),
        ),
        real(
            "discover",
            "ec2:DescribeVolumes",
            "*",
            lambda: found["volumes"].extend(ec2.tagged_volumes({TAG_DRILL: settings.deployment_id})),
        ),
    ]
    copies: dict[str, str | None] = {}
    for dest in settings.copy_regions:
        listed: list[dict[str, Any]] = []
        where = ec2_for(dest.region)
        described = real(
            "discover",
            "ec2:DescribeSnapshots",
            dest.region,
            lambda where=where, listed=listed: listed.extend(  # type: ignore[misc]
                where.all_managed_snapshots(settings.deployment_id)
            ),
        )
        if described.result != "passed":
            checks.append(described)
        copies[dest.region] = newest_copy(listed)
    checks += key_checks(settings, kms_for, source_region)
    targets = found["targets"]
    checks += vault_key_check(settings, ec2, kms_for(source_region), targets)
    if checks[0].result == "passed":
        checks[0] = replace(checks[0], reason=f"{len(targets)} instance(s) to back up")
    context = PreflightContext(
        run=run,
        notify=notify,
        instance=targets[0] if targets else None,
        point=newest_point(found["snapshots"]),
        copies=copies,
        drill_volume=str(found["volumes"][0]["VolumeId"]) if found["volumes"] else None,
        fleet_volumes=sum(len(t.volumes) for t in targets),
    )
    return context, checks


def key_checks(settings: Any, kms_for: Callable[[str], Kms], source_region: str) -> list[Check]:
    """Every configured key (the fleet's, each destination's): enabled, not pending deletion,
    usable by EBS (keys.key_problem, the night's own test)."""
    keys = [(key_region(k, source_region), k, "fleet_kms_keys") for k in settings.fleet_kms_keys]
    keys += [(d.region, d.kms_key, f"copy_regions {d.region}") for d in settings.copy_regions]
    checks = []
    for region, key, what in keys:
        try:
            problem = key_problem(kms_for(region), key)
        except SmartVaultError as error:
            problem = (str(error), None)
        resource = f"{region} {key} ({what})"
        if problem is None:
            checks.append(
                Check(role="discover", action="kms:DescribeKey", resource=resource, result="passed", reason="Enabled")
            )
        else:
            denied = "AccessDenied" in (problem[1] or "")
            checks.append(
                Check(
                    role="discover",
                    action="kms:DescribeKey",
                    resource=resource,
                    result="denied" if denied else "failed",
                    reason=f"the key {problem[0]}",
                )
            )
    return checks


def vault_key_check(settings: Any, ec2: Ec2, kms: Kms, targets: Sequence[Any]) -> list[Check]:
    """With a vault: every encrypted volume is on one of fleet_kms_keys, since a snapshot on the
    AWS managed key aws/ebs cannot be shared with the vault (ModifySnapshotAttribute answers
    OperationNotPermitted), so the vault would never get it."""
    if settings.vault is None:
        return []
    volumes: dict[str, dict[str, Any]] = {}
    ids = [v.volume_id for t in targets for v in t.volumes]
    check = real(
        "discover", "ec2:DescribeVolumes", f"{len(ids)} fleet volume(s)", lambda: volumes.update(ec2.volumes(ids))
    )
    if check.result != "passed":
        return [check]
    arns = []
    for key in settings.fleet_kms_keys:  # aliases name their key by ARN on the volume
        try:
            arns.append(str(kms.describe_key(key)["Arn"]))
        except SmartVaultError:
            arns.append(key)  # key_checks reports the key itself
    bad = unshareable_volumes(volumes, arns)
    if not bad:
        return [
            replace(
                check,
                reason=f"every encrypted volume is on a key of fleet_kms_keys: shareable with {settings.vault.account}",
            )
        ]
    listed = ", ".join(f"{v} ({k})" for v, k in list(bad.items())[:5]) + (" ..." if len(bad) > 5 else "")
    return [
        replace(
            check,
            result="failed",
            reason=f"{len(bad)} volume(s) on a key not in fleet_kms_keys, e.g. the AWS managed aws/ebs, whose "
            f"snapshots cannot be shared with the vault account {settings.vault.account}: {listed}; move them to "
            "a customer managed key whose policy lets the vault account use it, or re-encrypt with a copy first "
            "(README, An isolated vault account)",
        )
    ]


# -- account facts (the notify role) ----------------------------------------------------------
def subscription_check(alerts: Alerts) -> Check:
    """At least one confirmed subscription: a pending confirmation means alerts go nowhere."""
    subs: list[dict[str, Any]] = []
    listed = real(
        "notify", "sns:ListSubscriptionsByTopic", alerts.topic_arn, lambda: subs.extend(alerts.subscriptions())
    )
    if listed.result != "passed":
        return listed
    confirmed = [s for s in subs if str(s.get("SubscriptionArn", "")).startswith("arn:")]
    pending = [s.get("Endpoint", "") for s in subs if s.get("SubscriptionArn") == PENDING]
    if confirmed:
        return replace(listed, reason=f"{len(confirmed)} confirmed subscription(s)")
    why = (
        f"no confirmed subscription: alerts go nowhere ({len(pending)} pending: {', '.join(pending)})"
        if pending
        else "no subscription: alerts go nowhere"
    )
    return replace(listed, result="failed", reason=why)


def encryption_check(ec2: Ec2, settings: Any) -> Check:
    """EBS encryption by default and its key: a drill restoring an unencrypted snapshot gets a
    volume encrypted with that key, which the drill role may use only if it is the AWS managed
    key (usable by every principal of the account through EBS) or one of fleet_kms_keys."""
    found: list[tuple[bool, str | None]] = []
    check = real(
        "notify", "ec2:GetEbsEncryptionByDefault", ec2.region_name(), lambda: found.append(ec2.ebs_encryption_default())
    )
    if check.result != "passed":
        return check
    on, key = found[0]
    if not on:
        return replace(check, reason="encryption by default is off")
    key = key or "alias/aws/ebs"
    if key.endswith("alias/aws/ebs") or any(key == k or key.endswith(k) for k in settings.fleet_kms_keys):
        return replace(check, reason=f"on, with {key}")
    return replace(
        check,
        result="failed",
        reason=f"on, with {key}, which is not in fleet_kms_keys: the drill role cannot use it to restore "
        "an unencrypted snapshot (add it to fleet_kms_keys)",
    )


def quota_check(ec2: Ec2, settings: Any, *, volumes: int) -> Check:
    """Snapshots per Region against the count in use and what this fleet keeps at steady state."""
    found: list[float] = []
    check = real(
        "notify",
        "servicequotas:GetServiceQuota",
        f"{SNAPSHOT_QUOTA[0]}/{SNAPSHOT_QUOTA[1]} (Snapshots per Region)",
        lambda: found.append(service_quota(*SNAPSHOT_QUOTA)),
    )
    if check.result != "passed":
        return check
    in_use = ec2.owned_snapshot_count()
    steady = volumes * settings.steady_state_snapshots_per_volume()
    quota = int(found[0])
    text = f"{in_use} in use of {quota}; this fleet keeps about {steady} ({volumes} volume(s))"
    if in_use + steady > quota:
        return replace(check, result="failed", reason=f"{text}: the quota would be reached")
    return replace(check, reason=text)


def recycle_bin_check(settings: Any) -> list[Check]:
    """The stack's tag-level Recycle Bin rule still exists and keeps at least recycle_bin_days:
    tag-level rules cannot be locked ("Lock a Recycle Bin retention rule", EBS User Guide), so
    anyone with rbin:DeleteRule or rbin:UpdateRule may have removed or shortened it."""
    days = settings.recycle_bin_days
    if days is None:
        return []
    rules: list[dict[str, Any]] = []
    tags = {TAG_MANAGED: settings.deployment_id}
    listed = real(
        "notify",
        "rbin:ListRules",
        f"EBS_SNAPSHOT rules tagged {TAG_MANAGED}={settings.deployment_id}",
        lambda: rules.extend(recycle_bin_rules("EBS_SNAPSHOT", tags)),
    )
    if listed.result != "passed":
        return [listed]
    kept = [
        int((r.get("RetentionPeriod") or {}).get("RetentionPeriodValue") or 0)
        for r in rules
        if (r.get("RetentionPeriod") or {}).get("RetentionPeriodUnit") == "DAYS"
    ]
    if kept and max(kept) >= days:
        return [replace(listed, reason=f"a rule keeps deleted snapshots {max(kept)} days")]
    why = f"the longest rule keeps {max(kept)} days" if kept else "no rule"
    return [
        replace(
            listed,
            result="failed",
            reason=f"recycle_bin_days is {days} but {why}: deleted snapshots are not recoverable as configured",
        )
    ]


def schedule_check(name: str | None) -> list[Check]:
    """The backup schedule exists and is ENABLED (EventBridge Scheduler GetSchedule: State)."""
    if not name:
        return []
    found: dict[str, Any] = {}
    check = real("notify", "scheduler:GetSchedule", f"schedule/default/{name}", lambda: found.update(schedule(name)))
    if check.result != "passed":
        return [check]
    state = found.get("State")
    if state == "ENABLED":
        return [replace(check, reason=f"enabled: {found.get('ScheduleExpression')}")]
    return [replace(check, result="failed", reason=f"the backup schedule is {state}: no night runs")]


def account_checks(
    *, settings: Any, ec2: Ec2, alerts: Alerts, volumes: int, schedule_name: str | None = None
) -> list[Check]:
    return [
        *schedule_check(schedule_name),
        subscription_check(alerts),
        encryption_check(ec2, settings),
        quota_check(ec2, settings, volumes=volumes),
        *recycle_bin_check(settings),
    ]


def status(checks: Sequence[Check]) -> str:
    return "failed" if any(c.result in ("denied", "failed") for c in checks) else "passed"


def record_key(run_id: str) -> str:
    return f"{PREFLIGHT_PREFIX}/{run_id}.json"


def finish(
    context: PreflightContext, checks: list[Check], *, store: Store, publish: Callable[[str, str], None]
) -> dict[str, Any]:
    """The record (S3), the PreflightFailed metric (0 or 1, so its alarm can clear) and, with
    --notify, one test alert; returns the report the execution ends with."""
    run_id = context.run.run_id
    if context.notify:
        before = status(checks)
        text = render(before, run_id, checks)
        checks.append(
            real(
                "notify",
                "sns:Publish",
                "alert topic",
                lambda: publish(f"[TEST] Smart Vault preflight {before}", text),
                reason="one test message sent",
            )
        )
    else:
        checks.append(not_checked("notify", "sns:Publish", "alert topic", "sent only with --notify"))
    result = status(checks)
    key = record_key(run_id)
    report = {
        "status": result,
        "run_id": run_id,
        "execution_name": context.run.execution_name,
        "checks": [c.to_dict() for c in checks],
        "record": key,
    }
    store.put_json(key, report)
    metrics.add_metric(name=PREFLIGHT_FAILED_METRIC, unit=MetricUnit.Count, value=1 if result == "failed" else 0)
    return report


def render(result: str, run_id: str, checks: Sequence[Check]) -> str:
    """The table the CLI prints, as text (the test alert's body)."""
    lines = [f"Smart Vault preflight: {result} (run {run_id})", ""]
    for c in checks:
        lines.append(f"{c.result:<12} {c.role:<14} {c.action:<32} {c.resource}")
        if c.reason and c.result != "passed":
            lines.append(f"{'':<12} {c.reason[:300]}")
    return "\n".join(lines)
