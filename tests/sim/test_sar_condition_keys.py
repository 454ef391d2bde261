"""The request context holds only the condition keys the Service Authorization Reference lists
for the action and resource (``smart_vault_sim.sar``), so a policy that conditions on a key AWS
does not evaluate for that action is denied here as it is on AWS."""

from __future__ import annotations

from typing import Any

import pytest

from smart_vault.constants import TAG_MANAGED
from smart_vault_sim import sar
from smart_vault_sim.authorization import Authorizer
from smart_vault_sim.iam import Decision, Policy
from smart_vault_sim.stack_iam import Role, StackIam

ACCOUNT = "123456789012"
SOURCE = "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0"
COPIES = "arn:aws:ec2:us-west-2::snapshot/*"
MARKER = {
    f"aws:ResourceTag/{TAG_MANAGED}": ("vault",),
    f"aws:RequestTag/{TAG_MANAGED}": ("vault",),
    "aws:TagKeys": (TAG_MANAGED,),
    "ec2:Owner": (ACCOUNT,),
}


def copier(*statements: dict[str, Any]) -> Authorizer:
    policy = Policy.parse("copy", {"Version": "2012-10-17", "Statement": list(statements)})
    role = Role("CopyRole", f"arn:aws:iam::{ACCOUNT}:role/copy", "copy", (policy,))
    return Authorizer(StackIam(roles={"copy": role}), region="us-west-2", account=ACCOUNT, sessions={})


def copy_source_decision(condition: dict[str, Any]) -> Decision:
    authorizer = copier({"Effect": "Allow", "Action": "ec2:CopySnapshot", "Resource": SOURCE, "Condition": condition})
    return authorizer.decide("copy", "ec2:CopySnapshot", SOURCE, MARKER, region="us-west-2")


def test_copysnapshot_never_sees_the_source_snapshots_resource_tags():
    # Given a source snapshot that carries the marker, a policy on aws:ResourceTag never matches:
    # the SAR lists no aws:ResourceTag for CopySnapshot.
    on_resource_tag = {"StringEquals": {f"aws:ResourceTag/{TAG_MANAGED}": "vault"}}
    assert copy_source_decision(on_resource_tag) is Decision.IMPLICIT_DENY
    # A key the SAR lists for it (ec2:Owner) and the request's tags (aws:RequestTag) are seen.
    assert copy_source_decision({"StringEquals": {"ec2:Owner": ACCOUNT}}) is Decision.ALLOW
    on_request_tag = {"StringEquals": {f"aws:RequestTag/{TAG_MANAGED}": "vault"}}
    assert copy_source_decision(on_request_tag) is Decision.ALLOW


def test_deletesnapshot_sees_resource_tags_and_global_keys_always_reach_iam():
    context = sar.request_context(
        "ec2:DeleteSnapshot", SOURCE, {**MARKER, "aws:SecureTransport": ("true",), "ec2:CreateAction": ("x",)}
    )
    assert f"aws:ResourceTag/{TAG_MANAGED}" in context and "ec2:Owner" in context
    assert "aws:SecureTransport" in context
    # Request tags and ec2:CreateAction belong to creating actions, not to DeleteSnapshot.
    assert f"aws:RequestTag/{TAG_MANAGED}" not in context and "ec2:CreateAction" not in context


def test_kms_keys_follow_their_resource_type_and_action_rows():
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    grant = {"kms:GrantIsForAWSResource": ("true",), "kms:ResourceAliases": ("alias/dr",)}
    assert sar.request_context("kms:CreateGrant", key, grant) == grant
    # kms:GrantIsForAWSResource is CreateGrant's (and the other grant operations'), not Decrypt's.
    assert sar.request_context("kms:Decrypt", key, grant) == {"kms:ResourceAliases": ("alias/dr",)}


def test_an_action_without_a_row_is_refused_rather_than_guessed():
    with pytest.raises(sar.UnlistedAction, match="ec2:ModifyVolume"):
        sar.request_context("ec2:ModifyVolume", "arn:aws:ec2:us-east-1:1:volume/vol-1", {"aws:ResourceTag/a": ("b",)})
    # Global keys alone need no row.
    assert sar.request_context("ec2:ModifyVolume", "*", {"aws:SecureTransport": ("true",)})


DOCUMENT = f"arn:aws:ssm:us-east-1:{ACCOUNT}:document/SmartVault-FsFreeze"
INSTANCE = f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0123456789abcdef0"
TAGGED = {"ssm:resourceTag/backup": ("True",), "aws:ResourceTag/backup": ("True",)}
ON_BACKUP_TAG = {"StringEquals": {"ssm:resourceTag/backup": "True"}}


def sender(*statements: dict[str, Any]) -> Authorizer:
    policy = Policy.parse("consistency", {"Version": "2012-10-17", "Statement": list(statements)})
    role = Role("ConsistencyRole", f"arn:aws:iam::{ACCOUNT}:role/c", "consistency", (policy,))
    return Authorizer(StackIam(roles={"consistency": role}), region="us-east-1", account=ACCOUNT, sessions={})


def send_command(authorizer: Authorizer, instance_tags: dict[str, tuple[str, ...]]) -> list[Decision]:
    """SendCommand authorizes the document (its own tags: none) and the instance (its tags)."""
    return [
        authorizer.decide("consistency", "ssm:SendCommand", DOCUMENT, {}),
        authorizer.decide("consistency", "ssm:SendCommand", INSTANCE, instance_tags),
    ]


def test_sendcommand_needs_the_tag_condition_on_the_instance_statement_only():
    # One statement for both resources: the document has no backup tag, so nothing is allowed.
    one = sender(
        {"Effect": "Allow", "Action": "ssm:SendCommand", "Resource": [DOCUMENT, INSTANCE], "Condition": ON_BACKUP_TAG}
    )
    assert send_command(one, TAGGED)[0] is Decision.IMPLICIT_DENY
    # Split as the stack writes it: the document by name, instances by their backup tag.
    split = sender(
        {"Effect": "Allow", "Action": "ssm:SendCommand", "Resource": DOCUMENT},
        {"Effect": "Allow", "Action": "ssm:SendCommand", "Resource": INSTANCE, "Condition": ON_BACKUP_TAG},
    )
    assert send_command(split, TAGGED) == [Decision.ALLOW, Decision.ALLOW]
    assert send_command(split, {})[1] is Decision.IMPLICIT_DENY  # an instance without the backup tag
