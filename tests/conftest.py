"""Shared fixtures: an emulated AWS account (moto) with the bucket and topic the stack creates,
the settings the CDK app would set, and a way to invoke handlers like Lambda does."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from smart_vault.aws import reset_clients
from smart_vault.models import RunContext
from smart_vault.observability import metrics
from smart_vault.retention import deferral
from smart_vault.settings import Settings, get_settings
from smart_vault.validation import format_time
from smart_vault_sim import fleet
from smart_vault_sim.aws_tap import AwsTap
from smart_vault_sim.moto_fixes import patched
from smart_vault_sim.snapshot_locks import SnapshotLocks


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long simulations first: with ``-n 2`` one worker runs them while the other takes the rest,
    so the suite's wall time is the longer of the two, not their sum."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


REGION = "us-east-1"
BUCKET = "smart-vault-test-inventory"
DEPLOYMENT = "test-vault"
RUN_TIME = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


@dataclass
class LambdaContext:
    function_name: str = "smart-vault-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:smart-vault-test"
    aws_request_id: str = "test-request-id"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class Account:
    ec2: Any
    s3: Any
    sns: Any
    sqs: Any
    tap: AwsTap
    topic_arn: str
    queue_url: str
    monkeypatch: pytest.MonkeyPatch
    locks: SnapshotLocks  # moto has no snapshot lock: the emulator's model (clock: RUN_TIME)

    def configure(self, **overrides: Any) -> Settings:
        settings = Settings.from_mapping(
            {
                "deployment_id": DEPLOYMENT,
                "bucket_name": BUCKET,
                "topic_arn": self.topic_arn,
                **overrides,
            }
        )
        for key, value in settings.to_env().items():
            self.monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        return settings

    def invoke(self, handler: Any, event: Any) -> Any:
        """Call a handler as Lambda would, with the AWS tap counting its calls."""
        self.tap.activate(True)
        try:
            return json.loads(json.dumps(handler(event, LambdaContext())))
        finally:
            self.tap.activate(False)

    def add_instance(
        self,
        name: str,
        *,
        tags: Mapping[str, str] | None = None,
        volumes: Sequence[tuple[str, int] | tuple[str, int, Mapping[str, str]]] = (("/dev/xvda", 8),),
        state: str = "running",
    ) -> fleet.BuiltInstance:
        specs = [
            fleet.VolumeSpec(device=v[0], size_gib=v[1], tags=v[2] if len(v) > 2 else {})  # type: ignore[misc]
            for v in volumes
        ]
        return fleet.add_instance(
            self.ec2,
            region=REGION,
            name=name,
            tags={"backup": "True"} if tags is None else tags,
            volumes=specs,
            state=state,
        )

    def job(self, instance_id: str, *, run: RunContext | None = None) -> dict[str, Any]:
        """The per-instance state input the Map gives the child: inventory item + run."""
        from smart_vault.handlers import discover

        run = run or run_context()
        result = self.invoke(
            discover.handler,
            {
                "event": {"time": run.run_time, "dry_run": run.dry_run},
                "execution_arn": run.execution_arn,
                "execution_name": run.execution_name,
            },
        )
        body = self.s3.get_object(Bucket=BUCKET, Key=result["inventory"]["key"])["Body"].read()
        items = {i["instance_id"]: i for i in json.loads(body)}
        self.tap.reset_counts()
        return {"instance": items[instance_id], "run": result["run"]}

    def snapshots(self, instance_id: str) -> list[dict[str, Any]]:
        return self.ec2.describe_snapshots(
            OwnerIds=["self"],
            Filters=[{"Name": "tag:smart-vault:instance-id", "Values": [instance_id]}],
        )["Snapshots"]

    def alerts(self) -> list[dict[str, Any]]:
        """Messages delivered to the topic's SQS subscriber (the JSON body machines get)."""
        out = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(json.loads(m["Body"])["Message"]) for m in out.get("Messages", [])]

    def published(self) -> list[tuple[str, str]]:
        """(subject, readable text) of every message published to the topic."""
        from moto.sns.models import sns_backends

        topic = sns_backends["123456789012"][REGION].topics[self.topic_arn]
        return [(n[2] or "", json.loads(n[1])["default"]) for n in topic.sent_notifications]


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    for key, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws(), patched():
        reset_clients()
        tap = AwsTap().install()
        monkeypatch.setattr(deferral, "pause", tap.wait)  # backoff on the virtual clock, as simulated
        locks = SnapshotLocks(REGION, lambda: RUN_TIME).install(boto3._get_default_session().events)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        sns = boto3.client("sns")
        sqs = boto3.client("sqs")
        topic_arn = sns.create_topic(Name="smart-vault-alerts")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        acct = Account(
            ec2=boto3.client("ec2"),
            s3=s3,
            sns=sns,
            sqs=sqs,
            tap=tap,
            topic_arn=topic_arn,
            queue_url=queue_url,
            monkeypatch=monkeypatch,
            locks=locks,
        )
        acct.configure()
        metrics.clear_metrics()
        yield acct
        metrics.clear_metrics()
        reset_clients()
        get_settings.cache_clear()


def run_context(*, dry_run: bool = False, at: datetime = RUN_TIME, name: str = "exec-1") -> RunContext:
    return RunContext(
        run_id=RunContext.run_id_for(at),
        run_time=format_time(at),
        execution_arn=f"arn:aws:states:{REGION}:123456789012:execution:smart-vault:{name}",
        execution_name=name,
        dry_run=dry_run,
    )
