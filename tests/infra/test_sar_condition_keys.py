"""Every condition in every policy the stack synthesizes (roles, key, bucket, topic and queue
policies) and in the operator's restore policy uses only keys the Service Authorization Reference
lists for its action: a key AWS does not put in the request context never matches, so a statement
conditioned on it denies on AWS whatever the emulator says (issue 19: CopySnapshot's source on
aws:ResourceTag). The table is infra/smart_vault_sim/sar_condition_keys.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from smart_vault_sim import sar_condition_keys as sar

from .cfn_values import policy_documents
from .conftest import ROOT
from .test_policy_lint import _acknowledgment, _findings

OPERATOR_POLICY = Path(ROOT) / "docs" / "restore-operator-policy.json"
# Every optional grant on: copies (alias and ARN keys), lock, archive tier, Recycle Bin.
FULL = {
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
    "recycle_bin_days": 7,
    "retention": {"daily": 7, "weekly": 4, "monthly": 12, "yearly": 1},
    "archive_after_days": 30,
}


@pytest.fixture(scope="module")
def full_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from app import build_app

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    del context["retention_days"]
    app = build_app(context={**context, **FULL}, outdir=str(tmp_path_factory.mktemp("cdk.out.full")))
    return dict(app.synth().get_stack_by_name("SmartVault").template)  # cdk-nag runs in synth


def _policies(template: dict[str, Any]) -> list[tuple[str, Any]]:
    found = [(f"{logical_id} ({what})", document) for logical_id, what, document in policy_documents(template)]
    return [*found, ("docs/restore-operator-policy.json", json.loads(OPERATOR_POLICY.read_text()))]


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def condition_findings(name: str, document: Any) -> list[str]:
    """One line per condition key a statement uses that the SAR does not list for its action(s)."""
    findings = []
    for index, statement in enumerate(_listed(document.get("Statement")) if isinstance(document, dict) else []):
        keys = sorted({key for block in (statement.get("Condition") or {}).values() for key in block})
        if not keys:
            continue
        where = f"{name} statement {statement.get('Sid') or index}"
        if "NotAction" in statement:
            findings.append(f"{where}: NotAction with conditions cannot be checked against the table")
            continue
        kinds = {sar.resource_type(r) for r in _listed(statement.get("Resource", "*"))}
        for pattern in _listed(statement.get("Action")):
            rows = sar.matching_actions(pattern)
            if not rows:
                findings.append(f"{where}: {pattern} has no row in {sar.TABLE.name}")
            for row in rows:
                # Resource "*" (a key policy's own key, a role's "any"): any resource type of the row.
                types = set(row.resource_types) if "" in kinds else kinds
                for key in keys:
                    if not any(sar.listed(row, kind, key) for kind in types):
                        findings.append(f"{where}: {row.action} does not list {key} ({row.sar})")
    return findings


def test_every_condition_key_is_one_the_sar_lists_for_its_action(full_template):
    findings = [f for name, document in _policies(full_template) for f in condition_findings(name, document)]
    assert findings == []


def test_every_action_granted_has_a_row_in_the_table(full_template):
    missing = sorted(
        {
            f"{name}: {pattern}"
            for name, document in _policies(full_template)
            for statement in _listed(document.get("Statement"))
            for pattern in _listed(statement.get("Action"))
            if pattern != "*" and not pattern.endswith(":*") and not sar.matching_actions(pattern)
        }
    )
    assert missing == []


def test_the_check_catches_a_tag_condition_on_a_copy_source():
    # The Copy role's source grant before issue 19: the SAR's CopySnapshot row has no aws:ResourceTag.
    before = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ec2:CopySnapshot",
                "Resource": "arn:aws:ec2:us-east-1::snapshot/*",
                "Condition": {"StringEquals": {"aws:ResourceTag/smart-vault:managed-by": "smart-vault"}},
            }
        ]
    }
    [finding] = condition_findings("CopyRole", before)
    assert "ec2:CopySnapshot does not list aws:ResourceTag/smart-vault:managed-by" in finding
    assert "list_amazonec2.html" in finding


def test_a_wildcard_action_is_checked_against_every_action_it_names():
    logs = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "kms:Describe*",
                "Resource": "*",
                "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:1:*"}},
            }
        ]
    }
    assert condition_findings("Key", logs) == [
        "Key statement 0: kms:DescribeKey does not list kms:EncryptionContext:aws:logs:arn "
        "(https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html)"
    ]


def _newer_in_the_sar(issue: str, detail: str) -> bool:
    """parliament's bundled SAR copy predates rows this table took from the current SAR (CopySnapshot's
    source keys, the KMS key resource type's kms:ResourceAliases): a key the table lists is no finding."""
    if issue != "UNKNOWN_CONDITION_FOR_ACTION":
        return False
    text = json.loads(detail)[0]  # "Unknown condition <key> for action <action>"
    key, action = text.removeprefix("Unknown condition ").split(" for action ")
    row = sar.row(action)
    return row is not None and any(sar.listed(row, kind, key) for kind in row.resource_types)


# EBS encrypts each copy with the destination key through a grant it creates on the caller's behalf
# (Amazon EBS User Guide, "Permissions to use AWS KMS keys"); kms:GrantIsForAWSResource limits it.
COPY_GRANT = ("CopyRole", "PERMISSIONS_MANAGEMENT_ACTIONS", "kms:creategrant")


def test_the_full_stack_is_parliament_clean(full_template):
    unacknowledged = [
        f
        for f in _findings(full_template)
        if _acknowledgment(f[0], f[2], f[3]) is None
        and not _newer_in_the_sar(f[2], f[3])
        and not (f[0].startswith(COPY_GRANT[0]) and f[2] == COPY_GRANT[1] and COPY_GRANT[2] in f[3])
    ]
    assert unacknowledged == []
