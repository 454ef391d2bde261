"""`smart-vault sandbox SCENARIO.json`: rehearse on the emulator before deploying.

The scenario's runs on the emulated account (as `simulate`), then that account, with a Smart Vault
stack deployed on it, served on a local endpoint until Ctrl-C: every operator verb and the AWS CLI
can be tried on it with ``AWS_ENDPOINT_URL`` (smart_vault_sim.sandbox).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

import click

from smart_vault_cli.conventions import output_of
from smart_vault_cli.deployment import CliError, check_writable, read_json_file, write_json_file
from smart_vault_sim.scenario import Scenario, ScenarioError, parse_scenario
from smart_vault_sim.summary import print_summary

HOST = "127.0.0.1"  # loopback only: the sandbox answers anyone who reaches it, with no credentials
CREDENTIALS = "sandbox"  # moto's server accepts any key; these keep real ones out of the shell


UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN")  # they would point the shell at a real account


def environment(url: str, region: str, stack: str) -> dict[str, str]:
    """What a shell needs to point the CLI (and the AWS CLI) at the sandbox."""
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,  # the AWS CLI v1 reads only this one
        "AWS_ACCESS_KEY_ID": CREDENTIALS,
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS,
        "SMART_VAULT_STACK": stack,
    }


def _until_stopped() -> None:
    """Block until Ctrl-C or SIGTERM (then the server stops and the emulated account ends)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass


@click.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="Local port (0: any free one)."
)
@click.option(
    "--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON report here."
)
@click.option("--quiet", is_flag=True, help="Print only the environment lines.")
@click.option("--verbose", is_flag=True, help="Show the functions' logs and every request served.")
@click.pass_context
def sandbox(
    ctx: click.Context, scenario_file: Path, port: int, report_path: Path | None, quiet: bool, verbose: bool
) -> None:
    """Run SCENARIO_FILE's runs on the emulated account, then serve that account (the stack
    deployed on it) on a local endpoint until Ctrl-C: every verb, and the AWS CLI, work on it
    with the printed AWS_ENDPOINT_URL. Same scenario, same ids (seeded)."""
    try:
        scenario = parse_scenario(read_json_file(scenario_file, "scenario"))
    except ScenarioError as error:
        raise CliError(f"invalid scenario: {error}") from None
    if report_path:
        check_writable(report_path, "report")
    from smart_vault_sim.sandbox import deploy_stack, listen, served
    from smart_vault_sim.simulator import Simulation

    try:
        listener = listen(HOST, port)
    except OSError as error:
        raise CliError(f"cannot serve on {HOST}:{port}: {error.strerror}") from None

    # The emulator's own clients must reach moto in this process, not an endpoint in the shell.
    os.environ.pop("AWS_ENDPOINT_URL", None)
    logging.getLogger("werkzeug").setLevel(logging.INFO if verbose else logging.ERROR)
    stack = str(ctx.obj["stack"])
    sim = Simulation(scenario, verbose=verbose)
    with listener, sim.emulated():
        report = sim.report()
        if report_path:
            write_json_file(report_path, report, "report")
        as_json = output_of(ctx).json
        if not quiet and not as_json:
            print_summary(report, report_path)
        deploy_stack(sim, stack)
        with served(sim, listener) as url:
            if as_json:  # one document, on one line, so a script can read it before the server stops
                click.echo(json.dumps(announcement(url, scenario.region, stack)))
            else:
                _announce(url, scenario, stack, quiet=quiet)
            _until_stopped()


def announcement(url: str, region: str, stack: str) -> dict[str, Any]:
    """The ``--output json`` document: the endpoint and the shell environment that points at it."""
    return {"endpoint": url, "environment": environment(url, region, stack), "unset": list(UNSET)}


def _announce(url: str, scenario: Scenario, stack: str, *, quiet: bool) -> None:
    if not quiet:
        click.echo(f"\nServing the emulated account of {scenario.name!r} until Ctrl-C; in another shell:")
    for key, value in environment(url, scenario.region, stack).items():
        click.echo(f"export {key}={value}")
    click.echo(f"unset {' '.join(UNSET)}")
