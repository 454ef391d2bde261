"""Template assertions on the synthesized stack (synthesized once per session)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk.assertions import Match

from smart_vault.constants import BACKUP_FUNCTIONS, DRILL_FUNCTIONS, FUNCTION_HANDLERS, TAG_MANAGED
from smart_vault.errors import InvalidInputError
from smart_vault_infra.config import DeploymentConfig


def resources(synthesized, kind):
    return {k: v for k, v in synthesized["template"]["Resources"].items() if v["Type"] == kind}


def statements(synthesized):
    for policy in resources(synthesized, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            yield policy["Properties"]["Roles"][0]["Ref"], statement


def test_resource_counts(template):
    template.resource_count_is("AWS::Lambda::Function", len(FUNCTION_HANDLERS))  # 9 with copy
    template.resource_count_is("AWS::StepFunctions::StateMachine", 2)  # backup, restore drill
    template.resource_count_is("AWS::Scheduler::Schedule", 3)  # backup, drill, preflight
    template.resource_count_is("AWS::SNS::Topic", 1)
    template.resource_count_is("AWS::S3::Bucket", 1)
    template.resource_count_is("AWS::KMS::Key", 1)
    template.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    template.resource_count_is("AWS::SQS::Queue", 1)
    # Throttles and Duration per function + 4 execution alarms + SnapshotsFailed, StepsFailed,
    # DeadLetters + no-successful-run + DrillFailed and NoSuccessfulDrill.
    # Copy alarms only with copy_regions (tests/infra/test_copies_stack.py). PreflightFailed: the last one.
    template.resource_count_is("AWS::CloudWatch::Alarm", 2 * len(FUNCTION_HANDLERS) + 4 + 3 + 1 + 2 + 1)


def test_functions_are_arm64_current_python_traced_json_logged(template):
    template.all_resources_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.14",
            "Architectures": ["arm64"],
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": Match.object_like({"LogFormat": "JSON"}),
            "Layers": [Match.any_value()],
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "RETENTION_DAYS": "7",
                        "KEEP_MIN": "2",
                        "DEPLOYMENT_ID": "smart-vault",
                        "BUCKET_NAME": Match.any_value(),
                        "TOPIC_ARN": Match.any_value(),
                    }
                )
            },
        },
    )
    handlers = {r["Properties"]["Handler"] for r in template.find_resources("AWS::Lambda::Function").values()}
    assert handlers == set(FUNCTION_HANDLERS.values())


def test_each_function_has_its_own_role(synthesized):
    roles = {f["Properties"]["Role"]["Fn::GetAtt"][0] for f in resources(synthesized, "AWS::Lambda::Function").values()}
    assert len(roles) == len(FUNCTION_HANDLERS)
    for role in resources(synthesized, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_no_wildcard_actions(synthesized):
    for _, statement in statements(synthesized):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            assert action != "*" and not action.endswith(":*"), action


def test_snapshot_permissions_carry_tag_conditions(synthesized):
    by_action = {}
    for role, statement in statements(synthesized):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            by_action.setdefault(action, []).append((role, statement))
    creates_on_snapshots = [s for _, s in by_action["ec2:CreateSnapshots"] if "snapshot/*" in json.dumps(s["Resource"])]
    assert creates_on_snapshots and all(
        s["Condition"] == {"StringEquals": {f"aws:RequestTag/{TAG_MANAGED}": "smart-vault"}}
        for s in creates_on_snapshots
    )
    [(_, tags)] = [(r, s) for r, s in by_action["ec2:CreateTags"] if r.startswith("SnapshotRole")]
    assert tags["Condition"] == {"StringEquals": {"ec2:CreateAction": "CreateSnapshots"}}
    [(role, delete)] = by_action["ec2:DeleteSnapshot"]
    assert delete["Condition"] == {"StringEquals": {f"aws:ResourceTag/{TAG_MANAGED}": "smart-vault"}}
    assert role.startswith("PruneRole")
    # Only the snapshot function creates, only prune deletes, only notify and the drill's report
    # (and the state machines' fallback alerts) publish.
    assert {r for r, _ in by_action["ec2:CreateSnapshots"]} == {
        next(iter(r for r, _ in by_action["ec2:CreateSnapshots"]))
    }
    publishers = ("NotifyRole", "StateMachineRole", "DrillReportRole", "DrillStateMachineRole")
    assert {r.startswith(publishers) for r, _ in by_action["sns:Publish"]} == {True}


def test_each_state_machine_invokes_only_its_own_functions(synthesized):
    invokes = {r: s for r, s in statements(synthesized) if s["Action"] == "lambda:InvokeFunction"}
    backup = next(s for r, s in invokes.items() if r.startswith("StateMachineRole"))
    drill = next(s for r, s in invokes.items() if r.startswith("DrillStateMachineRole"))
    assert len(invokes) == 2
    # The backup machine's preflight invokes the drill's functions too, each with its own role.
    assert len(backup["Resource"]) == len(BACKUP_FUNCTIONS) + len(DRILL_FUNCTIONS) == 10  # copy, consistency
    assert len(drill["Resource"]) == len(DRILL_FUNCTIONS) == 3


def test_definition_is_substituted_with_the_function_arns(synthesized):
    machines = resources(synthesized, "AWS::StepFunctions::StateMachine").values()
    [machine] = [m for m in machines if m["Properties"]["StateMachineName"] == "smart-vault-backup"]
    props = machine["Properties"]
    subs = props["DefinitionSubstitutions"]
    functions = set(resources(synthesized, "AWS::Lambda::Function"))  # the preflight invokes all
    assert {v["Fn::GetAtt"][0] for k, v in subs.items() if k.endswith("FunctionArn")} == functions
    assert "InventoryBucketName" in subs
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert props["LoggingConfiguration"]["Level"] == "ALL"


def test_schedule_passes_the_scheduled_time(template):
    template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": "cron(0 3 * * ? *)",
            "ScheduleExpressionTimezone": "UTC",
            "Target": Match.object_like({"Input": Match.string_like_regexp("<aws.scheduler.scheduled-time>")}),
        },
    )


def test_status_change_rule_alerts_on_what_no_catch_sees(synthesized):
    # FAILED is alerted by Notify (with the instances and errors): the rule adds only what no
    # Catch can see, so a failed run is not reported twice.
    [rule] = resources(synthesized, "AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert pattern["detail"]["status"] == ["TIMED_OUT", "ABORTED"]


def test_encrypted_private_bucket_and_topic(template):
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": Match.object_like(
                {
                    "ServerSideEncryptionConfiguration": [
                        Match.object_like(
                            {"ServerSideEncryptionByDefault": Match.object_like({"SSEAlgorithm": "aws:kms"})}
                        )
                    ]
                }
            ),
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "LifecycleConfiguration": Match.object_like(
                {"Rules": Match.array_with([Match.object_like({"Prefix": "runs/", "ExpirationInDays": 400})])}
            ),
        },
    )
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": Match.object_like(
                {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                }
            )
        },
    )
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": Match.object_like(
                {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                }
            )
        },
    )
    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"})
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_alarms_per_function_and_state_machine(synthesized):
    alarms = resources(synthesized, "AWS::CloudWatch::Alarm").values()
    by_metric = {}
    for alarm in alarms:
        props = alarm["Properties"]
        by_metric.setdefault(props.get("MetricName"), []).append(props)
        assert props["AlarmActions"], "every alarm notifies the topic"
    assert len(by_metric["Throttles"]) == len(by_metric["Duration"]) == len(FUNCTION_HANDLERS)
    # Lambda Errors count failures Step Functions retried successfully: not alarmed on.
    assert "Errors" not in by_metric
    for name in (
        "ExecutionsFailed",
        "ExecutionsTimedOut",
        "ExecutionsAborted",
        "ExecutionThrottled",
        "SnapshotsFailed",
    ):
        assert name in by_metric, name
    [heartbeat] = by_metric["ExecutionsSucceeded"]
    assert heartbeat["TreatMissingData"] == "breaching"
    assert heartbeat["ComparisonOperator"] == "LessThanThreshold"
    assert heartbeat["EvaluationPeriods"] * heartbeat["Period"] >= 24 * 3600


def test_outputs(template):
    for name in ("StateMachineArn", "AlertTopicArn", "InventoryBucketName", "DashboardUrl", "DeadLetterQueueUrl"):
        template.has_output(name, {})


def test_cdk_nag_and_cfn_guard_found_nothing_unacknowledged(synthesized):
    # cdk-nag reports only findings; cfn-guard always reports, so its entry proves it ran.
    report = json.loads((synthesized["outdir"] / "validation-report.json").read_text())
    [guard] = report["pluginReports"]
    assert guard["pluginName"] == "cdk-validator-cfnguard"
    assert guard["conclusion"] == "success"
    assert guard["violations"] == []
    # Every acknowledged Control Tower finding is one the stack chose to acknowledge.
    assert {v["ruleName"] for v in guard["suppressedViolations"]} == {
        "cloudwatch_log_group_retention_period_check",
        "lambda_inside_vpc_check",
        "s3_bucket_logging_enabled_check",
        "s3_event_notifications_enabled_check",
        "s3_bucket_object_lock_enabled_check",
        "sqs_dlq_check",
    }


def test_an_unacknowledged_finding_fails_synth(monkeypatch, tmp_path):
    # Without its acknowledgments the same stack must not synthesize.
    from app import build_app
    from smart_vault_infra import checks, functions, storage, workflow

    for module in (checks, functions, storage, workflow):
        monkeypatch.setattr(module, "acknowledge", lambda *args, **kwargs: None)
    with pytest.raises(Exception, match="ValidationFailed"):
        build_app(outdir=str(tmp_path)).synth()


def test_cfn_lint_reports_no_errors(synthesized):
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(synthesized["path"])], capture_output=True, text=True)
    # Exit code bit 2 = errors (4 = warnings, 8 = informational); 1 = cfn-lint itself failed.
    assert result.returncode & 3 == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("context", "key"),
    [
        ({"retention_days": 0}, "retention_days"),
        ({"keep_min": "x"}, "keep_min"),
        ({"schedule": "daily"}, "schedule"),
        ({"alarm_email": "nobody"}, "alarm_email"),
        ({"log_retention_days": 42}, "log_retention_days"),
        ({"kms_key_arn": "my-key"}, "kms_key_arn"),
        ({"kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab"}, "kms_key_arn.*not supported"),
        ({"deployment_id": "Smart Vault"}, "deployment_id"),
        ({"retension_days": 7}, "retension_days"),
    ],
)
def test_invalid_context_is_a_clear_synth_error(context, key):
    with pytest.raises(InvalidInputError, match=key):
        DeploymentConfig.from_context(context)


def test_distributed_map_permissions_name_this_state_machine_and_its_executions(synthesized):
    # Step Functions, "IAM policies for using Distributed Map states": the parent's role needs
    # states:StartExecution on arn:...:stateMachine:<name> and Describe/StopExecution on
    # arn:...:execution:<name>/*. An ARN without the name matches nothing and the Map fails.
    prefix = ["arn:", {"Ref": "AWS::Partition"}, ":states:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"}]
    by_action = {}
    for role, statement in statements(synthesized):
        if role.startswith("StateMachineRole"):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            for action in actions:
                by_action[action] = statement["Resource"]
    assert by_action["states:StartExecution"] == {"Fn::Join": ["", [*prefix, ":stateMachine:smart-vault-backup"]]}
    executions = {"Fn::Join": ["", [*prefix, ":execution:smart-vault-backup/*"]]}
    assert by_action["states:DescribeExecution"] == by_action["states:StopExecution"] == executions
