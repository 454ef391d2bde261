"""The retention rule must hold for every input, not just the examples."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from smart_vault.constants import TAG_MANAGED, TAG_RUN_ID
from smart_vault.retention import RetentionPolicy, SnapshotRecord, plan_retention

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
    # and the rest of the plan is the rule's: a lock only ever removes deletions, so it can
    # release a breaker but never trip one
    assert {s.snapshot_id for s in plan.candidates} == would - set(locked)
    assert plan.tripped_volumes <= free.tripped_volumes
