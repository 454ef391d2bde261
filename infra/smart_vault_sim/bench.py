"""`make bench`: the workflow's cost per fleet size, measured on the emulated account.

Counts (state transitions, history events, API calls) are what AWS bills and throttles; wall
time is this machine's and only indicative. Not a test: nothing here asserts.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import simulate

SIZES = (10, 100, 1000)


def fleet_scenario(instances: int, *, map_concurrency: int = 40) -> dict[str, Any]:
    return {
        "name": f"bench {instances} instances x 2 volumes",
        "settings": {"map_concurrency": map_concurrency},
        "instances": [
            {
                "name": f"node-{n:05d}",
                "tags": {"backup": "True"},
                "volumes": [
                    {"device": "/dev/xvda", "size_gib": 8},
                    {"device": "/dev/sdf", "size_gib": 50},
                ],
            }
            for n in range(instances)
        ],
        "runs": [{"at": "2026-11-26T03:00:00Z"}],
    }


def measure(instances: int) -> dict[str, Any]:
    started = time.monotonic()
    report = simulate(parse_scenario(fleet_scenario(instances)))
    wall = time.monotonic() - started
    run = report["runs"][0]
    execution, calls = run["execution"], run["api_calls"]
    return {
        "instances": instances,
        "status": execution["status"],
        "transitions_per_instance": execution["state_transitions"] / instances,
        "create_snapshots_per_instance": calls.get("ec2:CreateSnapshots", 0) / instances,
        "describe_snapshots_per_instance": calls.get("ec2:DescribeSnapshots", 0) / instances,
        "history_events": execution["history_events"],
        "max_child_history_events": execution["max_child_history_events"],
        "api_calls": sum(calls.values()),
        "wall_seconds": wall,
    }


def main(sizes: tuple[int, ...] = SIZES) -> None:
    header = (
        f"{'instances':>9} {'status':>9} {'trans/inst':>10} {'Create/inst':>11} "
        f"{'Describe/inst':>13} {'history':>7} {'max child':>9} {'API calls':>9} {'wall s':>7}"
    )
    print(header)
    for size in sizes:
        m = measure(size)
        print(
            f"{m['instances']:>9} {m['status']:>9} {m['transitions_per_instance']:>10.2f} "
            f"{m['create_snapshots_per_instance']:>11.2f} "
            f"{m['describe_snapshots_per_instance']:>13.2f} "
            f"{m['history_events']:>7} {m['max_child_history_events']:>9} {m['api_calls']:>9} "
            f"{m['wall_seconds']:>7.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main(tuple(int(a) for a in sys.argv[1:]) or SIZES)
