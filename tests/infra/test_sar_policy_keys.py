"""Every condition key of every policy the stack synthesizes is one AWS evaluates for the action
it guards: listed for that action by the Service Authorization Reference (``smart_vault_sim.sar``)
or global. A key AWS does not put in the request context never matches, so an Allow on it grants
nothing on AWS (and passed here only because the emulator agreed with us)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from smart_vault_sim import sar
from smart_vault_sim.stack_iam import synthesized_template
from tests.infra.cfn_values import policy_documents
from tests.infra.conftest import ROOT

# Every optional feature on, so that every statement the stack can grant is synthesized.
FULL = {
    "deployment_id": "smart-vault",
    "copy_regions": [
        {"region": "us-west-2", "kms_key": "alias/smart-vault-dr", "retention_days": 30, "keep_min": 2},
        {
            "region": "eu-west-1",
            "kms_key": "arn:aws:kms:eu-west-1:123456789012:key/0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011",
            "retention_days": 14,
            "keep_min": 1,
        },
    ],
    "lock": {"mode": "governance", "days": 10},
    "retention": {"daily": 7, "weekly": 4, "monthly": 12, "yearly": 1},
    "archive_after_days": 90,
    "recycle_bin_days": 7,
    "alarm_email": "ops@example.com",
}

# (policy logical-id prefix, action pattern, key): conditions kept on purpose, with the reason.
ACKNOWLEDGED: dict[tuple[str, str, str], str] = {}


def _statements(document: Any) -> Iterator[dict[str, Any]]:
    statements = document.get("Statement", [])
    yield from [statements] if isinstance(statements, dict) else statements


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def unlisted_keys(where: str, document: Any) -> list[str]:
    found = []
    for statement in _statements(document):
        for operator, keys in (statement.get("Condition") or {}).items():
            for key in keys:
                for pattern in _as_list(statement.get("Action")):
                    actions = sar.actions_matching(pattern)
                    if not actions:
                        if not sar.is_global(key):
                            found.append(f"{where}: {pattern} has no row in smart_vault_sim.sar ({operator} {key})")
                        continue
                    if any(sar.is_listed(action, key) for action in actions):
                        continue
                    if any(where.startswith(p) and (a, k) == (pattern, key) for p, a, k in ACKNOWLEDGED):
                        continue
                    found.append(f"{where}: {operator} {key} is not evaluated for {pattern} ({', '.join(actions)})")
    return found


@pytest.fixture(scope="module")
def full_template() -> dict[str, Any]:
    return synthesized_template(FULL)


def test_the_full_stack_conditions_only_on_keys_aws_evaluates(full_template: dict[str, Any]):
    problems = [p for logical, what, doc in policy_documents(full_template) for p in unlisted_keys(logical, doc)]
    assert problems == []


def test_the_restore_operator_policy_conditions_only_on_keys_aws_evaluates():
    document = json.loads((ROOT / "docs" / "restore-operator-policy.json").read_text())
    assert unlisted_keys("restore-operator-policy", document) == []


def test_the_check_catches_a_condition_aws_ignores():
    copy_on_resource_tag = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ec2:CopySnapshot",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/smart-vault:managed-by": "smart-vault"}},
            }
        ]
    }
    assert unlisted_keys("CopyRole", copy_on_resource_tag) == [
        "CopyRole: StringEquals aws:ResourceTag/smart-vault:managed-by is not evaluated for ec2:CopySnapshot "
        "(ec2:CopySnapshot)"
    ]
