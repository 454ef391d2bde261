"""The stack with the fleet's own KMS keys (fleet_kms_keys): each role whose EC2
calls make EBS use the key gets what the EBS User Guide lists, only through EC2, and cdk-nag,
cfn-guard, cfn-lint and parliament stay clean."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import ROOT
from tests.infra.test_policy_lint import Acknowledged, _acknowledgment, _findings

DR = {"region": "us-west-2", "kms_key": "alias/smart-vault-dr", "retention_days": 30, "keep_min": 2}
FLEET_ARN = "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-4b5a-6978-8a9b-acbdcedf0022"
FLEET = ["alias/fleet", FLEET_ARN]
EBS = {"kms:DescribeKey", "kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"}


@pytest.fixture(scope="module")
def fleet_stack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from app import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    settings = {
        "copy_regions": [DR],
        "fleet_kms_keys": FLEET,
        "retention": {"daily": 7, "monthly": 12},
        "archive_after_days": 30,
    }
    app = build_app(context={**context, **settings}, outdir=str(outdir))
    stack = app.synth().get_stack_by_name("SmartVault")
    errors = [f"{m.id}: {m.entry.data}" for m in stack.messages if m.level.value == "error"]
    return {"template": stack.template, "errors": errors, "path": outdir / stack.template_file}


# Findings only a stack with copy Regions and KMS keys named by alias has (the default stack has none).
KEY_ACKNOWLEDGED = (
    Acknowledged(
        "",
        "UNKNOWN_CONDITION_FOR_ACTION",
        "Unknown condition ec2:Owner for action ec2:CopySnapshot",
        "The Service Authorization Reference (Amazon EC2) lists ec2:Owner for CopySnapshot's snapshot "
        "resource, the only listed key that keeps the source to this account's snapshots (it lists no "
        "aws:ResourceTag there); parliament's action table lacks it. tests/infra/test_sar_policy_keys.py "
        "checks every key against the SAR table.",
    ),
    Acknowledged(
        "",
        "UNKNOWN_CONDITION_FOR_ACTION",
        "Unknown condition kms:ResourceAliases for action kms:",
        "The Service Authorization Reference (AWS KMS) lists kms:ResourceAliases for DescribeKey, "
        "CreateGrant, Decrypt, ReEncrypt* and GenerateDataKey*; parliament's action table predates the key.",
    ),
    Acknowledged(
        "",
        "PERMISSIONS_MANAGEMENT_ACTIONS",
        "kms:creategrant",
        "EBS creates a grant on the caller's behalf to copy, archive or restore (Amazon EBS User Guide, "
        "'Requirements for Amazon EBS encryption'); the statement allows it only for AWS resources "
        "(kms:GrantIsForAWSResource) and, on the fleet's keys, only through EC2 (kms:ViaService).",
    ),
)


def _open(finding: tuple[str, str, str, str]) -> bool:
    if _acknowledgment(finding[0], finding[2], finding[3]) is not None:
        return False
    return not any(a.issue == finding[2] and a.detail.lower() in finding[3].lower() for a in KEY_ACKNOWLEDGED)


def _fleet_statements(template: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    """The role's statements on the fleet keys (the alias-narrowed key/* or the key ARN)."""
    return [
        statement
        for logical, resource in template["Resources"].items()
        if resource["Type"] == "AWS::IAM::Policy" and logical.startswith(role_prefix)
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if "alias/fleet" in json.dumps(statement.get("Condition", {})) or FLEET_ARN in json.dumps(statement["Resource"])
    ]


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}


def test_cdk_nag_guard_cfn_lint_and_parliament_accept_the_fleet_key_grants(fleet_stack):
    assert fleet_stack["errors"] == []
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(fleet_stack["path"])], capture_output=True, text=True)
    assert result.returncode & 3 == 0, result.stdout + result.stderr
    assert [f for f in _findings(fleet_stack["template"]) if _open(f)] == []


@pytest.mark.parametrize(
    ("role", "actions"),
    [
        ("CopyRole", EBS | {"kms:CreateGrant"}),
        ("DrillRole", EBS | {"kms:CreateGrant"}),
        # "Required IAM permissions for archiving Amazon EBS snapshots": CreateGrant, Decrypt, DescribeKey.
        ("PruneRole", {"kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey"}),
    ],
)
def test_roles_that_make_ebs_use_the_fleet_key_may_only_through_ec2(fleet_stack, role, actions):
    statements = _fleet_statements(fleet_stack["template"], role)
    assert _actions(statements) == actions
    for statement in statements:
        via = json.dumps(statement["Condition"]["StringEquals"]["kms:ViaService"])
        assert "ec2." in via and "AWS::Region" in via
        if "kms:CreateGrant" in _actions([statement]):
            assert statement["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    if role == "CopyRole":  # a cross-Region copy reads its source through the destination's EC2 too
        assert all("ec2.us-west-2.amazonaws.com" in json.dumps(s["Condition"]) for s in statements)


def test_discover_may_describe_the_fleet_keys_and_the_snapshot_role_needs_none(fleet_stack):
    assert _actions(_fleet_statements(fleet_stack["template"], "DiscoverRole")) == {"kms:DescribeKey"}
    assert _fleet_statements(fleet_stack["template"], "SnapshotRole") == []
    assert _fleet_statements(fleet_stack["template"], "NotifyRole") == []


def test_a_bare_key_id_is_refused_with_the_field_named():
    from smart_vault.errors import InvalidInputError
    from smart_vault.settings import Settings

    with pytest.raises(InvalidInputError) as caught:
        Settings.from_mapping({"fleet_kms_keys": ["alias/fleet", "0f1e2d3c-4b5a-6978-8a9b-acbdcedf0022"]})
    assert "fleet_kms_keys[1]" in str(caught.value)
