"""The pure tier: domain functions with in-memory adapters. Nothing here may reach AWS or moto."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from smart_vault import aws
from smart_vault.models import InstanceJob, RunContext
from smart_vault.observability import metrics
from smart_vault.retention import deferral
from smart_vault.settings import Settings
from smart_vault.validation import format_time
from tests.unit.domain.fakes import CLOCK, FakeAlerts, FakeEc2, FakeStore

DEPLOYMENT = "test-vault"


@pytest.fixture(autouse=True)
def no_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any boto3 client a domain test creates is a bug in the test or in the injection."""

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("a domain test reached for a real AWS client")

    monkeypatch.setattr(aws, "client", refuse)
    monkeypatch.setattr(aws.boto3, "client", refuse)
    monkeypatch.setattr(deferral, "pause", lambda _seconds: None)  # backoff takes no wall time
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture
def ec2() -> FakeEc2:
    return FakeEc2()


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def alerts() -> FakeAlerts:
    return FakeAlerts()


def settings(**overrides: Any) -> Settings:
    return Settings.from_mapping({"deployment_id": DEPLOYMENT, **overrides})


def run(*, dry_run: bool = False, at: datetime = CLOCK, name: str = "exec-1") -> RunContext:
    return RunContext(
        run_id=RunContext.run_id_for(at),
        run_time=format_time(at),
        execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:smart-vault:{name}",
        execution_name=name,
        dry_run=dry_run,
    )


def job_for(ec2: FakeEc2, instance_id: str, *, config: Settings | None = None, **run_args: Any) -> InstanceJob:
    """The per-instance job the Map hands a child: this instance's inventory item and the run."""
    from smart_vault.backup.discovery import find_targets

    (target,) = find_targets(settings=config or settings(), ec2=ec2, instance_ids=[instance_id])
    ec2.calls.clear()
    return InstanceJob(instance=target, run=run(**run_args))
