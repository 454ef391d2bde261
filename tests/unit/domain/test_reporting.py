"""Failure records, the run summary, the alert and the audit record."""

from __future__ import annotations

from smart_vault.models import ErrorInfo, InstanceJob, InstanceOutcome
from smart_vault.reporting.run_report import alert_run_failure, record_failure, summarize_run
from smart_vault.retention.pruning import save_outcome
from tests.unit.domain.conftest import job_for, run, settings

DENIED = ErrorInfo(
    type="PermissionDeniedError",
    message="ec2:CreateSnapshots failed: UnauthorizedOperation: You are not authorized.",
    aws_code="UnauthorizedOperation",
)


def fleet_of_two(ec2, store) -> tuple[InstanceJob, InstanceJob]:
    from smart_vault.backup.discovery import discover
    from smart_vault.models import RunRequest
    from tests.unit.domain.fakes import CLOCK

    ec2.add_instance("web-1")
    ec2.add_instance("db-1")
    result = discover(
        RunRequest(time=CLOCK),
        execution_arn=run().execution_arn,
        execution_name="exec-1",
        settings=settings(),
        ec2=ec2,
        store=store,
    )
    web, db = (job_for(ec2, t["instance_id"]) for t in store.get_json(result.inventory_key))
    return web, db


def backed_up(job: InstanceJob) -> InstanceOutcome:
    return InstanceOutcome(
        instance_id=job.instance.instance_id,
        name=job.instance.name,
        status="backed_up",
        run_id=job.run.run_id,
        execution_name=job.run.execution_name,
    )


def test_a_failure_reaches_the_alert_with_instance_step_and_aws_error(ec2, store, alerts):
    web, db = fleet_of_two(ec2, store)
    save_outcome(backed_up(web), web.run, store)
    record_failure(db, step="Snapshot", error=DENIED, settings=settings(), store=store)

    summary = summarize_run(
        web.run,
        inventory_key="runs/20261126T030000Z/exec-1/inventory.json",
        settings=settings(),
        store=store,
        alerts=alerts,
        ec2=ec2,
    )

    assert summary.to_dict()["backed_up"] == 1 and summary.to_dict()["failed"] == 1
    (alert,) = alerts.published
    assert "1 of 2 instance backups FAILED" in alert.subject
    (failure,) = alert.document["failures"]
    assert failure["instance_id"] == db.instance.instance_id
    assert (failure["step"], failure["aws_code"]) == ("Snapshot", "UnauthorizedOperation")
    assert db.instance.instance_id in alert.text and "UnauthorizedOperation" in alert.text
    audit = store.get_json(summary.audit_key)
    assert [i["status"] for i in audit["instances"]] == ["backed_up", "failed"]


def test_an_instance_without_a_record_counts_as_failed(ec2, store, alerts):
    web, db = fleet_of_two(ec2, store)
    save_outcome(backed_up(web), web.run, store)
    summary = summarize_run(
        web.run,
        inventory_key="runs/20261126T030000Z/exec-1/inventory.json",
        settings=settings(),
        store=store,
        alerts=alerts,
        ec2=ec2,
    )
    (missing,) = summary.failed
    assert missing.instance_id == db.instance.instance_id and missing.error.type == "NoOutcomeRecorded"
    assert alerts.published[0].attributes["failed_count"] == "1"


def test_a_clean_run_alerts_only_when_asked(ec2, store, alerts):
    web, db = fleet_of_two(ec2, store)
    for job in (web, db):
        save_outcome(backed_up(job), job.run, store)
    key = "runs/20261126T030000Z/exec-1/inventory.json"
    summarize_run(web.run, inventory_key=key, settings=settings(), store=store, alerts=alerts, ec2=ec2)
    assert alerts.published == []
    summarize_run(
        web.run, inventory_key=key, settings=settings(notify_on_success=True), store=store, alerts=alerts, ec2=ec2
    )
    assert alerts.published[0].document["type"] == "backup_succeeded"


def test_a_run_failure_alerts_once_with_the_step(alerts):
    result = alert_run_failure(
        execution_arn=run().execution_arn,
        execution_name="exec-1",
        step="Discover",
        error=DENIED,
        alerts=alerts,
    )
    (alert,) = alerts.published
    assert alert.subject == "Smart Vault: backup run FAILED at Discover"
    assert result["message_id"] == "message-1" and "UnauthorizedOperation" in result["cause"]


def test_journaled_deletions_missing_from_a_failure_record_are_confirmed_against_the_account(ec2, store, alerts):
    from datetime import timedelta

    from smart_vault.retention.journal import Intent, Journal
    from tests.unit.domain.fakes import CLOCK

    web, db = fleet_of_two(ec2, store)
    save_outcome(backed_up(web), web.run, store)
    volume = db.instance.volumes[0].volume_id
    gone, kept = (
        ec2.add_snapshot(volume, start_time=CLOCK - timedelta(days=d), tags={"smart-vault:managed-by": "test-vault"})
        for d in (10, 11)
    )
    # Prune journaled two deletions, made one, then failed; RecordFailure wrote the failure.
    Journal(store, db.run, db.instance.instance_id).record(
        Intent(snapshot_id=s, volume_id=volume, start_time="2026-11-16T03:00:00Z") for s in (gone, kept)
    )
    ec2.snapshots.pop(gone)
    record_failure(db, step="Prune", error=DENIED, settings=settings(), store=store)

    summary = summarize_run(
        web.run,
        inventory_key="runs/20261126T030000Z/exec-1/inventory.json",
        settings=settings(),
        store=store,
        alerts=alerts,
        ec2=ec2,
    )

    (failed,) = summary.failed
    assert [d.snapshot_id for d in failed.deleted] == [gone]  # what the account shows
    assert summary.to_dict()["snapshots_deleted"] == 1
    audit = store.get_json(summary.audit_key)
    assert [i["deleted"] for i in audit["instances"]] == [[], [gone]]
    assert "deleted: 1" in alerts.published[0].text and gone in alerts.published[0].text
    assert ec2.calls["ec2:DescribeSnapshots"] == 1  # one snapshot-id lookup for both intents


def test_a_failed_orphan_step_fails_the_summary_and_is_alerted(ec2, store, alerts):
    web, db = fleet_of_two(ec2, store)
    for job in (web, db):
        save_outcome(backed_up(job), job.run, store)
    caught = {"Error": "ThrottledError", "Cause": '{"errorType": "ThrottledError", "errorMessage": "slow"}'}
    summary = summarize_run(
        web.run,
        inventory_key="runs/20261126T030000Z/exec-1/inventory.json",
        settings=settings(),
        store=store,
        alerts=alerts,
        ec2=ec2,
        orphan_step=caught,
    )
    data = summary.to_dict()
    assert data["orphans_failed"] is True and "orphan pruning failed" in data["cause"]
    assert "orphan snapshot pruning FAILED" in alerts.published[0].subject
