"""AWS access: thin adapters that turn botocore errors into Smart Vault error classes.

Clients come from boto3's default session and are cached per cold start; ``reset_clients``
lets the simulator start each emulated account with fresh ones.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from smart_vault.constants import TAG_INSTANCE_ID, TAG_MANAGED, TAG_RUN_ID
from smart_vault.errors import classify, error_code

# Reads may be retried by botocore. CreateSnapshots takes no client token, so a retried request
# could create a second set: it gets no SDK retries, and the workflow retries the whole step,
# which first looks for this run's snapshots.
_READ_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, user_agent_extra="smart-vault")
_ONCE_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1}, user_agent_extra="smart-vault")


@functools.cache
def client(service: str, *, once: bool = False) -> Any:
    return boto3.client(service, config=_ONCE_CONFIG if once else _READ_CONFIG)


def reset_clients() -> None:
    client.cache_clear()


def call(operation: str, func: Any, **kwargs: Any) -> Any:
    try:
        return func(**kwargs)
    except (ClientError, BotoCoreError) as error:
        raise classify(error, operation) from error


def _paginate(service: str | Any, method: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Pages of ``method`` from a service name (cached client) or a client object."""
    api = client(service) if isinstance(service, str) else service
    operation = f"{api.meta.service_model.service_name}:{''.join(p.title() for p in method.split('_'))}"
    try:
        for page in api.get_paginator(method).paginate(**kwargs):
            yield from page.get(key, ())
    except (ClientError, BotoCoreError) as error:
        raise classify(error, operation) from error


class Ec2:
    """The EC2 calls Smart Vault makes, one method each.

    ``session`` lets the operator CLI make the same calls with its own credentials."""

    def __init__(self, session: Any = None) -> None:
        self._session = session

    def _api(self, *, once: bool = False) -> Any:
        return self._session.client("ec2") if self._session is not None else client("ec2", once=once)

    def find_instances(
        self,
        tag_key: str,
        tag_value: str,
        states: Sequence[str],
        instance_ids: Sequence[str] | None,
    ) -> list[dict[str, Any]]:
        filters = [
            {"Name": f"tag:{tag_key}", "Values": [tag_value]},
            {"Name": "instance-state-name", "Values": list(states)},
        ]
        extra: dict[str, Any] = {"InstanceIds": list(instance_ids)} if instance_ids else {}
        instances: list[dict[str, Any]] = []
        for reservation in _paginate(self._api(), "describe_instances", "Reservations", Filters=filters, **extra):
            instances.extend(reservation.get("Instances", ()))
        return instances

    def volumes(self, volume_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Volume id -> DescribeVolumes record (size and tags), 500 ids per request."""
        ids = sorted(set(volume_ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for volume in _paginate(
                self._api(),
                "describe_volumes",
                "Volumes",
                Filters=[{"Name": "volume-id", "Values": chunk}],
            ):
                found[volume["VolumeId"]] = volume
        return found

    def managed_snapshots(
        self, deployment_id: str, instance_id: str, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """This deployment's snapshots of one instance (of one run, when ``run_id`` is given)."""
        filters = [
            {"Name": f"tag:{TAG_MANAGED}", "Values": [deployment_id]},
            {"Name": f"tag:{TAG_INSTANCE_ID}", "Values": [instance_id]},
        ]
        if run_id is not None:
            filters.append({"Name": f"tag:{TAG_RUN_ID}", "Values": [run_id]})
        return list(_paginate(self._api(), "describe_snapshots", "Snapshots", OwnerIds=["self"], Filters=filters))

    def create_snapshots(
        self,
        *,
        instance_id: str,
        exclude_boot: bool,
        exclude_data_volume_ids: Sequence[str],
        tags: list[dict[str, str]],
        description: str,
    ) -> list[dict[str, Any]]:
        spec: dict[str, Any] = {"InstanceId": instance_id, "ExcludeBootVolume": exclude_boot}
        if exclude_data_volume_ids:
            spec["ExcludeDataVolumeIds"] = list(exclude_data_volume_ids)
        response = call(
            "ec2:CreateSnapshots",
            self._api(once=True).create_snapshots,
            InstanceSpecification=spec,
            Description=description[:255],
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}],
        )
        return list(response.get("Snapshots", ()))

    def describe_snapshots(self, snapshot_ids: Sequence[str]) -> list[dict[str, Any]]:
        response = call(
            "ec2:DescribeSnapshots",
            self._api().describe_snapshots,
            SnapshotIds=list(snapshot_ids),
        )
        return list(response.get("Snapshots", ()))

    def delete_snapshot(self, snapshot_id: str) -> str | None:
        """Delete; returns None on success, or the reason it was skipped."""
        try:
            self._api().delete_snapshot(SnapshotId=snapshot_id)
        except ClientError as error:
            code = error_code(error)
            if code == "InvalidSnapshot.InUse":
                return "in_use"
            if code == "InvalidSnapshot.NotFound":
                return "already_deleted"
            raise classify(error, "ec2:DeleteSnapshot") from error
        except BotoCoreError as error:
            raise classify(error, "ec2:DeleteSnapshot") from error
        return None


class Store:
    """The inventory/audit bucket."""

    def __init__(self, bucket: str):
        self.bucket = bucket

    def put_json(self, key: str, body: Any) -> None:
        call(
            "s3:PutObject",
            client("s3").put_object,
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(body, separators=(",", ":"), default=str).encode(),
            ContentType="application/json",
        )

    def get_json(self, key: str) -> Any:
        response = call("s3:GetObject", client("s3").get_object, Bucket=self.bucket, Key=key)
        return json.loads(response["Body"].read())

    def keys(self, prefix: str) -> list[str]:
        return [obj["Key"] for obj in _paginate("s3", "list_objects_v2", "Contents", Bucket=self.bucket, Prefix=prefix)]

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        if len(keys) < 8:
            return [self.get_json(k) for k in keys]
        with ThreadPoolExecutor(max_workers=16) as pool:
            return list(pool.map(self.get_json, keys))


class Alerts:
    def __init__(self, topic_arn: str):
        self.topic_arn = topic_arn

    def publish(self, *, subject: str, text: str, document: dict[str, Any], attributes: dict[str, str]) -> str:
        body = json.dumps(document, separators=(",", ":"), default=str)
        # E-mail gets the readable text; machine subscribers (SQS, Lambda, HTTPS) get JSON.
        message = {
            "default": text,
            "email": text,
            "sqs": body,
            "lambda": body,
            "https": body,
            "http": body,
        }
        response = call(
            "sns:Publish",
            client("sns").publish,
            TopicArn=self.topic_arn,
            Subject=subject[:100],
            Message=json.dumps(message),
            MessageStructure="json",
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )
        return str(response.get("MessageId", ""))
