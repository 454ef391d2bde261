"""The stack with off-site copies configured: least-privilege CopySnapshot and KMS grants,
copy alarms and dashboard widgets, and cdk-nag / cfn-guard still clean."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import ROOT

DR = {"region": "us-west-2", "kms_key": "alias/smart-vault-dr", "retention_days": 30, "keep_min": 2}
EU_KEY = "arn:aws:kms:eu-west-1:123456789012:key/0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011"
EU = {"region": "eu-west-1", "kms_key": EU_KEY, "retention_days": 14, "keep_min": 1}


@pytest.fixture(scope="module")
def copies_stack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from app import build_app

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = build_app(context={**context, "copy_regions": [DR, EU]}, outdir=str(tmp_path_factory.mktemp("cdk.out")))
    assembly = app.synth()
    stack = assembly.get_stack_by_name("SmartVault")
    errors = [f"{m.id}: {m.entry.data}" for m in stack.messages if m.level.value == "error"]
    return {"template": stack.template, "errors": errors}


def _statements(template: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    return [
        statement
        for logical, resource in template["Resources"].items()
        if resource["Type"] == "AWS::IAM::Policy" and logical.startswith(role_prefix)
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _granting(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]


def test_cdk_nag_and_guard_accept_the_copy_grants(copies_stack):
    assert copies_stack["errors"] == []


def test_copy_snapshot_is_limited_to_own_sources_and_marked_copies_in_each_destination(copies_stack):
    copy = _statements(copies_stack["template"], "CopyRole")
    grants = _granting(copy, "ec2:CopySnapshot")
    assert len(grants) == 2
    # The SAR lists no aws:ResourceTag for CopySnapshot: the source is limited by ec2:Owner.
    assert "aws:ResourceTag" not in _text(grants)
    source = next(g for g in grants if "ec2:Owner" in _text(g.get("Condition")))
    assert source["Condition"] == {"StringEquals": {"ec2:Owner": {"Ref": "AWS::AccountId"}}}
    target = next(g for g in grants if "aws:RequestTag/smart-vault:managed-by" in _text(g.get("Condition")))
    assert "AWS::Region" in _text(source["Resource"])  # the source Region's snapshots only
    assert "us-west-2::snapshot/*" in _text(target["Resource"]) and "eu-west-1::snapshot/*" in _text(target["Resource"])
    tags = _granting(copy, "ec2:CreateTags")
    assert [t["Condition"] for t in tags] == [{"StringEquals": {"ec2:CreateAction": "CopySnapshot"}}]


def test_kms_grants_name_each_destination_key_and_grants_only_for_aws_resources(copies_stack):
    copy = _statements(copies_stack["template"], "CopyRole")
    by_alias = [g for g in _granting(copy, "kms:GenerateDataKeyWithoutPlaintext") if "kms:ResourceAliases" in _text(g)]
    assert by_alias and "kms:us-west-2:" in _text(by_alias[0]["Resource"])
    assert by_alias[0]["Condition"] == {"ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/smart-vault-dr"]}}
    assert any(g["Resource"] == EU_KEY for g in _granting(copy, "kms:Decrypt"))
    for grant in _granting(copy, "kms:CreateGrant"):
        assert grant["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    discover = _statements(copies_stack["template"], "DiscoverRole")
    assert len(_granting(discover, "kms:DescribeKey")) == 2


def test_prune_may_delete_only_managed_copies_in_the_destinations(copies_stack):
    prune = _statements(copies_stack["template"], "PruneRole")
    deletes = [g for g in _granting(prune, "ec2:DeleteSnapshot") if "us-west-2" in _text(g["Resource"])]
    assert len(deletes) == 1
    assert deletes[0]["Condition"] == {"StringEquals": {"aws:ResourceTag/smart-vault:managed-by": "smart-vault"}}


def test_copy_failure_and_stale_copy_alarms_exist_per_destination(copies_stack):
    alarms = {
        r["Properties"]["AlarmName"]
        for r in copies_stack["template"]["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert {
        "smart-vault-CopiesFailed",
        "smart-vault-StaleCopies-us-west-2",
        "smart-vault-StaleCopies-eu-west-1",
    } <= alarms
    dashboard = next(
        r for r in copies_stack["template"]["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"
    )
    assert "Off-site copies completed per Region" in _text(dashboard)
