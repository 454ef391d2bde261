"""`make synth` checks the configuration a deploy would use: cdk.json's context with `-c` over it,
and every value the code limits, with an error naming the key ("invalid context X")."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from smart_vault.errors import InvalidInputError
from smart_vault_infra.config import DeploymentConfig
from tests.infra.conftest import ROOT

README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize(
    ("context", "key"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"time_zone": "Europe/Berln"}, "time_zone"),
        ({"schedule": "cron(0 3 * * *)"}, "schedule"),  # five fields: Unix cron, not Scheduler's
        ({"schedule": "cron(61 3 * * ? *)"}, "schedule"),
        ({"schedule": "cron(0 24 * * ? *)"}, "schedule"),
        ({"schedule": "cron(0 3 * * * *)"}, "schedule"),  # * in both day fields
        ({"schedule": "cron(0 3 ? * ? *)"}, "schedule"),  # ? in both
        ({"schedule": "cron(0 3 ? * FUNDAY *)"}, "schedule"),
        ({"schedule": "cron(0 3 ? 13 MON *)"}, "schedule"),
        ({"schedule": "cron(0 3 * * ? 1969)"}, "schedule"),
        ({"schedule": "cron(0/0 3 * * ? *)"}, "schedule"),
        ({"schedule": "rate(0 days)"}, "schedule"),
        ({"schedule": "rate(1 week)"}, "schedule"),
        ({"schedule": "at(2026-12-24T03:00:00)"}, "schedule"),
        ({"drill_schedule": "cron(0 5 ? * SUN)"}, "drill_schedule"),
        ({"preflight_schedule": "rate(-1 days)"}, "preflight_schedule"),
        ({"powertools_version": "3.37"}, "powertools_version"),
        ({"powertools_version": "v3.37.0"}, "powertools_version"),
        ({"powertools_version": "3.37.0; rm"}, "powertools_version"),
        ({"expected_interval_hours": 167}, "expected_interval_hours"),
        ({"expected_interval_hours": "0"}, "expected_interval_hours"),
        ({"audit_retention_days": 10**9}, "audit_retention_days"),
        ({"stack_name": "1SmartVault"}, "stack_name"),
        ({"stack_name": "Smart_Vault"}, "stack_name"),
        ({"stack_name": "S" * 129}, "stack_name"),
    ],
)
def test_invalid_context_stops_synth_naming_the_key(context, key):
    with pytest.raises(InvalidInputError, match=rf"^invalid context {key}: "):
        DeploymentConfig.from_context(context)


@pytest.mark.parametrize(
    "schedule",
    [
        "cron(0 3 * * ? *)",
        "cron(0 5 ? * SUN *)",
        "cron(0/15 * * * ? *)",
        "cron(0 12 ? * MON-FRI *)",
        "cron(30 1 1,15 JAN-jun ? 2026-2030)",
        "cron(0 3 L * ? *)",
        "cron(0 3 15W * ? *)",
        "cron(0 3 ? * 6L *)",
        "cron(0 3 ? * 6#3 *)",
        "rate(1 day)",
        "rate(12 hours)",
        "rate(30 minutes)",
    ],
)
def test_scheduler_expressions_the_user_guide_shows_are_accepted(schedule):
    assert DeploymentConfig.from_context({"schedule": schedule}).schedule == schedule


def test_time_zones_and_the_stack_name_are_kept():
    config = DeploymentConfig.from_context(
        {"time_zone": "Europe/Berlin", "stack_name": "SmartVault-prod", "expected_interval_hours": 166}
    )
    assert (config.time_zone, config.stack_name, config.expected_interval_hours) == (
        "Europe/Berlin",
        "SmartVault-prod",
        166,
    )


def _readme_gfs_examples() -> list[str]:
    """The -c retention=... examples the README gives, as written."""
    found = re.findall(r"-c retention=([^`\s]+)", README)
    assert found, "the README shows no -c retention example"
    return found


def test_the_readmes_gfs_example_synthesizes_with_the_shipped_cdk_json():
    from app import deploy_context

    for example in _readme_gfs_examples():
        context = deploy_context(["-c", f"retention={example}"], environ={})
        assert context is not None
        config = DeploymentConfig.from_context(context)
        assert config.settings.retention is not None, example


def test_make_synth_reads_cdk_json_then_each_c_as_text():
    from app import deploy_context

    context = deploy_context(["-c", "keep_min=5", "--context", 'retention={"daily": 7}'], environ={})
    assert context is not None
    assert (context["keep_min"], context["deployment_id"]) == ("5", "smart-vault")
    config = DeploymentConfig.from_context(context)
    assert (config.settings.keep_min, config.settings.retention.daily) == (5, 7)
    # Under the CDK CLI the CLI has merged cdk.json and -c already (CDK_CONTEXT_JSON).
    assert deploy_context([], environ={"CDK_CONTEXT_JSON": "{}"}) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-c", "time_zone=Mars/Olympus_Mons"], "invalid context time_zone"),
        (["-c", "retension_days=7"], "invalid context retension_days: is not a Smart Vault setting"),
        (["-c", "schedule=cron(0 3 * * *)"], "invalid context schedule"),
        (["retention_days=7"], "invalid argument"),
    ],
)
def test_make_synth_refuses_a_bad_c_before_synthesizing(args, message):
    env = {k: v for k, v in os.environ.items() if k != "CDK_CONTEXT_JSON"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "app.py"), *args], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def _readme_ranges() -> list[tuple[str, int, int]]:
    """The Configuration table's integer ranges: `name` | default | LOW, en dash, HIGH (...) | meaning."""
    rows = re.findall(
        r"^\| `([a-z_]+)` \| [^|]* \| (\d+)\N{EN DASH}(\d+)(?: \([^)]*\))? \|", README, flags=re.MULTILINE
    )
    return [(name, int(low), int(high)) for name, low, high in rows]


def test_the_readme_gives_the_ranges_that_matter():
    names = {name for name, _, _ in _readme_ranges()}
    assert {"expected_interval_hours", "retention_days", "keep_min", "audit_retention_days", "map_concurrency"} <= names


@pytest.mark.parametrize(("name", "low", "high"), _readme_ranges())
def test_each_range_in_the_readme_is_the_one_synth_enforces(name, low, high):
    # archive_after_days needs a policy with monthly picks to be allowed at all.
    base = {"retention": '{"daily": 7, "monthly": 12}'} if name == "archive_after_days" else {}
    for inside in (low, high):
        DeploymentConfig.from_context({**base, name: str(inside)})
    for outside in (low - 1, high + 1):
        with pytest.raises(InvalidInputError, match=rf"^invalid context {name}: must be at (least|most)"):
            DeploymentConfig.from_context({**base, name: str(outside)})
