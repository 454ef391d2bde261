"""Where moto's EC2 differs from AWS in ways Smart Vault depends on, make it behave like AWS.

- ``CreateSnapshots`` ignores ``ExcludeDataVolumeIds`` in moto; AWS snapshots only the rest, and
  fails the request when the list names the root volume.
- moto stamps snapshots with the wall clock; the simulator's runs happen at virtual times.
- moto completes snapshots at once; AWS leaves them ``pending`` for a while (the simulator
  decides how long through ``on_created``).
- moto looks up a resource's tags by scanning every tag in the region, which makes a tag-filtered
  DescribeSnapshots quadratic in the fleet; we read the resource's own tags instead (same result).
- moto's DescribeImages has no ``block-device-mapping.snapshot-id`` filter; AWS matches an image
  when any of its EBS mappings uses one of the values.

- CreateVolume, RegisterImage and RunInstances validate and behave as EC2 does (``restore_rules``).

Installed with ``patched()``, restored on exit. moto is pinned exactly in pyproject.toml.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from moto.ec2.exceptions import InvalidParameterValueError
from moto.ec2.models.amis import Ami
from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.models.elastic_block_store import EBSBackend
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

from smart_vault_sim import restore_rules

SnapshotHook = Callable[[Any, str], None]  # (moto Snapshot, instance id)


def _excluded_ids(instance_spec: dict[str, Any]) -> set[str]:
    raw = instance_spec.get("ExcludeDataVolumeIds") or []
    if isinstance(raw, dict):
        raw = list(raw.values())
    if isinstance(raw, str):
        raw = [raw]
    return {str(v) for v in raw}


@contextlib.contextmanager
def patched(*, now: Callable[[], datetime] | None = None, on_created: SnapshotHook | None = None) -> Iterator[None]:
    original = EBSBackend.create_snapshots

    def create_snapshots(self: Any, instance_spec: dict[str, Any], description: str, tags: dict[str, str]) -> list[Any]:
        excluded = _excluded_ids(instance_spec)
        # EC2 API Reference, InstanceSpecification: ExcludeDataVolumeIds takes data volumes only;
        # "If you specify the ID of the root volume, the request fails."
        instance = self.get_instance(instance_spec["InstanceId"])
        root = dict(instance.get_block_device_mapping).get(instance.root_device_name)
        if root is not None and root.volume_id in excluded:
            raise InvalidParameterValueError(root.volume_id)
        snapshots = original(self, instance_spec, description, tags)
        kept = []
        for snapshot in snapshots:
            if snapshot.volume.id in excluded:
                self.snapshots.pop(snapshot.id, None)  # AWS would not have made it
                continue
            if now is not None:
                snapshot.start_time = now()
            if on_created is not None:
                on_created(snapshot, instance_spec["InstanceId"])
            kept.append(snapshot)
        return kept

    original_get_tags = TaggedEC2Resource.get_tags

    def get_tags(self: Any) -> list[dict[str, str]]:
        resource_id = getattr(self, "id", None)
        if not resource_id:
            return []
        own = self.ec2_backend.tags.get(resource_id) or {}
        kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
        return [{"resource_id": resource_id, "key": k, "value": v, "resource_type": kind} for k, v in own.items()]

    original_ami_filter = Ami.get_filter_value

    def ami_filter(self: Any, filter_name: str, method_name: str | None = None) -> Any:
        if filter_name == "block-device-mapping.snapshot-id":
            return [m["Ebs"]["SnapshotId"] for m in self.block_device_mappings if m.get("Ebs", {}).get("SnapshotId")]
        return original_ami_filter(self, filter_name, method_name)

    EBSBackend.create_snapshots = create_snapshots  # type: ignore[method-assign]
    TaggedEC2Resource.get_tags = get_tags  # type: ignore[method-assign]
    Ami.get_filter_value = ami_filter  # type: ignore[method-assign]
    try:
        with restore_rules.patched():
            yield
    finally:
        EBSBackend.create_snapshots = original  # type: ignore[method-assign]
        TaggedEC2Resource.get_tags = original_get_tags  # type: ignore[method-assign]
        Ami.get_filter_value = original_ami_filter  # type: ignore[method-assign]
