"""parliament (duo-labs' IAM linter) over every policy the stack synthesizes: role policies, trust
policies, the key policy and the topic, bucket and queue policies. A finding either gets fixed or
is acknowledged below with its reason, like the cdk-nag acknowledgments in the stack."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from parliament import analyze_policy_string

from .cfn_values import policy_documents


@dataclass(frozen=True)
class Acknowledged:
    where: str  # logical-id prefix of the policy's resource
    issue: str
    detail: str  # a substring of the finding's detail or location
    reason: str


ACKNOWLEDGED = (
    Acknowledged(
        "",
        "MALFORMED",
        "neither Resource nor NotResource",
        "Role trust policies have no Resource element (IAM JSON reference, 'Resource'): the role is it.",
    ),
    Acknowledged(
        "Key",
        "RESOURCE_STAR",
        "kms:",
        'In a key policy "Resource": "*" means this key (AWS KMS, "Key policies"); parliament reads it '
        "as an identity policy.",
    ),
    Acknowledged(
        "Key",
        "PERMISSIONS_MANAGEMENT_ACTIONS",
        "kms:putkeypolicy",
        "The default key policy's account statement (AWS KMS, 'Default key policy'): it lets IAM "
        "policies manage the key, so the key is never unmanageable. Grants are limited to AWS "
        "resources by the Deny statement (Control Tower CT.KMS.PR.3).",
    ),
    Acknowledged(
        "Key",
        "MISMATCHED_TYPE",
        "ArnLike requires a value of type Arn",
        "arn:<partition>:logs:<region>:<account>:* is the documented pattern for every log group of the "
        "account in kms:EncryptionContext:aws:logs:arn; parliament does not take it for an ARN.",
    ),
    Acknowledged(
        "SnapshotRole",
        "RESOURCE_MISMATCH",
        "ec2:CreateSnapshots",
        "CreateSnapshots is split over two statements on purpose: the snapshot ARN requires the managed "
        "tag (aws:RequestTag), the source instance and volumes cannot carry it. Together they name every "
        "resource type the action authorizes (Service Authorization Reference, Amazon EC2).",
    ),
    Acknowledged(
        "ConsistencyRole",
        "RESOURCE_MISMATCH",
        "ssm:SendCommand",
        "SendCommand is split over two statements on purpose: the instance ARN requires the backup tag "
        "(ssm:resourceTag), the document cannot carry it (IAM evaluates a statement's condition against "
        "each resource). Together they name the document and instance types the action authorizes "
        "(Service Authorization Reference, AWS Systems Manager).",
    ),
    Acknowledged(
        "DrillRole",
        "RESOURCE_MISMATCH",
        "ec2:CreateVolume",
        "CreateVolume is split over two statements on purpose: the volume ARN requires the drill marker "
        "(aws:RequestTag), the source snapshot this deployment's marker (aws:ResourceTag). Together they "
        "name every resource type the action authorizes (Service Authorization Reference, Amazon EC2).",
    ),
    Acknowledged(
        "StateMachineRole",
        "PERMISSIONS_MANAGEMENT_ACTIONS",
        "logs:putresourcepolicy",
        "Step Functions needs the log-delivery actions on '*' to send execution logs to CloudWatch Logs "
        "(Step Functions, 'IAM policies for CloudWatch Logs'); CDK adds them with the logging option.",
    ),
    Acknowledged(
        "DrillStateMachineRole",
        "PERMISSIONS_MANAGEMENT_ACTIONS",
        "logs:putresourcepolicy",
        "As for the backup's state machine: Step Functions log delivery needs these actions on '*'.",
    ),
    Acknowledged(
        "StateMachineRole",
        "RESOURCE_MISMATCH",
        "states:DescribeExecution",
        "execution:<name>/* is the ARN AWS documents for Distributed Map child executions ('IAM "
        "policies for using Distributed Map states'); parliament expects execution:<name>:<id>.",
    ),
    Acknowledged(
        "NotifyRole",
        "RESOURCE_MISMATCH",
        "states:DescribeExecution",
        "The redrive gate reads only this deployment's Standard executions (resource type execution, "
        "Service Authorization Reference, AWS Step Functions); the express type it also lists is for "
        "Express workflows, of which the stack has none.",
    ),
)


def _findings(template):
    for logical_id, what, document in policy_documents(template):
        policy = analyze_policy_string(json.dumps(document), include_community_auditors=True)
        for finding in policy.findings:
            # PERMISSIONS_MANAGEMENT_ACTIONS names its actions in the location, not the detail.
            yield logical_id, what, finding.issue, json.dumps([finding.detail, finding.location])


def _acknowledgment(logical_id, issue, detail):
    for ack in ACKNOWLEDGED:
        if logical_id.startswith(ack.where) and issue == ack.issue and ack.detail.lower() in detail.lower():
            return ack
    return None


@pytest.fixture(scope="module")
def findings(synthesized):
    return list(_findings(synthesized["template"]))


def test_every_policy_is_linted(synthesized):
    kinds = {what for _, what, _ in policy_documents(synthesized["template"])}
    assert kinds == {"identity policy", "trust policy", "key policy", "topic policy", "bucket policy", "queue policy"}


def test_parliament_finds_nothing_unacknowledged(findings):
    unacknowledged = [f for f in findings if _acknowledgment(f[0], f[2], f[3]) is None]
    assert unacknowledged == []


def test_every_acknowledgment_is_still_needed(findings):
    used = {_acknowledgment(f[0], f[2], f[3]) for f in findings}
    assert [a for a in ACKNOWLEDGED if a not in used] == []


def test_parliament_does_flag_a_bad_policy():
    # The gate is live: a wildcard action on every resource is a finding.
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    issues = {f.issue for f in analyze_policy_string(json.dumps(document)).findings}
    assert "RESOURCE_STAR" in issues
