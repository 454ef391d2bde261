"""EC2's DryRun in the emulated account: the request is judged by the IAM evaluator against the
caller's role and answered DryRunOperation (allowed) or UnauthorizedOperation (denied, with the
encoded message), and nothing in the account changes (EC2 API Reference, "DryRun")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from smart_vault_sim import fleet
from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import Simulation

SCENARIO = {
    "name": "dry run",
    "settings": {"keep_min": 1, "lock": {"mode": "governance", "days": 7}},
    "instances": [{"name": "web-1", "tags": {"backup": "True"}, "volumes": [{"device": "/dev/xvda"}]}],
    "existing_snapshots": [{"label": "old", "instance": "web-1", "age_days": 30}],
    "runs": [{"at": "2026-11-26T03:00:00Z"}],
}


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulation]:
    simulation = Simulation(parse_scenario(SCENARIO))
    with simulation.emulated():
        yield simulation


def answer(sim: Simulation, role: str, operation: str, **params: Any) -> ClientError:
    sim.tap.activate(True, role)
    try:
        with pytest.raises(ClientError) as raised:
            getattr(boto3.client("ec2"), operation)(DryRun=True, **params)
    finally:
        sim.tap.activate(False)
    return raised.value


def account_state(sim: Simulation) -> Any:
    backend = fleet.ec2_backend(sim.scenario.region)
    return (
        sorted(backend.snapshots),
        sorted(backend.volumes),
        {k: dict(v) for k, v in backend.tags.items()},
        sorted(sim.locks.locks),
        {sid: s.storage_tier if hasattr(s, "storage_tier") else None for sid, s in backend.snapshots.items()},
    )


def old_snapshot(sim: Simulation) -> str:
    [sid] = [sid for sid, label in sim.account.labels.items() if label == "old"]
    return sid


def test_an_allowed_dry_run_answers_dry_run_operation_and_changes_nothing(sim: Simulation):
    before = account_state(sim)
    sid = old_snapshot(sim)
    deleted = answer(sim, "prune", "delete_snapshot", SnapshotId=sid)
    locked = answer(sim, "snapshot", "lock_snapshot", SnapshotId=sid, LockMode="governance", LockDuration=7)
    instance_id = sim.account.instance_ids["web-1"]
    created = answer(
        sim,
        "snapshot",
        "create_snapshots",
        InstanceSpecification={"InstanceId": instance_id},
        TagSpecifications=[
            {"ResourceType": "snapshot", "Tags": [{"Key": "smart-vault:managed-by", "Value": "smart-vault-sim"}]}
        ],
    )
    for error in (deleted, locked, created):
        assert error.response["Error"]["Code"] == "DryRunOperation"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert account_state(sim) == before


def test_a_denied_dry_run_answers_unauthorized_operation_with_the_encoded_message(sim: Simulation):
    before = account_state(sim)
    # The check function may only describe; a lock longer than lock.days is outside the grant.
    refused = answer(sim, "check", "delete_snapshot", SnapshotId=old_snapshot(sim))
    too_long = answer(
        sim, "snapshot", "lock_snapshot", SnapshotId=old_snapshot(sim), LockMode="governance", LockDuration=3650
    )
    for error in (refused, too_long):
        assert error.response["Error"]["Code"] == "UnauthorizedOperation"
        assert "Encoded authorization failure message: " in error.response["Error"]["Message"]
    assert "ec2:DeleteSnapshot" in refused.response["Error"]["Message"]
    assert "ec2:LockSnapshot" in too_long.response["Error"]["Message"]
    assert account_state(sim) == before
