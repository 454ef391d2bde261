"""The lifecycle through the simulator: the record is the truth, nothing is left behind.

Every test runs the real ASL and handlers on the emulated account; faults are real botocore
errors injected where AWS would raise them."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from click.testing import CliRunner

from smart_vault.validation import parse_time
from smart_vault_cli.main import cli
from smart_vault_sim.sandbox import deploy_stack
from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import Simulation
from tests.workflow.conftest import BASE, by_name, instance


def scenario(**parts: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(parts)
    return data


def labels(report_or_rows: Any) -> dict[str, str | None]:
    rows = report_or_rows["final_snapshots"] if isinstance(report_or_rows, dict) else report_or_rows
    return {s["snapshot_id"]: s["label"] for s in rows}


def test_a_terminated_instance_ends_with_exactly_its_newest_snapshot_per_volume(run_scenario):
    # Given an instance backed up for three nights, then terminated, and ten nights in all
    report = run_scenario(
        settings={"retention_days": 2, "keep_min": 2},
        instances=[
            instance("web-1"),
            instance("old-1", volumes=2, terminated_at="2026-11-04T00:00:00Z"),
        ],
        runs=[{"at": "2026-11-01T03:00:00Z"}, {"every": "1d", "count": 9}],
    )
    runs = report["runs"]
    assert all(r["execution"]["status"] == "SUCCEEDED" for r in runs)
    made = {c["snapshot_id"]: c for r in runs for c in r["created"] if c["instance"] == "old-1"}
    assert len(made) == 6  # three nights, two volumes
    # Then the orphan step prunes it gradually (never tripping the breaker) down to one per volume
    final = [s for s in report["final_snapshots"] if s["instance"] == "old-1"]
    newest = {}
    for c in made.values():
        newest[c["volume_id"]] = c["snapshot_id"]  # created in time order
    assert {s["snapshot_id"] for s in final} == set(newest.values())
    assert {s["device"] for s in final} == {"/dev/xvda", "/dev/sdf"}
    # And each deletion is in that run's report, its audit-backed orphans and the summary.
    orphan_deleted = [sid for r in runs for o in r["orphans"] if o["name"] == "old-1" for sid in o["deleted"]]
    assert sorted(orphan_deleted) == sorted(set(made) - set(newest.values()))
    assert all(not r["breakers"] for r in runs)
    last = runs[-1]
    assert {o["volume_id"]: o["kept"] for o in last["orphans"] if o["name"] == "old-1"} == {
        vid: [sid] for vid, sid in newest.items()
    }
    # The live instance keeps its normal retention.
    assert len([s for s in report["final_snapshots"] if s["instance"] == "web-1"]) == 3


def test_an_opted_out_volumes_backlog_no_longer_stops_the_root_volumes_pruning(run_scenario):
    report = run_scenario(
        settings={"retention_days": 7, "keep_min": 2},
        instances=[
            {
                **instance("web-1"),
                "volumes": [{"device": "/dev/xvda"}, {"device": "/dev/sdf", "tags": {"backup": "False"}}],
            }
        ],
        existing_snapshots=[
            {"label": "root-1", "instance": "web-1", "device": "/dev/xvda", "age_days": 1},
            {"label": "root-10", "instance": "web-1", "device": "/dev/xvda", "age_days": 10},
        ]
        + [{"label": f"data-{d}", "instance": "web-1", "device": "/dev/sdf", "age_days": d} for d in range(20, 30)],
    )
    run = report["runs"][0]
    assert run["execution"]["status"] == "SUCCEEDED"
    # The live root volume is pruned as usual...
    assert [d["label"] for d in run["deleted"]] == ["root-10"]
    assert by_name(run)["web-1"]["breakers"] == []
    # ...while only the opted-out volume's plan (9 of 10) stops, named with its release command.
    (breaker,) = run["breakers"]
    data_volume = next(s["volume_id"] for s in report["final_snapshots"] if s["label"] == "data-20")
    assert breaker["volume_id"] == data_volume and breaker["orphan"] is True
    assert len(breaker["would_delete"]) == 9
    assert "9 of 10" in breaker["reason"]
    (alert,) = run["alerts"]
    assert data_volume in alert["message"] and "9 of 10" in alert["message"]
    assert f"smart-vault approve 20261126T030000Z --volume {data_volume}" in alert["message"]
    assert all(sid in alert["message"] for sid in breaker["would_delete"])


def test_ami_pinned_snapshots_no_longer_make_nightly_snapshots_pile_up(run_scenario):
    # Ten expired snapshots an AMI uses would be 10 of 12 deletions every night: the breaker
    # used to trip forever and nothing was pruned. Now they are kept and left out of the plan.
    report = run_scenario(
        settings={"retention_days": 3, "keep_min": 2},
        instances=[instance("web-1")],
        existing_snapshots=[
            {"label": f"ami-{d}", "instance": "web-1", "age_days": d, "used_by_ami": True} for d in range(30, 40)
        ]
        + [{"label": "old", "instance": "web-1", "age_days": 5}],
        runs=[{"at": "2026-11-20T03:00:00Z"}, {"every": "1d", "count": 7}],
    )
    runs = report["runs"]
    assert all(r["execution"]["status"] == "SUCCEEDED" and not r["breakers"] for r in runs)
    kept = by_name(runs[0])["web-1"]["kept_by_ami"]
    assert len(kept) == 10 and all(k["image_id"].startswith("ami-") for k in kept)
    nightly = [s for s in report["final_snapshots"] if s["label"] is None]
    assert len(nightly) == 4  # tonight plus 3 days of retention: steady, no pile-up
    pinned = [s for s in report["final_snapshots"] if (s["label"] or "").startswith("ami-")]
    assert len(pinned) == 10
    assert sum(r["api_calls"].get("ec2:DeleteSnapshot", 0) for r in runs) == 1 + 4  # "old" + expired nightlies
    assert all("ami-" not in (d["label"] or "") for r in runs for d in r["deleted"])


def _expired(n: int, instance_name: str = "web-1") -> list[dict[str, Any]]:
    return [{"label": f"old-{d}", "instance": instance_name, "age_days": d} for d in range(10, 10 + n)]


def test_deletions_before_a_throttled_outcome_write_are_still_reported():
    sim = Simulation(
        parse_scenario(
            scenario(
                settings={"keep_min": 1, "max_delete_fraction": 1.0},
                instances=[instance("web-1")],
                existing_snapshots=_expired(3),
            )
        )
    )
    with sim.emulated() as account:
        instance_id = account.instance_ids["web-1"]
        # S3 throttles the outcome record's PutObject once, after the three deletions: Step
        # Functions retries Prune, whose second attempt finds nothing left to delete.
        sim.tap.fail("PutObject", "SlowDown", count=1, targets=[f"instances/{instance_id}.json"])
        run = sim.run_at(0, parse_time("2026-11-26T03:00:00Z", "at"))
        final = sim.final_snapshots()
    assert run["faults_injected"] == {"PutObject:SlowDown": 1}
    assert run["execution"]["status"] == "SUCCEEDED"
    gone = {d["snapshot_id"] for d in run["deleted"]}
    assert len(gone) == 3
    assert set(by_name(run)["web-1"]["pruned"]) == gone  # the outcome
    assert not gone & set(labels(final))


def test_deletions_before_a_refused_delete_snapshot_are_in_outcome_audit_and_alert():
    # The third DeleteSnapshot is denied (a throttle would be deferred, test_prune_faults.py):
    # Prune fails, after two deletions.
    sim = Simulation(
        parse_scenario(
            scenario(
                settings={"keep_min": 1, "max_delete_fraction": 1.0},
                instances=[instance("web-1")],
                existing_snapshots=_expired(3),
                faults=[{"operation": "DeleteSnapshot", "snapshot": "old-12", "error": "UnauthorizedOperation"}],
            )
        )
    )
    with sim.emulated() as account:
        run = sim.run_at(0, parse_time("2026-11-26T03:00:00Z", "at"))
        audit = _audit(account, run)
        final = sim.final_snapshots()
    assert run["execution"]["status"] == "FAILED"
    row = by_name(run)["web-1"]
    assert row["status"] == "failed" and row["step"] == "Prune"
    deleted = sorted(d["label"] for d in run["deleted"])
    assert deleted == ["old-10", "old-11"]  # what the account shows
    ids = {d["snapshot_id"] for d in run["deleted"]}
    assert set(row["pruned"]) == ids  # the outcome
    (entry,) = audit["instances"]
    assert set(entry["deleted"]) == ids and audit["summary"]["snapshots_deleted"] == 2  # the audit
    (alert,) = run["alerts"]
    assert "deleted: 2" in alert["message"] and all(sid in alert["message"] for sid in ids)  # the alert
    assert "old-12" in labels(final).values()


def test_every_selected_instance_appears_even_when_its_record_cannot_be_written():
    sim = Simulation(
        parse_scenario(
            scenario(
                settings={"keep_min": 1, "max_delete_fraction": 1.0},
                instances=[instance("web-1"), instance("db-1")],
                existing_snapshots=_expired(2),
            )
        )
    )
    with sim.emulated() as account:
        instance_id = account.instance_ids["web-1"]
        # Neither Prune nor RecordFailure can write web-1's record: its child execution fails.
        sim.tap.fail("PutObject", "AccessDenied", targets=[f"instances/{instance_id}.json"])
        run = sim.run_at(0, parse_time("2026-11-26T03:00:00Z", "at"))
        audit = _audit(account, run)
    rows = by_name(run)
    assert set(rows) == {"web-1", "db-1"}
    web = rows["web-1"]
    assert web["status"] == "failed" and "NoOutcomeRecorded" in web["error"]
    # What is known is reported: the snapshot tagged with this run, the journaled deletions.
    assert web["snapshots"] == [c["snapshot_id"] for c in run["created"] if c["instance"] == "web-1"]
    assert sorted(web["pruned"]) == sorted(d["snapshot_id"] for d in run["deleted"])
    assert len(web["pruned"]) == 2
    assert audit["summary"]["snapshots_deleted"] == 2
    assert rows["db-1"]["status"] == "backed_up"


def test_dry_run_is_an_exact_preview_and_says_so(run_scenario):
    common = dict(
        settings={"keep_min": 2, "notify_on_success": True},
        instances=[instance("web-1")],
        existing_snapshots=[{"label": f"old-{d}", "instance": "web-1", "age_days": d} for d in (9, 10, 11)],
    )
    preview_report = run_scenario(**{**common, "settings": {**common["settings"], "dry_run": True}})
    preview = preview_report["runs"][0]
    real = run_scenario(**common)["runs"][0]
    assert preview["deleted"] == [] and preview["created"] == []
    # The would-be snapshot counts toward keep_min 2 as the real one does: the same two go.
    would = {labels(preview_report)[sid] for sid in by_name(preview)["web-1"]["would_prune"]}
    assert would == {d["label"] for d in real["deleted"]} == {"old-10", "old-11"}
    (alert,) = preview["alerts"]
    assert "DRY RUN" in alert["subject"] and "DRY RUN" in alert["message"]
    assert "DRY RUN" not in real["alerts"][0]["subject"]


def test_a_dry_run_predicts_the_snapshots_the_real_run_creates_and_the_instances_it_skips(run_scenario):
    """A dry run once said "Snapshots created: 0 ... Skipped: 3" for a fleet the real
    run backs up. It must predict the creations, with the real run's exclusions and skips."""
    opted_out = {"tags": {"backup": "False"}}
    common = dict(
        settings={"keep_min": 1, "notify_on_success": True},
        instances=[
            instance("web-1", volumes=2),
            {
                **instance("db-1"),
                "volumes": [{"device": "/dev/xvda"}, {"device": "/dev/sdf"}, {"device": "/dev/sdg", **opted_out}],
            },
            {**instance("idle-1"), "volumes": [{"device": "/dev/xvda", **opted_out}]},
        ],
    )
    preview_report = run_scenario(**{**common, "settings": {**common["settings"], "dry_run": True}})
    preview = preview_report["runs"][0]
    real = run_scenario(**common)["runs"][0]
    assert preview["created"] == [] and preview_report["final_snapshots"] == []  # nothing made
    assert len(real["created"]) == 4  # web-1's two volumes, db-1's two selected ones
    assert preview["would_create"] == len(real["created"])
    assert "would_create" not in real  # a real run reports what it created: `created`
    # The instances the real run skips are the ones the dry run predicts it would skip.
    real_skipped = {r["name"] for r in real["instances"] if r["status"] == "skipped"}
    predicted_skipped = {r["name"] for r in preview["instances"] if r["would_create"] == 0}
    assert predicted_skipped == real_skipped == {"idle-1"}
    assert {n: r["would_create"] for n, r in by_name(preview).items()} == {"web-1": 2, "db-1": 2, "idle-1": 0}
    (alert,) = preview["alerts"]
    assert "Snapshots that would be created: 4" in alert["message"]
    assert "Snapshots created:" not in alert["message"]
    assert "Snapshots created: 4" in real["alerts"][0]["message"]


def _audit(account: Any, run: dict[str, Any]) -> dict[str, Any]:
    import json

    key = next(
        o["Key"]
        for o in account.s3.list_objects_v2(Bucket="smart-vault-sim-inventory", Prefix="runs/")["Contents"]
        if o["Key"].endswith("audit.json")
    )
    return dict(json.loads(account.s3.get_object(Bucket="smart-vault-sim-inventory", Key=key)["Body"].read()))


def _four_orphaned_snapshots_above_the_breaker() -> dict[str, Any]:
    """web-1's opted-out data volume has four old snapshots: pruning three of them trips the breaker."""
    return scenario(
        settings={"retention_days": 7, "keep_min": 2},
        instances=[
            {
                **instance("web-1"),
                "volumes": [{"device": "/dev/xvda"}, {"device": "/dev/sdf", "tags": {"backup": "False"}}],
            },
        ],
        existing_snapshots=[
            {"label": f"data-{d}", "instance": "web-1", "device": "/dev/sdf", "age_days": d} for d in range(20, 24)
        ],
    )


def test_approve_releases_exactly_the_approved_plan():
    sim = Simulation(parse_scenario(_four_orphaned_snapshots_above_the_breaker()))
    nights = [datetime.fromisoformat(f"2026-11-{d}T03:00:00+00:00") for d in (26, 27, 28)]
    with sim.emulated() as account:
        deploy_stack(sim)
        first = sim.run_at(0, nights[0])
        (breaker,) = first["breakers"]  # 3 of 4 orphaned snapshots: above 50%
        volume = breaker["volume_id"]

        def approve(*args: str) -> Any:
            return CliRunner().invoke(cli, ["--stack", "SmartVault", "--region", "us-east-1", "approve", *args])

        assert approve("20261126T030000Z", "--volume", "vol-0000000000000000").exit_code == 2
        result = approve("20261126T030000Z", "--volume", volume)
        assert result.exit_code == 0, result.output
        assert all(sid in result.output for sid in breaker["would_delete"])
        # The next night the plan is the same three snapshots: released, exactly those go.
        second = sim.run_at(1, nights[1])
        assert sorted(d["snapshot_id"] for d in second["deleted"]) == sorted(breaker["would_delete"])
        assert second["breakers"] == []
        (orphan,) = [o for o in second["orphans"] if o["volume_id"] == volume]
        assert orphan["kept"] == [next(s for s, lbl in account.labels.items() if lbl == "data-20")]


def test_an_approval_for_a_different_plan_releases_nothing():
    sim = Simulation(parse_scenario(_four_orphaned_snapshots_above_the_breaker()))
    with sim.emulated() as account:
        deploy_stack(sim)
        first = sim.run_at(0, datetime.fromisoformat("2026-11-26T03:00:00+00:00"))
        (breaker,) = first["breakers"]
        result = CliRunner().invoke(
            cli, ["--stack", "SmartVault", "--region", "us-east-1", "approve", "20261126T030000Z"]
        )
        assert result.exit_code == 0, result.output
        # Someone deletes one of the approved snapshots by hand: the plan is now different.
        account.ec2.delete_snapshot(SnapshotId=breaker["would_delete"][0])
        second = sim.run_at(1, datetime.fromisoformat("2026-11-27T03:00:00+00:00"))
        assert second["deleted"] == []
        (still,) = second["breakers"]
        assert sorted(still["would_delete"]) == sorted(breaker["would_delete"][1:])


def test_a_failed_orphan_step_is_reported_with_the_deletions_it_made(run_scenario):
    # Two expired snapshots of a terminated instance (gone-5 is its newest: kept); they are
    # deleted newest first and gone-7's DeleteSnapshot is denied, so the orphan step fails after
    # deleting gone-6 (a throttle would be deferred instead, test_prune_faults.py).
    report = run_scenario(
        settings={"retention_days": 2, "max_delete_fraction": 1.0},
        instances=[instance("web-1"), instance("gone-1", terminated_at="2026-11-01T00:00:00Z")],
        existing_snapshots=[
            {"label": "gone-5", "instance": "gone-1", "age_days": 5},
            {"label": "gone-6", "instance": "gone-1", "age_days": 6},
            {"label": "gone-7", "instance": "gone-1", "age_days": 7},
        ],
        faults=[{"operation": "DeleteSnapshot", "snapshot": "gone-7", "error": "UnauthorizedOperation"}],
    )
    run = report["runs"][0]
    assert run["execution"]["status"] == "FAILED"  # reported, then red in the console
    assert "orphan pruning failed" in run["execution"]["cause"]
    assert by_name(run)["web-1"]["status"] == "backed_up"  # the instances were not held back
    # The deletion made before the failure is in the report: the journal recorded it first.
    gone = [d["label"] for d in run["deleted"]]
    assert gone == ["gone-6"]
    (orphan,) = run["orphans"]
    assert sorted(orphan["deleted"]) == sorted(d["snapshot_id"] for d in run["deleted"])
    (alert,) = run["alerts"]
    assert "orphan snapshot pruning FAILED" in alert["subject"]
    assert f"deleted: {len(gone)}" in alert["message"]
