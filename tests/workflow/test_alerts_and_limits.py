"""Issue 8 through the real ASL: fleets above EC2's filter limit, alerts that must get through
when many instances fail, and the fallback alert when Notify itself cannot work."""

from __future__ import annotations

from smart_vault.aws import SNS_MAX_MESSAGE_BYTES
from tests.workflow.conftest import instance


def test_110_instances_with_2_volumes_each_are_all_backed_up(run_scenario):
    # Given 220 volumes: more than the 200 values EC2 accepts in one filter
    report = run_scenario(instances=[instance(f"web-{n:03d}", volumes=2) for n in range(110)])

    [run] = report["runs"]
    assert run["execution"]["status"] == "SUCCEEDED"
    assert {row["status"] for row in run["instances"]} == {"backed_up"}
    assert len(run["instances"]) == 110
    assert len(run["created"]) == 220
    # 220 volume ids in two DescribeVolumes calls of at most 200 filter values
    assert run["api_calls"]["ec2:DescribeVolumes"] == 2


def test_40_denied_instances_get_one_alert_under_the_sns_limit(run_scenario):
    # Given every CreateSnapshots denied with EC2's real message (~1,600 encoded characters)
    names = [f"app-{n:02d}" for n in range(40)]
    report = run_scenario(
        instances=[instance(name) for name in names],
        faults=[{"operation": "CreateSnapshots", "error": "UnauthorizedOperation"}],
    )

    [run] = report["runs"]
    assert run["execution"]["status"] == "FAILED"
    assert {row["status"] for row in run["instances"]} == {"failed"}
    [alert] = run["alerts"]
    assert alert["subject"] == "Smart Vault: 40 of 40 instance backups FAILED"
    assert alert["message_bytes"] < SNS_MAX_MESSAGE_BYTES
    text = alert["message"]
    assert all(f"- {name} " in text for name in names)  # all 40 named, none left out
    assert "left out" not in text
    assert "Encoded authorization failure message: [1600 characters in the audit record" in text
    assert "Audit record: s3://smart-vault-sim-inventory/runs/20261126T030000Z/" in text


def test_notify_that_cannot_read_s3_still_alerts_through_the_fallback(run_scenario):
    # Given the Notify function's role cannot read the bucket (S3 answers AccessDenied)
    report = run_scenario(
        instances=[instance("web-1"), instance("db-1")],
        faults=[
            {"operation": "GetObject", "error": "AccessDenied"},
            {"operation": "ListObjectsV2", "error": "AccessDenied"},
        ],
    )

    [run] = report["runs"]
    assert run["execution"]["status"] == "FAILED"
    assert run["execution"]["error"] == "SmartVault.NotifyFailed"
    [alert] = run["alerts"]
    assert alert["subject"] == "Smart Vault: backup run FAILED, and Notify could not build its alert"
    assert "sv-20261126T030000Z-0000" in alert["message"]
    assert "AccessDenied" in alert["message"]
    assert "PermissionDeniedError" in alert["message"]
    assert "arn:aws:states:us-east-1:123456789012:execution:smart-vault:" in alert["message"]
    assert run["faults_injected"]["GetObject:AccessDenied"] == 1  # not retried: a config error


def test_run_failure_whose_alert_lambda_fails_too_still_alerts(run_scenario):
    # Given discovery is denied, and the Notify function cannot publish either
    report = run_scenario(
        instances=[instance("web-1")],
        faults=[
            {"operation": "DescribeInstances", "error": "UnauthorizedOperation"},
            {"operation": "Publish", "error": "AuthorizationError"},
        ],
    )

    [run] = report["runs"]
    assert run["execution"]["error"] == "SmartVault.NotifyFailed"
    [alert] = run["alerts"]  # published by Step Functions itself, not by the Lambda
    assert alert["subject"] == "Smart Vault: backup run FAILED, and Notify could not send its alert"
    message = alert["message"]
    assert "failed at step Discover" in message
    assert "UnauthorizedOperation" in message and "AuthorizationError" in message
    assert alert["message_bytes"] < SNS_MAX_MESSAGE_BYTES
