"""Orphans held for copies and approvals by Region, through the real ASL and handlers: an orphaned volume's
local snapshots wait for their off-site copies like a live volume's, and circuit breakers and
their approvals are per volume and Region."""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from click.testing import CliRunner

from smart_vault.settings import get_settings
from smart_vault_cli.main import cli
from smart_vault_sim.sandbox import deploy_stack
from smart_vault_sim.scenario import Scenario, parse_scenario
from smart_vault_sim.simulator import BUCKET, Simulation
from tests.workflow.conftest import BASE, instance

DR = {"region": "us-west-2", "kms_key": "alias/smart-vault-dr", "retention_days": 10, "keep_min": 2}


def scenario(settings: dict[str, Any], **parts: Any) -> Scenario:
    data = copy.deepcopy(BASE)
    data["settings"] = settings
    data.update(parts)
    return parse_scenario(data)


def audit_summary(sim: Simulation, run_id: str) -> dict[str, Any]:
    """The run's audit record summary (what the alert's machine document carries)."""
    listed = sim.account.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"runs/{run_id}/")["Contents"]
    (key,) = [o["Key"] for o in listed if o["Key"].endswith("/audit.json")]
    return dict(json.loads(sim.account.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())["summary"])


# web-1's copies to us-west-2 always fail; it is backed up four nights and terminated on the fifth
# day. retention_days 1 and orphan_keep 1: without the hold, three of its four snapshots go.
COPIES_ALWAYS_FAIL = scenario(
    {"retention_days": 1, "keep_min": 1, "max_delete_fraction": 1.0, "copy_regions": [DR]},
    instances=[instance("web-1", terminated_at="2026-11-05T00:00:00Z"), instance("db-1")],
    faults=[{"operation": "CopySnapshot", "instance": "web-1", "error": "InvalidParameterValue"}],
    runs=[{"at": "2026-11-01T03:00:00Z"}, {"every": "1d", "count": 4}],
)


def terminated_with_no_copies(sim: Simulation) -> list[dict[str, Any]]:
    runs = [sim.run_at(i, at) for i, at in enumerate(sim.scenario.runs)]
    assert all(next(i for i in r["instances"] if i["name"] == "web-1")["step"] == "Copy" for r in runs[:4])
    return runs


def local_snapshots_of(sim: Simulation, name: str) -> list[dict[str, Any]]:
    return [s for s in sim.final_snapshots() if s["instance"] == name and s["region"] == "us-east-1"]


def test_a_terminated_instance_whose_copies_always_failed_keeps_its_local_snapshots_and_the_alert_says_why():
    sim = Simulation(COPIES_ALWAYS_FAIL)
    with sim.emulated():
        runs = terminated_with_no_copies(sim)
        # Then the orphan step deletes none of its four local snapshots: us-west-2 holds no copy.
        assert len(local_snapshots_of(sim, "web-1")) == 4
        assert not [d for r in runs for d in r["deleted"] if d["instance"] == "web-1"]
        last = runs[-1]
        (orphan,) = [o for o in last["orphans"] if o["name"] == "web-1"]
        assert orphan["deleted"] == []
        held = orphan["held_for_copies"]
        assert len(held) == 3 and all(h["regions"] == ["us-west-2"] for h in held)
        assert audit_summary(sim, "20261105T030000Z")["orphan_volumes_held_for_copies"] == 1
        # And the alert says so, with the volume, the Region and the held snapshots.
        (alert,) = last["alerts"]
        assert alert["subject"] == "Smart Vault WARNING: pruning of 1 orphaned volume(s) held for off-site copies"
        message = alert["message"]
        assert (
            f"web-1 orphaned volume {orphan['volume_id']}: 3 snapshot(s) held for off-site copies in us-west-2"
            in message
        )
        assert all(h["snapshot_id"] in message for h in held)
        # And `smart-vault plan` shows the same hold for the orphaned volume.
        deploy_stack(sim)
        planned = CliRunner().invoke(cli, ["--stack", "SmartVault", "--region", "us-east-1", "plan"])
        assert planned.exit_code == 0, planned.output
        assert "3 snapshot(s) held for off-site copies in us-west-2" in " ".join(planned.output.split())


def test_removing_the_copy_region_from_the_settings_lets_the_held_orphans_go():
    sim = Simulation(COPIES_ALWAYS_FAIL)
    with sim.emulated():
        terminated_with_no_copies(sim)
        # The operator gives up on us-west-2 and redeploys without copy_regions.
        with mock.patch.dict(os.environ):
            del os.environ["COPY_REGIONS"]
            get_settings.cache_clear()
            night = sim.run_at(5, datetime(2026, 11, 6, 3, tzinfo=UTC))
        get_settings.cache_clear()
        (orphan,) = [o for o in night["orphans"] if o["name"] == "web-1"]
        assert orphan["held_for_copies"] == [] and len(orphan["deleted"]) == 3
        assert len([d for d in night["deleted"] if d["instance"] == "web-1"]) == 3
        (left,) = local_snapshots_of(sim, "web-1")  # orphan_keep: its newest stays
        assert left["snapshot_id"] in orphan["kept"]
        assert all("held for off-site copies" not in a["message"] for a in night["alerts"])


# Six nightly runs, then none until 20 November: locally and in us-west-2 alike, 3 of the 5
# snapshots of web-1's volume expire at once, above max_delete_fraction (50%), so the same
# volume's breaker trips in both Regions, each with its own plan.
NIGHTS = [datetime(2026, 11, d, 3, tzinfo=UTC) for d in (1, 2, 3, 4, 5, 6, 20)]
BOTH_TRIP = {"retention_days": 3, "keep_min": 2, "copy_regions": [{**DR, "retention_days": 3}]}
TRIPPED_RUN = "20261120T030000Z"


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
        deploy_stack(sim)
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
            assert f"smart-vault approve {TRIPPED_RUN} --volume {volume} --in-region {region}" in message
        # The volume alone is ambiguous: two plans, two Regions, nothing written.
        ambiguous = approve(TRIPPED_RUN, "--volume", volume)
        assert ambiguous.exit_code == 2
        assert "us-east-1, us-west-2" in ambiguous.output and "--in-region" in ambiguous.output
        assert sim.account.s3.list_objects_v2(Bucket=BUCKET, Prefix="approvals/").get("KeyCount") == 0
        # A Region the run did not stop the volume in is refused, naming where it did.
        refused = approve(TRIPPED_RUN, "--volume", volume, "--in-region", "eu-west-1")
        assert refused.exit_code == 2 and f"{volume} in us-west-2" in refused.output
        # Approving the volume in each Region releases each plan there.
        for region in ("us-east-1", "us-west-2"):
            result = approve(TRIPPED_RUN, "--volume", volume, "--in-region", region)
            assert result.exit_code == 0, result.output
            assert f"approved {volume} in {region}" in result.output
        # Then a re-run of the slot deletes exactly both approved plans: locally and off-site.
        rerun = sim.run_at(len(NIGHTS), NIGHTS[-1])
        assert rerun["breakers"] == []
        assert sorted(d["snapshot_id"] for d in rerun["deleted"]) == sorted(local)
        assert sorted(c["snapshot_id"] for c in rerun["copies_deleted"]) == sorted(remote)


def test_an_approval_the_grown_plan_no_longer_matches_is_named_in_the_next_alert():
    sim = Simulation(scenario(BOTH_TRIP, instances=[instance("web-1")]))
    with sim.emulated():
        deploy_stack(sim)
        run = tripped_in_both_regions(sim)
        approved = {b["region"]: b["would_delete"] for b in run["breakers"]}
        result = approve(TRIPPED_RUN, "--in-region", "us-east-1")
        assert result.exit_code == 0, result.output
        assert "us-west-2" not in result.output  # only the source's breaker was approved
        # The next night one more local snapshot is expired: 4, not the 3 approved.
        night = sim.run_at(len(NIGHTS), datetime(2026, 11, 21, 3, tzinfo=UTC))
        assert night["deleted"] == []
        breakers = {b["region"]: b for b in night["breakers"]}
        source = breakers["us-east-1"]
        assert source["approved_run_id"] == TRIPPED_RUN
        assert sorted(source["approved_snapshot_ids"]) == sorted(approved["us-east-1"])
        (added,) = set(source["would_delete"]) - set(approved["us-east-1"])
        assert breakers["us-west-2"]["approved_run_id"] is None  # never approved there
        message = night["alerts"][-1]["message"]
        assert f"approval of run {TRIPPED_RUN} no longer matches" in message
        assert "it released 3 snapshot(s), this run would delete 4" in message
        assert f"planned now but not approved (1): {added}" in message
        assert message.count("no longer matches") == 1  # the destination's breaker has none


def test_an_approval_written_before_the_upgrade_still_releases_the_source_plan_only():
    sim = Simulation(scenario(BOTH_TRIP, instances=[instance("web-1")]))
    with sim.emulated():
        deploy_stack(sim)
        run = tripped_in_both_regions(sim)
        by_region = {b["region"]: b for b in run["breakers"]}
        source = by_region["us-east-1"]
        # What `smart-vault approve` wrote before approvals were per Region: approvals/<volume>.json.
        legacy = {
            "run_id": TRIPPED_RUN,
            "volume_id": source["volume_id"],
            "snapshot_ids": sorted(source["would_delete"]),
            "approved_at": "2026-11-20T09:00:00Z",
            "approved_by": "arn:aws:iam::123456789012:user/ops",
        }
        sim.account.s3.put_object(
            Bucket=BUCKET, Key=f"approvals/{source['volume_id']}.json", Body=json.dumps(legacy).encode()
        )
        rerun = sim.run_at(len(NIGHTS), NIGHTS[-1])
        assert sorted(d["snapshot_id"] for d in rerun["deleted"]) == sorted(source["would_delete"])
        # The destination's plan (other snapshot ids) stays stopped, and is not said to have an
        # approval it no longer matches: the legacy approval was for the source's plan.
        (still,) = rerun["breakers"]
        assert still["region"] == "us-west-2" and still["approved_run_id"] is None
        assert rerun["copies_deleted"] == []
        assert "no longer matches" not in rerun["alerts"][-1]["message"]
