import json

import pytest

from smart_vault.errors import InvalidInputError
from smart_vault.handlers import check, notify, prune, snapshot
from tests.conftest import BUCKET


def lambda_cause(error_type, message):
    # What a Catch puts in Cause for a Lambda function error.
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": []})


def run_two(account, fail_second=True):
    good = account.add_instance("web-1")
    bad = account.add_instance("db-1")
    job = account.job(good.instance_id)
    job["backup"] = account.invoke(snapshot.handler, job)
    job["backup"] = account.invoke(check.handler, job)
    account.invoke(prune.handler, job)
    bad_job = {
        **account.job(bad.instance_id),
        "failure": {
            "step": "Snapshot",
            "error": {
                "Error": "PermissionDeniedError",
                "Cause": lambda_cause(
                    "PermissionDeniedError",
                    "ec2:CreateSnapshots failed: UnauthorizedOperation: You are not authorized.",
                ),
            },
        },
    }
    if fail_second:
        account.invoke(notify.handler, {"action": "record_failure", "job": bad_job})
    return job, good, bad


def test_summary_alerts_with_instance_step_and_aws_error(account):
    job, good, bad = run_two(account)
    summary = account.invoke(
        notify.handler,
        {
            "action": "summarize",
            "run": job["run"],
            "inventory": {"bucket": BUCKET, "key": "runs/20261126T030000Z/exec-1/inventory.json"},
        },
    )
    assert (summary["backed_up"], summary["failed"], summary["instances"]) == (1, 1, 2)
    assert summary["failed_instance_ids"] == [bad.instance_id]
    assert "db-1 at Snapshot" in summary["cause"]

    [(subject, text)] = account.published()
    assert subject == "Smart Vault: 1 of 2 instance backups FAILED"
    assert f"db-1 {bad.instance_id}: step Snapshot: PermissionDeniedError [UnauthorizedOperation]" in text
    assert "console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/" in text
    assert f'"instance_ids": ["{bad.instance_id}"]' in text  # ready-made retry input

    [doc] = account.alerts()
    assert doc["type"] == "backup_failed"
    assert doc["failures"][0]["aws_code"] == "UnauthorizedOperation"

    audit = json.loads(account.s3.get_object(Bucket=BUCKET, Key=summary["audit_key"])["Body"].read())
    by_id = {i["instance_id"]: i for i in audit["instances"]}
    assert by_id[good.instance_id]["volumes"][0]["snapshot_id"].startswith("snap-")
    assert by_id[bad.instance_id]["error"]["aws_code"] == "UnauthorizedOperation"


def test_missing_outcome_counts_as_failed(account):
    job, _, bad = run_two(account, fail_second=False)
    summary = account.invoke(
        notify.handler,
        {
            "action": "summarize",
            "run": job["run"],
            "inventory": {"bucket": BUCKET, "key": "runs/20261126T030000Z/exec-1/inventory.json"},
        },
    )
    assert summary["failed_instance_ids"] == [bad.instance_id]
    assert "NoOutcomeRecorded" in account.published()[0][1]


def test_success_is_quiet_unless_configured(account):
    web = account.add_instance("web-1")
    job = account.job(web.instance_id)
    job["backup"] = account.invoke(check.handler, {**job, "backup": account.invoke(snapshot.handler, job)})
    account.invoke(prune.handler, job)
    event = {
        "action": "summarize",
        "run": job["run"],
        "inventory": {"bucket": BUCKET, "key": "runs/20261126T030000Z/exec-1/inventory.json"},
    }
    assert account.invoke(notify.handler, event)["alert"] is None
    assert account.published() == []
    account.configure(notify_on_success=True)
    assert account.invoke(notify.handler, event)["alert"] == "Smart Vault: 1 instances backed up"


def test_run_failure_alert(account):
    out = account.invoke(
        notify.handler,
        {
            "action": "run_failed",
            "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:sv:exec-9",
            "execution_name": "exec-9",
            "failure": {
                "step": "Discover",
                "error": {
                    "Error": "ThrottledError",
                    "Cause": lambda_cause(
                        "ThrottledError",
                        "ec2:DescribeInstances failed: RequestLimitExceeded: Request limit exceeded.",
                    ),
                },
            },
        },
    )
    assert out["step"] == "Discover"
    [(subject, text)] = account.published()
    assert subject == "Smart Vault: backup run FAILED at Discover"
    assert "ThrottledError [RequestLimitExceeded]" in text


def test_lambda_service_error_cause_is_kept_verbatim(account):
    from smart_vault.models import ErrorInfo

    info = ErrorInfo.from_catch({"Error": "Lambda.ServiceException", "Cause": "Service unavailable"})
    assert (info.type, info.message, info.aws_code) == (
        "Lambda.ServiceException",
        "Service unavailable",
        None,
    )


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"action": "shout"}, "action"),
        ({}, "action"),
        ({"action": "summarize", "run": {}}, "run.run_time"),
        ({"action": "record_failure", "job": {"failure": None}}, "job.failure"),
    ],
)
def test_invalid_notify_input(account, event, field):
    with pytest.raises(InvalidInputError, match=field):
        account.invoke(notify.handler, event)
    assert account.published() == []
