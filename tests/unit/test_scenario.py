"""The scenario reader: every field is checked and named by its path; nothing unknown passes."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from smart_vault.policy import Gfs
from smart_vault_sim.scenario import PLANNED_OPERATIONS, ScenarioError, parse_scenario

VALID: dict[str, Any] = {
    "name": "ok",
    "region": "eu-west-1",
    "settings": {"retention_days": 7, "keep_min": 2, "orphan_keep": 2, "copy_regions": []},
    "instances": [
        {
            "name": "web-1",
            "tags": {"backup": "True"},
            "volumes": [{"device": "/dev/xvda", "size_gib": 8, "tags": {"backup": "True"}}],
            "terminated_at": "2026-11-28T00:00:00Z",
        }
    ],
    "existing_snapshots": [
        {"label": "a", "instance": "web-1", "age_days": 3, "state": "error"},
        {"label": "b", "instance": "web-1", "age_days": 40, "managed": True, "deployment": "another"},
        {"label": "c", "instance": "web-1", "device": "/dev/sdz", "age_days": 20, "detached": True},
    ],
    "faults": [{"operation": "DescribeImages", "error": "RequestLimitExceeded", "count": 2}],
    "runs": [{"at": "2026-11-26T03:00:00Z", "workflow": "backup"}, {"every": "1d", "count": 3}],
}


def _parse(mutate):
    scenario = copy.deepcopy(VALID)
    mutate(scenario)
    return parse_scenario(scenario)


def _gfs(scenario, retention):
    del scenario["settings"]["retention_days"]
    scenario["settings"]["retention"] = retention


def test_gfs_retention_and_archive_are_read():
    scenario = _parse(lambda s: (_gfs(s, {"daily": 7, "monthly": 12}), s["settings"].update(archive_after_days=30)))
    assert scenario.settings.retention == Gfs(daily=7, monthly=12)
    assert scenario.settings.archive_after_days == 30


def test_the_additions_are_read():
    scenario = parse_scenario(copy.deepcopy(VALID))
    assert scenario.region == "eu-west-1"
    assert scenario.settings.orphan_keep == 2
    assert scenario.instances[0].terminated_at == datetime(2026, 11, 28, tzinfo=UTC)
    a, b, c = scenario.existing_snapshots
    assert (a.state, b.deployment, c.detached, c.device) == ("error", "another", True, "/dev/sdz")
    assert len(scenario.runs) == 4
    assert scenario.enforce_iam is True  # the simulator's own setting, not the functions'
    off = copy.deepcopy(VALID)
    off["settings"]["enforce_iam"] = False
    assert parse_scenario(off).enforce_iam is False


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        # unknown keys anywhere, named by path
        (lambda s: s.update(instancse=[]), "instancse"),
        (lambda s: s["instances"][0].update(snapshot_eror=True), "instances[0].snapshot_eror"),
        (lambda s: s["instances"][0]["volumes"][0].update(sizegib=8), "instances[0].volumes[0].sizegib"),
        (lambda s: s["existing_snapshots"][1].update(manged=True), "existing_snapshots[1].manged"),
        (lambda s: s["faults"][0].update(instnace="web-1"), "faults[0].instnace"),
        (lambda s: s["runs"][1].update(cout=3), "runs[1].cout"),
        (lambda s: s["settings"].update(retention_dyas=3), "settings.retention_dyas"),
        # numbers and dates out of range
        (lambda s: s["runs"][1].update(every="9999999999d"), "runs[1].every"),
        (lambda s: s["runs"][1].update(every="400d"), "runs[1].every"),
        (lambda s: s["runs"][1].update(every="30d", count=1000), "runs[1].count"),
        (lambda s: s["runs"][0].update(at="9999-01-01T00:00:00Z"), "runs[0].at"),
        (lambda s: s["runs"][0].update(at="0001-01-01T00:00:00Z"), "runs[0].at"),
        (lambda s: s["runs"][0].update(at="2026-11-26T03:00:00"), "runs[0].at"),
        (lambda s: s["runs"][0].update(at="0001-01-01T00:00:00+01:00"), "runs[0].at"),
        (lambda s: s["runs"][0].update(at="9999-12-31T23:00:00-05:00"), "runs[0].at"),
        (lambda s: s["existing_snapshots"][0].update(age_days=1e9), "existing_snapshots[0].age_days"),
        (lambda s: s["existing_snapshots"][0].update(age_days=float("inf")), "existing_snapshots[0].age_days"),
        (lambda s: s["existing_snapshots"][0].update(age_days=float("nan")), "existing_snapshots[0].age_days"),
        (lambda s: s["existing_snapshots"][0].update(age_days=-1), "existing_snapshots[0].age_days"),
        (lambda s: s["instances"][0].update(terminated_at="9999-12-31T00:00:00Z"), "instances[0].terminated_at"),
        (lambda s: s["instances"][0]["volumes"][0].update(size_gib=10**12), "instances[0].volumes[0].size_gib"),
        (lambda s: s["faults"][0].update(count=10**12), "faults[0].count"),
        # EC2 tag restrictions
        (lambda s: s["instances"][0]["tags"].update({"k" * 128: "v"}), "instances[0].tags." + "k" * 128),
        (lambda s: s["instances"][0]["tags"].update({"aws:x": "v"}), "instances[0].tags.aws:x"),
        (lambda s: s["instances"][0]["volumes"][0]["tags"].update(x="v" * 257), "instances[0].volumes[0].tags.x"),
        (lambda s: s["instances"][0].update(tags={f"t{n}": "v" for n in range(50)}), "instances[0].tags"),
        # regions: botocore's endpoint data, exact spelling
        (lambda s: s.update(region="US-EAST-1"), "region"),
        (lambda s: s.update(region="us-east-9"), "region"),
        (lambda s: s.update(region="cn-north-1"), "region"),
        # the additions' own rules
        (lambda s: s["existing_snapshots"][0].update(state="available"), "existing_snapshots[0].state"),
        (lambda s: s["existing_snapshots"][0].update(device="/dev/sdz"), "existing_snapshots[0].device"),
        (lambda s: s["existing_snapshots"][1].update(managed=False), "existing_snapshots[1].deployment"),
        (lambda s: s["instances"][0].update(state="terminated"), "instances[0].terminated_at"),
        (lambda s: s["settings"].update(orphan_keep=0), "settings.orphan_keep"),
        (lambda s: s["runs"][0].update(workflow="restore"), "runs[0].workflow"),
        (lambda s: s["runs"][0].update(every="1d"), "runs[0]"),
        (lambda s: s["settings"].update(drill={"instances_per_drill": 0}), "settings.drill.instances_per_drill"),
        (lambda s: s["settings"].update(drill={"instances": 2}), "settings.drill.instances"),
        (lambda s: s["settings"].update(drill={"availability_zone": "east"}), "settings.drill.availability_zone"),
        (lambda s: s["settings"].update(drill=2), "settings.drill"),
        (lambda s: s["faults"][0].update(operation="CreateVolumes"), "faults[0].operation"),
        # GFS retention replaces retention_days: both at once is ambiguous, so refused.
        (lambda s: s["settings"].update(retention={"daily": 7}), "settings.retention"),
        (lambda s: _gfs(s, {"dayly": 7}), "settings.retention"),
        (lambda s: _gfs(s, {"daily": -1}), "settings.retention"),
        (lambda s: _gfs(s, "daily=7,daily=8"), "settings.retention"),
        (lambda s: s["settings"].update(archive_after_days=30), "settings.archive_after_days"),
    ],
)
def test_invalid_field_is_named(mutate, field):
    with pytest.raises(ScenarioError) as caught:
        _parse(mutate)
    assert caught.value.field == field


def test_every_operation_the_contract_names_is_built():
    # Nothing is planned any more: a fault on CopySnapshot (off-site copies) is accepted like any other.
    assert PLANNED_OPERATIONS == ()


def test_drill_settings_runs_and_faults_are_read():
    scenario = copy.deepcopy(VALID)
    scenario["settings"]["drill"] = {"instances_per_drill": 3, "availability_zone": "eu-west-1b"}
    scenario["runs"] += [
        {"at": "2026-12-06T05:00:00Z", "workflow": "drill"},
        {"every": "7d", "count": 2, "workflow": "drill"},
    ]
    scenario["faults"].append({"operation": "CreateVolume", "instance": "web-1", "error": "VolumeLimitExceeded"})
    parsed = parse_scenario(scenario)
    assert parsed.settings.drill.instances_per_drill == 3
    assert parsed.settings.drill.availability_zone == "eu-west-1b"
    assert parsed.workflows == ("backup", "backup", "backup", "backup", "drill", "drill", "drill")
    assert len(parsed.workflows) == len(parsed.runs)
    assert parsed.faults[-1].operation == "CreateVolume"


def test_restore_operations_may_be_faulted():
    for operation in ("CreateVolume", "RegisterImage", "RunInstances"):
        scenario = _parse(lambda s, op=operation: s["faults"][0].update(operation=op))
        assert scenario.faults[0].operation == operation
