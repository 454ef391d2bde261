"""The operator's restore policy allows every KMS action the EBS User Guide requires for volumes
from snapshots under a customer managed key ("Requirements for Amazon EBS encryption",
Permissions for users: kms:CreateGrant, kms:Decrypt, kms:DescribeKey,
kms:GenerateDataKeyWithoutPlaintext, kms:ReEncrypt*), only through EC2, and the restore runbook
(docs/restore.md) says so.
Judged by the emulator's evaluator with the request context the SAR lists for each action."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smart_vault_sim import sar
from smart_vault_sim.iam import Decision, Policy, Request, evaluate

ROOT = Path(__file__).parents[2]
POLICY = Policy.parse("operator", json.loads((ROOT / "docs" / "restore-operator-policy.json").read_text()))
KEY = "arn:aws:kms:us-west-2:123456789012:key/0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011"
EBS_ACTIONS = (
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)


def decision(action: str, **context: tuple[str, ...]) -> Decision:
    keys = sar.request_context(action, KEY, context)
    return evaluate(Request(action, KEY, keys), [POLICY])


@pytest.mark.parametrize("action", EBS_ACTIONS)
def test_each_kms_action_ebs_requires_is_allowed_when_ec2_asks(action):
    through_ec2 = {"kms:ViaService": ("ec2.us-west-2.amazonaws.com",), "kms:GrantIsForAWSResource": ("true",)}
    assert decision(action, **through_ec2) is Decision.ALLOW


def test_the_key_is_not_usable_directly_nor_for_grants_to_anyone():
    assert decision("kms:Decrypt") is Decision.IMPLICIT_DENY
    assert decision("kms:Decrypt", **{"kms:ViaService": ("s3.us-west-2.amazonaws.com",)}) is Decision.IMPLICIT_DENY
    assert decision("kms:CreateGrant", **{"kms:ViaService": ("ec2.us-west-2.amazonaws.com",)}) is Decision.IMPLICIT_DENY


def test_the_restore_runbook_lists_every_kms_action_the_policy_needs():
    runbook = (ROOT / "docs" / "restore.md").read_text()
    restore = runbook[runbook.index("## Operator permissions\n\nThe CLI runs") :]
    end = restore.find("\n## ", 1)
    restore = restore if end < 0 else restore[:end]
    for action in ("kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext"):
        assert f"`{action}`" in restore
    assert "`kms:ReEncrypt*`" in restore
