"""GFS parsing, per-instance overrides, expected deletion and Prune with them (in-memory EC2)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from smart_vault.constants import TAG_RETENTION, TAG_RETENTION_DAYS
from smart_vault.policy import Gfs
from smart_vault.retention.overrides import OverrideError, with_override
from smart_vault.retention.pruning import prune_instance, retention_policy
from smart_vault.retention.rules import SnapshotRecord, expected_deletion
from tests.unit.domain.conftest import settings
from tests.unit.domain.test_pruning import backed_up, old


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("daily=14,weekly=8,monthly=24", Gfs(daily=14, weekly=8, monthly=24)),
        (" daily = 7 , yearly=3 ", Gfs(daily=7, yearly=3)),
        ({"weekly": 4}, Gfs(weekly=4)),
    ],
)
def test_gfs_is_read_from_tag_text_or_a_mapping(value, expected):
    assert Gfs.parse(value) == expected
    assert Gfs.parse(str(expected)) == expected  # the environment form round-trips


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("daily=7;weekly=4", "whole number"),
        ("daily", "tier=count"),
        ("hourly=3", "unknown tier"),
        ("daily=1,daily=2", "twice"),
        ("daily=-1", "whole number"),
        ("daily=0", "keeps nothing"),
        ({"daily": True}, "whole number"),
        ("monthly=5000", "between 0 and 1000"),
    ],
)
def test_an_invalid_gfs_value_says_what_is_wrong(value, problem):
    with pytest.raises(ValueError, match=problem):
        Gfs.parse(value)


def test_overrides_replace_the_deployment_rule_and_refuse_bad_values():
    base = retention_policy(settings(retention_days=7))
    assert with_override(base, {}) is base
    assert with_override(base, {TAG_RETENTION_DAYS: "30"}).retention_days == 30
    assert with_override(base, {TAG_RETENTION: "daily=3"}).gfs == Gfs(daily=3)
    for tags in ({TAG_RETENTION_DAYS: "0"}, {TAG_RETENTION_DAYS: "30d"}, {TAG_RETENTION: "x"}):
        with pytest.raises(OverrideError):
            with_override(base, tags)
    with pytest.raises(OverrideError, match="keep one of the two tags"):
        with_override(base, {TAG_RETENTION: "daily=3", TAG_RETENTION_DAYS: "3"})


def _snap(at: datetime) -> SnapshotRecord:
    return SnapshotRecord(snapshot_id="snap-1", volume_id="vol-1", start_time=at, state="completed", tags={})


def test_expected_deletion_is_when_the_period_leaves_the_newest_n():
    gfs = Gfs(monthly=12, yearly=2)
    march = _snap(datetime(2026, 3, 1, 3, tzinfo=UTC))
    assert expected_deletion(march, ("monthly",), gfs) == datetime(2027, 3, 1, tzinfo=UTC)
    assert expected_deletion(march, ("monthly", "yearly"), gfs) == datetime(2028, 1, 1, tzinfo=UTC)
    december = _snap(datetime(2025, 12, 31, tzinfo=UTC))
    assert expected_deletion(december, ("monthly",), gfs) == datetime(2026, 12, 1, tzinfo=UTC)
    assert expected_deletion(march, ("daily", "monthly"), gfs) is None  # a daily's end is not foreseeable


def test_an_invalid_override_skips_pruning_and_says_why(ec2, store):
    # Given an instance whose override tag is unreadable, with a snapshot the deployment would delete
    config = settings(retention_days=3, keep_min=1)
    web = ec2.add_instance("web-1", tags={"backup": "True", TAG_RETENTION: "daily=seven"})
    ancient = old(ec2, web, days=30)
    job = backed_up(ec2, web, config)
    outcome = prune_instance(job, settings=config, ec2=ec2, store=store)
    # Then nothing is deleted, no EC2 call is made to prune, and the outcome names tag and value
    assert ancient in ec2.snapshots and outcome.deleted == ()
    assert outcome.status == "backed_up"
    assert outcome.retention_error is not None and "smart-vault:retention='daily=seven'" in outcome.retention_error
    assert ec2.calls["ec2:DeleteSnapshot"] == 0


def test_gfs_prune_reports_the_tier_of_every_kept_snapshot_and_archives_old_monthlies(ec2, store):
    config = settings(retention={"daily": 1, "monthly": 6}, keep_min=1, archive_after_days=30)
    web = ec2.add_instance("web-1")
    june, june_later, october = old(ec2, web, days=160), old(ec2, web, days=150), old(ec2, web, days=40)
    job = backed_up(ec2, web, config)
    outcome = prune_instance(job, settings=config, ec2=ec2, store=store)
    reasons = {k.snapshot_id: k.reason for k in outcome.kept}
    # June's first snapshot is its monthly pick; the later one in June goes
    assert june_later not in ec2.snapshots and reasons[june] == "monthly" and reasons[october] == "monthly"
    # June leaves the newest 6 months in December: under 90 days away, so it stays standard;
    # October's pick has months to go and moves to the archive tier
    assert outcome.archived == (october,)
    assert ec2.snapshots[october]["tiering"] == "archival-in-progress"
    # A second prune the same day does not ask again while the archive is under way
    again = prune_instance(replace(job), settings=config, ec2=ec2, store=store)
    assert again.archived == () and ec2.calls["ec2:ModifySnapshotTier"] == 1
