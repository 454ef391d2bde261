"""Off-site copies through the real ASL, the real handlers and the stack's IAM, on a
multi-Region emulated account whose CopySnapshot is as strict as EC2's (smart_vault_sim.regions)."""

from __future__ import annotations

import copy
from collections import Counter
from datetime import datetime
from typing import Any

import boto3
import pytest

from smart_vault_sim.scenario import ScenarioError, parse_scenario
from smart_vault_sim.simulator import Simulation, simulate
from tests.workflow.conftest import BASE, by_name, instance
from tests.workflow.test_iam_enforcement import without

DR = {"region": "us-west-2", "kms_key": "alias/smart-vault-dr", "retention_days": 10, "keep_min": 2}


def scenario(*, dest: dict[str, Any] = DR, **parts: Any) -> Any:
    data = copy.deepcopy(BASE)
    data["settings"] = {"retention_days": 7, "keep_min": 2, "copy_regions": [dest]}
    data.update(parts)
    return parse_scenario(data)


def copies_by_region(report: dict[str, Any]) -> Counter[str]:
    return Counter(s["region"] for s in report["final_snapshots"] if s["state"] == "completed")


def test_30_days_with_one_destination_end_with_each_regions_retention():
    # Given one instance with two volumes, copies pending for two checks, 31 daily runs.
    report = simulate(
        scenario(
            instances=[instance("web-1", volumes=2, snapshot_checks_until_complete=2)],
            runs=[{"at": "2026-11-01T03:00:00Z"}, {"every": "1d", "count": 30}],
        )
    )
    runs = report["runs"]
    assert all(r["execution"]["status"] == "SUCCEEDED" for r in runs)
    assert all(r["iam_denied"] == [] for r in runs)
    # Every run copied both new snapshots, each copy from that run's snapshot, completed.
    assert all(len(r["copies"]) == 2 and {c["state"] for c in r["copies"]} == {"completed"} for r in runs)
    assert all({c["source_snapshot_id"] for c in r["copies"]} == {c["snapshot_id"] for c in r["created"]} for r in runs)
    # Source keeps 7 days + today per volume; the destination its own 10 days + today.
    regions = copies_by_region(report)
    assert regions == {"us-east-1": 2 * 8, "us-west-2": 2 * 11}
    copies = [s for s in report["final_snapshots"] if s["region"] == "us-west-2"]
    # Grouped by the source-volume tag: the copy's own VolumeId is EC2's placeholder.
    assert {c["volume_id"] for c in copies} == {
        s["volume_id"] for s in report["final_snapshots"] if s["region"] == "us-east-1"
    }
    assert all(c["managed"] for c in copies)
    assert sum(len(r["copies_deleted"]) for r in runs) == 2 * (31 - 11)


def test_30_instances_never_exceed_20_copies_in_flight_and_none_fails():
    # Copies stay pending for 3 checks, so the fleet's copies pile up against EC2's limit of 20.
    instances = [instance(f"app-{i:02d}", snapshot_checks_until_complete=3) for i in range(30)]
    run = simulate(scenario(instances=instances))["runs"][0]
    assert run["execution"]["status"] == "SUCCEEDED"
    assert {r["status"] for r in run["instances"]} == {"backed_up"}
    assert len(run["copies"]) == 30 and {c["state"] for c in run["copies"]} == {"completed"}
    assert 0 < run["copies_peak_in_flight"]["us-west-2"] <= 20
    # The Copy step counted the copies in flight and waited for a slot instead of failing.
    assert run["metrics"].get("CopySlotWaits", 0) > 0
    assert run["api_calls"]["ec2:CopySnapshot"] == 30 + run["copies_refused_limit"]


def test_a_limited_or_throttled_copy_waits_and_is_retried():
    # EC2 refuses the copy three times (20 copies in flight elsewhere), then throttles it twice.
    faults = [
        {"operation": "CopySnapshot", "instance": "web-1", "error": "ResourceLimitExceeded", "count": 3},
        {"operation": "CopySnapshot", "instance": "web-1", "error": "RequestLimitExceeded", "count": 2},
    ]
    run = simulate(scenario(instances=[instance("web-1")], faults=faults))["runs"][0]
    assert run["execution"]["status"] == "SUCCEEDED"
    assert by_name(run)["web-1"]["status"] == "backed_up"
    assert run["faults_injected"] == {
        "CopySnapshot:ResourceLimitExceeded": 3,
        "CopySnapshot:RequestLimitExceeded": 2,
    }
    assert run["api_calls"]["ec2:CopySnapshot"] == 6
    assert [c["state"] for c in run["copies"]] == ["completed"]
    assert run["alerts"] == [] or "FAILED" not in run["alerts"][0]["subject"]


OLD = [{"label": f"old-{i}", "instance": "web-1", "age_days": 10 + i, "managed": True} for i in range(3)]


def test_a_copy_whose_key_the_role_cannot_use_fails_the_instance_alerts_and_blocks_local_pruning():
    # Given the copy role without kms:CreateGrant: EC2 accepts CopySnapshot, and the copy ends in
    # state error, since EC2 checks the key asynchronously (CopySnapshot, KmsKeyId).
    report = simulate(
        scenario(instances=[instance("web-1"), instance("db-1")], existing_snapshots=OLD),
        edit_template=without("CopyRole", "kms:CreateGrant"),
    )
    run = report["runs"][0]
    web = by_name(run)["web-1"]
    assert web["status"] == "failed" and web["step"] == "Copy"
    assert "us-west-2" in web["error"] and "not accessible" in web["error"]
    assert web["pruned"] == [] and run["deleted"] == []  # old-0..2 are all still there
    assert {s["label"] for s in report["final_snapshots"] if s["label"]} == {"old-0", "old-1", "old-2"}
    message = run["alerts"][-1]["message"]
    assert "web-1" in message and "us-west-2" in message and "Copy" in message
    assert run["execution"]["status"] == "FAILED"


def test_a_missing_destination_key_fails_the_copies_there_not_the_backup():
    # A destination key that cannot be used does not fail the run in Discover: the local backup is still taken.
    simulation = Simulation(scenario(instances=[instance("web-1")]))
    with simulation.emulated():
        boto3.client("kms", region_name="us-west-2").delete_alias(AliasName="alias/smart-vault-dr")
        run = simulation.run_at(0, datetime.fromisoformat("2026-11-26T03:00:00+00:00"))
    assert len(run["created"]) == 1 and run["copies"] == []
    assert "ec2:CopySnapshot" not in run["api_calls"]
    web = by_name(run)["web-1"]
    assert web["status"] == "failed" and web["step"] == "Copy"
    message = run["alerts"][-1]["message"]
    assert "alias/smart-vault-dr" in message and "us-west-2" in message
    assert run["execution"]["status"] == "FAILED"


def test_a_rerun_of_the_same_slot_makes_no_duplicate_copies():
    runs = [{"at": "2026-11-26T03:00:00Z"}, {"at": "2026-11-26T03:00:00Z"}]
    first, second = simulate(scenario(instances=[instance("web-1", volumes=2)], runs=runs))["runs"]
    assert len(first["copies"]) == 2
    assert second["copies"] == [] and second["created"] == []
    assert "ec2:CopySnapshot" not in second["api_calls"]
    assert by_name(second)["web-1"]["status"] == "backed_up"


def test_the_source_region_is_refused_as_a_destination():
    with pytest.raises(ScenarioError) as caught:
        scenario(instances=[instance("web-1")], dest={**DR, "region": "us-east-1", "kms_key": "alias/x"})
    assert caught.value.field == "settings.copy_regions[0].region"


def test_copies_of_a_terminated_instance_are_pruned_there_down_to_orphan_keep():
    # web-1 is terminated on day 3; its copies in us-west-2 become orphans there, pruned by the
    # destination's retention_days (3) down to orphan_keep (1), like its local snapshots.
    report = simulate(
        scenario(
            dest={**DR, "retention_days": 3},
            instances=[instance("web-1", terminated_at="2026-11-04T00:00:00Z"), instance("db-1")],
            runs=[{"at": "2026-11-01T03:00:00Z"}, {"every": "1d", "count": 9}],
        )
    )
    final = report["final_snapshots"]
    web_copies = [s for s in final if s["region"] == "us-west-2" and s["instance"] == "web-1"]
    assert len(web_copies) == 1 and web_copies[0]["start_time"].startswith("2026-11-03")
    orphan_rows = [o for r in report["runs"] for o in r["orphans"] if o["region"] == "us-west-2"]
    assert any(o["deleted"] for o in orphan_rows)
    db_copies = [s for s in final if s["region"] == "us-west-2" and s["instance"] == "db-1"]
    assert len(db_copies) == 4  # its own retention in the destination: 3 days + today


def test_copies_are_locked_like_the_snapshots_and_outlive_their_retention_while_locked():
    # Given a governance lock of 10 days and a destination keeping copies 3 days.
    data = copy.deepcopy(BASE)
    data["settings"] = {
        "retention_days": 3,
        "keep_min": 1,
        "lock": {"mode": "governance", "days": 10},
        "copy_regions": [{**DR, "retention_days": 3, "keep_min": 1}],
    }
    data.update(instances=[instance("web-1")], runs=[{"at": "2026-11-01T03:00:00Z"}, {"every": "1d", "count": 5}])
    report = simulate(parse_scenario(data))
    assert all(r["iam_denied"] == [] and r["execution"]["status"] == "SUCCEEDED" for r in report["runs"])
    copies = [s for s in report["final_snapshots"] if s["region"] == "us-west-2"]
    assert len(copies) == 6  # expired after 3 days, but every copy is still locked
    assert all(c["locked_until"] for c in copies)
    assert sum(len(r["copies_deleted"]) for r in report["runs"]) == 0
