"""GFS retention, per-instance overrides and the archive tier, through the real workflow."""

from __future__ import annotations

import time
from datetime import date

import pytest

from .conftest import by_name, instance

GFS = {"daily": 7, "weekly": 4, "monthly": 12, "yearly": 1}
# 400 daily runs at 03:00 UTC: 2025-01-01 .. 2026-02-04 (2025 has 365 days; 2026-01-01 + 34 days).
FIRST, LAST = date(2025, 1, 1), date(2026, 2, 4)


def _days(report, instance_name="web-1"):
    return sorted(s["start_time"][:10] for s in report["final_snapshots"] if s["instance"] == instance_name)


@pytest.mark.slow
def test_a_400_day_daily_schedule_ends_with_exactly_the_gfs_set(run_scenario):
    # Given one small instance backed up daily for 400 days with {daily 7, weekly 4, monthly 12, yearly 1}
    started = time.monotonic()
    report = run_scenario(
        settings={"retention": GFS, "keep_min": 2},
        instances=[instance("web-1")],
        runs=[{"at": "2025-01-01T03:00:00Z"}, {"every": "1d", "count": 399}],
    )
    elapsed = time.monotonic() - started
    assert report["runs"][-1]["at"] == "2026-02-04T03:00:00Z"
    # Then the volume keeps exactly these days, derived by hand from the calendar:
    daily = [f"2026-01-{d}" for d in (29, 30, 31)] + [f"2026-02-0{d}" for d in (1, 2, 3, 4)]
    # ISO weeks start on Monday: 2026-02-02, 01-26, 01-19 and 01-12 open the newest four weeks
    weekly = ["2026-01-12", "2026-01-19", "2026-01-26", "2026-02-02"]
    # The first of each of the newest 12 months: March 2025 .. February 2026 (Feb 1 is a daily too)
    monthly = [f"2025-{m:02d}-01" for m in range(3, 13)] + ["2026-01-01", "2026-02-01"]
    yearly = ["2026-01-01"]  # the first snapshot of 2026 (also January's monthly pick)
    expected = sorted(set(daily + weekly + monthly + yearly))
    assert len(expected) == 21
    assert _days(report) == expected
    # And every run succeeded, each pruning at most what the breaker allows, nothing of 2025-01/02 left
    assert all(r["execution"]["status"] == "SUCCEEDED" for r in report["runs"])
    assert sum(len(r["deleted"]) for r in report["runs"]) == 400 - 21
    assert all(s["tier"] == "standard" for s in report["final_snapshots"])  # archive not configured
    # And the last run says which tier kept each snapshot
    kept = {k["start_time"][:10]: k["reason"] for k in by_name(report["runs"][-1])["web-1"]["kept"]}
    assert kept["2026-02-04"] == "current_run"
    assert kept["2026-02-03"] == "keep_min"  # keep_min 2 counts this run's snapshot
    assert kept["2026-02-02"] == "daily+weekly"
    assert kept["2026-01-12"] == "weekly"
    assert kept["2026-01-01"] == "monthly+yearly"
    assert kept["2025-03-01"] == "monthly"
    # 400 runs with one small instance: well under a minute on one core (measured in the notes)
    print(f"\n400-day GFS scenario: {elapsed:.1f} s wall")


def test_tag_overrides_are_honoured_and_an_invalid_one_is_reported(run_scenario):
    # Given a deployment keeping 3 days, and instances overriding it by tag (one of them wrongly)
    tagged = {
        "web-days": {"smart-vault:retention-days": "6"},
        "web-gfs": {"smart-vault:retention": "daily=2"},
        "web-bad": {"smart-vault:retention": "daily=seven"},
    }
    report = run_scenario(
        settings={"retention_days": 3, "keep_min": 1},
        instances=[instance("web-plain")]
        + [instance(name, tags={"backup": "True", **tags}) for name, tags in tagged.items()],
        runs=[{"at": "2026-11-01T03:00:00Z"}, {"every": "1d", "count": 9}],
    )
    kept = {name: len(_days(report, name)) for name in ("web-plain", *tagged)}
    # Then each instance keeps what its own rule says after 10 daily runs
    assert kept["web-plain"] == 4  # today and the 3 days before (older than 3 days goes)
    assert kept["web-days"] == 7  # its tag: 6 days
    assert kept["web-gfs"] == 2  # its tag: the newest 2 snapshots
    assert kept["web-bad"] == 10  # invalid tag: nothing of it is pruned, never a guess
    last = report["runs"][-1]
    bad = by_name(last)["web-bad"]
    assert bad["status"] == "backed_up"  # its backup still ran
    assert "smart-vault:retention='daily=seven'" in bad["retention_error"]
    # And the alert names the instance, the tag and its value
    (alert,) = last["alerts"]
    assert "invalid retention tag" in alert["subject"]
    assert "web-bad" in alert["message"] and "smart-vault:retention='daily=seven'" in alert["message"]


def test_monthly_picks_move_to_the_archive_tier_over_time(run_scenario):
    # Given monthly picks of past months (one used by an AMI) and archiving after 30 days
    ages = {"m-1": 26, "m-2": 57, "m-5": 150, "m-9": 270, "m-9-ami": 271, "m-10": 300}
    report = run_scenario(
        settings={"retention": {"daily": 1, "monthly": 12}, "keep_min": 1, "archive_after_days": 30},
        instances=[instance("web-1")],
        existing_snapshots=[
            {"label": label, "instance": "web-1", "age_days": age, "used_by_ami": label.endswith("ami")}
            for label, age in ages.items()
        ],
        runs=[{"at": "2026-11-26T03:00:00Z"}, {"every": "1d", "count": 1}],
    )
    first, second = report["runs"]
    final = {s["label"]: s for s in report["final_snapshots"] if s["label"]}
    labels = {s["snapshot_id"]: label for label, s in final.items()}
    # Then the first run archives the monthly picks older than 30 days with >= 90 days left before
    # their month leaves the newest 12: September (m-2), June (m-5) and March 2026 (m-9, until
    # 2027-03-01: 95 days). Not October (m-1: 26 days old), not January (m-10: 36 days left),
    # never the AMI's snapshot.
    assert sorted(labels[i] for i in by_name(first)["web-1"]["archived"]) == ["m-2", "m-5", "m-9"]
    # And archiving takes time: the second run does not ask again, and by then they are archived
    assert by_name(second)["web-1"]["archived"] == []
    assert first["api_calls"]["ec2:ModifySnapshotTier"] == 3
    assert "ec2:ModifySnapshotTier" not in second["api_calls"]
    assert sorted(label for label, s in final.items() if s["tier"] == "archive") == ["m-2", "m-5", "m-9"]
    # And the last run says why each is kept and which tier it is in
    kept = {labels.get(k["snapshot_id"]): k for k in by_name(second)["web-1"]["kept"]}
    assert kept["m-2"]["reason"] == "monthly" and kept["m-2"]["storage_tier"] == "archive"
    assert kept["m-10"]["storage_tier"] == "standard" and not kept["m-10"]["archive"]
