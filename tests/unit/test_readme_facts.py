"""Facts the README states about AWS that a reviewer found wrong once: the commands and the
Regions it names are EC2's (Recycle Bin for EBS snapshots is operated through EC2's own API:
ListSnapshotsInRecycleBin, RestoreSnapshotFromRecycleBin, EC2 API Reference)."""

from __future__ import annotations

from pathlib import Path

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_recycle_bin_recovery_uses_ec2_commands():
    assert "aws ec2 list-snapshots-in-recycle-bin" in " ".join(README.split())
    assert "aws ec2 restore-snapshot-from-recycle-bin" in " ".join(README.split())
    assert "aws rbin restore-resource" not in README


def test_the_readme_says_copies_in_destination_regions_are_not_covered_by_the_rule():
    text = " ".join(README.split())
    assert "copies pruned in a destination Region are **not** covered" in text


def test_a_copy_draws_on_the_destination_regions_request_bucket():
    text = " ".join(README.split())
    assert "shares EC2's mutating-request bucket with CreateSnapshots" not in text
    assert "draws on that Region's request bucket for CopySnapshot" in text
