"""A deployed Smart Vault stack on the emulated account: the simulator's machinery (the real ASL,
the real handlers) plus the CloudFormation outputs and function settings the CLI reads
(smart_vault_sim.sandbox.deploy_stack, as `smart-vault sandbox` deploys them)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from smart_vault_cli import deployment
from smart_vault_cli.main import cli
from smart_vault_sim.sandbox import deploy_stack
from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import Simulation

SCENARIO = {
    "name": "cli",
    "settings": {"keep_min": 1},
    "instances": [
        {"name": "web-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}, {"device": "/dev/sdf"}]},
        {"name": "db-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]},
        {"name": "bad-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]},
        {"name": "other", "tags": {}, "volumes": [{"device": "/dev/xvda"}]},
    ],
    "existing_snapshots": [
        {"label": "web-old", "instance": "web-1", "device": "/dev/xvda", "age_days": 30},
        {"label": "web-recent", "instance": "web-1", "device": "/dev/xvda", "age_days": 1},
    ],
    "faults": [{"operation": "CreateSnapshots", "instance": "bad-1", "error": "UnauthorizedOperation"}],
    "runs": [{"at": "2026-11-26T03:00:00Z"}],
}


class Stack:
    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.account = sim.account

    def cli(self, *args: str) -> Any:
        return CliRunner().invoke(cli, ["--stack", "SmartVault", "--region", "us-east-1", *args])

    def execution_names(self) -> list[str]:
        sfn = boto3.client("stepfunctions")
        return [e["name"] for e in sfn.list_executions(stateMachineArn=self.account.state_machine_arn)["executions"]]


@contextmanager
def deployed(scenario: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The scenario's account with the stack deployed; the CLI's own session is watched by the
    emulator (counted, request limits, scripted faults) like the functions' calls."""
    sim = Simulation(parse_scenario(scenario))
    with sim.emulated():
        deploy_stack(sim)
        monkeypatch.setattr(deployment, "new_session", sim.operator_session)
        yield Stack(sim)


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with deployed(SCENARIO, monkeypatch) as emulated:
        yield emulated


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test credentials, no retries, no instance metadata: for endpoints the tests serve."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


COPY_SCENARIO = {
    "name": "cli copies",
    "settings": {
        "keep_min": 1,
        "copy_regions": [
            {"region": "us-west-2", "kms_key": "alias/smart-vault-dr", "retention_days": 3, "keep_min": 1}
        ],
    },
    "instances": [{"name": "web-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]}],
    "runs": [{"at": "2026-11-26T03:00:00Z"}],
}


@pytest.fixture
def copy_stack() -> Iterator[Stack]:
    sim = Simulation(parse_scenario(COPY_SCENARIO))
    with sim.emulated():
        deploy_stack(sim)
        yield Stack(sim)
