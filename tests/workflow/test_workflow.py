"""End to end: the real ASL, the real handlers, the emulated account (smart-vault simulate)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from smart_vault_cli.main import cli
from smart_vault_sim import simulator
from tests.workflow.conftest import by_name, instance


def test_selection_and_every_volume(run_scenario):
    report = run_scenario(
        instances=[
            instance("web-1", volumes=3),
            instance("db-1", volumes=2, state="stopped"),
            {**instance("untagged"), "tags": {"team": "x"}},
            instance("gone", state="terminated"),
            {
                **instance("opt-out", volumes=2),
                "volumes": [
                    {"device": "/dev/xvda"},
                    {"device": "/dev/sdf", "tags": {"backup": "False"}},
                ],
            },
        ]
    )
    run = report["runs"][0]
    assert run["execution"]["status"] == "SUCCEEDED"
    rows = by_name(run)
    assert set(rows) == {"web-1", "db-1", "opt-out"}
    assert all(r["status"] == "backed_up" for r in rows.values())
    created = {(c["instance"], c["device"]) for c in run["created"]}
    assert created == {
        ("web-1", "/dev/xvda"),
        ("web-1", "/dev/sdf"),
        ("web-1", "/dev/sdg"),
        ("db-1", "/dev/xvda"),
        ("db-1", "/dev/sdf"),
        ("opt-out", "/dev/xvda"),
    }
    assert run["api_calls"]["ec2:CreateSnapshots"] == 3  # one crash-consistent call each
    assert run["metrics"]["SnapshotsCreated"] == 6
    assert run["alerts"] == []  # success is quiet by default


def test_retention_over_30_days_never_below_keep_min(run_scenario):
    report = run_scenario(
        settings={"retention_days": 7, "keep_min": 2},
        instances=[instance("web-1", volumes=2)],
        existing_snapshots=[
            {
                "label": f"old-{d}",
                "instance": "web-1",
                "device": "/dev/xvda",
                "age_days": d,
                "managed": True,
            }
            for d in (40, 41)
        ]
        + [
            {
                "label": "foreign",
                "instance": "web-1",
                "device": "/dev/sdf",
                "age_days": 90,
                "managed": False,
            }
        ],
        runs=[{"at": "2026-11-01T03:00:00Z"}, {"every": "1d", "count": 29}],
    )
    alive = {s["label"]: s for s in report["final_snapshots"] if s["label"]}
    per_volume_history = []
    managed: dict[str, set[str]] = {"/dev/xvda": {"old-40", "old-41"}, "/dev/sdf": set()}
    for run in report["runs"]:
        assert run["execution"]["status"] == "SUCCEEDED"
        for c in run["created"]:
            managed[c["device"]].add(c["snapshot_id"])
        for d in run["deleted"]:
            for snaps in managed.values():
                snaps.discard(d["label"] or d["snapshot_id"])
        per_volume_history.append({dev: len(s) for dev, s in managed.items()})
    assert all(min(h.values()) >= 1 for h in per_volume_history)
    assert all(h["/dev/xvda"] >= 2 for h in per_volume_history)
    # Steady state: today plus the 7 days of retention.
    assert per_volume_history[-1] == {"/dev/xvda": 8, "/dev/sdf": 8}
    final_managed = [s for s in report["final_snapshots"] if s["managed"]]
    assert len(final_managed) == 16
    assert "foreign" in alive  # never someone else's
    assert "old-40" not in alive and "old-41" not in alive


def test_ami_used_snapshot_is_kept_and_reported(run_scenario):
    report = run_scenario(
        settings={"keep_min": 1},
        instances=[instance("web-1")],
        existing_snapshots=[
            {"label": "recent", "instance": "web-1", "age_days": 3},
            {"label": "ami", "instance": "web-1", "age_days": 20, "used_by_ami": True},
            {"label": "expired", "instance": "web-1", "age_days": 21},
        ],
    )
    run = report["runs"][0]
    assert run["execution"]["status"] == "SUCCEEDED"
    assert [d["label"] for d in run["deleted"]] == ["expired"]
    # Found up front with DescribeImages (owner self): kept, naming the AMI, never attempted.
    labels = {s["snapshot_id"]: s["label"] for s in report["final_snapshots"]}
    (pinned,) = by_name(run)["web-1"]["kept_by_ami"]
    assert labels[pinned["snapshot_id"]] == "ami" and pinned["image_id"].startswith("ami-")
    assert run["skipped_deletes"] == []
    assert run["api_calls"]["ec2:DeleteSnapshot"] == 1
    assert run["api_calls"]["ec2:DescribeImages"] == 1


@pytest.mark.parametrize(
    "operation",
    [
        "DescribeInstances",
        "DescribeVolumes",
        "CreateSnapshots",
        "DescribeSnapshots",
        "DeleteSnapshot",
    ],
)
def test_throttling_on_each_ec2_operation_is_recovered(run_scenario, operation):
    report = run_scenario(
        settings={"keep_min": 1},
        instances=[instance("web-1", volumes=2), instance("db-1")],
        existing_snapshots=[{"label": "expired", "instance": "web-1", "age_days": 30}],
        faults=[{"operation": operation, "error": "RequestLimitExceeded", "count": 2}],
    )
    run = report["runs"][0]
    assert run["execution"]["status"] == "SUCCEEDED", run["execution"]
    assert run["faults_injected"] == {f"{operation}:RequestLimitExceeded": 2}
    assert {r["status"] for r in run["instances"]} == {"backed_up"}
    assert len(run["created"]) == 3  # nothing lost, nothing duplicated
    assert [d["label"] for d in run["deleted"]] == ["expired"]
    if operation == "DeleteSnapshot":
        # Prune waits a throttled delete out itself (smart_vault.retention.deferral), so the step is not
        # retried, and nothing is deferred when the storm ends within its attempts.
        assert run["execution"]["virtual_retry_seconds"] == 0
        assert all(not r["deferred_deletes"] for r in run["instances"])
    else:
        assert run["execution"]["virtual_retry_seconds"] > 0


def test_per_volume_pacing_waits_at_least_15_seconds(run_scenario):
    report = run_scenario(
        instances=[instance("web-1")],
        faults=[
            {
                "operation": "CreateSnapshots",
                "instance": "web-1",
                "error": "SnapshotCreationPerVolumeRateExceeded",
                "count": 1,
            }
        ],
    )
    run = report["runs"][0]
    assert run["execution"]["status"] == "SUCCEEDED"
    assert run["execution"]["virtual_retry_seconds"] >= 15
    assert run["states"]["Snapshot"]["retries"] == 1


def test_a_permanently_failing_instance(run_scenario):
    report = run_scenario(
        settings={"keep_min": 1},
        instances=[instance("web-1"), instance("db-1"), instance("bad-1")],
        existing_snapshots=[
            {"label": "bad-old", "instance": "bad-1", "age_days": 30},
            {"label": "web-old", "instance": "web-1", "age_days": 30},
        ],
        faults=[{"operation": "CreateSnapshots", "instance": "bad-1", "error": "UnauthorizedOperation"}],
    )
    run = report["runs"][0]
    rows = by_name(run)
    assert rows["web-1"]["status"] == rows["db-1"]["status"] == "backed_up"
    assert rows["bad-1"]["status"] == "failed"
    assert rows["bad-1"]["step"] == "Snapshot" and rows["bad-1"]["aws_code"] == "UnauthorizedOperation"
    assert run["execution"]["status"] == "FAILED"
    assert run["execution"]["error"] == "SmartVault.InstancesFailed"
    assert [d["label"] for d in run["deleted"]] == ["web-old"]  # bad-old untouched
    [alert] = run["alerts"]
    assert "bad-1" in alert["subject"] or "FAILED" in alert["subject"]
    assert "bad-1" in alert["message"] and "step Snapshot" in alert["message"]
    assert "UnauthorizedOperation" in alert["message"]
    assert run["states"]["Snapshot"]["retries"] == 0  # permission errors are not retried
    assert run["metrics"]["SnapshotsFailed"] == 1


def test_pending_snapshots_complete_after_several_checks(run_scenario):
    report = run_scenario(instances=[instance("slow-1", volumes=2, snapshot_checks_until_complete=3)])
    run = report["runs"][0]
    assert run["execution"]["status"] == "SUCCEEDED"
    assert run["states"]["CheckSnapshots"]["entered"] == 4
    # + idempotency + prune listing + the run's one orphan scan
    assert run["api_calls"]["ec2:DescribeSnapshots"] == 4 + 2 + 1
    # Backoff 60, 120, 240, 480 s of virtual waiting.
    assert run["execution"]["virtual_wait_seconds"] == 60 + 120 + 240 + 480
    assert {c["state"] for c in run["created"]} == {"completed"}


def test_snapshot_ending_in_error_fails_the_instance_without_pruning(run_scenario):
    report = run_scenario(
        settings={"keep_min": 1},
        instances=[instance("web-1"), instance("broken-1", snapshot_error=True)],
        existing_snapshots=[{"label": "broken-old", "instance": "broken-1", "age_days": 30}],
    )
    run = report["runs"][0]
    rows = by_name(run)
    assert rows["broken-1"]["status"] == "failed"
    assert rows["broken-1"]["step"] == "CheckSnapshots"
    assert "SnapshotFailedError" in rows["broken-1"]["error"]
    assert run["deleted"] == []
    assert run["execution"]["status"] == "FAILED"
    assert run["states"]["CheckSnapshots"]["retries"] == 0


def test_the_same_scheduled_event_twice_creates_no_duplicates(run_scenario):
    report = run_scenario(
        instances=[instance("web-1", volumes=2), instance("db-1")],
        runs=[{"at": "2026-11-26T03:00:00Z"}, {"at": "2026-11-26T03:00:00Z"}],
    )
    first, second = report["runs"]
    assert len(first["created"]) == 3
    assert second["created"] == []
    assert second["execution"]["status"] == "SUCCEEDED"
    assert "ec2:CreateSnapshots" not in second["api_calls"]
    assert sorted(s for r in second["instances"] for s in r["snapshots"]) == sorted(
        c["snapshot_id"] for c in first["created"]
    )


def test_a_rerun_after_a_transient_failure_completes_only_what_is_missing(run_scenario):
    report = run_scenario(
        instances=[instance("web-1"), instance("db-1")],
        faults=[
            {
                "operation": "CreateSnapshots",
                "instance": "db-1",
                "error": "InternalError",
                "count": 5,
            }
        ],
        runs=[{"at": "2026-11-26T03:00:00Z"}, {"at": "2026-11-26T03:00:00Z"}],
    )
    first, second = report["runs"]
    assert first["execution"]["status"] == "FAILED"
    assert by_name(first)["db-1"]["status"] == "failed"
    assert second["execution"]["status"] == "SUCCEEDED"
    assert [c["instance"] for c in second["created"]] == ["db-1"]


def test_dry_run_changes_nothing(run_scenario):
    report = run_scenario(
        settings={"dry_run": True, "keep_min": 1},
        instances=[instance("web-1")],
        existing_snapshots=[
            {"label": "expired", "instance": "web-1", "age_days": 30},
            {"label": "recent", "instance": "web-1", "age_days": 1},
        ],
    )
    run = report["runs"][0]
    assert run["created"] == [] and run["deleted"] == []
    [row] = run["instances"]
    assert row["status"] == "skipped" and len(row["would_prune"]) == 1


def test_history_and_payload_limits_fail_the_run(run_scenario, monkeypatch):
    monkeypatch.setattr(simulator, "HISTORY_LIMIT", 10)
    run = run_scenario(instances=[instance("web-1")])["runs"][0]
    assert run["execution"]["status"] == "FAILED"
    assert "history exceeded 10 events" in run["execution"]["cause"]
    monkeypatch.setattr(simulator, "HISTORY_LIMIT", 25_000)
    monkeypatch.setattr(simulator, "PAYLOAD_LIMIT", 100)
    run = run_scenario(instances=[instance("web-1")])["runs"][0]
    assert run["execution"]["error"] == "States.DataLimitExceeded"


def test_cli_writes_the_report_and_exits_0_on_a_failed_run(tmp_path):
    scenario = {
        "name": "cli",
        "instances": [instance("web-1")],
        "faults": [{"operation": "CreateSnapshots", "instance": "web-1", "error": "UnauthorizedOperation"}],
        "runs": [{"at": "2026-11-26T03:00:00Z"}],
    }
    path = tmp_path / "s.json"
    path.write_text(json.dumps(scenario))
    result = CliRunner().invoke(cli, ["simulate", str(path), "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "FAILED" in result.output and "ALERT" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    run = report["runs"][0]
    for key in (
        "at",
        "execution",
        "instances",
        "created",
        "deleted",
        "skipped_deletes",
        "alerts",
        "metrics",
        "api_calls",
    ):
        assert key in run
    for key in ("status", "state_transitions", "history_events", "max_child_history_events"):
        assert key in run["execution"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda s: s["settings"].update(retention_days=-1), "settings.retention_days"),
        (lambda s: s["settings"].update(keep_min=0), "settings.keep_min"),
        (lambda s: s["instances"][0].update(state="sleeping"), "instances[0].state"),
        (lambda s: s["instances"][0].pop("volumes"), "instances[0].volumes"),
        (lambda s: s.update(runs=[{"every": "1d", "count": 3}]), "runs[0].every"),
        (
            lambda s: s.update(faults=[{"operation": "Explode", "error": "X"}]),
            "faults[0].operation",
        ),
        (
            lambda s: s.update(existing_snapshots=[{"label": "a", "instance": "nope"}]),
            "existing_snapshots[0].instance",
        ),
    ],
)
def test_invalid_scenario_exits_2_naming_the_field(tmp_path, mutate, field):
    scenario = {
        "name": "bad",
        "settings": {},
        "instances": [instance("web-1")],
        "runs": [{"at": "2026-11-26T03:00:00Z"}],
    }
    mutate(scenario)
    path = tmp_path / "s.json"
    path.write_text(json.dumps(scenario))
    result = CliRunner().invoke(cli, ["simulate", str(path)])
    assert result.exit_code == 2
    assert field in result.output
