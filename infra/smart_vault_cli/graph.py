"""Render the state machine as a picture, each state coloured by what happened in one run."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from smart_vault_cli.deployment import CliError

# Outcome -> (fill colour, legend text). Colours are fixed: tests look for them in the PNG.
OUTCOMES = {
    "succeeded": ("#7bc96f", "succeeded"),
    "retried": ("#ffd43b", "succeeded after retries"),
    "caught": ("#ff922b", "failed, caught"),
    "failed": ("#e03131", "failed"),
    "not_reached": ("#dee2e6", "not reached"),
}


def outcome_of(state: Mapping[str, Any], counts: Mapping[str, int] | None) -> str:
    if not counts or not counts.get("entered"):
        return "not_reached"
    if state["Type"] == "Fail":
        return "failed"
    failed = counts.get("failed", 0)
    if failed and counts.get("entered", 0) > counts.get("exited", 0):
        return "failed"
    if failed:
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
        yield name, choice["Next"], _choice_label(choice)
    if "Default" in state:
        yield name, state["Default"], "default"
    for catch in state.get("Catch", []):
        yield name, catch["Next"], "catch"


def _choice_label(choice: Mapping[str, Any]) -> str:
    for key, value in choice.items():
        if key not in ("Variable", "Next"):
            operator = key.replace("String", "").replace("Numeric", "")
            return f"{choice.get('Variable', '').split('.')[-1]} {operator} {value}"
    return ""


def to_dot(definition: Mapping[str, Any], outcomes: Mapping[str, Mapping[str, int]] | None, title: str) -> str:
    lines = [
        "digraph smart_vault {",
        '  graph [rankdir=TB, fontname="Helvetica", fontsize=12, labelloc=t, '
        f'label="{_escape(title)}", nodesep=0.35, ranksep=0.35];',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11, penwidth=1.2];',
        '  edge [fontname="Helvetica", fontsize=9, color="#495057"];',
    ]

    def add(machine: Mapping[str, Any], indent: str) -> None:
        lines.append(
            f'{indent}"__start_{machine["StartAt"]}" [shape=circle, label="", width=0.18, '
            'style=filled, fillcolor="#212529"];'
        )
        lines.append(f'{indent}"__start_{machine["StartAt"]}" -> "{machine["StartAt"]}";')
        for name, state in _states(machine):
            counts = (outcomes or {}).get(name)
            outcome = outcome_of(state, counts) if outcomes is not None else "succeeded"
            colour = OUTCOMES[outcome][0] if outcomes is not None else "#e7f5ff"
            label = f"{name}\\n({state['Type']})"
            if counts and counts.get("entered", 0) > 1:
                label += f"\\n{counts['entered']}x entered"
            if counts and counts.get("retries"):
                label += f"\\nretried {counts['retries']}x"
            if counts and counts.get("failed"):
                label += f"\\n{counts['failed']} failed"
            shape = "diamond" if state["Type"] == "Choice" else "box"
            lines.append(f'{indent}"{name}" [label="{label}", fillcolor="{colour}", shape={shape}];')
            processor = state.get("ItemProcessor")
            if processor:
                lines.append(f'{indent}subgraph "cluster_{name}" {{')
                lines.append(f'{indent}  label="{name}: one child execution per instance"; style="rounded,dashed";')
                add(processor, indent + "  ")
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

    add(definition, "  ")
    if outcomes is not None:
        lines.append('  subgraph cluster_legend { label="Legend"; style=rounded; fontsize=10;')
        for key, (colour, text) in OUTCOMES.items():
            lines.append(f'    "legend_{key}" [label="{text}", fillcolor="{colour}", fontsize=9];')
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace('"', '\\"')


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
    return {"at": run["at"], "execution": execution, "states": states}
