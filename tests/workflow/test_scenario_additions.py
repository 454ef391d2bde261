"""The scenario additions of the contract (docs/scenarios.md), run through the real workflow."""

from __future__ import annotations

from .conftest import by_name, instance


def test_an_instance_terminated_part_way_is_backed_up_until_then(run_scenario):
    # Given an instance terminated on the third day of a four-day scenario
    report = run_scenario(
        instances=[instance("web-1"), instance("old-1", terminated_at="2026-11-28T00:00:00Z")],
        runs=[{"at": "2026-11-26T03:00:00Z"}, {"every": "1d", "count": 3}],
    )
    # Then it is backed up by the first two runs and no longer selected once terminated
    assert [sorted(by_name(run)) for run in report["runs"]] == [
        ["old-1", "web-1"],
        ["old-1", "web-1"],
        ["web-1"],
        ["web-1"],
    ]
    # And its snapshots stay in the account (nothing is lost when an instance goes)
    old = [s for s in report["final_snapshots"] if s["instance"] == "old-1"]
    assert len(old) == 2 and all(s["state"] == "completed" for s in old)


def test_existing_snapshot_states_deployments_and_detached_volumes(run_scenario):
    # Given old snapshots that retention would delete if they were this deployment's completed ones
    report = run_scenario(
        settings={"retention_days": 7, "keep_min": 1},
        instances=[instance("web-1")],
        existing_snapshots=[
            {"label": "mine-old", "instance": "web-1", "age_days": 30},
            {"label": "pending", "instance": "web-1", "age_days": 30, "state": "pending"},
            {"label": "broken", "instance": "web-1", "age_days": 2, "state": "error"},
            {"label": "other", "instance": "web-1", "age_days": 40, "deployment": "another-deployment"},
            {"label": "gone-vol", "instance": "web-1", "device": "/dev/sdz", "age_days": 20, "detached": True},
        ],
    )
    final = {s["label"]: s for s in report["final_snapshots"] if s["label"]}
    run = report["runs"][0]
    # Then only this deployment's completed, expired snapshot is deleted
    assert [d["label"] for d in run["deleted"]] == ["mine-old"]
    assert sorted(final) == ["broken", "gone-vol", "other", "pending"]
    assert final["pending"]["state"] == "pending" and final["broken"]["state"] == "error"
    assert final["other"]["managed"] is False and final["other"]["deployment"] == "another-deployment"
    # And the detached snapshot names a volume that no longer exists, at the device it had
    assert final["gone-vol"]["device"] == "/dev/sdz" and final["gone-vol"]["managed"] is True
    attached = {row["volume_id"] for row in run["created"]}
    assert final["gone-vol"]["volume_id"] not in attached
    # And every final snapshot reports the region, no lock and the standard tier
    assert {(s["region"], s["locked_until"], s["tier"]) for s in report["final_snapshots"]} == {
        ("us-east-1", None, "standard")
    }


def test_detached_volume_is_gone_from_the_account():
    from smart_vault_sim.scenario import parse_scenario
    from smart_vault_sim.simulator import Simulation

    scenario = parse_scenario(
        {
            "instances": [instance("web-1")],
            "existing_snapshots": [
                {"label": "a", "instance": "web-1", "device": "/dev/sdz", "age_days": 3, "detached": True},
                {"label": "b", "instance": "web-1", "device": "/dev/sdz", "age_days": 2, "detached": True},
            ],
            "runs": [{"at": "2026-11-26T03:00:00Z"}],
        }
    )
    sim = Simulation(scenario)
    with sim.emulated() as account:
        snapshots = account.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        volume_ids = {s["VolumeId"] for s in snapshots}
        # Both snapshots of the deleted /dev/sdz share one volume id, unknown to DescribeVolumes
        assert len(snapshots) == 2 and len(volume_ids) == 1
        existing = {v["VolumeId"] for v in account.ec2.describe_volumes()["Volumes"]}
        assert volume_ids.isdisjoint(existing)
