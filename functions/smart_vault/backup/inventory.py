"""Discovery rules, pure: which instances and volumes to back up, and how to tag snapshots."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from smart_vault.constants import (
    CONSISTENCY_TAGS,
    RETENTION_TAGS,
    TAG_CONSISTENCY,
    TAG_DEVICE_MAP,
    TAG_INSTANCE_ID,
    TAG_INSTANCE_NAME,
    TAG_INSTANCE_SPEC,
    TAG_MANAGED,
    TAG_RUN_ID,
    TAG_RUN_TIME,
)
from smart_vault.instance_spec import InstanceSpec
from smart_vault.models import InstanceTarget, RunContext, VolumeTarget

# Instances in these states have no volumes to snapshot.
EXCLUDED_STATES = frozenset({"terminated", "shutting-down"})
SELECTED_STATES = ("pending", "running", "stopping", "stopped")
MAX_TAG_VALUE = 256
MAX_TAGS_PER_RESOURCE = 50
# What Smart Vault writes at creation leaves one tag free: the restore drill adds
# smart-vault:verified-at later (CreateTags beyond 50 fails with TagLimitExceeded).
MAX_CREATION_TAGS = MAX_TAGS_PER_RESOURCE - 1


def tag_dict(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or ()}


def near_miss(value: str | None, expected: str) -> bool:
    """A backup tag value that differs from ``expected`` only in case or surrounding whitespace."""
    return value is not None and value != expected and value.strip().casefold() == expected.strip().casefold()


def build_targets(
    instances: Iterable[Mapping[str, Any]],
    *,
    volumes: Mapping[str, Mapping[str, Any]],
    tag_key: str,
    copy_tags: Sequence[str],
    create_rate_per_second: int,
    map_concurrency: int,
) -> list[InstanceTarget]:
    """Turn DescribeInstances output into inventory items, in a stable order.

    ``start_delay_seconds`` spreads the CreateSnapshots calls of each wave of ``map_concurrency``
    children over time so the account stays under EC2's refill rate.
    """
    targets: list[InstanceTarget] = []
    ordered = sorted(instances, key=lambda i: i["InstanceId"])
    for raw in ordered:
        if raw.get("State", {}).get("Name") in EXCLUDED_STATES:
            continue
        tags = tag_dict(raw.get("Tags"))
        root_device = raw.get("RootDeviceName")
        selected: list[VolumeTarget] = []
        excluded: list[str] = []
        for mapping in raw.get("BlockDeviceMappings") or ():
            ebs = mapping.get("Ebs")
            if not ebs or not ebs.get("VolumeId"):
                continue
            volume_id = ebs["VolumeId"]
            volume = volumes.get(volume_id, {})
            # The same tag key with the value False opts one volume out. ExcludeDataVolumeIds takes
            # data volumes only ("If you specify the ID of the root volume, the request fails",
            # EC2 API Reference, InstanceSpecification): an opted-out root is left out by
            # ExcludeBootVolume, since no selected volume is the root.
            if tag_dict(volume.get("Tags")).get(tag_key, "").lower() == "false":
                if mapping.get("DeviceName") != root_device:
                    excluded.append(volume_id)
                continue
            selected.append(
                VolumeTarget(
                    volume_id=volume_id,
                    device=mapping.get("DeviceName", ""),
                    root=mapping.get("DeviceName") == root_device,
                    size_gib=int(volume.get("Size", 0)),
                )
            )
        index = len(targets)
        targets.append(
            InstanceTarget(
                instance_id=raw["InstanceId"],
                name=tags.get("Name", ""),
                availability_zone=raw.get("Placement", {}).get("AvailabilityZone", ""),
                state=raw.get("State", {}).get("Name", ""),
                volumes=tuple(selected),
                excluded_volume_ids=tuple(excluded),
                copied_tags={k: v for k, v in tags.items() if k in copy_tags and not k.startswith("aws:")},
                retention_tags={k: tags[k] for k in RETENTION_TAGS if k in tags},
                start_delay_seconds=(index % map_concurrency) // create_rate_per_second,
                spec=InstanceSpec.from_instance(raw),
                # Any value but crash goes to the Freeze step, which refuses an invalid one
                # visibly: a typo never silently yields a crash-consistent backup.
                consistency="crash" if tags.get(TAG_CONSISTENCY, "crash").strip().lower() == "crash" else "application",
                consistency_tags={k: tags[k] for k in CONSISTENCY_TAGS if k in tags},
            )
        )
    return targets


def rerun_selection(
    requested_ids: Sequence[str],
    found: Iterable[Mapping[str, Any]],
    *,
    tag_key: str,
    tag_value: str,
) -> tuple[list[Mapping[str, Any]], list[InstanceTarget]]:
    """Split the instances a re-run names into those to back up and those skipped, with why.

    A re-run (``instance_ids``) must back up what it can: an id that no longer exists, a
    terminated instance or one without the backup tag is skipped with a reason, never an error.
    """
    by_id = {i["InstanceId"]: i for i in found}
    selected: list[Mapping[str, Any]] = []
    skipped: list[InstanceTarget] = []
    for instance_id in sorted(set(requested_ids)):
        raw = by_id.get(instance_id)
        state = raw.get("State", {}).get("Name", "") if raw else "not-found"
        tags = tag_dict(raw.get("Tags")) if raw else {}
        if raw is None:
            reason = "instance does not exist (named in instance_ids)"
        elif state not in SELECTED_STATES:
            reason = f"instance is {state} (named in instance_ids)"
        elif tags.get(tag_key) != tag_value:
            reason = f"instance is not tagged {tag_key}={tag_value} (named in instance_ids)"
        else:
            selected.append(raw)
            continue
        skipped.append(
            InstanceTarget(
                instance_id=instance_id,
                name=tags.get("Name", ""),
                availability_zone="",
                state=state,
                volumes=(),
                skip_reason=reason,
            )
        )
    return selected, skipped


def run_tags(target: InstanceTarget, run: RunContext, deployment_id: str) -> dict[str, str]:
    """What a snapshot and its copies share: the instance's copied tags, the managed marker,
    the instance and the run (so retention and re-runs find them), the device map (every device
    of the run, so a copy Region sees a missing copy) and the instance spec (so a restore as an
    AMI needs neither the instance nor its Region)."""
    tags = {k: v[:MAX_TAG_VALUE] for k, v in target.copied_tags.items() if not k.startswith("smart-vault:")}
    tags.update(
        {
            TAG_MANAGED: deployment_id,
            TAG_INSTANCE_ID: target.instance_id,
            TAG_RUN_ID: run.run_id,
            TAG_RUN_TIME: run.run_time,
        }
    )
    if target.name:
        tags[TAG_INSTANCE_NAME] = target.name[:MAX_TAG_VALUE]
    # One CreateSnapshots call tags all its snapshots alike, so the device of each volume goes
    # in a shared map (VolumeId is a native attribute of every snapshot).
    device_map = ",".join(f"{v.volume_id}={v.device}" for v in target.volumes)
    if len(device_map) <= MAX_TAG_VALUE:
        tags[TAG_DEVICE_MAP] = device_map
    spec = target.spec.to_tag() if target.spec else ""
    if spec and len(spec) <= MAX_TAG_VALUE:
        tags[TAG_INSTANCE_SPEC] = spec
    return tags


def snapshot_tags(
    target: InstanceTarget, run: RunContext, deployment_id: str, consistency: str | None = None
) -> list[dict[str, str]]:
    """Tags every snapshot of this instance and run carries from creation on; ``consistency``
    (an opted-in instance: application, or crash after a fallback) says what the snapshot is."""
    tags = run_tags(target, run, deployment_id)
    if consistency:
        tags[TAG_CONSISTENCY] = consistency
    # The override the instance had, so its orphans keep that policy (docs/decisions.md).
    tags.update({k: v[:MAX_TAG_VALUE] for k, v in target.retention_tags.items()})
    items = [{"Key": k, "Value": v} for k, v in tags.items()]
    return items[-MAX_CREATION_TAGS:]


def device_of(target: InstanceTarget, volume_id: str) -> str:
    for volume in target.volumes:
        if volume.volume_id == volume_id:
            return volume.device
    return ""
