from __future__ import annotations

import copy
from typing import Any

import pytest

from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import simulate

BASE: dict[str, Any] = {
    "name": "workflow test",
    "settings": {"retention_days": 7, "keep_min": 2},
    "instances": [],
    "runs": [{"at": "2026-11-26T03:00:00Z"}],
}


def instance(name: str, *, volumes: int = 1, **extra: Any) -> dict[str, Any]:
    devices = ["/dev/xvda", "/dev/sdf", "/dev/sdg", "/dev/sdh"]
    return {
        "name": name,
        "state": "running",
        "tags": {"backup": "True"},
        "volumes": [{"device": devices[i], "size_gib": 8 * (i + 1)} for i in range(volumes)],
        **extra,
    }


@pytest.fixture
def run_scenario():
    def run(**parts: Any) -> dict[str, Any]:
        scenario = copy.deepcopy(BASE)
        scenario.update(parts)
        return simulate(parse_scenario(scenario))

    return run


def by_name(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in run["instances"]}
