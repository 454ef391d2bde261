"""The emulator's request context holds only the condition keys the Service Authorization Reference
lists for the action and resource type (sar_condition_keys.json), as on AWS: a policy on a key the
SAR does not list for an action never matches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from smart_vault_sim import sar_condition_keys
from smart_vault_sim.authorization import Authorizer
from smart_vault_sim.aws_tap import ApiCall
from smart_vault_sim.fleet import ACCOUNT_ID
from smart_vault_sim.iam import Decision, Policy
from smart_vault_sim.stack_iam import Role, StackIam

HOME, DR = "us-east-1", "us-west-2"
MARKER = "smart-vault:managed-by"


def _authorizer(*statements: dict[str, Any]) -> Authorizer:
    policy = Policy.parse("hand-made", {"Version": "2012-10-17", "Statement": list(statements)})
    role = Role(logical_id="CopyRole", arn=f"arn:aws:iam::{ACCOUNT_ID}:role/copy", name="copy", policies=(policy,))
    return Authorizer(StackIam(roles={"copy": role}), region=HOME, account=ACCOUNT_ID, sessions={})


# Every copy carries the marker from creation, in the destination Region (aws:RequestTag is listed).
COPIES = {
    "Effect": "Allow",
    "Action": "ec2:CopySnapshot",
    "Resource": f"arn:aws:ec2:{DR}::snapshot/*",
    "Condition": {"StringEquals": {f"aws:RequestTag/{MARKER}": "sv"}},
}
TAG_ON_CREATE = {
    "Effect": "Allow",
    "Action": "ec2:CreateTags",
    "Resource": f"arn:aws:ec2:{DR}::snapshot/*",
    "Condition": {"StringEquals": {"ec2:CreateAction": "CopySnapshot"}},
}


def _source(condition: dict[str, Any]) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Action": "ec2:CopySnapshot",
        "Resource": f"arn:aws:ec2:{HOME}::snapshot/*",
        "Condition": condition,
    }


@pytest.fixture
def tagged_snapshot() -> Iterator[str]:
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=HOME)
        volume = ec2.create_volume(AvailabilityZone=f"{HOME}a", Size=8)["VolumeId"]
        tags = [{"ResourceType": "snapshot", "Tags": [{"Key": MARKER, "Value": "sv"}]}]
        yield ec2.create_snapshot(VolumeId=volume, TagSpecifications=tags)["SnapshotId"]


def _copy(snapshot_id: str) -> ApiCall:
    params = {
        "SourceRegion": HOME,
        "SourceSnapshotId": snapshot_id,
        "TagSpecifications": [{"ResourceType": "snapshot", "Tags": [{"Key": MARKER, "Value": "sv"}]}],
    }
    return ApiCall(service="ec2", operation="CopySnapshot", params=params, caller="copy", region=DR)


def test_a_source_conditioned_on_its_resource_tag_is_denied_as_on_aws(tagged_snapshot):
    # The source carries the marker, but the SAR's CopySnapshot row lists no aws:ResourceTag.
    authorizer = _authorizer(_source({"StringEquals": {f"aws:ResourceTag/{MARKER}": "sv"}}), COPIES, TAG_ON_CREATE)

    with pytest.raises(Exception, match="UnauthorizedOperation") as denied:
        authorizer(_copy(tagged_snapshot))

    assert f"ec2:CopySnapshot on resource: arn:aws:ec2:{HOME}::snapshot/{tagged_snapshot}" in str(denied.value)


def test_a_source_conditioned_on_its_owner_is_allowed(tagged_snapshot):
    # ec2:Owner is in the SAR's CopySnapshot row: the account's own snapshots may be copied.
    authorizer = _authorizer(_source({"StringEquals": {"ec2:Owner": ACCOUNT_ID}}), COPIES, TAG_ON_CREATE)

    authorizer(_copy(tagged_snapshot))  # no denial

    assert authorizer.denied == []
    other = _authorizer(_source({"StringEquals": {"ec2:Owner": "111122223333"}}), COPIES, TAG_ON_CREATE)
    with pytest.raises(Exception, match="UnauthorizedOperation"):
        other(_copy(tagged_snapshot))


def test_the_same_tag_condition_matches_where_the_sar_lists_it(tagged_snapshot):
    # DeleteSnapshot's snapshot* row lists aws:ResourceTag: the tag is in that context.
    marker = {f"aws:ResourceTag/{MARKER}": ("sv",)}
    authorizer = _authorizer(
        {
            "Effect": "Allow",
            "Action": ["ec2:DeleteSnapshot", "ec2:CopySnapshot"],
            "Resource": f"arn:aws:ec2:{HOME}::snapshot/*",
            "Condition": {"StringEquals": {f"aws:ResourceTag/{MARKER}": "sv"}},
        }
    )
    snapshot = f"arn:aws:ec2:{HOME}::snapshot/{tagged_snapshot}"
    assert authorizer.decide("copy", "ec2:DeleteSnapshot", snapshot, marker) is Decision.ALLOW
    assert authorizer.decide("copy", "ec2:CopySnapshot", snapshot, marker) is Decision.IMPLICIT_DENY


def test_global_keys_are_always_in_the_context():
    context = {"aws:SourceArn": ("arn:aws:cloudwatch:us-east-1:1:alarm:a",), "aws:PrincipalTag/team": ("ops",)}
    assert sar_condition_keys.request_context("sns:Publish", "arn:aws:sns:us-east-1:1:t", context) == context
    kept = sar_condition_keys.request_context(
        "kms:Decrypt",
        "arn:aws:kms:us-east-1:1:key/k",
        {
            "kms:GrantIsForAWSResource": ("true",),
            "kms:EncryptionContext:aws:logs:arn": ("arn:aws:logs:us-east-1:1:log-group:g",),
            "kms:ViaService": ("ec2.us-east-1.amazonaws.com",),
        },
    )
    # GrantIsForAWSResource belongs to the grant operations (CreateGrant), not to Decrypt.
    assert set(kept) == {"kms:EncryptionContext:aws:logs:arn", "kms:ViaService"}


def test_keys_for_an_action_missing_from_the_table_are_refused_not_guessed():
    with pytest.raises(sar_condition_keys.UnlistedAction, match=r"ec2:MadeUpAction is not in sar_condition_keys\.json"):
        sar_condition_keys.request_context("ec2:MadeUpAction", "*", {"aws:ResourceTag/a": ("b",)})
    assert sar_condition_keys.request_context("ec2:MadeUpAction", "*", {}) == {}


def test_every_row_cites_its_sar_page():
    for row in sar_condition_keys.rows().values():
        assert row.sar.startswith("https://docs.aws.amazon.com/service-authorization/latest/reference/list_"), row
