"""Render a state machine as a picture, each state coloured by what happened in one run: the
backup workflow, or the restore drill's for a drill run or execution."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smart_vault.errors import shorten_error
from smart_vault_cli.deployment import CliError, Deployment
from smart_vault_infra.paths import definition_path, drill_definition_path
from smart_vault_sim.history import failed_tasks, read_history, state_name, state_outcomes
from smart_vault_sim.summary import cause_text

# Outcome -> (fill colour, legend text). Colours are fixed: tests look for them in the PNG.
OUTCOMES = {
    "succeeded": ("#7bc96f", "succeeded"),
    "retried": ("#ffd43b", "succeeded after retries"),
    "caught": ("#ff922b", "failed, caught"),
    "failed": ("#e03131", "failed"),
    "not_reached": ("#dee2e6", "not reached"),
    "unknown": ("#b197fc", "unknown (child executions not readable)"),
}
FAILURES_SHOWN = 20  # failed instances named in the picture; the rest are counted

Outcomes = Mapping[str, Mapping[str, int]]


@dataclass(frozen=True)
class Picture:
    """What to draw: a definition, its states' counts (None: uncoloured), and what failed."""

    definition: Mapping[str, Any]
    outcomes: Outcomes | None
    title: str
    failures: tuple[str, ...] = ()  # "db-1: Restore: ec2:CreateVolume failed: ..."
    unknown: frozenset[str] = field(default_factory=frozenset)  # Maps whose children were not read


def outcome_of(
    state: Mapping[str, Any], counts: Mapping[str, int] | None, *, failure_path: bool = False, unknown: bool = False
) -> str:
    """A state's colour. ``failure_path``: reached only through a Catch, so entering it means a
    failure was caught; ``unknown``: inside a Map whose child executions could not be read."""
    if not counts or not counts.get("entered"):
        return "unknown" if unknown else "not_reached"
    if state["Type"] == "Fail":
        return "failed"
    failed = counts.get("failed", 0)
    if failed and counts.get("entered", 0) > counts.get("exited", 0):
        return "failed"
    if failed or failure_path:
        return "caught"
    if counts.get("retries"):
        return "retried"
    return "succeeded"


def _states(machine: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield from machine["States"].items()


def _edges(name: str, state: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    if "Next" in state:
        yield name, state["Next"], ""
    for choice in state.get("Choices", []):
        yield name, choice["Next"], choice_label(choice)
    if "Default" in state:
        yield name, state["Default"], "default"
    for catch in state.get("Catch", []):
        yield name, catch["Next"], "catch"


def failure_path(machine: Mapping[str, Any]) -> set[str]:
    """The states reached only through a Catch: not reachable from StartAt by Next, Choice and
    Default edges (RestoreFailed, SendFallbackAlert...)."""
    reached: set[str] = set()
    pending = [machine["StartAt"]]
    while pending:
        name = pending.pop()
        if name in reached or name not in machine["States"]:
            continue
        reached.add(name)
        pending += [target for _, target, label in _edges(name, machine["States"][name]) if label != "catch"]
    return set(machine["States"]) - reached


# Choice rule comparison -> its sign: StringEquals, NumericEquals, BooleanEquals -> "=".
_COMPARISONS = {
    "Equals": "=",
    "LessThan": "<",
    "GreaterThan": ">",
    "LessThanEquals": "<=",
    "GreaterThanEquals": ">=",
    "Matches": "matches",
}
_TESTS = {"IsPresent": "present", "IsNull": "null", "IsString": "a string", "IsNumeric": "a number"}
_TESTS |= {"IsBoolean": "a boolean", "IsTimestamp": "a timestamp"}


def choice_label(rule: Mapping[str, Any]) -> str:
    """A Choice rule as people read it: ``status = pending``, ``resume_at is not present``,
    ``failed > 0``, ``status = completed and copies = true``."""
    for joiner in ("And", "Or"):
        if joiner in rule:
            return f" {joiner.lower()} ".join(choice_label(r) for r in rule[joiner])
    if "Not" in rule:
        return f"not ({choice_label(rule['Not'])})"
    if "Condition" in rule:  # JSONata
        return str(rule["Condition"]).strip("{%} ")
    variable = str(rule.get("Variable", "")).split(".")[-1]
    for key, value in rule.items():
        if key in _TESTS:
            return f"{variable} {'is' if value else 'is not'} {_TESTS[key]}"
        if key in ("Variable", "Next", "Comment", "Assign", "Output"):
            continue
        base = key.removesuffix("Path")
        for kind in ("String", "Numeric", "Boolean", "Timestamp"):
            base = base.removeprefix(kind)
        shown = value.removeprefix("$.") if key.endswith("Path") else json.dumps(value).strip('"')
        return f"{variable} {_COMPARISONS.get(base, base)} {shown}"
    return ""


def to_dot(picture: Picture) -> str:
    outcomes = picture.outcomes
    lines = [
        "digraph smart_vault {",
        '  graph [rankdir=TB, fontname="Helvetica", fontsize=12, labelloc=t, '
        f'label="{_escape(picture.title)}", nodesep=0.35, ranksep=0.35];',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11, penwidth=1.2];',
        '  edge [fontname="Helvetica", fontsize=9, color="#495057"];',
    ]

    def add(machine: Mapping[str, Any], indent: str, unknown: bool) -> None:
        lines.append(
            f'{indent}"__start_{machine["StartAt"]}" [shape=circle, label="", width=0.18, '
            'style=filled, fillcolor="#212529"];'
        )
        lines.append(f'{indent}"__start_{machine["StartAt"]}" -> "{machine["StartAt"]}";')
        caught_only = failure_path(machine)
        for name, state in _states(machine):
            counts = (outcomes or {}).get(name)
            colour = "#e7f5ff"
            if outcomes is not None:
                colour = OUTCOMES[outcome_of(state, counts, failure_path=name in caught_only, unknown=unknown)][0]
            shape = "diamond" if state["Type"] == "Choice" else "box"
            lines.append(
                f'{indent}"{name}" [label="{_state_label(name, state, counts)}", fillcolor="{colour}", shape={shape}];'
            )
            processor = state.get("ItemProcessor")
            if processor:
                lines.append(f'{indent}subgraph "cluster_{name}" {{')
                lines.append(f'{indent}  label="{name}: one child execution per instance"; style="rounded,dashed";')
                add(processor, indent + "  ", unknown or name in picture.unknown)
                lines.append(f"{indent}}}")
                lines.append(f'{indent}"{name}" -> "__start_{processor["StartAt"]}" [style=dashed, label="each item"];')
            for source, target, label in _edges(name, state):
                style = ', style=dashed, color="#e8590c"' if label == "catch" else ""
                lines.append(f'{indent}"{source}" -> "{target}" [label="{_escape(label)}"{style}];')
            if state.get("End") or state["Type"] in ("Succeed", "Fail"):
                lines.append(f'{indent}"{name}" -> "__end_{name}";')
                lines.append(
                    f'{indent}"__end_{name}" [shape=doublecircle, label="", width=0.14, style=filled, '
                    'fillcolor="#212529"];'
                )

    add(picture.definition, "  ", False)
    if outcomes is not None:
        lines.append('  subgraph cluster_legend { label="Legend"; style=rounded; fontsize=10;')
        for key, (colour, text) in OUTCOMES.items():
            lines.append(f'    "legend_{key}" [label="{text}", fillcolor="{colour}", fontsize=9];')
        lines.append("  }")
    lines += _failures_note(picture.failures)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _state_label(name: str, state: Mapping[str, Any], counts: Mapping[str, int] | None) -> str:
    label = f"{name}\\n({state['Type']})"
    if counts and counts.get("entered", 0) > 1:
        label += f"\\n{counts['entered']}x entered"
    if counts and counts.get("retries"):
        label += f"\\nretried {counts['retries']}x"
    if counts and counts.get("failed"):
        label += f"\\n{counts['failed']} failed"
    return label


def _failures_note(failures: tuple[str, ...]) -> list[str]:
    """A note naming each failed instance and its error, left-aligned lines (DOT's \\l)."""
    if not failures:
        return []
    shown = [*failures[:FAILURES_SHOWN]]
    if len(failures) > FAILURES_SHOWN:
        shown.append(f"... and {len(failures) - FAILURES_SHOWN} more")
    text = "".join(f"{_escape(line)}\\l" for line in [f"Failed ({len(failures)}):", *shown])
    return [f'  "__failures" [shape=note, style=filled, fillcolor="#ffe3e3", fontsize=10, label="{text}"];']


def _escape(text: str) -> str:
    """Text inside a DOT double-quoted string: backslashes and quotes escaped, on one line."""
    return " ".join(text.replace("\\", "\\\\").replace('"', '\\"').split())


def render(dot_source: str, output: Path) -> None:
    fmt = output.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png"):
        raise CliError(f"output must end in .svg or .png, got {output.name}")
    dot = shutil.which("dot")
    if dot is None:
        raise CliError(
            "Graphviz is not installed (no 'dot' on PATH): install it with 'apt-get install graphviz' "
            "(make test and .ci/run do this for you)"
        )
    drawn = subprocess.run([dot, f"-T{fmt}"], input=dot_source.encode(), capture_output=True, check=False)
    if drawn.returncode != 0:
        reason = " ".join(drawn.stderr.decode(errors="replace").split())[:300]
        raise CliError(f"Graphviz 'dot' failed (exit {drawn.returncode}): {reason}")
    try:  # written here, not by dot, so that an unwritable path is named as Python sees it
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(drawn.stdout)
    except OSError as error:
        raise CliError(f"cannot write the picture to {output}: {error.strerror or error}") from None


def load_definition(path: Path) -> dict[str, Any]:
    definition = json.loads(path.read_text())
    if not isinstance(definition, dict):
        raise CliError(f"{path} is not a state machine definition (a JSON object)")
    return definition


def report_run(report: Any, index: int) -> dict[str, Any]:
    """Run ``index`` of a simulator report, checked enough to colour the graph by it."""
    runs = report.get("runs") if isinstance(report, dict) else None
    if not isinstance(runs, list) or not runs:
        raise CliError("the file is not a simulator report (no 'runs' list); write one with 'simulate --report'")
    if not -len(runs) <= index < len(runs):
        raise CliError(f"the report has {len(runs)} run(s); --run {index} is not one")
    run = runs[index]
    execution = run.get("execution") if isinstance(run, dict) else None
    states = run.get("states", {}) if isinstance(run, dict) else None
    if (
        not isinstance(execution, dict)
        or not isinstance(run.get("at"), str)
        or "status" not in execution
        or not isinstance(states, dict)
        or not all(isinstance(v, dict) for v in states.values())
    ):
        raise CliError(f"run {index} of the report is not a simulator run (needs 'at', 'execution.status', 'states')")
    return {**run, "states": states}


def of_report(report: Any, index: int) -> Picture:
    """Run ``index`` of a simulator report: a drill run on the drill's machine."""
    run = report_run(report, index)
    drill = run.get("workflow") == "drill"
    failures = [
        f"{row['name']}: {shorten_error(row.get('error') or '')}"
        for row in run.get("instances") or ()
        if row.get("status") == "failed"
    ]
    failures += [
        f"{row['name']}: {row.get('step')}: {shorten_error(row.get('error') or '')}"
        for row in (run.get("drill") or {}).get("instances") or ()
        if row.get("status") == "failed"
    ]
    kind = "drill run" if drill else "run"
    return Picture(
        definition=load_definition(drill_definition_path() if drill else definition_path()),
        outcomes=run["states"],
        title=f"Smart Vault {kind} {run['at']}: {run['execution']['status']}",
        failures=(*_execution_error(run["execution"]), *failures),
    )


def _execution_error(execution: Mapping[str, Any]) -> list[str]:
    if execution.get("status") == "SUCCEEDED" or not execution.get("error"):
        return []
    return [f"execution: {execution['error']}: {shorten_error(cause_text(execution.get('cause')))}"]


def of_execution(dep: Deployment, execution: str, warn: Callable[[str], None]) -> Picture:
    """One execution of the deployment, read from its history (every page) and its Map Runs'
    child executions; a drill execution on the drill's machine."""
    description = dep.describe(execution)
    sfn = dep.client("stepfunctions")
    history = read_history(sfn, description["executionArn"])
    children, unknown = _child_sequences(sfn, history, warn)
    drill = str(description.get("stateMachineArn", "")).endswith("-drill")
    # A backup's failures from its audit records (Notify's reconciled view); a drill's from its
    # history (its Map is inline: every iteration's events are in the parent's).
    failures = [shorten_error(line) for line in failed_tasks(history)] if drill else _failed_instances(dep, description)
    return Picture(
        definition=load_definition(drill_definition_path() if drill else definition_path()),
        outcomes=state_outcomes(history, children),
        title=f"Smart Vault {'drill ' if drill else ''}execution {description['name']}: {description['status']}",
        failures=(*_execution_error(description), *failures),
        unknown=unknown,
    )


def _failed_instances(dep: Deployment, description: dict[str, Any]) -> list[str]:
    """The backup execution's failed instances, from its records in the audit bucket."""
    found = []
    for outcome in dep.outcomes(description).values():
        if outcome.get("status") == "failed":
            error = outcome.get("error") or {}
            detail = f"{error.get('type')}: {error.get('message')}" if error else outcome.get("reason") or ""
            found.append(
                f"{outcome.get('name') or outcome['instance_id']}: {outcome.get('step')}: {shorten_error(detail)}"
            )
    return sorted(found)


def _child_sequences(
    sfn: Any, history: list[dict[str, Any]], warn: Callable[[str], None]
) -> tuple[list[list[tuple[str, str]]], frozenset[str]]:
    """The Map Runs' child histories (every page of each), and the Map states whose children
    could not be listed: drawn as unknown, not as not reached."""
    sequences = []
    unknown: set[str] = set()
    current_map = ""
    for event in history:
        if event["type"] == "MapStateEntered":
            current_map = state_name(event)
        arn = (event.get("mapRunStartedEventDetails") or {}).get("mapRunArn")
        if not arn:
            continue
        try:
            children = [
                child
                for page in sfn.get_paginator("list_executions").paginate(mapRunArn=arn)
                for child in page["executions"]
            ]
        except Exception:  # the local emulator cannot list Map Run children
            warn(f"child executions of {current_map or arn} could not be listed: drawn as unknown")
            unknown.add(current_map)
            continue
        for child in children:
            sequences.append([(e["type"], state_name(e)) for e in read_history(sfn, child["executionArn"])])
    return sequences, frozenset(unknown)
