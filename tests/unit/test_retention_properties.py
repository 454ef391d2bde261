"""The retention rule must hold for every input, not just the examples."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from smart_vault.constants import TAG_MANAGED, TAG_RUN_ID
from smart_vault.policy import Gfs
from smart_vault.retention.rules import (
    ARCHIVE_MIN_DAYS,
    ARCHIVED_PER_VOLUME,
    RetentionPolicy,
    SnapshotRecord,
    expected_deletion,
    plan_retention,
)

NOW = datetime(2026, 11, 26, 3, tzinfo=UTC)
DEPLOYMENT = "vault-a"
CURRENT = "20261126T030000Z"

snapshots = st.lists(
    st.builds(
        lambda i, vol, age_h, state, owner, current: SnapshotRecord(
            snapshot_id=f"snap-{i:08x}",
            volume_id=f"vol-{vol:08x}",
            start_time=NOW - timedelta(hours=age_h),
            state=state,
            tags={
                **({TAG_MANAGED: owner} if owner else {}),
                TAG_RUN_ID: CURRENT if current else f"run-{age_h}",
            },
        ),
        st.integers(0, 10**6),
        st.integers(0, 3),
        st.integers(0, 24 * 60),
        st.sampled_from(["completed", "completed", "pending", "error"]),
        st.sampled_from([DEPLOYMENT, DEPLOYMENT, "vault-b", None]),
        st.booleans(),
    ),
    max_size=30,
    unique_by=lambda s: s.snapshot_id,
)
policies = st.builds(
    RetentionPolicy,
    retention_days=st.integers(1, 40),
    keep_min=st.integers(1, 5),
    max_delete_fraction=st.sampled_from([0.25, 0.5, 1.0]),
    max_deletes_per_run=st.integers(1, 100),
)


@settings(max_examples=300, deadline=None)
@given(snaps=snapshots, policy=policies, blocked=st.sets(st.integers(0, 3)))
def test_retention_invariants(snaps, policy, blocked):
    blocked_ids = frozenset(f"vol-{v:08x}" for v in blocked)
    plan = plan_retention(
        snaps,
        policy=policy,
        now=NOW,
        deployment_id=DEPLOYMENT,
        current_run_id=CURRENT,
        blocked_volume_ids=blocked_ids,
    )
    deleted = {s.snapshot_id for s in plan.to_delete}
    assert len(plan.decisions) == len(snaps)

    for snap in plan.to_delete:
        # Only this deployment's, never the current run's, never a young one.
        assert snap.tags.get(TAG_MANAGED) == DEPLOYMENT
        assert snap.tags.get(TAG_RUN_ID) != CURRENT
        assert NOW - snap.start_time > timedelta(days=policy.retention_days)
        assert snap.volume_id not in blocked_ids
        assert snap.state != "pending"

    # The newest keep_min completed managed snapshots of every volume survive.
    for volume in {s.volume_id for s in snaps}:
        completed = sorted(
            (
                s
                for s in snaps
                if s.volume_id == volume and s.state == "completed" and s.tags.get(TAG_MANAGED) == DEPLOYMENT
            ),
            key=lambda s: s.start_time,
            reverse=True,
        )
        assert not deleted & {s.snapshot_id for s in completed[: policy.keep_min]}

    # The circuit breaker holds both limits.
    assert len(deleted) <= policy.max_deletes_per_run
    for volume in {s.volume_id for s in plan.to_delete}:
        managed = [s for s in snaps if s.volume_id == volume and s.tags.get(TAG_MANAGED) == DEPLOYMENT]
        gone = [s for s in plan.to_delete if s.volume_id == volume]
        assert len(gone) / len(managed) <= policy.max_delete_fraction


@given(snaps=snapshots, policy=policies)
def test_a_tripped_volume_deletes_nothing_and_stops_no_other_volume(snaps, policy):
    plan = plan_retention(snaps, policy=policy, now=NOW, deployment_id=DEPLOYMENT, current_run_id=CURRENT)
    deleted_volumes = {s.volume_id for s in plan.to_delete}
    for breaker in plan.breakers:
        assert breaker.volume_id not in deleted_volumes
        assert breaker.would_delete
    # Every volume with candidates is either pruned or tripped: never silently held back.
    assert {s.volume_id for s in plan.candidates} == deleted_volumes | plan.tripped_volumes


@given(snaps=snapshots, policy=policies, data=st.data())
def test_ami_pinned_snapshots_are_kept_and_left_out_of_the_breaker(snaps, policy, data):
    ids = [s.snapshot_id for s in snaps]
    chosen = data.draw(st.sets(st.sampled_from(ids)) if ids else st.just(set()))
    pinned = {sid: "ami-0123456789abcdef0" for sid in chosen}
    plan = plan_retention(
        snaps, policy=policy, now=NOW, deployment_id=DEPLOYMENT, current_run_id=CURRENT, pinned=pinned
    )
    assert not {s.snapshot_id for s in plan.candidates} & set(pinned)
    unpinned = plan_retention(
        [s for s in snaps if s.snapshot_id not in pinned],
        policy=policy,
        now=NOW,
        deployment_id=DEPLOYMENT,
        current_run_id=CURRENT,
    )
    # Pinned snapshots change nothing for the rest: same deletions, same breakers.
    assert plan.to_delete == unpinned.to_delete
    assert plan.breakers == unpinned.breakers


@given(snaps=snapshots, policy=policies, data=st.data())
def test_an_approval_releases_exactly_the_approved_plan(snaps, policy, data):
    plan = plan_retention(snaps, policy=policy, now=NOW, deployment_id=DEPLOYMENT, current_run_id=CURRENT)
    if not plan.breakers:
        return
    breaker = data.draw(st.sampled_from(plan.breakers))
    exact = frozenset(breaker.would_delete)
    released = plan_retention(
        snaps,
        policy=policy,
        now=NOW,
        deployment_id=DEPLOYMENT,
        current_run_id=CURRENT,
        approved={breaker.volume_id: exact},
    )
    assert {s.snapshot_id for s in released.to_delete if s.volume_id == breaker.volume_id} == exact
    # Any other set (one id fewer) releases nothing.
    other = plan_retention(
        snaps,
        policy=policy,
        now=NOW,
        deployment_id=DEPLOYMENT,
        current_run_id=CURRENT,
        approved={breaker.volume_id: exact - {min(exact)}},
    )
    assert breaker.volume_id in other.tripped_volumes


@settings(max_examples=200, deadline=None)
@given(snaps=snapshots, policy=policies, locked_picks=st.sets(st.integers(0, 29)))
def test_locked_snapshots_are_never_deleted_and_never_trip_the_breaker(snaps, policy, locked_picks):
    locked = {snaps[i].snapshot_id: NOW + timedelta(days=1) for i in locked_picks if i < len(snaps)}
    free = plan_retention(snaps, policy=policy, now=NOW, deployment_id=DEPLOYMENT, current_run_id=CURRENT)
    plan = plan_retention(
        snaps, policy=policy, now=NOW, deployment_id=DEPLOYMENT, current_run_id=CURRENT, locked=locked
    )
    assert not {s.snapshot_id for s in plan.to_delete} & set(locked)
    # Locked ones are kept as "locked" exactly where the rule alone would have deleted them
    would = {s.snapshot_id for s in free.candidates}
    assert {d.snapshot.snapshot_id for d in plan.locked} == would & set(locked)
    # and the rest of the plan is the rule's: a lock only ever removes deletions
    assert {s.snapshot_id for s in plan.candidates} == would - set(locked)
    assert len(plan.to_delete) <= len(free.candidates)
    # It never trips a volume on the fraction. The run cap is spent in volume order by volumes
    # that did not trip, so a lock that releases a volume can hand that volume the budget a later
    # one had: a new trip is always a run-cap trip after a volume the lock released
    # (docs/decisions.md, "The breaker trips per volume").
    released = free.tripped_volumes - plan.tripped_volumes
    for breaker in plan.breakers:
        if breaker.volume_id not in free.tripped_volumes:
            assert "max_deletes_per_run" in breaker.reason, breaker.reason
            assert any(volume < breaker.volume_id for volume in released), (breaker, released)


def test_a_lock_can_move_a_run_cap_trip_to_a_later_volume():
    # The example Hypothesis found: cap 1, vol-1 would delete 2 (trips), vol-2 one (pruned). A
    # lock on one of vol-1's releases it; it spends the cap, and vol-2 waits instead.
    def snap(i: int, volume: int, age_days: int) -> SnapshotRecord:
        return SnapshotRecord(
            snapshot_id=f"snap-{i}",
            volume_id=f"vol-{volume}",
            start_time=NOW - timedelta(days=age_days),
            state="completed",
            tags={TAG_MANAGED: DEPLOYMENT, TAG_RUN_ID: f"run-{i}"},
        )

    snaps = [snap(1, 1, 0), snap(2, 1, 30), snap(3, 1, 31), snap(4, 2, 0), snap(5, 2, 30)]
    policy = RetentionPolicy(retention_days=7, keep_min=1, max_delete_fraction=1.0, max_deletes_per_run=1)
    free = plan_retention(snaps, policy=policy, now=NOW, deployment_id=DEPLOYMENT, current_run_id=CURRENT)
    plan = plan_retention(
        snaps, policy=policy, now=NOW, deployment_id=DEPLOYMENT, current_run_id=CURRENT, locked={"snap-3": NOW}
    )
    assert (free.tripped_volumes, [s.snapshot_id for s in free.to_delete]) == ({"vol-1"}, ["snap-5"])
    assert (plan.tripped_volumes, [s.snapshot_id for s in plan.to_delete]) == ({"vol-2"}, ["snap-2"])


# -- GFS ----------------------------------------------------------------------------------
gfs_snapshots = st.lists(
    st.builds(
        lambda i, vol, age_h, state, owner, tier: SnapshotRecord(
            snapshot_id=f"snap-{i:08x}",
            volume_id=f"vol-{vol:08x}",
            start_time=NOW - timedelta(hours=age_h),
            state=state,
            tags={**({TAG_MANAGED: owner} if owner else {}), TAG_RUN_ID: f"run-{age_h}"},
            storage_tier=tier,
        ),
        st.integers(0, 10**6),
        st.integers(0, 2),
        st.integers(0, 24 * 800),  # up to 800 days: weeks, months and years all matter
        st.sampled_from(["completed", "completed", "completed", "pending", "error"]),
        st.sampled_from([DEPLOYMENT, DEPLOYMENT, DEPLOYMENT, "vault-b", None]),
        st.sampled_from(["standard", "standard", "standard", "archive"]),
    ),
    max_size=60,
    unique_by=lambda s: s.snapshot_id,
)
gfs_policies = st.builds(
    RetentionPolicy,
    retention_days=st.just(7),  # ignored when gfs is set
    keep_min=st.integers(1, 3),
    max_delete_fraction=st.just(1.0),
    max_deletes_per_run=st.just(1000),
    gfs=st.builds(
        Gfs, daily=st.integers(0, 8), weekly=st.integers(0, 6), monthly=st.integers(0, 14), yearly=st.integers(0, 3)
    ),
    archive_after_days=st.one_of(st.none(), st.integers(1, 400)),
)


def _expected_picks(completed, gfs):
    """Each tier's picks, computed here from the calendar without the code under test."""
    picks = {s.snapshot_id for s in sorted(completed, key=lambda s: s.start_time, reverse=True)[: gfs.daily]}
    periods = {
        "weekly": lambda t: tuple(t.isocalendar())[:2],
        "monthly": lambda t: (t.year, t.month),
        "yearly": lambda t: (t.year,),
    }
    for tier, period in periods.items():
        groups = {}
        for s in completed:
            groups.setdefault(period(s.start_time.astimezone(UTC)), []).append(s)
        for key in sorted(groups, reverse=True)[: getattr(gfs, tier)]:
            earliest = min(g.start_time for g in groups[key])
            # With equal start times either one is "the first": accept any of them.
            picks.add(min(g.snapshot_id for g in groups[key] if g.start_time == earliest))
    return picks


@settings(max_examples=300, deadline=None)
@given(snaps=gfs_snapshots, policy=gfs_policies)
def test_gfs_keeps_every_tiers_picks_and_archives_only_long_lived_ones(snaps, policy):
    plan = plan_retention(snaps, policy=policy, now=NOW, deployment_id=DEPLOYMENT, current_run_id=CURRENT)
    deleted = {s.snapshot_id for s in plan.to_delete}
    for volume in {s.volume_id for s in snaps}:
        mine = [
            s
            for s in snaps
            if s.volume_id == volume and s.tags.get(TAG_MANAGED) == DEPLOYMENT and s.state == "completed"
        ]
        # Tie-free picks must all be kept (ties: the property below covers every period's survival).
        unique_times = len({s.start_time for s in mine}) == len(mine)
        if unique_times:
            assert not deleted & _expected_picks(mine, policy.gfs)
        newest = sorted(mine, key=lambda s: s.start_time, reverse=True)[: policy.keep_min]
        assert not deleted & {s.snapshot_id for s in newest}
        # Every kept period of every tier still has a snapshot after pruning (a missed day never
        # empties a week, month or year that is among the newest of its tier).
        left = [s for s in mine if s.snapshot_id not in deleted]
        assert len(left) >= min(len(mine), max(policy.keep_min, policy.gfs.daily))
    for d in plan.decisions:
        assert not (d.delete and d.snapshot.tags.get(TAG_MANAGED) != DEPLOYMENT)
        assert not (d.delete and d.snapshot.state == "pending")
        if d.archive:
            snap = d.snapshot
            assert not d.delete and snap.state == "completed" and snap.storage_tier == "standard"
            assert d.reason in ("monthly", "yearly", "monthly+yearly")
            assert policy.archive_after_days is not None
            assert NOW - snap.start_time >= timedelta(days=policy.archive_after_days)
            end = expected_deletion(snap, d.tiers, policy.gfs)
            assert end is not None and end - NOW >= timedelta(days=ARCHIVE_MIN_DAYS)
    per_volume = {}
    for d in plan.decisions:
        if d.archive or d.snapshot.storage_tier == "archive":
            per_volume[d.snapshot.volume_id] = per_volume.get(d.snapshot.volume_id, 0) + d.archive
    assert all(n <= ARCHIVED_PER_VOLUME for n in per_volume.values())
