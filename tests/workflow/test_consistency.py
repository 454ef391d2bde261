"""Application-consistent backups: an opted-in instance is frozen through SSM Run Command before
CreateSnapshots and thawed after it on every path, and a failed freeze is never silent."""

from __future__ import annotations

from typing import Any

import pytest

from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import Simulation

from .conftest import BASE, by_name, instance

APP = {"backup": "True", "smart-vault:consistency": "application"}


def app(name: str, **ssm: Any) -> dict[str, Any]:
    return instance(name, tags=dict(APP), ssm={"managed": True, **ssm})


def commands(run: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [c for c in run["ssm_commands"] if c["instance"] == name]


def assert_thawed_after_every_freeze(run: dict[str, Any]) -> None:
    """A post script sent after every pre script, on every instance that got one."""
    for name in {c["instance"] for c in run["ssm_commands"]}:
        sent = commands(run, name)
        for i, pre in enumerate(sent):
            if pre["kind"] == "pre":
                assert any(c["kind"] == "post" for c in sent[i + 1 :]), f"{name} left frozen: {sent}"


def test_a_mixed_fleet_snapshots_the_opted_in_instance_between_its_freeze_and_thaw(run_scenario):
    run = run_scenario(instances=[instance("web-1"), app("db-1", seconds=2)])["runs"][0]
    rows = by_name(run)
    assert {r["status"] for r in rows.values()} == {"backed_up"}
    assert rows["web-1"]["consistency"] == "crash" and rows["web-1"]["frozen_seconds"] is None
    assert commands(run, "web-1") == []  # crash-consistent: no SSM call at all
    assert rows["db-1"]["consistency"] == "application"
    pre, post = commands(run, "db-1")
    assert (pre["kind"], pre["status"], post["kind"], post["status"]) == ("pre", "Success", "post", "Success")
    started = [c["started_seconds"] for c in run["created"] if c["instance"] == "db-1"]
    assert started and all(pre["ended_seconds"] <= t <= post["sent_seconds"] for t in started)
    # Frozen from the end of the freeze to the end of the thaw, as SSM timed the scripts.
    assert rows["db-1"]["frozen_seconds"] == pytest.approx(post["ended_seconds"] - pre["ended_seconds"], abs=0.01)


def test_a_failed_freeze_fails_the_instance_thaws_it_and_prunes_nothing(run_scenario):
    old = {"instance": "db-1", "age_days": 30, "label": "old"}
    run = run_scenario(instances=[app("db-1", pre="failed")], existing_snapshots=[old])["runs"][0]
    row = by_name(run)["db-1"]
    assert (row["status"], row["step"], row["consistency"]) == ("failed", "Freeze", "application")
    assert "FreezeFailed" in row["error"] and "scripted failure" in row["error"]
    assert row["pruned"] == [] and run["created"] == []
    assert [c["kind"] for c in commands(run, "db-1")] == ["pre", "post"]  # thawed all the same


def test_with_fallback_a_failed_freeze_is_a_crash_consistent_backup_that_says_so(run_scenario):
    tags = {**APP, "smart-vault:consistency-fallback": "crash"}
    run = run_scenario(instances=[instance("db-1", tags=tags, ssm={"pre": "timeout"})])["runs"][0]
    row = by_name(run)["db-1"]
    assert (row["status"], row["consistency"]) == ("backed_up", "crash")
    assert [c["kind"] for c in commands(run, "db-1")] == ["pre", "post"]
    alert = run["alerts"][0]["message"]
    assert "Crash-consistent fallbacks" in alert and "FreezeTimedOut" in alert


def test_an_unmanaged_instance_is_reported_with_the_reason_and_the_fix(run_scenario):
    run = run_scenario(instances=[app("db-1", managed=False)])["runs"][0]
    row = by_name(run)["db-1"]
    assert (row["status"], row["step"], row["aws_code"]) == ("failed", "Freeze", "InvalidInstanceId")
    assert "SSM Agent" in row["error"] and "AmazonSSMManagedInstanceCore" in row["error"]
    assert commands(run, "db-1") == []  # SSM refused the pre script: nothing ran, nothing to thaw


@pytest.mark.parametrize(
    "fault",
    [
        {"operation": "CreateSnapshots", "error": "RequestLimitExceeded"},
        {"operation": "CreateSnapshots", "error": "InternalError"},
        {"operation": "CreateSnapshots", "error": "IncorrectState"},
        {"operation": "Invoke", "function": "snapshot", "error": "Sandbox.Timedout", "count": 1},
        {"operation": "Invoke", "function": "consistency", "error": "Sandbox.Timedout", "count": 1},
    ],
    ids=["throttled", "server-error", "failed", "snapshot-lambda-timeout", "freeze-lambda-timeout"],
)
def test_every_frozen_instance_is_thawed_whatever_fails(run_scenario, fault):
    run = run_scenario(instances=[app("db-1"), app("db-2")], faults=[{**fault, "instance": "db-1"}])["runs"][0]
    assert run["faults_injected"]
    assert_thawed_after_every_freeze(run)
    assert by_name(run)["db-2"]["status"] == "backed_up"
    assert by_name(run)["db-1"]["status"] == "failed"


def test_preflight_probes_ssm_and_says_what_it_cannot_prove(run_scenario):
    unmanaged = app("db-1", managed=False)
    run = run_scenario(instances=[unmanaged], runs=[{"at": "2026-11-26T03:00:00Z", "workflow": "preflight"}])
    checks = {c["action"]: c for c in run["runs"][0]["preflight"]["checks"] if c["role"] == "consistency"}
    assert checks["ssm:DescribeInstanceInformation"]["result"] == "failed"
    assert "SSM does not manage it" in checks["ssm:DescribeInstanceInformation"]["reason"]
    assert checks["ssm:SendCommand"]["result"] == "not_checked"
    assert "no DryRun" in checks["ssm:SendCommand"]["reason"]


def test_crash_consistency_costs_nothing_more_and_application_consistency_is_counted(run_scenario):
    crash = run_scenario(instances=[instance("db-1")])["runs"][0]
    frozen = run_scenario(instances=[app("db-1", seconds=1)])["runs"][0]
    assert not any(k.startswith("ssm:") for k in crash["api_calls"])
    checks = frozen["api_calls"]["ssm:GetCommandInvocation"]
    assert frozen["api_calls"]["ssm:SendCommand"] == 2  # one pre, one post
    # Lambda: the Snapshot step's freeze answer and its pass through Check, Freeze, Thaw, one per check.
    assert frozen["lambda"]["invocations"] - crash["lambda"]["invocations"] == 4 + checks
    # States: that Snapshot/Wait/Check/Choice round, Freeze, SnapshotFrozen, Thaw and their two
    # Choices (entered once more each), and Wait, Check, Choice per poll.
    extra = frozen["execution"]["state_transitions"] - crash["execution"]["state_transitions"]
    assert extra == 8 + 3 * checks


def test_each_snapshot_is_tagged_with_what_it_is():
    fallback = instance("db-2", tags={**APP, "smart-vault:consistency-fallback": "crash"}, ssm={"pre": "failed"})
    sim = Simulation(parse_scenario({**BASE, "instances": [instance("web-1"), app("db-1"), fallback]}))
    with sim.emulated():
        run = sim.report()["runs"][0]
        snapshots = sim.account.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    tagged = {
        s["SnapshotId"]: {t["Key"]: t["Value"] for t in s.get("Tags", [])}.get("smart-vault:consistency")
        for s in snapshots
    }
    by_instance = {c["instance"]: tagged[c["snapshot_id"]] for c in run["created"]}
    assert by_instance == {"web-1": None, "db-1": "application", "db-2": "crash"}


def test_a_failed_thaw_fails_the_instance_keeps_its_snapshots_and_prunes_nothing(run_scenario):
    old = {"instance": "db-1", "age_days": 30, "label": "old"}
    run = run_scenario(instances=[app("db-1", post="failed")], existing_snapshots=[old])["runs"][0]
    row = by_name(run)["db-1"]
    assert (row["status"], row["step"]) == ("failed", "Thaw")
    assert "ThawFailed" in row["error"]
    assert row["snapshots"] and row["pruned"] == []  # the snapshots exist; nothing deleted
    assert row["frozen_seconds"] is None  # no confirmed thaw
