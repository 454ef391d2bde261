"""The `smart-vault` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from smart_vault_cli.scenario import ScenarioError, parse_scenario
from smart_vault_cli.summary import print_summary


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Smart Vault: tag-driven EBS snapshot backups for EC2, orchestrated by Step Functions."""


@cli.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the JSON report here.",
)
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--verbose", is_flag=True, help="Show the functions' logs.")
def simulate(scenario_file: Path, report_path: Path | None, quiet: bool, verbose: bool) -> None:
    """Run the real workflow on an emulated AWS account, offline, and report what happened.

    Exit code 0 when the simulation ran (a FAILED backup run is a result), 2 for an invalid
    scenario, 1 for an internal error.
    """
    try:
        raw = json.loads(scenario_file.read_text())
    except FileNotFoundError:
        click.echo(f"error: scenario file not found: {scenario_file}", err=True)
        sys.exit(2)
    except json.JSONDecodeError as error:
        click.echo(f"error: scenario is not valid JSON: {error}", err=True)
        sys.exit(2)
    try:
        scenario = parse_scenario(raw)
    except ScenarioError as error:
        click.echo(f"error: invalid scenario: {error}", err=True)
        sys.exit(2)
    from smart_vault_cli.simulator import simulate as run_simulation

    try:
        report: dict[str, Any] = run_simulation(scenario, verbose=verbose)
    except Exception as error:  # exit 1: our fault, not the scenario's
        click.echo(f"internal error: {type(error).__name__}: {error}", err=True)
        if verbose:
            raise
        sys.exit(1)
    if report_path:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report, indent=2) + "\n")
    if not quiet:
        print_summary(report, report_path)


if __name__ == "__main__":
    cli()
