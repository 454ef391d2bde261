"""IAM in simulations: every call is authorized against the synthesized stack's roles, and a call
the policies would deny fails the way AWS fails it (the whole class of IAM gaps closed, not one grant)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from smart_vault_sim.aws_tap import aws_error
from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.sfn_hooks import lambda_error_name, sdk_cause
from smart_vault_sim.simulator import simulate
from tests.workflow.conftest import BASE, by_name, instance


def scenario(**parts: Any) -> Any:
    data = copy.deepcopy(BASE)
    data.update(parts)
    return parse_scenario(data)


def without(role_prefix: str, action: str) -> Callable[[dict[str, Any]], None]:
    """Remove ``action`` from the Allow statements of the role whose logical id starts with ``role_prefix``."""

    def edit(template: dict[str, Any]) -> None:
        for logical, resource in template["Resources"].items():
            if resource["Type"] != "AWS::IAM::Policy" or not logical.startswith(role_prefix):
                continue
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                statement["Action"] = [a for a in actions if a != action] or ["none:Nothing"]

    return edit


OLD_SNAPSHOTS = [{"label": f"old-{i}", "instance": "web-1", "age_days": 10 + i, "managed": True} for i in range(3)]


def test_the_stacks_roles_are_enough_for_a_run_that_creates_and_prunes():
    report = simulate(scenario(instances=[instance("web-1")], existing_snapshots=OLD_SNAPSHOTS))
    run = report["runs"][0]
    assert run["iam_enforced"] is True
    assert run["iam_denied"] == []
    assert run["execution"]["status"] == "SUCCEEDED"
    assert len(run["created"]) == 1 and len(run["deleted"]) == 2  # keep_min 2: the new one and old-0
    # The state machine's own calls were authorized too: each task's Invoke, the ItemReader, the ResultWriter.
    assert run["state_machine_api_calls"]["lambda:Invoke"] >= 5
    assert run["state_machine_api_calls"]["s3:GetObject"] == 1
    assert run["state_machine_api_calls"]["s3:PutObject"] == 1


def test_prune_without_delete_snapshot_fails_with_ec2s_error_and_the_alert_names_it():
    # Given the prune role narrowed: ec2:DeleteSnapshot removed from the synthesized template.
    report = simulate(
        scenario(instances=[instance("web-1")], existing_snapshots=OLD_SNAPSHOTS),
        edit_template=without("PruneRole", "ec2:DeleteSnapshot"),
    )
    run = report["runs"][0]
    web = by_name(run)["web-1"]
    # Then the instance fails at Prune with EC2's own error, nothing is deleted, and the alert says why.
    assert web["status"] == "failed" and web["step"] == "Prune"
    assert web["aws_code"] == "UnauthorizedOperation"
    assert run["deleted"] == []
    assert all(
        d.startswith("prune ec2:DeleteSnapshot arn:aws:ec2:us-east-1::snapshot/snap-") for d in run["iam_denied"]
    )
    alert = run["alerts"][-1]["message"]
    assert "UnauthorizedOperation" in alert
    assert "is not authorized to perform: ec2:DeleteSnapshot" in alert


def test_the_ec2_denial_has_awss_message_shape():
    report = simulate(
        scenario(instances=[instance("web-1")]),
        edit_template=without("SnapshotRole", "ec2:CreateSnapshots"),
    )
    web = by_name(report["runs"][0])["web-1"]
    assert web["aws_code"] == "UnauthorizedOperation"
    message = web["error"]
    assert "You are not authorized to perform this operation. User: arn:aws:sts::123456789012:assumed-role/" in message
    assert (
        "/smart-vault-snapshot is not authorized to perform: ec2:CreateSnapshots on resource: arn:aws:ec2:" in message
    )
    assert "because no identity-based policy allows the ec2:CreateSnapshots action" in message
    assert "Encoded authorization failure message: " in message


def test_a_map_that_may_not_start_its_children_fails_the_run():
    # Given the Distributed Map grant as it once was (without the state machine name).
    def broken_map_grant(template: dict[str, Any]) -> None:
        text = json.dumps(template).replace(':stateMachine:smart-vault-sim-backup"', ':stateMachine"')
        template.update(json.loads(text))

    report = simulate(scenario(instances=[instance("web-1")]), edit_template=broken_map_grant)
    run = report["runs"][0]
    assert run["execution"]["status"] == "FAILED"
    assert run["created"] == []
    assert run["iam_denied"] == ["state-machine states:StartExecution " + _machine_arn()]
    assert "states:StartExecution" in run["alerts"][-1]["message"]


def _machine_arn() -> str:
    return "arn:aws:states:us-east-1:123456789012:stateMachine:smart-vault-sim-backup"


def test_a_state_machine_that_may_not_invoke_its_functions_fails_as_step_functions_reports_it():
    report = simulate(
        scenario(instances=[instance("web-1")]), edit_template=without("StateMachineRole", "lambda:InvokeFunction")
    )
    run = report["runs"][0]
    assert run["execution"]["status"] == "FAILED"
    assert run["api_calls"] == {}  # no function ever ran
    assert any(d.startswith("state-machine lambda:InvokeFunction") for d in run["iam_denied"])
    # Each task's Invoke is refused: Step Functions reports the SDK's AccessDeniedException as
    # Lambda.AWSLambdaException, which matches the tasks' Lambda.* retrier (6 attempts), then the
    # run fails (its own alert cannot be built either: Notify is a Lambda task too).
    assert run["states"]["Discover"]["retries"] == 6
    assert run["states"]["Discover"]["failed"] == 1


def test_a_refused_invoke_surfaces_as_step_functions_names_it():
    refused = aws_error("AccessDeniedException", "Invoke", "User: x is not authorized", status=403, request_id="r-1")
    assert lambda_error_name(refused) == "Lambda.AWSLambdaException"
    assert lambda_error_name(aws_error("TooManyRequestsException", "Invoke")) == "Lambda.TooManyRequestsException"
    assert sdk_cause(refused, "AWSLambda") == (
        "User: x is not authorized (Service: AWSLambda; Status Code: 403; Error Code: AccessDeniedException; "
        "Request ID: r-1; Proxy: null)"
    )


def test_an_unreadable_inventory_fails_the_map_with_item_reader_failed():
    def no_item_reader(template: dict[str, Any]) -> None:
        for logical, resource in template["Resources"].items():
            if resource["Type"] == "AWS::IAM::Policy" and logical.startswith("StateMachineRole"):
                statements = resource["Properties"]["PolicyDocument"]["Statement"]
                resource["Properties"]["PolicyDocument"]["Statement"] = [
                    s for s in statements if "/runs/*" not in json.dumps(s.get("Resource"))
                ]

    run = simulate(scenario(instances=[instance("web-1")]), edit_template=no_item_reader)["runs"][0]
    assert run["execution"]["status"] == "FAILED"
    assert "BackupInstances: States.ItemReaderFailed" in run["execution"]["cause"]
    assert "Error Code: AccessDenied;" in run["alerts"][-1]["message"]


def test_a_scenario_can_opt_out():
    data = copy.deepcopy(BASE)
    data.update(instances=[instance("web-1")], existing_snapshots=OLD_SNAPSHOTS)
    data["settings"] = {**data["settings"], "enforce_iam": False}
    run = simulate(parse_scenario(data), edit_template=without("PruneRole", "ec2:DeleteSnapshot"))["runs"][0]
    assert run["iam_enforced"] is False
    assert len(run["deleted"]) == 2
