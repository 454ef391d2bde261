"""Discover: find the instances to back up and write the run's inventory to S3."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from smart_vault.aws import Ec2, Kms, Store
from smart_vault.backup.inventory import SELECTED_STATES, build_targets, near_miss, rerun_selection, tag_dict
from smart_vault.backup.keys import check_fleet_keys, unusable_copy_keys
from smart_vault.constants import METRIC_INSTANCES_DISCOVERED
from smart_vault.models import InstanceOutcome, InstanceTarget, RunContext, RunRequest, run_prefix, skipped_key
from smart_vault.observability import count, logger
from smart_vault.settings import Settings
from smart_vault.validation import format_time


@dataclass(frozen=True, kw_only=True)
class DiscoverResult:
    run: RunContext
    bucket: str
    inventory_key: str
    instance_count: int
    skipped_key: str | None = None
    volume_count: int
    map_concurrency: int

    def to_dict(self) -> dict[str, Any]:
        # The Map reads the items from S3, so the state payload stays small for any fleet.
        return {
            "run": self.run.to_dict(),
            "inventory": {
                "bucket": self.bucket,
                "key": self.inventory_key,
                **({"skipped_key": self.skipped_key} if self.skipped_key else {}),
            },
            "map_concurrency": self.map_concurrency,
            "instance_count": self.instance_count,
            "volume_count": self.volume_count,
        }


@dataclass(frozen=True, kw_only=True)
class NearMiss:
    instance_id: str
    name: str
    value: str

    def reason(self, settings: Settings) -> str:
        return (
            f"not backed up: tag {settings.backup_tag_key}={self.value!r} is not exactly "
            f"{settings.backup_tag_value!r} (tag values are case-sensitive)"
        )


@dataclass(frozen=True, kw_only=True)
class Selection:
    targets: list[InstanceTarget]
    # Instances whose backup tag value is the configured one but for case or whitespace.
    near_misses: list[NearMiss]


def select_instances(*, settings: Settings, ec2: Ec2, instance_ids: Sequence[str] | None = None) -> Selection:
    """The instances a run backs up now and the near misses it must report (read-only EC2 calls).

    With ``instance_ids`` (a re-run), the named instances that cannot be backed up come last,
    as targets with a ``skip_reason``, so the run reports them as skipped."""
    key, value = settings.backup_tag_key, settings.backup_tag_value
    skipped: list[InstanceTarget] = []
    near_misses: list[NearMiss] = []
    instances: list[Mapping[str, Any]] = []
    if instance_ids is None:
        for instance in ec2.find_instances(key, SELECTED_STATES):
            tags = tag_dict(instance.get("Tags"))
            if tags.get(key) == value:
                instances.append(instance)
            elif near_miss(tags.get(key), value):
                near_misses.append(
                    NearMiss(instance_id=instance["InstanceId"], name=tags.get("Name", ""), value=tags[key])
                )
    else:
        selected, skipped = rerun_selection(
            instance_ids, ec2.instances_by_id(instance_ids), tag_key=key, tag_value=value
        )
        instances = list(selected)
    volume_ids = [
        m["Ebs"]["VolumeId"]
        for i in instances
        for m in i.get("BlockDeviceMappings") or ()
        if m.get("Ebs", {}).get("VolumeId")
    ]
    targets = build_targets(
        instances,
        volumes=ec2.volumes(volume_ids) if volume_ids else {},
        tag_key=key,
        copy_tags=settings.copy_tags,
        create_rate_per_second=settings.create_rate_per_second,
        map_concurrency=settings.map_concurrency,
    )
    return Selection(targets=targets + skipped, near_misses=sorted(near_misses, key=lambda n: n.instance_id))


def find_targets(*, settings: Settings, ec2: Ec2, instance_ids: Sequence[str] | None = None) -> list[InstanceTarget]:
    """The instances a run backs up now and their selected volumes (read-only EC2 calls)."""
    return select_instances(settings=settings, ec2=ec2, instance_ids=instance_ids).targets


def discover(
    request: RunRequest,
    *,
    execution_arn: str,
    execution_name: str,
    settings: Settings,
    ec2: Ec2,
    store: Store,
    source_region: str | None = None,
    kms_for: Callable[[str], Kms] | None = None,
) -> DiscoverResult:
    """``kms_for``: KMS clients per Region. The fleet's own keys are checked before anything is
    snapshotted (a problem there stops the run); a destination's unusable key is recorded in the
    run, so that only the copies to that Region fail (a copy with an unusable key would only
    fail hours later, one instance at a time)."""
    unusable: dict[str, str] = {}
    if settings.copy_regions:
        settings.check_source_region(source_region, path="setting ")
    if kms_for is not None:
        if settings.fleet_kms_keys and source_region:
            check_fleet_keys(settings, kms_for, source_region)
        unusable = unusable_copy_keys(settings, kms_for)
    for problem in unusable.values():
        logger.warning("copy key unusable: copies to its Region will fail", extra={"problem": problem})
    run = RunContext(
        run_id=RunContext.run_id_for(request.time),
        run_time=format_time(request.time),
        execution_arn=execution_arn,
        execution_name=execution_name,
        dry_run=settings.dry_run if request.dry_run is None else request.dry_run,
        copies=bool(settings.copy_regions),
        unusable_copy_keys=unusable,
    )
    selection = select_instances(settings=settings, ec2=ec2, instance_ids=request.instance_ids)
    targets = selection.targets
    run = replace(run, min_check_interval_seconds=min_check_interval(targets, settings))
    key = f"{run_prefix(run)}/inventory.json"
    store.put_json(key, [t.to_dict() for t in targets])
    skipped_at = None
    if selection.near_misses:
        # Reported as skipped by Notify, so a mistyped tag is seen on the first night.
        skipped_at = skipped_key(run_prefix(run))
        store.put_json(skipped_at, [_skipped(n, run, settings).to_dict() for n in selection.near_misses])
    count(METRIC_INSTANCES_DISCOVERED, len(targets))
    logger.info(
        "discovered instances",
        extra={"run_id": run.run_id, "instances": len(targets), "inventory_key": key},
    )
    return DiscoverResult(
        run=run,
        bucket=store.bucket,
        inventory_key=key,
        skipped_key=skipped_at,
        instance_count=len(targets),
        volume_count=sum(len(t.volumes) for t in targets),
        map_concurrency=settings.map_concurrency,
    )


def min_check_interval(targets: Sequence[InstanceTarget], settings: Settings) -> int:
    """Seconds each instance waits at least between completion checks, so that the run's checks
    average at most ``check_rate_per_second`` over any such interval: every instance checks at
    most once per interval, and there are ``len(backed up)`` of them. EC2 refills DescribeSnapshots
    at 20 per second per account-region ("Request throttling for the Amazon EC2 API"); with the
    doubling schedule alone a 10,000-instance fleet outran it and lost half its instances to
    RequestLimitExceeded (docs/decisions.md, "A fleet-wide floor")."""
    backed_up = sum(1 for t in targets if not t.skip_reason)
    return math.ceil(backed_up / settings.check_rate_per_second)


def _skipped(near: NearMiss, run: RunContext, settings: Settings) -> InstanceOutcome:
    return InstanceOutcome(
        instance_id=near.instance_id,
        name=near.name,
        status="skipped",
        run_id=run.run_id,
        execution_name=run.execution_name,
        step="Discover",
        reason=near.reason(settings),
        dry_run=run.dry_run,
    )
