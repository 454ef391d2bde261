"""EC2's request buckets and per-volume rules, emerging from load on the fleet's virtual clock.

The account's CreateSnapshots bucket is shrunk (ec2_api_limits, as a lower account limit would
be) so that a small fleet behaves like a large one against EC2's documented 100-token bucket.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import smart_vault.backup.discovery
from smart_vault.backup.inventory import build_targets

from .conftest import by_name, instance

SMALL_BUCKET = {"CreateSnapshots": {"capacity": 6, "refill_per_second": 5}}
FLEET = 16


def fleet(**extra: Any) -> list[dict[str, Any]]:
    return [instance(f"node-{n:02d}", volumes=2, **extra) for n in range(FLEET)]


def test_default_pacing_stays_inside_the_create_snapshots_bucket(run_scenario):
    run = run_scenario(instances=fleet(), ec2_api_limits=SMALL_BUCKET)["runs"][0]
    assert run["ec2_throttling"] == {"RequestLimitExceeded": 0}
    assert run["api_calls"]["ec2:CreateSnapshots"] == FLEET  # no retry was needed
    assert {row["status"] for row in run["instances"]} == {"backed_up"}
    # 4 creates per second: the last of 16 children starts at 3 s of virtual time, and its
    # first completion check comes 60 s after its CreateSnapshots.
    assert 63 <= run["virtual_seconds"] < 120


def test_without_pacing_the_fleet_outruns_the_bucket_and_retries_through_it(run_scenario, monkeypatch):
    # Pacing disabled: every child calls CreateSnapshots as soon as the Map starts it.
    def unpaced(*args: Any, **kwargs: Any) -> Any:
        return [dataclasses.replace(t, start_delay_seconds=0) for t in build_targets(*args, **kwargs)]

    monkeypatch.setattr(smart_vault.backup.discovery, "build_targets", unpaced)
    run = run_scenario(instances=fleet(), ec2_api_limits=SMALL_BUCKET)["runs"][0]
    throttled = run["ec2_throttling"]["RequestLimitExceeded"]
    # 16 requests at once against 6 tokens: 10 refused at first; each retry (ThrottledError,
    # full jitter) takes its turn on the virtual clock against the refill.
    assert throttled >= FLEET - 6
    assert run["api_calls"]["ec2:CreateSnapshots"] == FLEET + throttled
    assert run["faults_injected"] == {}  # the buckets did it, not a scripted fault
    # Throttling slows the run; it fails nobody.
    assert {row["status"] for row in run["instances"]} == {"backed_up"}
    assert len(run["created"]) == 2 * FLEET


def test_snapshot_duration_sets_the_run_length_on_the_virtual_clock(run_scenario):
    run = run_scenario(instances=[instance("db-1", snapshot_seconds=3600)])["runs"][0]
    row = by_name(run)["db-1"]
    assert row["status"] == "backed_up"
    # Checks at 60, 180, 420, 900, 1860, 3660 s (doubling to the 1,800 s cap): done at the
    # first check after 3600 s.
    assert 3660 < run["virtual_seconds"] <= 3660 + 60
    assert run["execution"]["virtual_wait_seconds"] == 3660


def test_one_pending_snapshot_blocks_a_new_one_on_st1(run_scenario):
    st1 = {"name": "cold-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda", "type": "st1"}]}
    run = run_scenario(
        instances=[st1],
        existing_snapshots=[{"label": "slow", "instance": "cold-1", "age_days": 0.1, "state": "pending"}],
    )["runs"][0]
    row = by_name(run)["cold-1"]
    # EBS User Guide: one pending snapshot per st1/sc1 volume. The workflow retries
    # (VolumePacingError) and then reports the instance failed with EC2's code.
    assert row["status"] == "failed"
    assert row["step"] == "Snapshot"
    assert row["aws_code"] == "ConcurrentSnapshotLimitExceeded"
    assert run["ec2_throttling"]["ConcurrentSnapshotLimitExceeded"] >= 1


def test_a_volume_type_outside_ebs_is_refused(run_scenario):
    from smart_vault_sim.scenario import ScenarioError

    bad = {"name": "x", "volumes": [{"device": "/dev/xvda", "type": "ssd"}]}
    with pytest.raises(ScenarioError, match=r"instances\[0\]\.volumes\[0\]\.type"):
        run_scenario(instances=[bad])


# A fleet's completion checks against a shrunk DescribeSnapshots bucket, scaled like the real one
# (its refill above the create rate): 40 instances created at 1/s and polling every 8 s (the
# wait cap) ask about 5 times a second, above the bucket's refill of 3, as 10,000 instances on
# the doubling schedule outrun EC2's 20/s (docs/benchmarks.md).
CHECK_FLEET = 40
DESCRIBE_BUCKET = {"DescribeSnapshots": {"capacity": 20, "refill_per_second": 3}}
FAST_POLLING = {"wait_initial_seconds": 1, "wait_max_seconds": 8, "create_rate_per_second": 1}


def _checks_run(run_scenario, check_rate: int) -> dict[str, Any]:
    return run_scenario(
        settings={**FAST_POLLING, "check_rate_per_second": check_rate},
        instances=[instance(f"node-{n:02d}", snapshot_seconds=120) for n in range(CHECK_FLEET)],
        ec2_api_limits=DESCRIBE_BUCKET,
    )["runs"][0]


def test_the_fleet_check_interval_keeps_completion_checks_inside_their_bucket(run_scenario):
    # Given check_rate_per_second 20: a floor of 2 s, below the 8 s cap, so the cap decides
    unbounded = _checks_run(run_scenario, check_rate=20)
    # Then the checks outrun the bucket: retried with jitter, and an instance whose retries run
    # out fails on RequestLimitExceeded (the 10,000-instance benchmark lost half its fleet so)
    assert unbounded["ec2_throttling"]["RequestLimitExceeded"] > 0
    assert {row.get("aws_code") for row in unbounded["instances"] if row["status"] == "failed"} <= {
        "RequestLimitExceeded"
    }
    # Given check_rate_per_second 1: each instance checks at most every 40 s (40 instances / 1)
    bounded = _checks_run(run_scenario, check_rate=1)
    # Then no request is throttled, every instance is backed up, with fewer checks
    assert bounded["ec2_throttling"] == {"RequestLimitExceeded": 0}
    assert {row["status"] for row in bounded["instances"]} == {"backed_up"}
    checks = bounded["api_calls"]["ec2:DescribeSnapshots"]
    assert checks < unbounded["api_calls"]["ec2:DescribeSnapshots"]
    # Three checks each (at 40, 80 and 120 s after its snapshots; done at the third), plus the
    # Snapshot step's lookup, Prune's listing and the orphan scan
    assert checks == CHECK_FLEET * (3 + 2) + 1
