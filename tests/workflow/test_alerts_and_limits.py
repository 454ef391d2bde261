"""Alerts and limits through the real ASL: fleets above EC2's filter limit, alerts that must get through
when many instances fail, and the fallback alert when Notify itself cannot work."""

from __future__ import annotations

import json

from click.testing import CliRunner

from smart_vault.aws import SNS_MAX_MESSAGE_BYTES
from smart_vault_cli.main import cli
from smart_vault_sim.sandbox import deploy_stack
from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import DEPLOYMENT_ID, Simulation
from tests.unit.test_discover import ec2_filter_value_limit
from tests.workflow.conftest import BASE, instance


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
    assert run["metrics"]["StepFailed"] == 40  # one per instance whose Snapshot step failed for good
    [alert] = run["alerts"]
    assert alert["subject"] == "Smart Vault: 40 of 40 instance backups FAILED"
    assert alert["message_bytes"] < SNS_MAX_MESSAGE_BYTES
    text = alert["message"]
    assert all(f"- {name} " in text for name in names)  # all 40 named, none left out
    assert "left out" not in text
    assert "Encoded authorization failure message: [1536 characters in the audit record" in text
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
    assert f"arn:aws:states:us-east-1:123456789012:execution:{DEPLOYMENT_ID}-backup:" in alert["message"]
    # Not retried, a config error: each reader was refused exactly once (the blanket fault also
    # refuses the two Prunes' journal reads and the orphan step's inventory read).
    assert run["faults_injected"]["GetObject:AccessDenied"] == run["api_calls"]["s3:GetObject"] == 2 + 1 + 1


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


def test_a_rerun_naming_gone_and_terminated_instances_backs_up_the_rest():
    # Given a manual re-run (the input the alert suggests) naming a live instance, a terminated
    # one and one that no longer exists at all
    scenario = {**BASE, "instances": [instance("web-1"), instance("old-1", state="terminated")]}
    sim = Simulation(parse_scenario(scenario))
    with sim.emulated() as account:
        web, old, gone = account.instance_ids["web-1"], account.instance_ids["old-1"], "i-0123456789abcdef0"
        arn = account.sfn.start_execution(
            stateMachineArn=account.state_machine_arn,
            name="rerun-1",
            input=json.dumps({"time": "2026-11-26T03:00:00Z", "instance_ids": [web, old, gone]}),
        )["executionArn"]
        description = sim._wait_for(arn)
        outcomes = sim._outcomes("20261126T030000Z", "rerun-1")
        output = json.loads(description["output"])

    assert description["status"] == "SUCCEEDED"
    assert outcomes[web]["status"] == "backed_up"
    assert outcomes[old]["status"] == outcomes[gone]["status"] == "skipped"
    assert outcomes[gone]["reason"] == "instance does not exist (named in instance_ids)"
    assert {s["instance_id"]: s["reason"] for s in output["summary"]["skipped_instances"]} == {
        old: "instance is terminated (named in instance_ids)",
        gone: "instance does not exist (named in instance_ids)",
    }


def test_plan_of_a_fleet_above_the_filter_value_limit():
    # `smart-vault plan` runs the same discovery: 220 volumes, EC2's 200-value limit enforced
    scenario = {**BASE, "instances": [instance(f"web-{n:03d}", volumes=2) for n in range(110)]}
    sim = Simulation(parse_scenario(scenario))
    with sim.emulated():
        deploy_stack(sim)
        with ec2_filter_value_limit() as values_per_filter:
            result = CliRunner().invoke(cli, ["--stack", "SmartVault", "--region", "us-east-1", "plan"])

    assert result.exit_code == 0, result.output
    assert "web-109" in result.output
    assert max(values_per_filter) == 200
