"""Seeded ids: two simulations of one scenario give the same report but for wall-clock time,
so two reports can be diffed (docs/scenarios.md, "Seeded ids")."""

from __future__ import annotations

from typing import Any

from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import simulate

SCENARIO = {
    "name": "seeded ids",
    "settings": {"retention_days": 7, "keep_min": 1},
    # Six instances: the Map's children snapshot them at the same time, in whatever order the
    # threads run.
    "instances": [
        {"name": "web-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}, {"device": "/dev/sdf"}]},
        {"name": "db-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]},
        *(
            {
                "name": f"app-{n}",
                "tags": {"backup": "True"},
                "volumes": [{"device": "/dev/xvda"}, {"device": "/dev/sdf"}],
            }
            for n in range(1, 5)
        ),
    ],
    "existing_snapshots": [{"label": "web-old", "instance": "web-1", "device": "/dev/xvda", "age_days": 30}],
    # Retried with the ASL's full jitter: the retry waits are drawn at random too.
    "faults": [{"operation": "CreateSnapshots", "instance": "db-1", "error": "RequestLimitExceeded", "count": 2}],
    "runs": [{"at": "2026-11-26T03:00:00Z"}, {"at": "2026-11-27T03:00:00Z"}],
}
WALL_CLOCK = {"wall_seconds"}


def masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "<wall clock>" if k in WALL_CLOCK else masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def test_the_same_scenario_gives_the_same_ids_and_report() -> None:
    first, second = (simulate(parse_scenario(SCENARIO)) for _ in range(2))

    created = [c["snapshot_id"] for run in first["runs"] for c in run["created"]]
    assert len(created) == 2 * 11 and all(sid.startswith("snap-") for sid in created)
    assert first["runs"][0]["instances"][1]["instance_id"].startswith("i-")
    assert first["runs"][0]["execution"]["virtual_retry_seconds"] > 0  # the jitter was drawn
    assert masked(second) == masked(first)


def test_another_scenario_gets_other_ids() -> None:
    ours = simulate(parse_scenario(SCENARIO))
    other = simulate(parse_scenario({**SCENARIO, "name": "seeded ids, another"}))

    ids = {r["instance_id"] for r in ours["runs"][0]["instances"]}
    assert ids.isdisjoint(r["instance_id"] for r in other["runs"][0]["instances"])
