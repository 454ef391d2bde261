"""Fleets whose volumes use a customer managed KMS key and a destination key that
cannot be used, through the real ASL, handlers and the stack's IAM: EBS uses the
key on the caller's behalf to copy, archive and restore, so each of those roles needs it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import boto3

from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import Simulation, simulate
from tests.workflow.conftest import BASE, by_name, instance

FLEET_KEY = "alias/fleet"
DR = {"region": "us-west-2", "kms_key": "alias/smart-vault-dr", "retention_days": 10, "keep_min": 2}
OLD = [{"label": f"old-{i}", "instance": "web-1", "age_days": 10 + i, "managed": True} for i in range(3)]
BACKUP_AT = "2026-11-26T03:00:00Z"
DRILL_AT = "2026-11-29T05:00:00Z"


def encrypted(name: str) -> dict[str, Any]:
    """An instance whose two volumes are encrypted with the fleet's own key."""
    spec = instance(name, volumes=2)
    for volume in spec["volumes"]:
        volume["kms_key"] = FLEET_KEY
    return spec


def scenario(*, settings: dict[str, Any] | None = None, **parts: Any) -> Any:
    data = copy.deepcopy(BASE)
    data["instances"] = [encrypted("web-1")]
    data["settings"] = {
        "retention_days": 7,
        "keep_min": 2,
        "copy_regions": [DR],
        "fleet_kms_keys": [FLEET_KEY],
        "drill": {"instances_per_drill": 1},
        **(settings or {}),
    }
    data["runs"] = [{"at": BACKUP_AT}, {"at": DRILL_AT, "workflow": "drill"}]
    data.update(parts)
    return parse_scenario(data)


# Monthly picks older than 30 days go to the archive tier (the 57-day-old one here).
ARCHIVE = {"retention": {"daily": 1, "monthly": 12}, "keep_min": 1, "archive_after_days": 30}
MONTHLY = [{"label": "m-2", "instance": "web-1", "age_days": 57}]


def archiving(**parts: Any) -> Any:
    settings = {"copy_regions": [DR], "fleet_kms_keys": [FLEET_KEY], **ARCHIVE}
    data = copy.deepcopy(BASE)
    data.update(instances=[encrypted("web-1")], settings=settings, existing_snapshots=MONTHLY, runs=[{"at": BACKUP_AT}])
    data.update(parts)
    return parse_scenario(data)


def without_key_grant(role_prefix: str, alias: str = FLEET_KEY) -> Callable[[dict[str, Any]], None]:
    """Remove the role's statements that grant the fleet key (those narrowed to its alias)."""

    def edit(template: dict[str, Any]) -> None:
        for logical, resource in template["Resources"].items():
            if resource["Type"] != "AWS::IAM::Policy" or not logical.startswith(role_prefix):
                continue
            document = resource["Properties"]["PolicyDocument"]
            kept = [s for s in document["Statement"] if alias not in json.dumps(s.get("Condition", {}))]
            assert len(kept) < len(document["Statement"]), f"{logical} grants no {alias}"
            document["Statement"] = kept

    return edit


def fleet_key_arn() -> str:
    return str(boto3.client("kms", region_name="us-east-1").describe_key(KeyId=FLEET_KEY)["KeyMetadata"]["Arn"])


def run_all(sim: Simulation, before: Callable[[], None] | None = None) -> tuple[list[dict[str, Any]], str]:
    with sim.emulated():
        if before is not None:
            before()
        runs = [sim.run_at(i, at) for i, at in enumerate(sim.scenario.runs)]
        return runs, fleet_key_arn()


def test_encrypted_volumes_are_snapshotted_copied_and_drilled_under_iam():
    backup, drill = simulate(scenario())["runs"]
    assert backup["iam_enforced"] and backup["iam_denied"] == [] and drill["iam_denied"] == []
    assert backup["execution"]["status"] == "SUCCEEDED"
    assert by_name(backup)["web-1"]["status"] == "backed_up"
    assert len(backup["copies"]) == 2 and {c["state"] for c in backup["copies"]} == {"completed"}
    assert drill["drill"]["status"] == "passed"
    assert [r["status"] for r in drill["drill"]["instances"]] == ["passed"]


def test_encrypted_snapshots_are_archived_under_iam():
    (run,) = simulate(archiving())["runs"]
    assert run["iam_denied"] == [] and run["execution"]["status"] == "SUCCEEDED"
    assert len(by_name(run)["web-1"]["archived"]) == 1  # m-2, encrypted with the fleet key too


def test_the_snapshots_and_the_drills_volumes_carry_the_fleet_key():
    sim = Simulation(scenario())
    with sim.emulated():
        backup = sim.run_at(0, sim.scenario.runs[0])
        arn = fleet_key_arn()
        ec2 = boto3.client("ec2", region_name="us-east-1")
        ids = [c["snapshot_id"] for c in backup["created"]]
        snapshots = ec2.describe_snapshots(SnapshotIds=ids)["Snapshots"]
    assert {(s["Encrypted"], s.get("KmsKeyId")) for s in snapshots} == {(True, arn)}


def test_a_copy_role_without_the_fleet_key_fails_the_copy_with_an_alert_naming_the_key():
    # EC2 accepts CopySnapshot; the copy ends in state error (copied asynchronously).
    sim = Simulation(
        scenario(existing_snapshots=OLD, runs=[{"at": BACKUP_AT}]), edit_template=without_key_grant("CopyRole")
    )
    (run,), arn = run_all(sim)
    web = by_name(run)["web-1"]
    assert web["status"] == "failed" and web["step"] == "Copy"
    assert arn in web["error"] and "us-west-2" in web["error"]
    assert len(run["created"]) == 2 and run["deleted"] == []  # backed up, nothing pruned
    message = run["alerts"][-1]["message"]
    assert "web-1" in message and arn in message
    assert run["execution"]["status"] == "FAILED"


def test_a_prune_role_without_the_fleet_key_cannot_archive_and_the_alert_names_the_key():
    sim = Simulation(archiving(), edit_template=without_key_grant("PruneRole"))
    (run,), arn = run_all(sim)
    web = by_name(run)["web-1"]
    assert web["status"] == "failed" and web["step"] == "Prune"
    assert "ModifySnapshotTier" in web["error"] and arn in web["error"]
    assert arn in run["alerts"][-1]["message"]


def test_a_drill_role_without_the_fleet_key_fails_the_drill_with_an_alert_naming_the_key():
    # CreateVolume is accepted; the volume is creating, then fails (EBS createVolume "failed").
    sim = Simulation(scenario(), edit_template=without_key_grant("DrillRole"))
    (backup, drill), arn = run_all(sim)
    assert backup["execution"]["status"] == "SUCCEEDED"
    assert drill["drill"]["status"] == "failed"
    (row,) = drill["drill"]["instances"]
    assert row["status"] == "failed" and arn in row["error"] and "state error" in row["error"]
    assert row["cleaned_up"] is True and drill["volumes_left"] == []
    assert arn in drill["alerts"][-1]["message"]


def disable_fleet_key() -> None:
    boto3.client("kms", region_name="us-east-1").disable_key(KeyId=fleet_key_arn().rsplit("/", 1)[-1])


def schedule_fleet_key_deletion() -> None:
    key_id = fleet_key_arn().rsplit("/", 1)[-1]
    boto3.client("kms", region_name="us-east-1").schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)


def test_a_disabled_or_deleted_fleet_key_stops_the_run_in_discover_before_any_snapshot():
    for break_key, state in ((disable_fleet_key, "Disabled"), (schedule_fleet_key_deletion, "PendingDeletion")):
        sim = Simulation(scenario(runs=[{"at": BACKUP_AT}]))
        (run,), _ = run_all(sim, break_key)
        assert run["execution"]["status"] == "FAILED"
        assert run["created"] == [] and run["copies"] == [] and "ec2:CreateSnapshots" not in run["api_calls"]
        (alert,) = run["alerts"]
        assert "Discover" in alert["message"] and "fleet_kms_keys[0]" in alert["message"]
        assert FLEET_KEY in alert["message"] and state in alert["message"]


def test_a_missing_fleet_key_is_one_alert_naming_it():
    sim = Simulation(scenario(runs=[{"at": BACKUP_AT}], settings={"fleet_kms_keys": [FLEET_KEY, "alias/typo"]}))
    (run,), _ = run_all(sim)
    assert run["created"] == []
    (alert,) = run["alerts"]
    assert "alias/typo" in alert["message"] and "fleet_kms_keys[1]" in alert["message"]


# -- one destination's key: unusable ------------------------------------------------------------
EU = {"region": "eu-west-1", "kms_key": "alias/smart-vault-eu", "retention_days": 10, "keep_min": 2}


def test_a_disabled_destination_key_fails_only_the_copies_to_that_region():
    # Given two destinations, us-west-2's key disabled, and three old local snapshots.
    data = copy.deepcopy(BASE)
    data["settings"] = {"retention_days": 7, "keep_min": 2, "copy_regions": [DR, EU]}
    data["instances"] = [instance("web-1"), instance("db-1")]
    data["existing_snapshots"] = OLD
    data["runs"] = [{"at": BACKUP_AT}, {"every": "1d", "count": 1}]
    sim = Simulation(parse_scenario(data))
    with sim.emulated():
        kms = boto3.client("kms", region_name="us-west-2")
        kms.disable_key(KeyId=kms.describe_key(KeyId="alias/smart-vault-dr")["KeyMetadata"]["KeyId"])
        runs = [sim.run_at(i, at) for i, at in enumerate(sim.scenario.runs)]
        final = sim._final_snapshots()
    for run in runs:
        # The local backups are taken: one snapshot per instance each night.
        assert len(run["created"]) == 2
        # Copies go to eu-west-1 only; none is attempted to us-west-2.
        assert {c["region"] for c in run["copies"]} == {"eu-west-1"}
        assert {c["state"] for c in run["copies"]} == {"completed"}
        for row in run["instances"]:
            assert row["status"] == "failed" and row["step"] == "Copy"
            assert "us-west-2" in row["error"] and "alias/smart-vault-dr" in row["error"] and "Disabled" in row["error"]
        message = run["alerts"][-1]["message"]
        assert "us-west-2" in message and "alias/smart-vault-dr" in message
        assert run["execution"]["status"] == "FAILED"
        assert run["deleted"] == []  # local pruning held: us-west-2 holds no copy
    local = {s["label"] for s in final if s["region"] == "us-east-1" and s["label"]}
    assert local == {"old-0", "old-1", "old-2"}
    assert not [s for s in final if s["region"] == "us-west-2"]
