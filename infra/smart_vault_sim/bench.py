"""`make bench`: the workflow at fleet scale, measured on the emulated account.

Runs 1,000 and 10,000 instances (two volumes each) with 1-hour snapshots, and 10,000 whose
snapshots complete before the first check, with EC2's request buckets on the fleet's virtual
clock, and writes benchmarks.md and benchmarks.png into reports/ (``--docs``: docs/, the
published figures; ``--out DIR``: anywhere), with each fleet-scale target marked met or not.
Counts (state transitions, history events, API calls) are what AWS bills and throttles; wall
time is this machine's. Not a test: nothing here asserts.

    python -m smart_vault_sim.bench [--docs | --out DIR] [--redrive INSTANCES:FAILED | --redrive off]
                                    [INSTANCES[:SNAPSHOT_SECONDS] ...]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

from smart_vault_sim.ec2_buckets import UNCATEGORIZED
from smart_vault_sim.fleet_clock import INVOKE_OVERHEAD, call_latency
from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import Simulation

SNAPSHOT_SECONDS = 3600
# Snapshots that complete before the first check (wait_initial_seconds, 60 s by default).
QUICK_SNAPSHOT_SECONDS = 30
CASES = ((1000, SNAPSHOT_SECONDS), (10000, SNAPSHOT_SECONDS), (10000, QUICK_SNAPSHOT_SECONDS))
VOLUMES = 2
DOCS = Path(__file__).resolve().parents[2] / "docs"
REPORTS = Path("reports")  # as make demo's report: relative to where it runs
CREATE_REFILL = UNCATEGORIZED["CreateSnapshots"][1]  # tokens per second

# Prices in us-east-1 (AWS pricing pages, November 2026): Step Functions Standard $0.025 per
# 1,000 state transitions; Lambda (x86) $0.0000166667 per GB-second and $0.20 per million
# requests; S3 Standard $0.005 per 1,000 PUT/LIST and $0.0004 per 1,000 GET. EC2 API calls and
# SNS's first million publishes are free.
PRICE_TRANSITION = 0.025 / 1000
PRICE_GB_SECOND = 0.0000166667
PRICE_REQUEST = 0.20 / 1_000_000
PRICE_S3_WRITE = 0.005 / 1000
PRICE_S3_READ = 0.0004 / 1000
# Memory of each function as infra/smart_vault_infra/functions.py configures it.
MEMORY_MB = {"discover": 1024, "snapshot": 256, "check": 256, "prune": 256, "notify": 1024}
# The naive design compared against: one child per volume (CreateSnapshot), a 60-second
# Wait/Check poll until complete, then prune; same Lambda sizes and modelled durations.
NAIVE_POLL_SECONDS = 60


def fleet_scenario(
    instances: int, *, map_concurrency: int = 40, snapshot_seconds: int = 0, settings: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "name": f"bench {instances} instances x {VOLUMES} volumes",
        "settings": {"map_concurrency": map_concurrency, **(settings or {})},
        "instances": [
            {
                "name": f"node-{n:05d}",
                "tags": {"backup": "True"},
                "volumes": [
                    {"device": "/dev/xvda", "size_gib": 8},
                    {"device": "/dev/sdf", "size_gib": 50},
                ],
                "snapshot_seconds": snapshot_seconds,
            }
            for n in range(instances)
        ],
        "runs": [{"at": "2026-11-26T03:00:00Z"}],
    }


def cost(transitions: int, invocations: int, gb_seconds: float, s3_writes: int, s3_reads: int) -> float:
    return (
        transitions * PRICE_TRANSITION
        + invocations * PRICE_REQUEST
        + gb_seconds * PRICE_GB_SECOND
        + s3_writes * PRICE_S3_WRITE
        + s3_reads * PRICE_S3_READ
    )


def naive_cost(volumes: int, snapshot_seconds: int, *, check_seconds: float, snapshot_call_seconds: float) -> float:
    """Per volume: Snapshot, then Wait + Check + Choice per poll, then Prune (the Map's own
    transitions aside); Lambda: one Snapshot, one Check per poll, one Prune, at 256 MB."""
    polls = max(1, math.ceil(snapshot_seconds / NAIVE_POLL_SECONDS))
    transitions = volumes * (2 + 3 * polls)
    invocations = volumes * (2 + polls)
    seconds = volumes * (2 * snapshot_call_seconds + polls * check_seconds)
    return cost(transitions, invocations, seconds * 256 / 1024, 0, 0)


def _progress(simulation: Simulation, instances: int, started: float, done: threading.Event) -> None:
    """A line a minute on stderr while a long run goes (children finished, virtual time)."""
    while not done.wait(60):
        finished = len(simulation.hooks.clock.job_ends)
        print(
            f"  ... {finished:,}/{instances:,} children done, {time.monotonic() - started:.0f} s wall",
            file=sys.stderr,
            flush=True,
        )


def measure(
    instances: int,
    *,
    map_concurrency: int = 10000,
    snapshot_seconds: int = SNAPSHOT_SECONDS,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    scenario = parse_scenario(
        fleet_scenario(instances, map_concurrency=map_concurrency, snapshot_seconds=snapshot_seconds, settings=settings)
    )
    simulation = Simulation(scenario)
    simulation.wall_limit_seconds = 6 * 3600  # measured, not bounded: the shared machine is slow
    simulation.synthesize()  # CDK synthesis (cached on disk) is the stack's cost, not the run's
    started = time.monotonic()
    done = threading.Event()
    threading.Thread(target=_progress, args=(simulation, instances, started, done), daemon=True).start()
    try:
        report = simulation.run()
    finally:
        done.set()
    wall = time.monotonic() - started
    run = report["runs"][0]
    execution, calls, lam = run["execution"], run["api_calls"], run["lambda"]
    timeline = simulation.ec2_load.timeline
    requests = sorted(timeline.create_requests)
    creating = (requests[-1] - requests[0]) if len(requests) > 1 else 0.0
    rate = (len(requests) - 1) / creating if creating else 0.0
    ec2_calls = sum(n for k, n in calls.items() if k.startswith("ec2:"))
    by_function = lam["seconds_by_function"]
    gb_seconds = sum(seconds * MEMORY_MB.get(key, 256) / 1024 for key, seconds in by_function.items())
    s3_writes = sum(n for k, n in calls.items() if k in ("s3:PutObject", "s3:ListObjectsV2"))
    s3_writes += sum(n for k, n in run["state_machine_api_calls"].items() if k in ("s3:PutObject",))
    s3_reads = calls.get("s3:GetObject", 0) + run["state_machine_api_calls"].get("s3:GetObject", 0)
    checks = calls.get("ec2:DescribeSnapshots", 0)
    throttled_by_action: dict[str, int] = {}
    for _, action in timeline.throttled:
        throttled_by_action[action] = throttled_by_action.get(action, 0) + 1
    failed = [i for i in run["instances"] if i["status"] == "failed"]
    return {
        "instances": instances,
        "volumes": instances * VOLUMES,
        "map_concurrency": map_concurrency,
        "snapshot_seconds": snapshot_seconds,
        "status": execution["status"],
        "virtual_seconds": run["virtual_seconds"],
        "create_requests": len(requests),
        "creating_seconds": creating,
        "create_rate": rate,
        "create_ratio": rate / CREATE_REFILL,
        "throttled": run["ec2_throttling"],
        "throttled_by_action": throttled_by_action,
        "failed": len(failed),
        "failed_by_throttling": sum(1 for i in failed if i.get("aws_code") == "RequestLimitExceeded"),
        "transitions": execution["state_transitions"],
        "transitions_per_instance": execution["state_transitions"] / instances,
        "ec2_calls": ec2_calls,
        "ec2_calls_per_instance": ec2_calls / instances,
        "describe_snapshots": checks,
        "describe_snapshots_per_instance": checks / instances,
        "history_events": execution["history_events"],
        "max_child_history_events": execution["max_child_history_events"],
        "wall_seconds": wall,
        "load_average": os.getloadavg()[0],
        "cost": cost(execution["state_transitions"], lam["invocations"], gb_seconds, s3_writes, s3_reads),
        "naive_cost": naive_cost(
            instances * VOLUMES,
            snapshot_seconds,
            check_seconds=INVOKE_OVERHEAD + call_latency("ec2"),
            snapshot_call_seconds=INVOKE_OVERHEAD + call_latency("ec2"),
        ),
        "timeline": timeline,
    }


def plot(results: list[dict[str, Any]], path: Path) -> Any:
    """CreateSnapshots per second and snapshots pending, over the whole run (to its last state,
    not only its last snapshot); returns the matplotlib figure it saved."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 1, figsize=(9, 3.6 * len(results)), squeeze=False)
    for ax, m in zip(axes[:, 0], results, strict=True):
        timeline = m["timeline"]
        end = max([m["virtual_seconds"], *timeline.creates, *timeline.completions, 1.0])
        width = 10.0
        bins = int(end // width) + 1
        rates = [0.0] * bins
        for t in timeline.create_requests:
            rates[int(t // width)] += 1 / width
        xs = [i * width / 60 for i in range(bins)]
        ax.step(xs, rates, where="post", label="CreateSnapshots / s (10 s bins)")
        ax.axhline(CREATE_REFILL, color="red", linestyle="--", label=f"EC2 refill {CREATE_REFILL:g}/s")
        ax.set_ylabel("requests / s")
        ax.set_xlabel("virtual minutes")
        ax.set_xlim(0, end / 60)
        ax2 = ax.twinx()
        events = sorted([(t, 1) for t in timeline.creates] + [(t, -1) for t in timeline.completions])
        level, px, py = 0, [0.0], [0]
        for t, d in events:
            level += d
            px.append(t / 60)
            py.append(level)
        px.append(end / 60)  # the run goes on (Prune, Notify) after its last snapshot completes
        py.append(level)
        ax2.plot(px, py, color="green", label="snapshots pending")
        ax2.set_ylabel("snapshots pending")
        ax.set_title(f"{label(m)}, {VOLUMES} volumes each")
        lines = ax.get_legend_handles_labels()
        lines2 = ax2.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return fig


def label(m: dict[str, Any]) -> str:
    seconds = m["snapshot_seconds"]
    duration = f"{seconds // 3600}-hour" if seconds % 3600 == 0 else f"{seconds}-second"
    return f"{m['instances']:,} instances, {duration} snapshots"


def exact(total: int, count: int) -> str:
    """total / count as its exact decimal (a fleet of 1,000 or 10,000 divides exactly), so 3.0001
    never shows as 3.00; to six decimals, marked ~, when it does not terminate."""
    quotient = Decimal(total) / Decimal(count)
    if quotient == quotient.quantize(Decimal("0.000001")):
        return f"{quotient.normalize():f}"
    return f"~{quotient:.6f}"


def beside(value: float, target: float, *, decimals: int = 2) -> str:
    """``value`` with as many decimals as it takes not to round onto (or across) ``target``."""
    while decimals < 12:
        shown = round(value, decimals)
        if (shown > target) == (value > target) and (shown < target) == (value < target):
            break
        decimals += 1
    return f"{value:.{decimals}f}"


def targets(results: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    """The fleet-scale targets, each with what was measured (exactly: the counts beside a ratio,
    enough decimals to tell it from its bound) and whether it is met."""
    checks: list[tuple[str, str, bool]] = []
    for m in results:
        name, n = label(m), m["instances"]
        wall = m["wall_seconds"]
        if n >= 10000:
            throttled = sum(m["throttled"].values())
            failed = m["failed_by_throttling"]
            checks.append((f"{name}: no instance failed by throttling", f"{failed:,}", failed == 0))
            describe = sum(n for a, n in m["throttled_by_action"].items() if a.startswith("Describe"))
            checks.append((f"{name}: Describe calls within their buckets", f"{describe:,} throttled", describe == 0))
            checks.append((f"{name}: requests throttled", f"{throttled:,}", throttled == 0))
            if m["snapshot_seconds"] >= 3600:
                percent = m["create_ratio"] * 100
                checks.append(
                    (
                        f"{name}: CreateSnapshots at >= 80% of the refill rate",
                        f"{beside(percent, 80)}% ({m['create_requests']:,} requests in {m['creating_seconds']:,.3f} s)",
                        percent >= 80,
                    )
                )
                hours = m["virtual_seconds"] / 3600
                checks.append(
                    (
                        f"{name}: run within 3 h of virtual time",
                        f"{beside(hours, 3)} h ({m['virtual_seconds']:,} s of 10,800)",
                        hours <= 3,
                    )
                )
            else:
                checks.append(
                    (
                        f"{name}: <= 7 state transitions per instance",
                        f"{exact(m['transitions'], n)} ({m['transitions']:,} / {n:,})",
                        m["transitions"] <= 7 * n,
                    )
                )
                checks.append(
                    (
                        f"{name}: <= 3 DescribeSnapshots per instance",
                        f"{exact(m['describe_snapshots'], n)} ({m['describe_snapshots']:,} / {n:,})",
                        m["describe_snapshots"] <= 3 * n,
                    )
                )
            checks.append(
                (
                    f"{name}: simulated in <= 15 min of wall time",
                    f"{beside(wall / 60, 15, decimals=1)} min",
                    wall <= 900,
                )
            )
        elif n == 1000:
            checks.append(
                (f"{name}: simulated in <= 60 s of wall time", f"{beside(wall, 60, decimals=0)} s", wall <= 60)
            )
    return checks


def markdown(results: list[dict[str, Any]]) -> str:
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("Run duration (virtual)", lambda m: f"{m['virtual_seconds'] / 3600:.2f} h ({m['virtual_seconds']:,} s)"),
        (
            "CreateSnapshots/s while creating",
            lambda m: f"{m['create_rate']:.4f} ({beside(m['create_ratio'] * 100, 80)}% of 5/s refill)",
        ),
        ("Throttled requests (buckets)", lambda m: ", ".join(f"{k} {v}" for k, v in m["throttled"].items())),
        (
            "Throttled, by action",
            lambda m: ", ".join(f"{k} {v}" for k, v in sorted(m["throttled_by_action"].items())) or "none",
        ),
        ("Failed instances (by throttling)", lambda m: f"{m['failed']} ({m['failed_by_throttling']})"),
        ("State transitions / instance", lambda m: exact(m["transitions"], m["instances"])),
        ("EC2 calls / instance", lambda m: exact(m["ec2_calls"], m["instances"])),
        ("DescribeSnapshots / instance", lambda m: exact(m["describe_snapshots"], m["instances"])),
        ("Parent history events", lambda m: f"{m['history_events']}"),
        ("Largest child history", lambda m: f"{m['max_child_history_events']}"),
        ("Simulator wall time", lambda m: f"{m['wall_seconds']:.1f} s (load average {m['load_average']:.1f})"),
        ("Cost of one run", lambda m: f"${m['cost']:.4f}"),
        ("Naive design (per volume, 60 s polls)", lambda m: f"${m['naive_cost']:.4f}"),
    ]
    header = "| | " + " | ".join(label(m) for m in results) + " |"
    lines = [header, "|---|" + "---|" * len(results)]
    lines += [f"| {name} | " + " | ".join(fn(m) for m in results) + " |" for name, fn in rows]
    return "\n".join(lines)


def write_docs(results: list[dict[str, Any]], out: Path, redrive: dict[str, Any] | None = None) -> Path:
    """benchmarks.md and benchmarks.png into ``out`` (created); returns the page's path."""
    out.mkdir(parents=True, exist_ok=True)
    plot(results, out / "benchmarks.png")
    m0 = results[0]
    verdicts = "\n".join(
        f"| {name} | {measured} | {'met' if met else '**not met**'} |" for name, measured, met in targets(results)
    )
    text = f"""# Benchmarks (`make bench`)

Generated by `make bench-docs` (`python -m smart_vault_sim.bench --docs`; `make bench` writes
the same page into reports/): one backup run of a fleet of
instances with {VOLUMES} volumes each, `map_concurrency` {m0["map_concurrency"]:,}, the default
pacing (`create_rate_per_second` 4), EC2's documented request buckets on the fleet's virtual
clock (see docs/decisions.md, "Fleet scale"). Snapshots take the stated time to complete
(`snapshot_seconds`); 30-second snapshots complete before the first check. Figures are counts
from the emulated account; only the wall time is this machine's (2 cores; the load average
beside it says how busy the machine was).

{markdown(results)}

Cost: Step Functions state transitions, Lambda requests and GB-seconds (modelled durations:
docs/scenarios.md, "Virtual time"; memory as the stack configures it) and S3 requests, at
us-east-1 prices; EC2 API calls are free. The naive design creates one snapshot per volume
with its own child execution and polls every 60 seconds until the snapshot completes.

## Targets

| Target | Measured | |
|---|---|---|
{verdicts}

![CreateSnapshots per second and snapshots pending over virtual time](benchmarks.png)
"""
    if redrive:
        text += f"""
## Redrive

A night of {redrive["instances"]:,} instances in which {redrive["failed"]} are refused CreateSnapshots
once, then the Redrive of that execution (docs/operations.md, "Re-run and Redrive"): the redrive's
work grows with the failed instances, not with the fleet.

{redrive_markdown(redrive)}
"""
    page = out / "benchmarks.md"
    page.write_text(text)
    return page


REDRIVE_FLEET, REDRIVE_FAILED = 1000, 10


def measure_redrive(instances: int = REDRIVE_FLEET, failed: int = REDRIVE_FAILED) -> dict[str, Any]:
    """A night in which ``failed`` instances are refused CreateSnapshots once, then its Redrive:
    what the redrive costs against the night (it should grow with ``failed``, not the fleet)."""
    scenario = fleet_scenario(instances)
    names = [i["name"] for i in scenario["instances"]]
    step = max(len(names) // failed, 1)
    failing = names[::step][:failed]
    scenario["faults"] = [
        {"operation": "CreateSnapshots", "instance": n, "error": "UnauthorizedOperation", "count": 1} for n in failing
    ]
    scenario["runs"] = [{"at": "2026-11-26T03:00:00Z"}, {"at": "2026-11-26T09:00:00Z", "redrive": True}]
    simulation = Simulation(parse_scenario(scenario))
    with simulation.emulated():
        night, redrive = (
            simulation.run_at(0, simulation.scenario.runs[0]),
            simulation.run_at(1, simulation.scenario.runs[1]),
        )

    def figures(run: dict[str, Any]) -> dict[str, Any]:
        return {
            "status": run["execution"]["status"],
            "transitions": run["execution"]["state_transitions"],
            "history_events": run["execution"]["history_events"],
            "api_calls": sum(run["api_calls"].values()),
            "create_snapshots": run["api_calls"].get("ec2:CreateSnapshots", 0),
        }

    return {
        "instances": instances,
        "failed": failed,
        "night": figures(night),
        "redrive": figures(redrive) | {"redriven": len(redrive.get("redriven_instances") or ())},
    }


def redrive_markdown(m: dict[str, Any]) -> str:
    night, redrive = m["night"], m["redrive"]
    rows = [
        ("Status", night["status"], redrive["status"]),
        ("Instances attempted", f"{m['instances']:,}", f"{redrive['redriven']:,}"),
        ("State transitions", f"{night['transitions']:,}", f"{redrive['transitions']:,}"),
        ("Parent history events", f"{night['history_events']:,}", f"{redrive['history_events']:,}"),
        ("AWS API calls", f"{night['api_calls']:,}", f"{redrive['api_calls']:,}"),
        ("CreateSnapshots", f"{night['create_snapshots']:,}", f"{redrive['create_snapshots']:,}"),
    ]
    lines = ["| | The night | Its Redrive |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def parse_cases(args: list[str]) -> tuple[tuple[int, int], ...]:
    """``INSTANCES`` or ``INSTANCES:SNAPSHOT_SECONDS`` per argument; the standard cases without.
    ValueError naming the argument for anything else."""
    cases = []
    for arg in args:
        instances, _, seconds = arg.partition(":")
        try:
            case = (int(instances), int(seconds or SNAPSHOT_SECONDS))
        except ValueError:
            case = (0, 0)
        if case[0] < 1 or case[1] < 0:
            raise ValueError(f"{arg!r} is not INSTANCES[:SNAPSHOT_SECONDS] (e.g. 2000 or 2000:3600)")
        cases.append(case)
    return tuple(cases) or CASES


class _OneLineParser(argparse.ArgumentParser):
    """A malformed argument is one line naming it, and exit 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (python -m smart_vault_sim.bench --help)\n")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = _OneLineParser(
        prog="python -m smart_vault_sim.bench", description="The workflow at fleet scale, on the emulated account."
    )
    parser.add_argument("cases", nargs="*", metavar="INSTANCES[:SNAPSHOT_SECONDS]", help="default: the standard cases")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=REPORTS, help="directory for benchmarks.md/.png (default: reports)")
    where.add_argument(
        "--docs", dest="out", action="store_const", const=DOCS, help="update the published docs/benchmarks.md"
    )
    parser.add_argument(
        "--redrive",
        default=f"{REDRIVE_FLEET}:{REDRIVE_FAILED}",
        metavar="INSTANCES:FAILED",
        help=f"the redrive measurement (default {REDRIVE_FLEET}:{REDRIVE_FAILED}), or off",
    )
    args, unknown = parser.parse_known_args(argv)
    # "-5:60" looks like an option to argparse: it is a malformed case, and named as one.
    negative = [a for a in unknown if a[1:2].isdigit()]
    if len(negative) < len(unknown):
        parser.error(f"unrecognized arguments: {' '.join(a for a in unknown if a not in negative)}")
    try:
        args.cases = parse_cases([*args.cases, *negative])
    except ValueError as error:
        parser.error(str(error))
    try:
        args.redrive = None if args.redrive == "off" else tuple(int(n) for n in args.redrive.split(":"))
    except ValueError:
        parser.error(f"--redrive {args.redrive!r} is not INSTANCES:FAILED or off")
    if args.redrive is not None and len(args.redrive) != 2:
        parser.error("--redrive takes INSTANCES:FAILED or off")
    return args


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    results = []
    for instances, snapshot_seconds in args.cases:
        m = measure(instances, snapshot_seconds=snapshot_seconds)
        print(
            f"{label(m)}: {m['status']} {m['virtual_seconds']:.0f} virtual s, "
            f"{m['create_ratio']:.0%} of refill, throttled {m['throttled']}, failed {m['failed']}, "
            f"{m['transitions_per_instance']:.2f} transitions/instance, wall {m['wall_seconds']:.0f} s, "
            f"${m['cost']:.2f} (naive ${m['naive_cost']:.2f})",
            flush=True,
        )
        results.append(m)
        write_docs(results, args.out)  # after each case, so a long run leaves the figures it has
    redrive = None
    if args.redrive is not None:
        redrive = measure_redrive(*args.redrive)
        print(f"redrive of {redrive['failed']} failed in {redrive['instances']}: {redrive['redrive']}", flush=True)
    print(f"wrote {write_docs(results, args.out, redrive)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
