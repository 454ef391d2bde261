"""Verified restores through the real drill.asl.json, handlers and IAM: the drill reads a bounded
sample of each snapshot's blocks with the EBS direct APIs, checks their checksums and recognizes
the file system; a snapshot without one, or with blocks that fail their checksum, fails the drill
with an alert naming the snapshot, the device and what was found."""

from __future__ import annotations

import copy
from typing import Any

from smart_vault.verification.blocks import SAMPLE_BLOCKS
from smart_vault_sim import fleet
from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import Simulation, simulate
from tests.workflow.conftest import BASE, instance

BACKUP_AT = "2026-11-26T03:00:00Z"
DRILL_AT = "2026-11-29T05:00:00Z"


def _with_filesystems(name: str, *filesystems: str, **extra: Any) -> dict[str, Any]:
    spec = instance(name, volumes=len(filesystems), **extra)
    for volume, filesystem in zip(spec["volumes"], filesystems, strict=True):
        volume["filesystem"] = filesystem
    return spec


def drill(*instances: dict[str, Any], **parts: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["instances"] = list(instances)
    # One drill setting for every test here: one synthesized stack (the template cache).
    data["settings"] = {**data["settings"], "drill": {"instances_per_drill": 3}}
    data["runs"] = [{"at": BACKUP_AT}, {"at": DRILL_AT, "workflow": "drill"}]
    data.update(parts)
    run: dict[str, Any] = simulate(parse_scenario(data))["runs"][1]
    return run


def _rows(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in run["drill"]["instances"]}


def test_blank_and_corrupt_snapshots_fail_with_an_alert_naming_each_and_file_systems_pass():
    run = drill(
        _with_filesystems("good-1", "ext4", "xfs", "ntfs", "gpt-ext4"),
        _with_filesystems("blank-1", "blank"),
        _with_filesystems("corrupt-1", "corrupt"),
    )

    assert run["iam_enforced"] and run["iam_denied"] == []
    assert run["drill"]["status"] == "failed" and run["execution"]["status"] == "FAILED"
    rows = _rows(run)
    good = rows["good-1"]
    assert good["status"] == "passed"
    found = {v["device"]: v["filesystem_found"] for v in good["volumes"]}
    assert found == {"/dev/xvda": "ext4", "/dev/sdf": "xfs", "/dev/sdg": "ntfs", "/dev/sdh": "gpt:ext4"}
    assert all(v["checksum_failures"] == 0 and v["blocks_read"] > 0 for v in good["volumes"])

    (blank,) = rows["blank-1"]["volumes"]
    (corrupt,) = rows["corrupt-1"]["volumes"]
    assert rows["blank-1"]["status"] == "failed" and rows["blank-1"]["step"] == "Verify"
    assert blank["filesystem_found"] is None and blank["checksum_failures"] == 0
    assert rows["corrupt-1"]["status"] == "failed" and corrupt["checksum_failures"] > 0
    # Only what passed is marked verified.
    assert set(run["drill"]["verified_snapshots"]) == {v["snapshot_id"] for v in good["volumes"]}

    (alert,) = run["alerts"]
    assert "FAILED (2 of 3 instances)" in alert["subject"]
    for volume, what in ((blank, "no file system signature"), (corrupt, "failed their SHA256 checksum")):
        line = next(x for x in alert["message"].splitlines() if volume["snapshot_id"] in x)
        assert f"({volume['device']})" in line and what in line
    # Every volume the drill made is gone again, also after a failed verification.
    assert run["volumes_left"] == []


def test_a_raw_volume_is_checked_for_readability_only_when_the_operator_marks_it():
    marked = _with_filesystems("marked-1", "raw")
    marked["volumes"][0]["tags"] = {"smart-vault:filesystem": "raw"}
    run = drill(marked, _with_filesystems("unmarked-1", "raw"))

    rows = _rows(run)
    assert rows["marked-1"]["status"] == "passed"
    assert rows["marked-1"]["volumes"][0]["filesystem_found"] == "raw"
    assert rows["unmarked-1"]["status"] == "failed"
    assert rows["unmarked-1"]["volumes"][0]["filesystem_found"] is None


def test_block_reads_are_a_bounded_sample_whatever_the_volume_size():
    small = _with_filesystems("small-1", "gpt-ext4")
    large = _with_filesystems("large-1", "gpt-ext4")
    large["volumes"][0]["size_gib"] = 1024  # 1 TiB: 2,097,152 blocks
    run = drill(small, large)

    reads = {name: row["volumes"][0]["blocks_read"] for name, row in _rows(run).items()}
    # Block 0 (MBR, GPT header and entries), the partition's first block, and the sample.
    assert reads == {"small-1": 2 + SAMPLE_BLOCKS, "large-1": 2 + SAMPLE_BLOCKS}
    assert run["api_calls"]["ebs:GetSnapshotBlock"] == 2 * (2 + SAMPLE_BLOCKS)
    # One ListSnapshotBlocks page from block 0 (it lists the partition's block too), one per sample.
    assert run["api_calls"]["ebs:ListSnapshotBlocks"] == 2 * (1 + SAMPLE_BLOCKS)


def test_a_role_denied_the_block_reads_fails_the_drill_at_verify():
    deny = [{"role": "drill", "action": "ebs:GetSnapshotBlock"}]
    run = drill(_with_filesystems("web-1", "ext4"), deny=deny)

    (row,) = run["drill"]["instances"]
    assert row["status"] == "failed" and row["step"] == "Verify"
    assert row["aws_code"] == "AccessDeniedException" and row["cleaned_up"] is True
    assert any("ebs:GetSnapshotBlock" in d for d in run["iam_denied"])


def _objective_drill(**drill_settings: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["instances"] = [instance("web-1")]
    data["settings"] = {**data["settings"], "drill": {"instances_per_drill": 3, **drill_settings}}
    data["runs"] = [{"at": BACKUP_AT}, {"at": DRILL_AT, "workflow": "drill"}]
    (row,) = simulate(parse_scenario(data))["runs"][1]["drill"]["instances"]
    return dict(row)


def test_an_objective_shorter_than_the_initialization_fails_and_names_the_rate_that_meets_it():
    # 8 GiB at a provisioned 100 MiB/s takes about 82 s to initialize: more than a minute.
    slow = _objective_drill(restore_objective_minutes=1, volume_initialization_rate=100)
    assert slow["status"] == "failed" and slow["step"] == "Objective"
    assert slow["seconds_to_initialized"] > 60
    assert slow["volumes"][0]["seconds_to_initialized"] == slow["seconds_to_initialized"]
    assert slow["volumes"][0]["filesystem_found"] == "ext4"  # the data was fine: only the time was not
    rate = int(slow["error"].split("volume_initialization_rate to ")[1].split(" MiB/s")[0])
    assert 100 < rate <= 300 and "Fast Snapshot Restore" in slow["error"]

    # The rate it named meets the objective.
    fast = _objective_drill(restore_objective_minutes=1, volume_initialization_rate=rate)
    assert fast["status"] == "passed", fast["error"]
    assert fast["seconds_to_initialized"] <= 60


def test_at_the_default_rate_ebs_gives_no_estimate_so_an_objective_is_not_proven():
    row = _objective_drill(restore_objective_minutes=60)
    assert row["status"] == "failed" and row["step"] == "Objective"
    assert row["seconds_to_initialized"] is None and "no estimate" in row["error"]
    assert "volume_initialization_rate to 100 MiB/s" in row["error"]


DR = {"region": "us-west-2", "kms_key": "alias/smart-vault-dr", "retention_days": 30, "keep_min": 1}


def test_with_copy_regions_weekly_drills_prove_the_source_and_the_destination_in_turn():
    data = copy.deepcopy(BASE)
    data["instances"] = [_with_filesystems("web-1", "ext4", "xfs")]
    data["settings"] = {
        **data["settings"],
        "copy_regions": [DR],
        "drill": {"instances_per_drill": 3, "regions": "in_turn"},
    }
    weeks = ["2026-11-29", "2026-12-06", "2026-12-13", "2026-12-20"]
    data["runs"] = [{"at": BACKUP_AT}] + [{"at": f"{w}T05:00:00Z", "workflow": "drill"} for w in weeks]
    sim = Simulation(parse_scenario(data))
    with sim.emulated():
        drills = [sim.run_at(i, at) for i, at in enumerate(sim.scenario.runs)][1:]
        held = {r: set(fleet.ec2_backend(r).snapshots) for r in ("us-east-1", "us-west-2")}

    assert [d["drill"]["region"] for d in drills] == ["us-east-1", "us-west-2", "us-east-1", "us-west-2"]
    for run in drills:
        region = run["drill"]["region"]
        assert run["drill"]["status"] == "passed", run["drill"]
        assert run["iam_denied"] == [] and run["volumes_left"] == []
        (row,) = run["drill"]["instances"]
        # Restored from that Region's own snapshots: the copies there, not the source's.
        assert set(row["snapshots"]) <= held[region]
        assert {v["filesystem_found"] for v in row["volumes"]} == {"ext4", "xfs"}
        assert set(run["drill"]["verified_snapshots"]) == set(row["snapshots"])
