"""Discover: find the instances to back up and write the run's inventory to S3."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from smart_vault.aws import Ec2, Store
from smart_vault.constants import METRIC_INSTANCES_DISCOVERED
from smart_vault.inventory import SELECTED_STATES, build_targets, rerun_selection
from smart_vault.models import InstanceTarget, RunContext, RunRequest, run_prefix
from smart_vault.observability import count, logger
from smart_vault.settings import Settings
from smart_vault.validation import format_time


@dataclass(frozen=True, kw_only=True)
class DiscoverResult:
    run: RunContext
    bucket: str
    inventory_key: str
    instance_count: int
    volume_count: int
    map_concurrency: int

    def to_dict(self) -> dict[str, Any]:
        # The Map reads the items from S3, so the state payload stays small for any fleet.
        return {
            "run": self.run.to_dict(),
            "inventory": {
                "bucket": self.bucket,
                "key": self.inventory_key,
            },
            "map_concurrency": self.map_concurrency,
            "instance_count": self.instance_count,
            "volume_count": self.volume_count,
        }


def find_targets(*, settings: Settings, ec2: Ec2, instance_ids: Sequence[str] | None = None) -> list[InstanceTarget]:
    """The instances a run backs up now and their selected volumes (read-only EC2 calls).

    With ``instance_ids`` (a re-run), the named instances that cannot be backed up come last,
    as targets with a ``skip_reason``, so the run reports them as skipped."""
    skipped: list[InstanceTarget] = []
    instances: Sequence[Mapping[str, Any]]
    if instance_ids is None:
        instances = ec2.find_instances(settings.backup_tag_key, settings.backup_tag_value, SELECTED_STATES)
    else:
        instances, skipped = rerun_selection(
            instance_ids,
            ec2.instances_by_id(instance_ids),
            tag_key=settings.backup_tag_key,
            tag_value=settings.backup_tag_value,
        )
    volume_ids = [
        m["Ebs"]["VolumeId"]
        for i in instances
        for m in i.get("BlockDeviceMappings") or ()
        if m.get("Ebs", {}).get("VolumeId")
    ]
    targets = build_targets(
        instances,
        volumes=ec2.volumes(volume_ids) if volume_ids else {},
        tag_key=settings.backup_tag_key,
        copy_tags=settings.copy_tags,
        create_rate_per_second=settings.create_rate_per_second,
        map_concurrency=settings.map_concurrency,
    )
    return targets + skipped


def discover(
    request: RunRequest,
    *,
    execution_arn: str,
    execution_name: str,
    settings: Settings,
    ec2: Ec2,
    store: Store,
) -> DiscoverResult:
    run = RunContext(
        run_id=RunContext.run_id_for(request.time),
        run_time=format_time(request.time),
        execution_arn=execution_arn,
        execution_name=execution_name,
        dry_run=settings.dry_run if request.dry_run is None else request.dry_run,
    )
    targets = find_targets(settings=settings, ec2=ec2, instance_ids=request.instance_ids)
    key = f"{run_prefix(run)}/inventory.json"
    store.put_json(key, [t.to_dict() for t in targets])
    count(METRIC_INSTANCES_DISCOVERED, len(targets))
    logger.info(
        "discovered instances",
        extra={"run_id": run.run_id, "instances": len(targets), "inventory_key": key},
    )
    return DiscoverResult(
        run=run,
        bucket=store.bucket,
        inventory_key=key,
        instance_count=len(targets),
        volume_count=sum(len(t.volumes) for t in targets),
        map_concurrency=settings.map_concurrency,
    )
