"""Issue 20 items 2, 3 and part of 6 through the real ASL and handlers: an orphaned volume's
local snapshots wait for their off-site copies like a live volume's, and circuit breakers and
their approvals are per volume and Region."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from click.testing import CliRunner

from smart_vault_cli.main import cli
from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import Simulation, simulate
from tests.cli.conftest import _deploy
from tests.workflow.conftest import BASE, instance

DR = {"region": "us-west-2", "kms_key": "alias/smart-vault-dr", "retention_days": 10, "keep_min": 2}


def scenario(settings: dict[str, Any], **parts: Any) -> Any:
    data = copy.deepcopy(BASE)
    data["settings"] = settings
    data.update(parts)
    return parse_scenario(data)


def test_a_terminated_instance_whose_copies_always_failed_keeps_its_local_snapshots_and_the_alert_says_why():
    # Given web-1 whose copies to us-west-2 always fail (four nights), terminated on the fifth day.
    report = simulate(
        scenario(
            {"retention_days": 1, "keep_min": 1, "max_delete_fraction": 1.0, "copy_regions": [DR]},
            instances=[instance("web-1", terminated_at="2026-11-05T00:00:00Z"), instance("db-1")],
            faults=[{"operation": "CopySnapshot", "instance": "web-1", "error": "InvalidParameterValue"}],
            runs=[{"at": "2026-11-01T03:00:00Z"}, {"every": "1d", "count": 4}],
        )
    )
    runs = report["runs"]
    assert all(next(i for i in r["instances"] if i["name"] == "web-1")["step"] == "Copy" for r in runs[:4])
    last = runs[-1]
    # Then the orphan step deletes none of its four local snapshots: us-west-2 holds no copy.
    local = [s for s in report["final_snapshots"] if s["instance"] == "web-1" and s["region"] == "us-east-1"]
    assert len(local) == 4
    assert not [d for r in runs for d in r["deleted"] if d["instance"] == "web-1"]
    (orphan,) = [o for o in last["orphans"] if o["name"] == "web-1"]
    assert orphan["deleted"] == []
    held = orphan["held_for_copies"]
    assert len(held) == 3 and all(h["regions"] == ["us-west-2"] for h in held)
    # And the alert says so, with the Region.
    (alert,) = last["alerts"]
    message = alert["message"]
    assert orphan["volume_id"] in message
    assert "held for off-site copies" in message and "us-west-2" in message


# Six nightly runs, then none until 20 November: locally and in us-west-2 alike, 3 of the 5
# snapshots of web-1's volume expire at once, above max_delete_fraction (50%), so the same
# volume's breaker trips in both Regions, each with its own plan.
NIGHTS = [datetime(2026, 11, d, 3, tzinfo=UTC) for d in (1, 2, 3, 4, 5, 6, 20)]
BOTH_TRIP = {
    "retention_days": 3,
    "keep_min": 2,
    "copy_regions": [{**DR, "retention_days": 3}],
}


def approve(*args: str) -> Any:
    return CliRunner().invoke(cli, ["--stack", "SmartVault", "--region", "us-east-1", "approve", *args])


def tripped_in_both_regions(sim: Simulation) -> dict[str, Any]:
    for i, night in enumerate(NIGHTS[:-1]):
        assert sim.run_at(i, night)["breakers"] == []
    run = sim.run_at(len(NIGHTS) - 1, NIGHTS[-1])
    assert run["deleted"] == [] and run["copies_deleted"] == []
    return run


def test_one_volume_tripped_at_the_source_and_in_a_destination_is_named_and_approved_per_region():
    sim = Simulation(scenario(BOTH_TRIP, instances=[instance("web-1")]))
    with sim.emulated():
        _deploy(sim)
        run = tripped_in_both_regions(sim)
        # Two breakers on one volume, one per Region, each named with its Region and release.
        by_region = {b["region"]: b for b in run["breakers"]}
        assert sorted(by_region) == ["us-east-1", "us-west-2"]
        assert by_region["us-east-1"]["volume_id"] == by_region["us-west-2"]["volume_id"]
        volume = by_region["us-east-1"]["volume_id"]
        local, remote = by_region["us-east-1"]["would_delete"], by_region["us-west-2"]["would_delete"]
        assert len(local) == len(remote) == 3 and not set(local) & set(remote)
        message = run["alerts"][-1]["message"]
        for region in ("us-east-1", "us-west-2"):
            assert f"volume {volume} in {region}:" in message
            assert f"smart-vault approve 20261120T030000Z --volume {volume} --in-region {region}" in message
        # A Region the run did not stop the volume in is refused, naming where it did.
        refused = approve("20261120T030000Z", "--volume", volume, "--in-region", "eu-west-1")
        assert refused.exit_code == 2 and f"{volume} in us-west-2" in refused.output
        # Approving the volume releases both plans, each in its own Region.
        result = approve("20261120T030000Z", "--volume", volume)
        assert result.exit_code == 0, result.output
        assert f"approved {volume} in us-east-1" in result.output
        assert f"approved {volume} in us-west-2" in result.output
        # Then a re-run of the slot deletes exactly both approved plans: locally and off-site.
        rerun = sim.run_at(len(NIGHTS), NIGHTS[-1])
        assert rerun["breakers"] == []
        assert sorted(d["snapshot_id"] for d in rerun["deleted"]) == sorted(local)
        assert sorted(c["snapshot_id"] for c in rerun["copies_deleted"]) == sorted(remote)


def test_an_approval_the_grown_plan_no_longer_matches_is_named_in_the_next_alert():
    sim = Simulation(scenario(BOTH_TRIP, instances=[instance("web-1")]))
    with sim.emulated():
        _deploy(sim)
        run = tripped_in_both_regions(sim)
        approved = {b["region"]: b["would_delete"] for b in run["breakers"]}
        result = approve("20261120T030000Z", "--in-region", "us-east-1")
        assert result.exit_code == 0, result.output
        assert "us-west-2" not in result.output  # only the source's breaker was approved
        # The next night one more local snapshot is expired: 4, not the 3 approved.
        night = sim.run_at(len(NIGHTS), datetime(2026, 11, 21, 3, tzinfo=UTC))
        assert night["deleted"] == []
        breakers = {b["region"]: b for b in night["breakers"]}
        source = breakers["us-east-1"]
        assert source["approved_run_id"] == "20261120T030000Z"
        assert sorted(source["approved_snapshot_ids"]) == sorted(approved["us-east-1"])
        (added,) = set(source["would_delete"]) - set(approved["us-east-1"])
        assert breakers["us-west-2"]["approved_run_id"] is None  # never approved there
        message = night["alerts"][-1]["message"]
        assert "approval of run 20261120T030000Z no longer matches" in message
        assert "it released 3 snapshot(s), this run would delete 4" in message
        assert f"planned now but not approved (1): {added}" in message
