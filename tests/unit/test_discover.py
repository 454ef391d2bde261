import json
from contextlib import contextmanager
from unittest import mock

import pytest
from botocore.client import BaseClient

from smart_vault import aws
from smart_vault.errors import InvalidInputError, PermissionDeniedError, ThrottledError
from smart_vault.handlers import discover
from smart_vault_sim.aws_tap import aws_error
from tests.conftest import BUCKET


def event(time="2026-11-26T03:00:00Z", **extra):
    return {
        "event": {"detail-type": "Scheduled Event", "source": "aws.events", "time": time, **extra},
        "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:sv:exec-1",
        "execution_name": "exec-1",
    }


def inventory(account, result):
    body = account.s3.get_object(Bucket=BUCKET, Key=result["inventory"]["key"])["Body"].read()
    return {i["name"]: i for i in json.loads(body)}


def test_selects_tagged_running_and_stopped_instances_only(account):
    web = account.add_instance("web-1", volumes=[("/dev/xvda", 8), ("/dev/sdf", 100)])
    account.add_instance("db-stopped", state="stopped")
    account.add_instance("untagged", tags={})
    account.add_instance("wrong-value", tags={"backup": "False"})
    account.add_instance("gone", state="terminated")

    result = account.invoke(discover.handler, event())

    items = inventory(account, result)
    assert set(items) == {"web-1", "db-stopped"}
    assert result["instance_count"] == 2
    assert result["run"]["run_id"] == "20261126T030000Z"
    assert result["run"]["run_time"] == "2026-11-26T03:00:00Z"
    vols = items["web-1"]["volumes"]
    assert [(v["device"], v["root"], v["size_gib"]) for v in vols] == [
        ("/dev/xvda", True, 8),
        ("/dev/sdf", False, 100),
    ]
    assert {v["volume_id"] for v in vols} == set(web.volume_ids.values())


def test_volume_tagged_false_is_excluded_and_tags_are_copied(account):
    account.configure(copy_tags=["Name", "team"])
    built = account.add_instance(
        "web-1",
        tags={"backup": "True", "team": "web", "secret": "x"},
        volumes=[("/dev/xvda", 8), ("/dev/sdf", 100, {"backup": "False"})],
    )
    items = inventory(account, account.invoke(discover.handler, event()))
    item = items["web-1"]
    assert [v["device"] for v in item["volumes"]] == ["/dev/xvda"]
    assert item["excluded_volume_ids"] == [built.volume_ids["/dev/sdf"]]
    assert item["copied_tags"] == {"Name": "web-1", "team": "web"}


def test_custom_tag_key_and_value(account):
    account.configure(backup_tag_key="snapshot-policy", backup_tag_value="daily")
    account.add_instance("a", tags={"snapshot-policy": "daily"})
    account.add_instance("b", tags={"backup": "True"})
    assert set(inventory(account, account.invoke(discover.handler, event()))) == {"a"}


def test_paginates_across_pages(account, monkeypatch):
    for n in range(7):
        account.add_instance(f"web-{n}")
    pages = []
    original = aws._paginate

    def small_pages(service, method, key, **kwargs):
        if method == "describe_instances":
            kwargs["PaginationConfig"] = {"PageSize": 5}
            pages.append(method)
        return original(service, method, key, **kwargs)

    monkeypatch.setattr(aws, "_paginate", small_pages)
    result = account.invoke(discover.handler, event())
    assert result["instance_count"] == 7
    assert account.tap.calls["ec2:DescribeInstances"] == 2  # 5 + 2


def test_output_stays_small_for_a_large_fleet(account):
    for n in range(60):
        account.add_instance(f"node-{n:02d}", volumes=[("/dev/xvda", 8), ("/dev/sdf", 20)])
    result = account.invoke(discover.handler, event())
    assert result["instance_count"] == 60
    assert len(json.dumps(result)) < 1024  # the list itself lives in S3
    # One DescribeInstances page and one DescribeVolumes batch for the whole fleet.
    assert account.tap.calls["ec2:DescribeInstances"] == 1
    assert account.tap.calls["ec2:DescribeVolumes"] == 1


def test_manual_run_can_restrict_to_instances_and_force_dry_run(account):
    a = account.add_instance("a")
    account.add_instance("b")
    result = account.invoke(discover.handler, event(instance_ids=[a.instance_id], dry_run=True))
    assert set(inventory(account, result)) == {"a"}
    assert result["run"]["dry_run"] is True


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"time": "yesterday"}, "event.time"),
        ({"time": None}, "event.time"),
        ({"time": "2026-11-26T03:00:00"}, "event.time"),
        ({"time": "2026-11-26T03:00:00Z", "instance_ids": ["web-1"]}, "event.instance_ids"),
        ({"time": "2026-11-26T03:00:00Z", "dry_run": "yes"}, "event.dry_run"),
    ],
)
def test_invalid_input_names_the_field_before_any_aws_call(account, bad, field):
    with pytest.raises(InvalidInputError, match=field):
        account.invoke(discover.handler, {**event(), "event": bad})
    assert sum(account.tap.calls.values()) == 0


def test_invalid_setting_fails_loudly(account):
    account.monkeypatch.setenv("RETENTION_DAYS", "-1")
    from smart_vault.settings import get_settings

    get_settings.cache_clear()
    with pytest.raises(InvalidInputError, match="retention_days"):
        account.invoke(discover.handler, event())
    assert sum(account.tap.calls.values()) == 0


@pytest.mark.parametrize(
    ("code", "kind"),
    [("RequestLimitExceeded", ThrottledError), ("UnauthorizedOperation", PermissionDeniedError)],
)
def test_aws_errors_are_classified(account, code, kind):
    account.add_instance("a")
    account.tap.fail("DescribeInstances", code)
    with pytest.raises(kind):
        account.invoke(discover.handler, event())


@contextmanager
def ec2_filter_value_limit():
    """EC2 rejects a Describe call whose filter has more than 200 values (moto does not): the
    exact error AWS returns, raised before the request is sent, for clients of any session."""
    seen: list[int] = []
    send = BaseClient._make_api_call
    aws_limit = 200  # AWS's number, not the code's constant: the check must not follow the code

    def checked(client, operation, params):
        if client.meta.service_model.service_name == "ec2":
            for flt in params.get("Filters") or ():
                seen.append(len(flt.get("Values") or ()))
                if len(flt.get("Values") or ()) > aws_limit:
                    raise aws_error(
                        "FilterLimitExceeded",
                        operation,
                        "The maximum number of filter values specified on a single call is 200",
                    )
        return send(client, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", checked):
        yield seen


def test_more_than_200_volumes_are_described_200_filter_values_at_a_time(account):
    # Given 110 instances with 2 volumes each: 220 volume ids
    for n in range(110):
        account.add_instance(f"node-{n:03d}", volumes=[("/dev/xvda", 8), ("/dev/sdf", 20)])

    with ec2_filter_value_limit() as values_per_filter:
        result = account.invoke(discover.handler, event())

    assert result["instance_count"] == 110 and result["volume_count"] == 220
    assert max(values_per_filter) == 200
    assert account.tap.calls["ec2:DescribeVolumes"] == 2  # 200 + 20


def test_rerun_of_more_than_200_instances_names_them_200_at_a_time(account):
    built = [account.add_instance(f"node-{n:03d}") for n in range(205)]
    ids = [b.instance_id for b in built]

    with ec2_filter_value_limit() as values_per_filter:
        result = account.invoke(discover.handler, event(instance_ids=ids))

    assert result["instance_count"] == 205
    assert max(values_per_filter) == 200


def test_rerun_skips_instances_that_are_gone_terminated_or_untagged_with_a_reason(account):
    # Given a re-run that names a live instance, one terminated, one that no longer exists
    # (EC2 answers InvalidInstanceID.NotFound for it in InstanceIds) and one without the tag
    live = account.add_instance("web-1")
    old = account.add_instance("old-1")
    account.ec2.terminate_instances(InstanceIds=[old.instance_id])
    untagged = account.add_instance("scratch-1", tags={"team": "x"})
    gone = "i-0123456789abcdef0"

    result = account.invoke(
        discover.handler, event(instance_ids=[live.instance_id, old.instance_id, gone, untagged.instance_id])
    )

    items = inventory(account, result)
    by_id = {i["instance_id"]: i for i in items.values()}
    assert by_id[live.instance_id]["skip_reason"] is None
    assert by_id[live.instance_id]["volumes"]
    assert by_id[old.instance_id]["skip_reason"] == "instance is terminated (named in instance_ids)"
    assert by_id[gone]["skip_reason"] == "instance does not exist (named in instance_ids)"
    assert by_id[untagged.instance_id]["skip_reason"] == "instance is not tagged backup=True (named in instance_ids)"
    assert all(not by_id[i]["volumes"] for i in (old.instance_id, gone, untagged.instance_id))


@pytest.mark.parametrize(
    ("value", "expected", "is_near_miss"),
    [
        ("true", "True", True),
        ("TRUE", "True", True),
        ("True ", "True", True),
        ("\ttrue\n", "True", True),
        ("True", "True", False),  # exact: selected, not a near miss
        ("False", "True", False),
        ("yes", "True", False),
        (None, "True", False),
        ("Nightly", " nightly", True),
    ],
)
def test_near_miss_is_case_or_surrounding_whitespace_only(value, expected, is_near_miss):
    from smart_vault.backup.inventory import near_miss

    assert near_miss(value, expected) is is_near_miss


def test_near_misses_are_written_for_notify_and_not_backed_up(account):
    account.add_instance("web-1")
    typo = account.add_instance("typo-1", tags={"backup": "true"})
    account.add_instance("off-1", tags={"backup": "False"})

    result = account.invoke(discover.handler, event())

    assert set(inventory(account, result)) == {"web-1"}
    key = result["inventory"]["skipped_key"]
    skipped = json.loads(account.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert [(s["instance_id"], s["status"], s["step"]) for s in skipped] == [(typo.instance_id, "skipped", "Discover")]
    assert "backup='true' is not exactly 'True'" in skipped[0]["reason"]


def test_no_near_miss_writes_nothing_extra(account):
    account.add_instance("web-1")
    result = account.invoke(discover.handler, event())
    assert "skipped_key" not in result["inventory"]


def test_describe_instances_asks_for_full_pages(account):
    # DescribeInstances: MaxResults 5-1000, and it cannot be combined with InstanceIds (moto
    # enforces InvalidParameterCombination as AWS does). Without it moto pages by 100.
    import boto3

    sent = []

    def record(params, **_):
        sent.append(dict(params))

    events = boto3._get_default_session().events
    events.register("provide-client-params.ec2.DescribeInstances", record)
    try:
        web = account.add_instance("web-1")
        account.invoke(discover.handler, event())
        account.invoke(discover.handler, event(instance_ids=[web.instance_id]))
    finally:
        events.unregister("provide-client-params.ec2.DescribeInstances", record)
    # A re-run names its instances with an instance-id filter, so it pages by 1,000 too.
    assert [p.get("MaxResults") for p in sent] == [1000, 1000]
    assert "InstanceIds" not in sent[1]
