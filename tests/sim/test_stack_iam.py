"""The synthesized stack's IAM, judged by the simulator's evaluator: each role allows what its
function needs and nothing the stack means to forbid; every publisher may reach the topic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from smart_vault.constants import FUNCTION_HANDLERS, TAG_MANAGED
from smart_vault.settings import Settings
from smart_vault_sim import stack_iam as stack_iam_module
from smart_vault_sim.authorization import Authorizer
from smart_vault_sim.aws_tap import DRILL_MACHINE, STATE_MACHINE
from smart_vault_sim.iam import Decision, Request, evaluate
from smart_vault_sim.simulator import DEPLOYMENT_ID, KEY_ARN, STATE_MACHINE_SESSION, cdk_context
from smart_vault_sim.stack_iam import Emulated, StackIam, synthesized_template

REGION, ACCOUNT = "us-east-1", "123456789012"
BUCKET = "inventory"
MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{DEPLOYMENT_ID}-backup"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts"
SNAPSHOTS = f"arn:aws:ec2:{REGION}::snapshot/*"


def stack_iam(template: dict[str, Any] | None = None) -> StackIam:
    template = template or synthesized_template({"deployment_id": DEPLOYMENT_ID})
    emulated = Emulated(
        region=REGION,
        account=ACCOUNT,
        bucket=BUCKET,
        topic_arn=TOPIC_ARN,
        state_machine_arn=MACHINE_ARN,
        function_arns={k: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sv-{k}" for k in FUNCTION_HANDLERS},
        key_arn=KEY_ARN.format(region=REGION),
    )
    return StackIam.from_template(template, emulated)


@pytest.fixture(scope="module")
def authorizer() -> Authorizer:
    return Authorizer(stack_iam(), region=REGION, account=ACCOUNT, sessions={STATE_MACHINE: STATE_MACHINE_SESSION})


def allowed(authorizer: Authorizer, caller: str, action: str, resource: str, **context: tuple[str, ...]) -> bool:
    return authorizer.decide(caller, action, resource, context) is Decision.ALLOW


def test_every_function_and_the_state_machine_have_a_role(authorizer: Authorizer):
    assert set(authorizer.iam.roles) == {*FUNCTION_HANDLERS, STATE_MACHINE, DRILL_MACHINE}


def test_the_distributed_map_may_start_and_watch_its_children(authorizer: Authorizer):
    assert allowed(authorizer, STATE_MACHINE, "states:StartExecution", MACHINE_ARN)
    child = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{DEPLOYMENT_ID}-backup/map-run:child-1"
    assert allowed(authorizer, STATE_MACHINE, "states:DescribeExecution", child)
    assert not allowed(authorizer, STATE_MACHINE, "states:StartExecution", MACHINE_ARN + "-other")


def test_the_grant_of_issue_8_defect_1_would_be_denied():
    # Given the synthesized template with the Map grant as main built it before the fix: jsii
    # dropped the resource name, leaving arn:...:stateMachine.
    template = synthesized_template({"deployment_id": DEPLOYMENT_ID})
    text = json.dumps(template)
    broken = json.loads(text.replace(f':stateMachine:{DEPLOYMENT_ID}-backup"', ':stateMachine"'))
    assert broken != template
    iam = stack_iam(broken)
    # Then the state machine may not start its own children.
    denied = Authorizer(iam, region=REGION, account=ACCOUNT, sessions={})
    assert not allowed(denied, STATE_MACHINE, "states:StartExecution", MACHINE_ARN)


def test_snapshots_can_only_be_created_with_this_deployments_marker(authorizer: Authorizer):
    marker = {f"aws:RequestTag/{TAG_MANAGED}": (DEPLOYMENT_ID,), "aws:TagKeys": (TAG_MANAGED,)}
    assert allowed(authorizer, "snapshot", "ec2:CreateSnapshots", SNAPSHOTS, **marker)
    assert not allowed(authorizer, "snapshot", "ec2:CreateSnapshots", SNAPSHOTS)
    other = {f"aws:RequestTag/{TAG_MANAGED}": ("someone-else",)}
    assert not allowed(authorizer, "snapshot", "ec2:CreateSnapshots", SNAPSHOTS, **other)
    # Tags are written only inside a create call.
    assert allowed(authorizer, "snapshot", "ec2:CreateTags", SNAPSHOTS, **{"ec2:CreateAction": ("CreateSnapshots",)})
    assert not allowed(authorizer, "snapshot", "ec2:CreateTags", SNAPSHOTS)


def test_prune_deletes_only_this_deployments_snapshots(authorizer: Authorizer):
    snapshot = f"arn:aws:ec2:{REGION}::snapshot/snap-1"
    assert allowed(
        authorizer, "prune", "ec2:DeleteSnapshot", snapshot, **{f"aws:ResourceTag/{TAG_MANAGED}": (DEPLOYMENT_ID,)}
    )
    assert not allowed(authorizer, "prune", "ec2:DeleteSnapshot", snapshot)
    assert not allowed(
        authorizer, "prune", "ec2:DeleteSnapshot", snapshot, **{f"aws:ResourceTag/{TAG_MANAGED}": ("other",)}
    )
    assert not allowed(
        authorizer, "snapshot", "ec2:DeleteSnapshot", snapshot, **{f"aws:ResourceTag/{TAG_MANAGED}": (DEPLOYMENT_ID,)}
    )


def test_run_records_are_read_and_listed_only_under_runs(authorizer: Authorizer):
    bucket = f"arn:aws:s3:::{BUCKET}"
    assert allowed(authorizer, "notify", "s3:ListBucket", bucket, **{"s3:prefix": ("runs/2026/x/",)})
    assert not allowed(authorizer, "notify", "s3:ListBucket", bucket)
    assert allowed(authorizer, "notify", "s3:GetObject", f"{bucket}/runs/a.json")
    assert not allowed(authorizer, "notify", "s3:GetObject", f"{bucket}/other/a.json")
    assert allowed(authorizer, "notify", "sns:Publish", TOPIC_ARN)
    assert not allowed(authorizer, "discover", "sns:Publish", TOPIC_ARN)


def publisher_decisions() -> list[tuple[str, str, Decision]]:
    iam = stack_iam()
    topic_policy = iam.resource_policies.get(TOPIC_ARN)
    key = iam.encryption_keys.get(TOPIC_ARN)
    key_policy = iam.resource_policies.get(key) if key else None
    rows = []
    for service, source_arn, logical in iam.publishers:
        context = {"aws:SourceArn": (source_arn,), "aws:SourceAccount": (ACCOUNT,), "aws:SecureTransport": ("true",)}
        needs = [("sns:Publish", TOPIC_ARN, topic_policy)]
        if key:  # an encrypted topic: the publishing service needs the key too
            needs += [("kms:GenerateDataKey", key, key_policy), ("kms:Decrypt", key, key_policy)]
        for action, resource, resource_policy in needs:
            request = Request(action, resource, context, service_principal=service)
            rows.append((logical, action, evaluate(request, (), resource_policy)))
    return rows


def test_every_alarm_and_the_status_rule_publish_to_the_topic():
    rows = publisher_decisions()
    publishers = {logical for logical, _, _ in rows}
    assert any(logical.startswith("ExecutionStatusRule") for logical in publishers)
    template = synthesized_template({"deployment_id": DEPLOYMENT_ID})
    alarms = {k for k, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert alarms and alarms <= publishers  # every alarm of the stack is judged as a publisher
    refused = [(logical, action, d.value) for logical, action, d in rows if d is not Decision.ALLOW]
    assert refused == []


def test_the_stack_is_synthesized_with_the_scenarios_non_default_settings():
    # Equal configurations share one synthesis: defaults are left out, the rest passes as CDK context.
    assert cdk_context(Settings()) == {"deployment_id": DEPLOYMENT_ID}
    changed = Settings.from_mapping({"keep_min": 4, "copy_tags": ["Name", "team"], "retention_days": 7})
    assert cdk_context(changed) == {"keep_min": 4, "copy_tags": ["Name", "team"], "deployment_id": DEPLOYMENT_ID}


def test_the_first_synthesis_says_what_it_is_doing_and_a_cached_one_is_silent(tmp_path, monkeypatch, capfd):
    # Given an empty template cache, as on the first `make demo`
    monkeypatch.setenv("SMART_VAULT_CACHE_DIR", str(tmp_path))
    stack_iam_module._template_json.cache_clear()
    # When the stack is synthesized, a line on stderr says so before the silent minute
    synthesized_template({"keep_min": 3})
    assert (
        f"synthesizing the CDK stack to enforce its IAM (once per code version and settings; cached in {tmp_path})"
        in (capfd.readouterr().err)
    )
    # And once it is cached, nothing is said
    stack_iam_module._template_json.cache_clear()
    synthesized_template({"keep_min": 3})
    assert "synthesizing" not in capfd.readouterr().err
