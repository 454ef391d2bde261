"""The least-privilege policy docs/operations.md gives the operator of `status`, `approve`
(`--list`, `--dry-run`), `drill` and `settings` (docs/attention-operator-policy.json) allows every
call those verbs make and nothing beside: the drill is the only state machine it may start, and
approvals the only objects it may write. Judged by the emulator's evaluator with the request
context the SAR lists for each action (smart_vault_sim.sar)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smart_vault_sim import sar
from smart_vault_sim.iam import Decision, Policy, Request, evaluate

ROOT = Path(__file__).parents[2]
POLICY = Policy.parse("operator", json.loads((ROOT / "docs" / "attention-operator-policy.json").read_text()))
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:smart-vault-"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:smart-vault-"
BUCKET = "arn:aws:s3:::smart-vault-inventory-123456789012"

# What the verbs call (operations.status_rows, drill_rows, open_breakers, start_drill,
# settings_in_force, approve): each action on its resource.
CALLS = [
    ("cloudformation:DescribeStacks", "arn:aws:cloudformation:us-east-1:123456789012:stack/SmartVault/abc"),
    ("states:ListExecutions", MACHINE + "backup"),
    ("states:ListExecutions", MACHINE + "drill"),
    ("states:DescribeExecution", EXECUTION + "backup:manual-20261126T030000-abcd1234"),
    ("states:DescribeExecution", EXECUTION + "drill:drill-20261126T030000-abcd1234"),
    ("states:StartExecution", MACHINE + "drill"),
    ("states:DescribeStateMachine", MACHINE + "backup"),
    (
        "lambda:GetFunctionConfiguration",
        "arn:aws:lambda:us-east-1:123456789012:function:SmartVault-DiscoverFunctionAB12",
    ),
    ("s3:ListBucket", BUCKET),
    ("s3:GetObject", BUCKET + "/runs/20261126T030000Z/manual/audit.json"),
    ("s3:GetObject", BUCKET + "/drills/20261126T030000Z/drill.json"),
    ("s3:PutObject", BUCKET + "/approvals/us-east-1/vol-0123.json"),
]


def decision(action: str, resource: str) -> Decision:
    return evaluate(Request(action, resource, sar.request_context(action, resource, {})), [POLICY])


@pytest.mark.parametrize(("action", "resource"), CALLS, ids=lambda v: v.rsplit(":", 1)[-1][:40])
def test_every_call_of_the_verbs_is_allowed(action: str, resource: str):
    assert decision(action, resource) is Decision.ALLOW


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("states:StartExecution", MACHINE + "backup"),  # `run` is not this policy's
        ("s3:PutObject", BUCKET + "/runs/20261126T030000Z/manual/audit.json"),  # records are the functions'
        ("lambda:UpdateFunctionConfiguration", "arn:aws:lambda:us-east-1:123456789012:function:SmartVault-Discover"),
        ("states:StopExecution", EXECUTION + "drill:drill-20261126T030000-abcd1234"),
    ],
)
def test_nothing_beside_is(action: str, resource: str):
    assert decision(action, resource) is not Decision.ALLOW


def test_the_sar_table_knows_every_new_action():
    for action in ("states:ListExecutions", "states:DescribeStateMachine", "lambda:GetFunctionConfiguration"):
        assert action in sar.SAR_CONDITION_KEYS
