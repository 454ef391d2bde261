import json

import pytest

from smart_vault.aws import Store, sns_subject
from smart_vault.errors import InvalidInputError
from smart_vault.handlers import check, notify, prune, snapshot
from smart_vault.models import ErrorInfo, InstanceOutcome, InstanceTarget, VolumeTarget, run_prefix
from smart_vault.reporting.run_report import ALERT_BUDGET_BYTES, MAX_LISTED
from smart_vault.retention.pruning import save_outcome
from tests.conftest import BUCKET, run_context


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


ENCODED = "x" * 1_600  # the opaque part of EC2's UnauthorizedOperation message


def failed_run(account, count, *, name=lambda n: f"app-{n:03d}", message=None):
    """Inventory and failure records of ``count`` failed instances, as the Map leaves them."""
    run = run_context()
    store = Store(BUCKET)
    targets = [
        InstanceTarget(
            instance_id=f"i-{n:017x}",
            name=name(n),
            availability_zone="us-east-1a",
            state="running",
            volumes=(VolumeTarget(volume_id=f"vol-{n:017x}", device="/dev/xvda", root=True, size_gib=8),),
        )
        for n in range(count)
    ]
    key = f"{run_prefix(run)}/inventory.json"
    store.put_json(key, [t.to_dict() for t in targets])
    for n, target in enumerate(targets):
        text = (
            message(n)
            if message
            else (
                "ec2:CreateSnapshots failed: UnauthorizedOperation: You are not authorized to perform this "
                f"operation. Encoded authorization failure message: {ENCODED}"
            )
        )
        save_outcome(
            InstanceOutcome(
                instance_id=target.instance_id,
                name=target.name,
                status="failed",
                run_id=run.run_id,
                execution_name=run.execution_name,
                step="Snapshot",
                error=ErrorInfo(type="PermissionDeniedError", message=text, aws_code="UnauthorizedOperation"),
            ),
            run,
            store,
        )
    event = {"action": "summarize", "run": run.to_dict(), "inventory": {"bucket": BUCKET, "key": key}}
    return event, targets


def published_requests(account):
    """(Message, attributes) exactly as published: what SNS measures against its limit."""
    from moto.sns.models import sns_backends

    topic = sns_backends["123456789012"]["us-east-1"].topics[account.topic_arn]
    return [(n[1], n[3]) for n in topic.sent_notifications]


def sns_bytes(message, attributes):
    size = len(message.encode())
    for name, value in (attributes or {}).items():
        size += len(name.encode()) + len(value["Type"].encode()) + len(str(value["Value"]).encode())
    return size


def test_40_long_authorization_errors_fit_one_alert_that_names_them_all(account):
    event, targets = failed_run(account, 40)

    summary = account.invoke(notify.handler, event)

    [(message, attributes)] = published_requests(account)
    assert sns_bytes(message, attributes) < 262_144
    [(subject, text)] = account.published()
    assert subject == "Smart Vault: 40 of 40 instance backups FAILED"
    assert all(f"- {t.name} {t.instance_id}: step Snapshot" in text for t in targets)
    assert ENCODED not in message  # the encoded blob stays in the audit record
    assert "[1600 characters in the audit record; decode with aws sts decode-authorization-message]" in text
    assert f"Audit record: s3://{BUCKET}/{summary['audit_key']}" in text
    audit = json.loads(account.s3.get_object(Bucket=BUCKET, Key=summary["audit_key"])["Body"].read())
    assert ENCODED in audit["instances"][0]["error"]["message"]
    [doc] = account.alerts()
    assert doc["audit_record"] == f"s3://{BUCKET}/{summary['audit_key']}"
    assert doc["failures_not_listed"] == 0 and len(doc["failures"]) == 40


def test_each_error_text_is_in_the_alert_once(account):
    event, _ = failed_run(account, 5, message=lambda n: f"ec2:CreateSnapshots failed: InternalError: boom-{n}-end")

    account.invoke(notify.handler, event)

    [(message, _)] = published_requests(account)
    assert all(message.count(f"boom-{n}-end") == 1 for n in range(5))


def test_an_alert_too_big_for_sns_lists_fewer_and_says_how_many_are_left_out(account):
    # Given 300 failures with 256-character non-ASCII names (JSON escapes each to 6-12 bytes)
    event, targets = failed_run(account, 300, name=lambda n: f"{n:03d}" + "é" * 253)

    account.invoke(notify.handler, event)

    [(message, attributes)] = published_requests(account)
    assert sns_bytes(message, attributes) <= ALERT_BUDGET_BYTES
    [(_, text)] = account.published()
    [doc] = account.alerts()
    listed = len(doc["failures"])
    assert 0 < listed < MAX_LISTED
    assert doc["failures_not_listed"] == 300 - listed
    assert f"... and {300 - listed} more failed instance(s) left out of this alert" in text
    assert sum(text.count(t.instance_id) for t in targets) == listed * 2  # its line and the retry input


def test_subject_is_one_line_of_printable_ascii_of_fewer_than_100_characters():
    # SNS Publish: "no line breaks or control characters, and less than 100 characters long"
    subject = sns_subject("Smart Vault: 3 FAILED\non café-1\t" + "x" * 200)
    assert len(subject) == 99
    assert subject.startswith("Smart Vault: 3 FAILED on caf -1 x")
    assert all(" " <= c <= "~" for c in subject)


def test_record_failure_emits_step_failed_by_step(account, capsys):
    run_two(account, fail_second=True)

    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"StepFailed"' in line]

    [record] = [r for r in records if "_aws" in r]
    [directive] = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "SmartVault"
    assert directive["Dimensions"] == [["service", "Step"]]
    assert directive["Metrics"] == [{"Name": "StepFailed", "Unit": "Count"}]
    assert (record["service"], record["Step"], record["StepFailed"]) == ("smart-vault", "Snapshot", [1.0])


def test_a_long_encoded_authorization_message_is_kept_whole_for_the_audit_record():
    message = "ec2:CreateSnapshots failed: UnauthorizedOperation: You are not authorized to perform this operation. "
    message += "Encoded authorization failure message: " + "y" * 3_000
    info = ErrorInfo.from_catch(
        {"Error": "PermissionDeniedError", "Cause": lambda_cause("PermissionDeniedError", message)}
    )
    assert info.message == message and info.aws_code == "UnauthorizedOperation"
