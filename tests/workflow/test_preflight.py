"""`smart-vault preflight` in the emulated account: the real workflow started with
{"preflight": true}; every function's night calls made with its own role, EC2 ones with DryRun."""

from __future__ import annotations

import copy
from typing import Any

import boto3
import pytest

from smart_vault.preflight.checks import NO_SNAPSHOT
from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import Simulation

DEST = "us-west-2"
BASE: dict[str, Any] = {
    "region": "us-east-1",
    "settings": {
        "retention": {"daily": 7, "monthly": 12},
        "archive_after_days": 90,
        "keep_min": 1,
        "lock": {"mode": "governance", "days": 7},
        "copy_regions": [{"region": DEST, "kms_key": "alias/smart-vault-dr", "retention_days": 7, "keep_min": 1}],
    },
    "instances": [
        {
            "name": "web-1",
            "tags": {"backup": "True"},
            "volumes": [{"device": "/dev/xvda"}, {"device": "/dev/sdf"}],
            "snapshot_checks_until_complete": 1,
        }
    ],
    "runs": [
        {"at": "2026-11-26T03:00:00Z"},
        {"at": "2026-11-26T09:00:00Z", "workflow": "preflight"},
    ],
}


def scenario(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def preflight_run(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The last run (the preflight) and the first (a single-instance backup)."""
    runs = Simulation(parse_scenario(data)).run()["runs"]
    return runs[-1], runs[0]


def rows(run: dict[str, Any], result: str) -> set[tuple[str, str]]:
    return {(c["role"], c["action"]) for c in run["preflight"]["checks"] if c["result"] == result}


@pytest.fixture(scope="module")
def shipped() -> tuple[dict[str, Any], dict[str, Any]]:
    return preflight_run(scenario())


def test_preflight_of_the_shipped_stack_passes_and_changes_nothing(shipped):
    run, backup = shipped
    assert run["workflow"] == "preflight"
    assert run["execution"]["status"] == "SUCCEEDED"
    assert run["preflight"]["status"] == "passed", run["preflight"]
    checks = run["preflight"]["checks"]
    assert {c["result"] for c in checks} <= {"passed", "not_checked"}
    assert all(c["reason"] for c in checks if c["result"] == "not_checked")
    assert run["account_unchanged"] is True  # same snapshots, tags, tiers, volumes, locks
    assert not [n for n in run["api_calls"] if n.startswith("ec2:") and "DryRun" in n]
    # Every mutating call of the night, by its own role, answered by EC2's DryRun.
    dry = {(c["role"], c["action"]) for c in checks if c["reason"].startswith("DryRunOperation")}
    assert dry >= {
        ("snapshot", "ec2:CreateSnapshots"),
        ("snapshot", "ec2:LockSnapshot"),
        ("check", "ec2:LockSnapshot"),
        ("copy", "ec2:CopySnapshot"),
        ("prune", "ec2:DeleteSnapshot"),
        ("prune", "ec2:ModifySnapshotTier"),
        ("prune", "ec2:LockSnapshot"),
        ("drill", "ec2:CreateVolume"),
        ("drill_report", "ec2:CreateTags"),
    }
    # The copy is aimed at the destination with its key; the destination's copy is pruned too.
    [copy_row] = [c for c in checks if c["action"] == "ec2:CopySnapshot"]
    assert f"{DEST} with alias/smart-vault-dr" in copy_row["resource"]
    assert any(c["action"] == "ec2:DeleteSnapshot" and f":{DEST}::snapshot/" in c["resource"] for c in checks)
    assert rows(run, "passed") >= {("prune", "s3:DeleteObject"), ("notify", "sns:ListSubscriptionsByTopic")}
    # The drill's Verify reads: the EBS direct APIs have no DryRun, so one page and one block, for real.
    assert rows(run, "passed") >= {
        ("drill", "ebs:ListSnapshotBlocks"),
        ("drill", "ebs:GetSnapshotBlock"),
        ("drill", "ec2:DescribeVolumeStatus"),
    }
    assert ("notify", "sns:Publish") in rows(run, "not_checked")  # only with --notify
    # About the size of a single-instance backup (measured, not timed).
    figures, night = run["execution"], backup["execution"]
    assert figures["child_executions"] == 1
    assert figures["state_transitions"] <= night["state_transitions"]
    assert sum(run["api_calls"].values()) <= 2 * sum(backup["api_calls"].values())


def test_the_record_and_metric_say_the_result(shipped):
    run, _ = shipped
    assert run["preflight"]["record"].startswith("preflight/")
    assert run["metrics"].get("PreflightFailed") == 0


def test_before_the_first_night_nothing_is_passed_without_a_target():
    run, _ = preflight_run(scenario(runs=[{"at": "2026-11-26T02:00:00Z", "workflow": "preflight"}]))
    checks = {(c["role"], c["action"]): c for c in run["preflight"]["checks"]}
    assert checks[("snapshot", "ec2:CreateSnapshots")]["result"] == "passed"  # the instance exists
    for key in [("prune", "ec2:DeleteSnapshot"), ("copy", "ec2:CopySnapshot"), ("drill", "ec2:CreateVolume")]:
        assert checks[key]["result"] == "not_checked"
        assert checks[key]["reason"] in (NO_SNAPSHOT, "no copy there yet")
    assert run["preflight"]["status"] == "passed"
    assert run["account_unchanged"] is True


@pytest.mark.parametrize(
    ("role", "action"),
    [
        ("snapshot", "ec2:CreateSnapshots"),
        ("check", "ec2:LockSnapshot"),
        ("copy", "ec2:CopySnapshot"),
        ("prune", "ec2:DeleteSnapshot"),
        ("prune", "ec2:ModifySnapshotTier"),
        ("prune", "s3:DeleteObject"),
        ("drill", "ec2:CreateVolume"),
        ("drill", "ebs:GetSnapshotBlock"),
        ("drill", "ec2:DescribeVolumeStatus"),
        ("drill_report", "ec2:CreateTags"),
        ("discover", "ec2:DescribeInstances"),
        ("notify", "sns:ListSubscriptionsByTopic"),
    ],
)
def test_a_denied_action_makes_exactly_that_check_denied(role: str, action: str):
    run, _ = preflight_run(scenario(deny=[{"role": role, "action": action}]))
    assert run["preflight"]["status"] == "failed"
    assert rows(run, "denied") == {(role, action)}
    for check in run["preflight"]["checks"]:
        if check["result"] == "denied":
            assert check["resource"] and "explicit deny" in check["reason"], check
    assert rows(run, "failed") == set()
    assert run["metrics"].get("PreflightFailed") == 1
    assert run["account_unchanged"] is True


def test_a_pending_subscription_a_disabled_key_and_a_key_pending_deletion_are_reported():
    second = {"region": "eu-west-1", "kms_key": "alias/smart-vault-eu", "retention_days": 7, "keep_min": 1}
    data = scenario(
        alert_subscriptions=[{"protocol": "email", "endpoint": "ops@example.com", "status": "pending"}],
        runs=[{"at": "2026-11-26T03:00:00Z"}],
    )
    data["settings"]["copy_regions"].append(second)
    sim = Simulation(parse_scenario(data))
    with sim.emulated():
        sim.run_at(0, sim.scenario.runs[0])
        for region, alias, act in [
            (DEST, "alias/smart-vault-dr", "disable"),
            ("eu-west-1", "alias/smart-vault-eu", "delete"),
        ]:
            kms = boto3.client("kms", region_name=region)
            key_id = kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]
            if act == "disable":
                kms.disable_key(KeyId=key_id)
            else:
                kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
        from datetime import timedelta

        from smart_vault_sim.preflight import run_preflight

        run = run_preflight(sim, 1, sim.scenario.runs[0] + timedelta(hours=6))
    failed = {c["resource"]: c["reason"] for c in run["preflight"]["checks"] if c["result"] == "failed"}
    assert run["preflight"]["status"] == "failed"
    subscription = [r for k, r in failed.items() if k.endswith(":smart-vault-alerts")]
    assert subscription and "no confirmed subscription" in subscription[0] and "ops@example.com" in subscription[0]
    assert any("alias/smart-vault-dr" in k and "Disabled" in r for k, r in failed.items()), failed
    assert any("alias/smart-vault-eu" in k and "PendingDeletion" in r for k, r in failed.items()), failed


def test_the_recycle_bin_rule_is_checked_when_configured():
    data = scenario(runs=[{"at": "2026-11-26T03:00:00Z"}])
    data["settings"]["recycle_bin_days"] = 10
    sim = Simulation(parse_scenario(data))
    with sim.emulated():
        from datetime import timedelta

        from smart_vault_sim.preflight import run_preflight

        first = sim.scenario.runs[0]
        sim.run_at(0, first)
        present = run_preflight(sim, 1, first + timedelta(hours=1))
        sim.recycle_bin.rules.clear()  # someone deleted the tag-level rule (it cannot be locked)
        deleted = run_preflight(sim, 2, first + timedelta(hours=2))
    [ok] = [c for c in present["preflight"]["checks"] if c["action"] == "rbin:ListRules"]
    assert ok["result"] == "passed" and "10 days" in ok["reason"]
    [gone] = [c for c in deleted["preflight"]["checks"] if c["action"] == "rbin:ListRules"]
    assert gone["result"] == "failed" and "recycle_bin_days is 10 but no rule" in gone["reason"]
    assert deleted["preflight"]["status"] == "failed"


def test_a_disabled_schedule_and_a_denied_drill_cleanup_are_reported():
    from datetime import timedelta

    from smart_vault.constants import TAG_DRILL
    from smart_vault_sim.preflight import run_preflight
    from smart_vault_sim.simulator import DEPLOYMENT_ID, SCHEDULE_NAME

    data = scenario(
        runs=[{"at": "2026-11-26T03:00:00Z"}], deny=[{"role": "drill_cleanup", "action": "ec2:DeleteVolume"}]
    )
    sim = Simulation(parse_scenario(data))
    with sim.emulated():
        first = sim.scenario.runs[0]
        sim.run_at(0, first)
        # A volume an earlier drill left: the cleanup role's DeleteVolume gets a real target.
        ec2 = boto3.client("ec2")
        zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
        tags = [{"Key": TAG_DRILL, "Value": DEPLOYMENT_ID}]
        volume = ec2.create_volume(
            AvailabilityZone=zone, Size=1, TagSpecifications=[{"ResourceType": "volume", "Tags": tags}]
        )["VolumeId"]
        scheduler = boto3.client("scheduler")
        found = scheduler.get_schedule(Name=SCHEDULE_NAME)
        scheduler.update_schedule(
            Name=SCHEDULE_NAME,
            ScheduleExpression=found["ScheduleExpression"],
            FlexibleTimeWindow=found["FlexibleTimeWindow"],
            Target=found["Target"],
            State="DISABLED",
        )
        run = run_preflight(sim, 1, first + timedelta(hours=1))
    checks = {(c["role"], c["action"]): c for c in run["preflight"]["checks"]}
    cleanup = checks[("drill_cleanup", "ec2:DeleteVolume")]
    assert cleanup["result"] == "denied" and cleanup["resource"] == f"volume/{volume}"
    schedule = checks[("notify", "scheduler:GetSchedule")]
    assert schedule["result"] == "failed" and "DISABLED" in schedule["reason"], schedule
    assert rows(run, "denied") == {("drill_cleanup", "ec2:DeleteVolume")}
    assert run["account_unchanged"] is True
