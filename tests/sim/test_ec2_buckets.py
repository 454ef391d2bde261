"""EC2's request buckets in the emulator: per account, per Region and per API ("Request throttling
for the Amazon EC2 API"), so an off-site copy, sent to the destination Region's endpoint, draws on
that Region's CopySnapshot bucket and never on the source Region's CreateSnapshots bucket."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from smart_vault_sim.aws_tap import ApiCall
from smart_vault_sim.ec2_buckets import MUTATING, UNCATEGORIZED, Ec2Load, bucket_limits


def load() -> Ec2Load:
    return Ec2Load(backend=lambda: None, relative_now=lambda: 0.0)


def request(operation: str, region: str) -> ApiCall:
    return ApiCall(service="ec2", operation=operation, params={}, caller="copy", region=region)


def test_copy_snapshot_is_a_mutating_action_with_its_own_bucket():
    assert bucket_limits("CopySnapshot", {}) == ("CopySnapshot", MUTATING)
    assert bucket_limits("CreateSnapshots", {}) == ("CreateSnapshots", UNCATEGORIZED["CreateSnapshots"])


def test_copies_draw_on_the_destination_regions_bucket_only():
    ec2 = load()
    capacity = int(MUTATING[0])
    for _ in range(capacity):
        ec2(request("CopySnapshot", "us-west-2"))
    with pytest.raises(ClientError) as refused:
        ec2(request("CopySnapshot", "us-west-2"))
    assert refused.value.response["Error"]["Code"] == "RequestLimitExceeded"
    # Another destination, and another action in the same Region, still have their tokens.
    ec2(request("CopySnapshot", "eu-west-1"))
    ec2(request("LockSnapshot", "us-west-2"))
