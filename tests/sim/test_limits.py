"""Request limits moto does not check, enforced on every call through the AWS-call tap and
refused with the service's own error (each rule's AWS reference is in smart_vault_sim.limits)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from smart_vault_sim.limits import RequestLimits
from tests.conftest import Account


@pytest.fixture
def limited(account: Account) -> Iterator[Account]:
    account.tap.checks.append(RequestLimits())
    account.tap.activate(True)  # the calls below are made as a handler makes them
    try:
        yield account
    finally:
        account.tap.activate(False)


def code_of(call: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return str(raised.value.response["Error"]["Code"])


def test_more_than_200_values_in_one_ec2_filter_is_refused(limited: Account):
    ids = [f"vol-{i:017x}" for i in range(201)]
    assert code_of(lambda: limited.ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": ids}])) == (
        "FilterLimitExceeded"
    )
    limited.ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": ids[:200]}])  # 200 is fine
    assert limited.tap.calls["ec2:DescribeVolumes"] == 2


def test_the_root_volume_cannot_be_excluded_as_a_data_volume(limited: Account):
    # Enforced inside moto's CreateSnapshots (smart_vault_sim.moto_fixes), so plain moto tests see it too.
    built = limited.add_instance("web-1", volumes=(("/dev/xvda", 8), ("/dev/sdf", 20)))
    root, data = built.volume_ids["/dev/xvda"], built.volume_ids["/dev/sdf"]
    spec = {"InstanceId": built.instance_id, "ExcludeDataVolumeIds": [root]}
    assert code_of(lambda: limited.ec2.create_snapshots(InstanceSpecification=spec)) == "InvalidParameterValue"
    # Excluding a data volume, or the root through ExcludeBootVolume, is what EC2 accepts.
    ok = limited.ec2.create_snapshots(
        InstanceSpecification={"InstanceId": built.instance_id, "ExcludeDataVolumeIds": [data]}
    )
    assert len(ok["Snapshots"]) == 1


@pytest.mark.parametrize(
    ("tags", "code"),
    [
        ([{"Key": f"k{i}", "Value": "v"} for i in range(51)], "TagLimitExceeded"),
        ([{"Key": "k" * 129, "Value": "v"}], "InvalidParameterValue"),
        ([{"Key": "k", "Value": "v" * 257}], "InvalidParameterValue"),
        ([{"Key": "aws:backup", "Value": "v"}], "InvalidParameterValue"),
    ],
)
def test_tags_on_create_obey_ec2s_tag_restrictions(limited: Account, tags: list[dict[str, str]], code: str):
    built = limited.add_instance("web-1")
    specs = [{"ResourceType": "snapshot", "Tags": tags}]
    create = lambda: limited.ec2.create_snapshots(  # noqa: E731
        InstanceSpecification={"InstanceId": built.instance_id}, TagSpecifications=specs
    )
    assert code_of(create) == code
    assert limited.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []  # nothing was created


def test_tags_at_the_limits_are_accepted(limited: Account):
    built = limited.add_instance("web-1")
    tags = [{"Key": f"{i:02d}" + "k" * 126, "Value": "v" * 256} for i in range(50)]
    limited.ec2.create_snapshots(
        InstanceSpecification={"InstanceId": built.instance_id},
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}],
    )


def publish(account: Account, **params: Any) -> Any:
    return lambda: account.sns.publish(TopicArn=account.topic_arn, **{"Message": "m", **params})


@pytest.mark.parametrize(
    "subject",
    ["s" * 100, "line\nbreak", "tab\tinside", "caf\u00e9", ""],
    ids=["100", "newline", "tab", "non-ascii", "empty"],
)
def test_an_sns_subject_must_be_short_printable_ascii(limited: Account, subject: str):
    assert code_of(publish(limited, Subject=subject)) == "InvalidParameter"


def test_an_sns_subject_of_99_printable_characters_is_accepted(limited: Account):
    # "must be less than 100 characters long" (SNS API Reference, Publish).
    publish(limited, Subject="S" * 99)()


def test_an_sns_message_with_its_attributes_is_at_most_256_kib(limited: Account):
    attributes = {"run": {"DataType": "String", "StringValue": "x" * 100}}
    overhead = len("run") + len("String") + 100
    publish(limited, Message="m" * (262_144 - overhead), MessageAttributes=attributes)()
    assert code_of(publish(limited, Message="m" * (262_144 - overhead + 1), MessageAttributes=attributes)) == (
        "InvalidParameter"
    )


def test_an_sns_message_has_at_most_10_attributes(limited: Account):
    attributes = {f"a{i}": {"DataType": "String", "StringValue": "v"} for i in range(11)}
    assert code_of(publish(limited, MessageAttributes=attributes)) == "InvalidParameterValue"
    publish(limited, MessageAttributes=dict(list(attributes.items())[:10]))()


def test_calls_outside_a_handler_are_not_judged(account: Account):
    account.tap.checks.append(RequestLimits())
    account.sns.publish(TopicArn=account.topic_arn, Message="m", Subject="caf\u00e9")  # the test's own client
    assert json.dumps(account.tap.calls) == "{}"
