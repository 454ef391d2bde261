"""Redrive of a failed run, as the console's Redrive button does it, through the real ASL, the
real handlers and the stack's IAM: the same execution re-attempts exactly its failed instances,
each from the step it failed at, and turns green when they recover."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

import pytest

from smart_vault_sim.aws_tap import ApiCall
from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.scenario_checks import ScenarioError
from smart_vault_sim.simulator import Simulation, simulate

from .conftest import BASE, by_name, instance

NIGHT = "2026-11-26T03:00:00Z"
MORNING = "2026-11-26T09:00:00Z"
FAILING = ("app-03", "app-09", "app-15")


def fleet(size: int) -> list[dict[str, Any]]:
    return [instance(f"app-{n:02d}") for n in range(1, size + 1)]


def scenario(runs: list[dict[str, Any]], faults: list[dict[str, Any]], size: int = 20) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(instances=fleet(size), faults=faults, runs=runs)
    return data


def refused_once(names: tuple[str, ...], operation: str = "CreateSnapshots", count: int = 1) -> list[dict[str, Any]]:
    # UnauthorizedOperation is not retried: the instance fails at that step, and the fault has
    # run out by the time the run is redriven (a permission fixed in between).
    return [{"operation": operation, "instance": n, "error": "UnauthorizedOperation", "count": count} for n in names]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_redrive_re_attempts_exactly_the_failed_instances_and_turns_the_run_green():
    sim = Simulation(parse_scenario(scenario([{"at": NIGHT}, {"at": MORNING, "redrive": True}], refused_once(FAILING))))
    seen: list[ApiCall] = []
    with sim.emulated():
        night = sim.run_at(0, at(NIGHT))
        others = {sim.account.instance_ids[n] for n in by_name(night) if n not in FAILING}
        others |= {v for v, owner in sim.account.volumes.items() if owner[0] not in FAILING}
        sim.tap.checks.append(seen.append)
        redrive = sim.run_at(1, at(MORNING))

    assert night["execution"]["status"] == "FAILED"
    assert night["execution"]["error"] == "SmartVault.InstancesFailed"
    assert sorted(n for n, row in by_name(night).items() if row["status"] == "failed") == list(FAILING)

    assert redrive["execution"]["status"] == "SUCCEEDED"
    assert redrive["execution"]["arn"] == night["execution"]["arn"]
    assert redrive["execution"]["redrive_count"] == 1
    assert redrive["redriven_instances"] == list(FAILING)
    assert {row["status"] for row in redrive["instances"]} == {"backed_up"}
    assert len(redrive["instances"]) == 20
    # CreateSnapshots only for the three without a snapshot of this run, one set each.
    assert redrive["api_calls"]["ec2:CreateSnapshots"] == 3
    assert sorted(s["instance"] for s in redrive["created"]) == sorted(FAILING)
    # Nothing names any of the seventeen that succeeded.
    named = [c for c in seen if any(i in json.dumps(c.params, default=str) for i in others)]
    assert named == []
    # Every attempt is heard: the redrive says what it recovered.
    subjects = [a["subject"] for a in redrive["alerts"]]
    assert any("redrive 1 of run" in s and "3 of 3 recovered" in s for s in subjects), subjects


def test_two_redrives_in_a_row_fail_then_succeed_and_the_second_re_attempts_only_what_still_failed():
    faults = refused_once(("app-02",), count=2) + refused_once(("app-04",))
    report = simulate(
        parse_scenario(
            scenario(
                [{"at": NIGHT}, {"at": MORNING, "redrive": True}, {"at": "2026-11-26T10:00:00Z", "redrive": True}],
                faults,
                size=5,
            )
        )
    )
    night, first, second = report["runs"]
    assert night["execution"]["status"] == "FAILED"
    assert first["execution"]["status"] == "FAILED"
    assert first["redriven_instances"] == ["app-02", "app-04"]
    assert by_name(first)["app-02"]["status"] == "failed"
    assert by_name(first)["app-04"]["status"] == "backed_up"
    assert second["execution"]["status"] == "SUCCEEDED"
    assert second["execution"]["redrive_count"] == 2
    assert second["redriven_instances"] == ["app-02"]
    assert {night["execution"]["arn"], first["execution"]["arn"], second["execution"]["arn"]} == {
        night["execution"]["arn"]
    }
    assert second["api_calls"]["ec2:CreateSnapshots"] == 1
    first_alert = next(a for a in first["alerts"] if "redrive 1" in a["subject"])
    assert "1 of 2 recovered" in first_alert["subject"]
    assert "still failing: app-02" in first_alert["message"]


def test_a_redrive_after_fifteen_days_is_refused_as_aws_refuses_it():
    data = scenario([{"at": NIGHT}, {"at": "2026-12-11T03:00:00Z", "redrive": True}], refused_once(("app-01",)), size=2)
    with pytest.raises(ScenarioError) as refused:
        simulate(parse_scenario(data))
    assert refused.value.field == "runs[1].redrive"
    assert "ExecutionNotRedrivable" in str(refused.value)


def test_a_redrive_of_a_run_that_succeeded_is_refused_naming_the_field():
    data = scenario([{"at": NIGHT}, {"at": MORNING, "redrive": True}], [], size=2)
    with pytest.raises(ScenarioError) as refused:
        simulate(parse_scenario(data))
    assert refused.value.field == "runs[1].redrive"
    assert "ExecutionNotRedrivable" in str(refused.value)


def test_a_redrive_with_no_backup_run_before_it_is_an_error_naming_the_field():
    data = scenario([{"at": NIGHT, "redrive": True}], [], size=1)
    with pytest.raises(ScenarioError) as refused:
        parse_scenario(data)
    assert refused.value.field == "runs[0].redrive"


def test_a_run_that_failed_at_discover_is_redriven_from_discover():
    # A permission missing at night and fixed in the morning: the run never reached its instances.
    faults = [{"operation": "DescribeInstances", "error": "UnauthorizedOperation", "count": 1}]
    report = simulate(parse_scenario(scenario([{"at": NIGHT}, {"at": MORNING, "redrive": True}], faults, size=4)))
    night, redrive = report["runs"]
    assert night["execution"]["status"] == "FAILED"
    assert night["execution"]["error"] == "SmartVault.RunFailed"
    assert night["created"] == []
    assert redrive["execution"]["status"] == "SUCCEEDED"
    assert redrive["execution"]["arn"] == night["execution"]["arn"]
    assert redrive["redriven_instances"] == ["app-01", "app-02", "app-03", "app-04"]
    assert len(redrive["created"]) == 4
    assert redrive["states"]["Discover"]["entered"] == 1


def test_a_failed_prune_is_retried_from_prune_with_no_new_snapshot():
    # Prune cannot write app-02's outcome record once (S3 refuses the PutObject): its backup
    # completed, so the redrive resumes at Prune and creates nothing.
    faults = [{"operation": "PutObject", "instance": "app-02", "error": "AccessDenied", "count": 1}]
    report = simulate(parse_scenario(scenario([{"at": NIGHT}, {"at": MORNING, "redrive": True}], faults, size=3)))
    night, redrive = report["runs"]
    assert by_name(night)["app-02"]["status"] == "failed"
    assert by_name(night)["app-02"]["step"] == "Prune"
    assert redrive["execution"]["status"] == "SUCCEEDED"
    assert redrive["created"] == []
    assert "ec2:CreateSnapshots" not in redrive["api_calls"]
    # Snapshot hands over the recorded backup (no EC2 call), Check confirms it, Prune runs.
    assert redrive["states"]["Prune"]["entered"] == 1
    assert redrive["api_calls"].get("ec2:DescribeSnapshots", 0) <= 3


def test_the_work_of_a_redrive_grows_with_the_failed_instances_not_with_the_fleet():
    figures = []
    for size in (6, 24):
        runs = [{"at": NIGHT}, {"at": MORNING, "redrive": True}]
        redrive = simulate(parse_scenario(scenario(runs, refused_once(("app-02", "app-05")), size=size)))["runs"][1]
        figures.append((redrive["execution"]["state_transitions"], sum(redrive["api_calls"].values())))
    assert figures[0] == figures[1]
