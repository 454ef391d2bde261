"""A scenario that could never test what it says is refused, naming the field
(exit 2): a clock that goes backwards, faults that can never fire, an archive age no pick can
reach, and numbers or booleans written as JSON strings. The CDK context's text forms
(`-c keep_min=3`) stay valid: only a JSON document must use JSON's types."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from smart_vault.settings import Settings
from smart_vault_cli.main import cli
from smart_vault_sim.scenario import ScenarioError, parse_scenario

DR = {"region": "us-west-2", "kms_key": "alias/smart-vault-dr", "retention_days": 10, "keep_min": 2}
SCENARIO: dict[str, Any] = {
    "name": "refusals",
    "settings": {"retention_days": 7, "keep_min": 2},
    "instances": [{"name": "web-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]}],
    "runs": [{"at": "2026-11-26T03:00:00Z"}],
}


def scenario(**parts: Any) -> dict[str, Any]:
    data = copy.deepcopy(SCENARIO)
    data.update(parts)
    return data


def refused(data: dict[str, Any]) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data)
    return caught.value


def test_a_run_before_the_run_scheduled_before_it_is_refused():
    error = refused(scenario(runs=[{"at": "2026-11-26T03:00:00Z"}, {"at": "2026-11-25T03:00:00Z"}]))
    assert error.field == "runs[1].at"
    assert "runs go forward in time" in str(error)
    # After an `every`, the next `at` is checked against the last run it scheduled.
    error = refused(
        scenario(runs=[{"at": "2026-11-26T03:00:00Z"}, {"every": "1d", "count": 3}, {"at": "2026-11-28T03:00:00Z"}])
    )
    assert error.field == "runs[2].at"
    # The same `at` twice stays a re-run of one scheduled event.
    parse_scenario(scenario(runs=[{"at": "2026-11-26T03:00:00Z"}, {"at": "2026-11-26T03:00:00Z"}]))


def test_a_copy_fault_without_copy_regions_is_refused():
    error = refused(scenario(faults=[{"operation": "CopySnapshot", "error": "UnauthorizedOperation"}]))
    assert error.field == "faults[0].operation"
    assert "never fire" in str(error) and "copy_regions" in str(error)
    settings = {"retention_days": 7, "keep_min": 2, "copy_regions": [DR]}
    parse_scenario(
        scenario(settings=settings, faults=[{"operation": "CopySnapshot", "error": "UnauthorizedOperation"}])
    )


def test_a_lock_fault_without_lock_is_refused():
    faults = [
        {"operation": "DescribeImages", "error": "RequestLimitExceeded", "count": 1},
        {"operation": "LockSnapshot", "instance": "web-1", "error": "RequestLimitExceeded"},
    ]
    error = refused(scenario(faults=faults))
    assert error.field == "faults[1].operation" and "settings.lock" in str(error)
    settings = {"retention_days": 7, "keep_min": 2, "lock": {"mode": "governance", "days": 10}}
    parse_scenario(scenario(settings=settings, faults=faults))


def test_an_archive_age_no_pick_can_reach_is_refused():
    # Monthly picks of retention monthly=3 live at most ~93 days, and are archived only with 90
    # days left: nothing older than 3 days can ever be archived.
    settings = {"retention": {"daily": 7, "monthly": 3}, "keep_min": 2, "archive_after_days": 30}
    error = refused(scenario(settings=settings))
    assert error.field == "settings.archive_after_days" and "never archive" in str(error)
    # Reachable: a year of monthly picks, or an instance whose override tag keeps yearly picks.
    parse_scenario(scenario(settings={**settings, "retention": {"daily": 7, "monthly": 12}}))
    tagged = copy.deepcopy(SCENARIO["instances"])
    tagged[0]["tags"]["smart-vault:retention"] = "daily=7,yearly=3"
    parse_scenario(scenario(settings=settings, instances=tagged))


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"keep_min": "3"}, "settings.keep_min"),
        ({"retention_days": "7"}, "settings.retention_days"),
        ({"max_delete_fraction": "0.5"}, "settings.max_delete_fraction"),
        ({"dry_run": "true"}, "settings.dry_run"),
        ({"enforce_iam": "false"}, "settings.enforce_iam"),
        ({"copy_tags": "Name,team"}, "settings.copy_tags"),
        ({"lock": {"mode": "governance", "days": "10"}}, "settings.lock.days"),
        ({"lock": '{"mode": "governance", "days": 10}'}, "settings.lock"),
        ({"drill": {"instances_per_drill": "2"}}, "settings.drill.instances_per_drill"),
        ({"copy_regions": [{**DR, "keep_min": "2"}]}, "settings.copy_regions[0].keep_min"),
        ({"retention_days": None, "retention": {"daily": "7"}}, "settings.retention.daily"),
    ],
)
def test_numbers_and_booleans_given_as_json_strings_are_refused(settings, field):
    error = refused(scenario(settings={"retention_days": 7, "keep_min": 2, **settings}))
    assert error.field == field
    assert "remove the quotes" in str(error)


def test_instance_numbers_given_as_strings_are_refused_too():
    instances = [{"name": "web-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda", "size_gib": "8"}]}]
    assert refused(scenario(instances=instances)).field == "instances[0].volumes[0].size_gib"


def test_the_cdk_context_and_environment_text_forms_stay_valid():
    # `cdk synth -c keep_min=3 -c dry_run=true` and the functions' environment carry text.
    settings = Settings.from_mapping(
        {"keep_min": "3", "dry_run": "true", "lock": '{"mode": "governance", "days": 10}', "copy_tags": "Name,team"}
    )
    assert settings.keep_min == 3 and settings.dry_run is True and settings.lock is not None
    assert Settings.from_env(settings.to_env()) == settings


def test_the_cli_exits_2_naming_the_quoted_number(tmp_path: Path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(scenario(settings={"retention_days": 7, "keep_min": "3"})))
    result = CliRunner().invoke(cli, ["simulate", str(path)])
    assert result.exit_code == 2
    assert "invalid settings.keep_min: must be a JSON number, not the string '3'" in result.output


@pytest.mark.parametrize(
    ("fault", "field"),
    [
        ({"operation": "Invoke", "error": "Sandbox.Timedout"}, "faults[0].function"),
        ({"operation": "CreateSnapshots", "function": "snapshot", "error": "X"}, "faults[0].function"),
        ({"operation": "Invoke", "function": "nope", "error": "Sandbox.Timedout"}, "faults[0].function"),
    ],
)
def test_an_invoke_fault_names_a_function_and_only_it_does(fault, field):
    assert refused(scenario(faults=[fault])).field == field


def test_an_ssm_outcome_is_one_the_emulator_models():
    web = {**SCENARIO["instances"][0], "ssm": {"pre": "hangs"}}
    assert refused(scenario(instances=[web])).field == "instances[0].ssm.pre"
