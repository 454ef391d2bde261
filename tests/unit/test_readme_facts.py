"""Facts the documentation states about AWS that a reviewer found wrong once: the commands and
the Regions it names are EC2's (Recycle Bin for EBS snapshots is operated through EC2's own API:
ListSnapshotsInRecycleBin, RestoreSnapshotFromRecycleBin, EC2 API Reference)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parents[2]
RESTORE = (ROOT / "docs" / "restore.md").read_text()
IMMUTABILITY = (ROOT / "docs" / "immutability.md").read_text()
COPIES = (ROOT / "docs" / "copies.md").read_text()
# The README and every page of docs/: a wrong statement must not survive anywhere.
EVERY_PAGE = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def test_recycle_bin_recovery_uses_ec2_commands():
    assert "aws ec2 list-snapshots-in-recycle-bin" in " ".join(RESTORE.split())
    assert "aws ec2 restore-snapshot-from-recycle-bin" in " ".join(RESTORE.split())
    assert "aws rbin restore-resource" not in EVERY_PAGE


def test_the_docs_say_copies_in_destination_regions_are_not_covered_by_the_rule():
    text = " ".join(IMMUTABILITY.split())
    assert "copies pruned in a destination Region are **not** covered" in text


def test_a_copy_draws_on_the_destination_regions_request_bucket():
    assert "shares EC2's mutating-request bucket with CreateSnapshots" not in " ".join(EVERY_PAGE.split())
    assert "draws on that Region's request bucket for CopySnapshot" in " ".join(COPIES.split())
