"""Verify the snapshots of one drilled recovery point: each one's blocks, judged by
``blocks.check_snapshot``; a device the operator tags ``smart-vault:filesystem=raw`` (on its
volume or on the snapshot) is checked for readability only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from smart_vault.aws import Ec2
from smart_vault.backup.inventory import tag_dict
from smart_vault.constants import TAG_FILESYSTEM
from smart_vault.observability import logger
from smart_vault.verification.blocks import RAW, Blocks, check_snapshot


def raw_snapshots(ec2: Ec2, snapshot_ids: Sequence[str]) -> set[str]:
    """The snapshots marked raw: by their own tag, or by their source volume's (if it still exists)."""
    snapshots = ec2.describe_snapshots(list(snapshot_ids))
    marked = {str(s["SnapshotId"]) for s in snapshots if tag_dict(s.get("Tags")).get(TAG_FILESYSTEM) == RAW}
    sources = {str(s.get("VolumeId")): str(s["SnapshotId"]) for s in snapshots if s.get("VolumeId")}
    volumes = ec2.volumes(list(sources)) if sources else {}
    marked |= {sources[v] for v, data in volumes.items() if tag_dict(data.get("Tags")).get(TAG_FILESYSTEM) == RAW}
    return marked


def verify_point(devices: Sequence[tuple[str, str]], *, ec2: Ec2, blocks: Blocks) -> dict[str, Any]:
    """``devices``: (snapshot id, device) of each snapshot of the point. The result the drill's
    Verify step records: its status, one row per snapshot, and the problems in words."""
    raw = raw_snapshots(ec2, [s for s, _ in devices])
    checks = [check_snapshot(blocks, s, device, raw=s in raw) for s, device in devices]
    problems = [c.problem for c in checks if c.problem]
    logger.info("drill verification", extra={"checks": [c.to_dict() for c in checks]})
    return {
        "status": "failed" if problems else "passed",
        "volumes": [c.to_dict() for c in checks],
        "problems": problems,
    }
