"""`smart-vault graph` as an operator reads it: a drill run drawn on the drill's workflow with
readable Choice edges, the failure path coloured as caught and the failed instances named; an
execution whose child executions cannot be read drawn as unknown; a history of many pages read
to its end."""

from __future__ import annotations

import html
import json
import re

import boto3
import pytest
from click.testing import CliRunner

from smart_vault_cli.graph import OUTCOMES
from smart_vault_cli.main import cli
from smart_vault_sim import history
from tests.cli.conftest import deployed

DRILL = {
    "name": "a drill with a refused CreateVolume",
    "settings": {"drill": {"instances_per_drill": 2}},
    "instances": [
        {"name": "web-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]},
        {"name": "db-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]},
    ],
    "faults": [{"operation": "CreateVolume", "instance": "db-1", "error": "VolumeLimitExceeded", "count": 1}],
    "runs": [{"at": "2026-11-26T03:00:00Z"}, {"at": "2026-11-26T05:00:00Z", "workflow": "drill"}],
}


def fills(svg: str) -> dict[str, str]:
    """Each drawn node's name -> its fill colour, from Graphviz's SVG."""
    found = re.findall(r'<g id="node\d+" class="node">\s*<title>([^<]+)</title>\s*<\w+ fill="([^"]+)"', svg)
    return dict(found)


@pytest.fixture(scope="module")
def drill_svg(tmp_path_factory):
    folder = tmp_path_factory.mktemp("drill")
    (folder / "s.json").write_text(json.dumps(DRILL))
    runner = CliRunner()
    simulated = runner.invoke(cli, ["simulate", "--quiet", str(folder / "s.json"), "--report", str(folder / "r.json")])
    assert simulated.exit_code == 0, simulated.output
    drawn = runner.invoke(cli, ["graph", "--report", str(folder / "r.json"), "--run", "1", "-o", str(folder / "d.svg")])
    assert drawn.exit_code == 0, drawn.output
    return html.unescape((folder / "d.svg").read_text()), json.loads((folder / "r.json").read_text())["runs"][1]


def test_graph_of_a_drill_run_draws_the_drill_workflow(drill_svg):
    svg, run = drill_svg
    colours = fills(svg)
    # The drill's states, coloured by what happened; none of the backup workflow's
    assert colours["Select"] == colours["SweepLeftovers"] == OUTCOMES["succeeded"][0]
    assert colours["Restore"] == OUTCOMES["caught"][0]  # db-1's CreateVolume refused, caught
    assert colours["Failed"] == OUTCOMES["failed"][0]  # the drill failed: its Fail state
    assert "Snapshot" not in colours and "Discover" not in colours
    # Two iterations of the inline Map interleave in one history: db-1's failed Restore is
    # counted on Restore, not on the CheckVolumes web-1 entered meanwhile
    assert run["states"]["Restore"]["entered"] == 2 and run["states"]["Restore"]["failed"] == 1
    assert run["states"]["CheckVolumes"].get("errors", 0) == 0


def test_graph_of_a_drill_run_colours_the_failure_path_as_caught(drill_svg):
    svg, _ = drill_svg
    colours = fills(svg)
    # RestoreFailed is reached only through Restore's Catch: entering it is a caught failure
    assert colours["RestoreFailed"] == OUTCOMES["caught"][0]
    assert colours["CheckFailed"] == colours["CleanupFailed"] == OUTCOMES["not_reached"][0]


def test_graph_labels_choice_edges_with_their_rule(drill_svg):
    svg, _ = drill_svg
    assert ">status = available<" in svg  # VolumesAvailable -> Cleanup
    assert ">status = passed<" in svg and ">status = warning<" in svg  # DrillPassed -> Passed
    assert "StringEquals" not in svg and "Equals" not in svg


def test_graph_of_a_drill_run_names_the_failed_instances_and_errors(drill_svg):
    svg, run = drill_svg
    failed = next(row for row in run["drill"]["instances"] if row["status"] == "failed")
    assert failed["name"] == "db-1"
    note = svg[svg.index("<title>__failures</title>") :].split("</g>")[0]
    assert "Failed (2):" in note and "execution: DrillFailed" in note
    assert "db-1: Restore: ec2:CreateVolume failed: VolumeLimitExceeded" in note


def test_graph_of_an_execution_draws_unread_children_as_unknown(stack, tmp_path):
    # The emulator cannot list a Map Run's child executions (ListExecutions by mapRunArn)
    stack.cli("run", "--follow")
    out = tmp_path / "run.svg"
    result = stack.cli("graph", "--execution", stack.execution_names()[0], "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "child executions of BackupInstances could not be listed: drawn as unknown" in result.stderr
    colours = fills(out.read_text())
    for inside in ("Snapshot", "CheckSnapshots", "Prune", "RecordFailure"):
        assert colours[inside] == OUTCOMES["unknown"][0], inside
    assert colours["Discover"] == OUTCOMES["succeeded"][0]  # the parent's own states are known
    # and the failed instance is named, from the execution's records in the audit bucket
    assert re.search(r"bad-1: Snapshot: .*UnauthorizedOperation", html.unescape(out.read_text()))


def test_graph_reads_every_page_of_the_history(stack, tmp_path, monkeypatch):
    # GetExecutionHistory answers in pages (the emulator as AWS): with pages of 5 events, the
    # picture is the same as with one page of all of them
    stack.cli("run", "--follow")
    name = stack.execution_names()[0]
    whole = tmp_path / "whole.svg"
    assert stack.cli("graph", "--execution", name, "-o", str(whole)).exit_code == 0
    monkeypatch.setattr(history, "HISTORY_PAGE", 5)
    paged = tmp_path / "paged.svg"
    assert stack.cli("graph", "--execution", name, "-o", str(paged)).exit_code == 0
    assert fills(paged.read_text()) == fills(whole.read_text())
    assert fills(paged.read_text())["Notify"] == OUTCOMES["succeeded"][0]  # among the last events


def test_graph_of_a_drill_execution_names_its_failed_instance(monkeypatch, tmp_path):
    # A deployment whose weekly drill could not restore db-1 (CreateVolume refused)
    with deployed(DRILL, monkeypatch) as stack:
        for index, at in enumerate(stack.sim.scenario.runs):
            stack.sim.run_at(index, at)
        sfn = boto3.client("stepfunctions")
        drill = sfn.list_executions(stateMachineArn=stack.account.drill_state_machine_arn)["executions"][0]
        out = tmp_path / "drill.svg"
        result = stack.cli("graph", "--execution", drill["executionArn"], "-o", str(out))
    assert result.exit_code == 0, result.output
    svg = html.unescape(out.read_text())
    colours = fills(svg)
    # Drawn on the drill's workflow, from its history
    assert colours["Restore"] == colours["RestoreFailed"] == OUTCOMES["caught"][0]
    assert colours["Failed"] == OUTCOMES["failed"][0] and "Discover" not in colours
    note = svg[svg.index("<title>__failures</title>") :].split("</g>")[0]
    assert "db-1: Restore: ec2:CreateVolume failed: VolumeLimitExceeded" in note
    assert "web-1" not in note  # restored and cleaned up
