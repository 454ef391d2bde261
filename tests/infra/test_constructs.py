"""The stack as constructs: one per concern, each function's IAM from its one table row, logical
ids unchanged by the composition, shared names from one source."""

from __future__ import annotations

import json

import pytest

from smart_vault.constants import FUNCTION_HANDLERS, MAP_RESULTS_PREFIX, construct_name
from smart_vault_infra.functions import On, function_specs
from smart_vault_infra.logical_ids import logical_id
from smart_vault_infra.paths import definition_path


def test_logical_ids_are_computed_as_cdk_does():
    # Values CDK itself produced for these paths before the stack had concern constructs.
    assert logical_id(["Key", "Resource"]) == "Key961B73FD"
    assert logical_id(["InventoryBucket", "Resource"]) == "InventoryBucketA869B8CB"
    assert logical_id(["StateMachine", "Role", "DefaultPolicy", "Resource"]) == "StateMachineRoleDefaultPolicyDF1E6607"
    assert logical_id(["Schedule"]) == "Schedule"
    assert logical_id(["AlertTopic", "ops@example.com", "Resource"]) == "AlertTopicopsexamplecom6DA82EC4"
    assert logical_id(["Default", "Key", "Resource"]) == "Key961B73FD"  # "Default" is never part of an id


def test_the_stack_is_composed_of_one_construct_per_concern(synthesized):
    tree = json.loads((synthesized["outdir"] / "tree.json").read_text())["tree"]["children"]["SmartVault"]["children"]
    concerns = {"Storage", "Functions", "Workflow", "Monitoring"}
    assert concerns <= set(tree)
    placed = {
        "Storage": {"Key", "InventoryBucket", "AlertTopic"},
        "Functions": {f"{construct_name(key)}Function" for key in FUNCTION_HANDLERS},
        "Workflow": {"StateMachine", "Schedule", "ExecutionStatusRule", "DeadLetterQueue"},
        "Monitoring": {"Dashboard", "StepsFailed", "DeadLetters", "NoSuccessfulBackup"},
    }
    for concern, children in placed.items():
        assert children <= set(tree[concern]["children"]), concern


def test_two_resources_cannot_share_a_logical_id(tmp_path):
    import aws_cdk as cdk
    from aws_cdk import aws_sqs as sqs

    from smart_vault_infra import stack as stack_module
    from smart_vault_infra.config import DeploymentConfig

    class Twice(stack_module.SmartVaultStack):
        def __init__(self, scope, construct_id, *, config):
            super().__init__(scope, construct_id, config=config)
            sqs.Queue(self.workflow, "Copy")
            sqs.Queue(self.monitoring, "Copy")  # both would be "Copy<hash of Copy/Resource>"

    app = cdk.App(outdir=str(tmp_path))
    Twice(app, "SmartVault", config=DeploymentConfig.from_context({}))
    with pytest.raises(Exception, match="would share the logical id"):
        app.synth()


def _granted(synthesized, role_prefix):
    resources = synthesized["template"]["Resources"]
    for policy in resources.values():
        if policy["Type"] == "AWS::IAM::Policy" and policy["Properties"]["Roles"][0]["Ref"].startswith(role_prefix):
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                yield from actions


@pytest.mark.parametrize("key", sorted(FUNCTION_HANDLERS))
def test_each_function_gets_exactly_its_table_row(synthesized, key):
    spec = function_specs("smart-vault")[key]
    expected = {action for allow in spec.allow for action in allow.actions}
    expected |= {"logs:CreateLogStream", "logs:PutLogEvents"}  # its own log group
    expected |= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}  # active tracing
    if spec.uses_key:
        expected |= {"kms:GenerateDataKey", "kms:Decrypt"}
    assert set(_granted(synthesized, f"{construct_name(key)}Role")) == expected


def test_only_actions_without_resource_level_permissions_use_any():
    # Service Authorization Reference: these EC2 actions support no resource-level permissions.
    without = {
        "ec2:DescribeInstances",
        "ec2:DescribeVolumes",
        "ec2:DescribeVolumeStatus",
        "ec2:DescribeSnapshots",
        "ec2:DescribeImages",
        "ec2:DescribeAvailabilityZones",
        "ec2:DescribeLockedSnapshots",
        "ec2:GetEbsEncryptionByDefault",
        "ec2:GetEbsDefaultKmsKeyId",
        "rbin:ListRules",
        "servicequotas:GetServiceQuota",  # parliament lists no resource type (functions.py)
        "ssm:GetCommandInvocation",
        "ssm:DescribeInstanceInformation",
    }
    for key, spec in [*function_specs("smart-vault").items(), *function_specs("smart-vault", 10).items()]:
        for allow in spec.allow:
            if On.ANY in allow.on:
                assert set(allow.actions) <= without, key


def test_map_results_prefix_is_the_one_the_asl_writes():
    definition = json.loads(definition_path().read_text())
    writers = [
        state["ResultWriter"]["Parameters"]["Prefix"]
        for state in definition["States"].values()
        if "ResultWriter" in state
    ]
    assert writers == [MAP_RESULTS_PREFIX]


def test_roles_are_found_through_standard_references(synthesized):
    # The simulator's IAM evaluator follows each function's Role and the state machine's RoleArn.
    resources = synthesized["template"]["Resources"]
    for resource in resources.values():
        if resource["Type"] == "AWS::Lambda::Function":
            role_id, attribute = resource["Properties"]["Role"]["Fn::GetAtt"]
        elif resource["Type"] == "AWS::StepFunctions::StateMachine":
            role_id, attribute = resource["Properties"]["RoleArn"]["Fn::GetAtt"]
        else:
            continue
        assert attribute == "Arn" and resources[role_id]["Type"] == "AWS::IAM::Role"
