"""In-memory stand-ins for the AWS adapters in ``smart_vault.aws`` (``Ec2``, ``Store``, ``Alerts``).

They keep the adapters' contracts: the same methods and keyword names (checked by
test_fakes_contract.py), records shaped like the EC2/S3 responses the adapters return, and
errors raised as the Smart Vault class the real adapter raises, built by the same classifier
from the AWS error code (``classify(aws_error(code))``). ``fail()`` queues such an error for
an operation, the way ``AwsTap.fail`` injects one into botocore.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from smart_vault.aws import SNS_MAX_MESSAGE_BYTES, Alerts
from smart_vault.constants import TAG_INSTANCE_ID, TAG_MANAGED, TAG_RUN_ID, TAG_SOURCE_SNAPSHOT
from smart_vault.errors import SmartVaultError, classify
from smart_vault_sim.aws_tap import aws_error

CLOCK = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


def error(operation: str, code: str) -> SmartVaultError:
    """The error the real adapter raises when AWS answers ``code`` (``ec2:CreateSnapshots``)."""
    return classify(aws_error(code, operation.split(":")[1]), operation)


@dataclass
class _Faults:
    queued: dict[str, list[tuple[str, frozenset[str]]]] = field(default_factory=dict)

    def add(self, operation: str, code: str, times: int, targets: Iterable[str]) -> None:
        self.queued.setdefault(operation, []).extend([(code, frozenset(targets))] * times)

    def check(self, operation: str, *ids: str) -> None:
        for i, (code, targets) in enumerate(self.queued.get(operation, [])):
            if not targets or targets & set(ids):
                del self.queued[operation][i]
                raise error(operation, code)


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


class FakeEc2:
    """An account's instances, volumes and snapshots; ``calls`` counts API calls like AwsTap."""

    def __init__(self) -> None:
        self.instances: dict[str, dict[str, Any]] = {}
        self.volume_records: dict[str, dict[str, Any]] = {}
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self.now = CLOCK
        self.in_use: set[str] = set()  # snapshots a registered AMI uses
        self.images: dict[str, str] = {}  # snapshot id -> the AMI that uses it
        self.image_names: dict[str, str] = {}  # AMI name -> id (names are unique per account)
        self.locks: dict[str, datetime] = {}  # snapshot id -> lock expiry (governance)
        self._faults = _Faults()
        self._ids = itertools.count(1)

    def region_name(self) -> str:
        return "us-east-1"

    # -- building the account --------------------------------------------------------------
    def _id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):017x}"

    def add_instance(
        self,
        name: str = "",
        *,
        tags: Mapping[str, str] | None = None,
        volumes: Sequence[tuple[str, int] | tuple[str, int, Mapping[str, str]]] = (("/dev/xvda", 8),),
        state: str = "running",
    ) -> str:
        """An instance whose first volume is its root device; returns its id."""
        instance_id = self._id("i")
        all_tags = {"Name": name} if name else {}
        all_tags.update({"backup": "True"} if tags is None else tags)
        mappings = []
        for spec in volumes:
            volume_id = self._id("vol")
            vol_tags: Mapping[str, str] = spec[2] if len(spec) > 2 else {}  # type: ignore[misc]
            self.volume_records[volume_id] = {"VolumeId": volume_id, "Size": spec[1], "Tags": _tags(vol_tags)}
            mappings.append({"DeviceName": spec[0], "Ebs": {"VolumeId": volume_id, "Status": "attached"}})
        self.instances[instance_id] = {
            "InstanceId": instance_id,
            "State": {"Name": state},
            "Tags": _tags(all_tags),
            "RootDeviceName": volumes[0][0] if volumes else "/dev/xvda",
            "BlockDeviceMappings": mappings,
            "Placement": {"AvailabilityZone": "us-east-1a"},
        }
        return instance_id

    def volume_id(self, instance_id: str, device: str) -> str:
        for mapping in self.instances[instance_id]["BlockDeviceMappings"]:
            if mapping["DeviceName"] == device:
                return str(mapping["Ebs"]["VolumeId"])
        raise KeyError(device)

    def add_snapshot(
        self,
        volume_id: str,
        *,
        start_time: datetime,
        tags: Mapping[str, str],
        state: str = "completed",
    ) -> str:
        snapshot_id = self._id("snap")
        self.snapshots[snapshot_id] = {
            "SnapshotId": snapshot_id,
            "VolumeId": volume_id,
            "VolumeSize": self.volume_records.get(volume_id, {}).get("Size", 8),
            "StartTime": start_time,
            "State": state,
            "Progress": "100%" if state == "completed" else "0%",
            "OwnerId": "123456789012",
            "Description": "",
            "Tags": _tags(tags),
            "StorageTier": "standard",
        }
        return snapshot_id

    def pin(self, snapshot_id: str) -> str:
        """Register an AMI that uses this snapshot (EC2 then refuses to delete it)."""
        image_id = self._id("ami")
        self.in_use.add(snapshot_id)
        self.images[snapshot_id] = image_id
        return image_id

    def set_state(self, snapshot_id: str, state: str, progress: int | None = None) -> None:
        record = self.snapshots[snapshot_id]
        record["State"] = state
        record["Progress"] = f"{100 if state == 'completed' else (progress or 0)}%"

    def fail(self, operation: str, code: str, *, times: int = 1, targets: Iterable[str] = ()) -> None:
        """The next ``times`` calls of ``operation`` (naming one of ``targets``, if given) fail."""
        self._faults.add(operation, code, times, targets)

    def _call(self, operation: str, *ids: str) -> None:
        self.calls[operation] += 1
        self._faults.check(operation, *ids)

    # -- the adapter contract (smart_vault.aws.Ec2) ---------------------------------------------
    def find_instances(self, tag_key: str, states: Sequence[str]) -> list[dict[str, Any]]:
        """Every instance carrying ``tag_key`` (a ``tag-key`` filter), whatever its value."""
        self._call("ec2:DescribeInstances")
        return [
            json.loads(json.dumps(i))
            for i in self.instances.values()
            if i["State"]["Name"] in states and any(t["Key"] == tag_key for t in i["Tags"])
        ]

    def instances_by_id(self, instance_ids: Iterable[str]) -> list[dict[str, Any]]:
        ids = sorted(set(instance_ids))
        for start in range(0, len(ids), 200):  # 200 values per filter (FilterLimitExceeded)
            self._call("ec2:DescribeInstances", *ids[start : start + 200])
        # An instance-id filter leaves out ids that no longer exist instead of failing.
        return [json.loads(json.dumps(self.instances[i])) for i in ids if i in self.instances]

    def volumes(self, volume_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = sorted(set(volume_ids))
        for start in range(0, len(ids), 200):  # 200 values per filter (FilterLimitExceeded)
            self._call("ec2:DescribeVolumes", *ids[start : start + 200])
        # A volume-id filter (not VolumeIds) skips ids that no longer exist instead of failing.
        return {i: dict(self.volume_records[i]) for i in ids if i in self.volume_records}

    def volume_initialization(self, volume_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        self._call("ec2:DescribeVolumeStatus", *volume_ids)
        # Volumes restored from a snapshot at the default rate: initialized, no estimate given.
        return {i: {"InitializationType": "default", "Progress": 100} for i in volume_ids if i in self.volume_records}

    def managed_snapshots(
        self, deployment_id: str, instance_id: str, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        self._call("ec2:DescribeSnapshots", instance_id)
        wanted = {TAG_MANAGED: deployment_id, TAG_INSTANCE_ID: instance_id}
        if run_id is not None:
            wanted[TAG_RUN_ID] = run_id
        found = []
        for snap in self.snapshots.values():
            tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
            if all(tags.get(k) == v for k, v in wanted.items()):
                found.append(dict(snap))
        return found

    def all_managed_snapshots(self, deployment_id: str) -> list[dict[str, Any]]:
        self._call("ec2:DescribeSnapshots")
        return [dict(s) for s in self.snapshots.values() if {"Key": TAG_MANAGED, "Value": deployment_id} in s["Tags"]]

    def ebs_encryption_default(self) -> tuple[bool, str | None]:
        self._call("ec2:GetEbsEncryptionByDefault")
        return False, None

    def owned_snapshot_count(self) -> int:
        self._call("ec2:DescribeSnapshots")
        return len(self.snapshots)

    def existing_snapshot_ids(self, snapshot_ids: Iterable[str]) -> set[str]:
        ids = sorted(set(snapshot_ids))
        for start in range(0, len(ids), 200):
            self._call("ec2:DescribeSnapshots", *ids[start : start + 200])
        return {i for i in ids if i in self.snapshots}

    def ami_snapshots(self, snapshot_ids: Iterable[str]) -> dict[str, str]:
        ids = sorted(set(snapshot_ids))
        for start in range(0, len(ids), 200):
            self._call("ec2:DescribeImages", *ids[start : start + 200])
        return {i: self.images[i] for i in ids if i in self.images}

    def create_snapshots(
        self,
        *,
        instance_id: str,
        exclude_boot: bool,
        exclude_data_volume_ids: Sequence[str],
        tags: list[dict[str, str]],
        description: str,
    ) -> list[dict[str, Any]]:
        operation = "ec2:CreateSnapshots"
        self._call(operation, instance_id)
        instance = self.instances.get(instance_id)
        if instance is None:
            raise error(operation, "InvalidInstanceID.NotFound")
        root = instance["RootDeviceName"]
        attached = {m["Ebs"]["VolumeId"]: m["DeviceName"] for m in instance["BlockDeviceMappings"]}
        # API_InstanceSpecification: ExcludeDataVolumeIds takes data (non-root) volumes only, up
        # to 40; "If you specify the ID of the root volume, the request fails."
        excluded = set(exclude_data_volume_ids)
        if len(excluded) > 40 or any(attached.get(v) == root for v in excluded):
            raise error(operation, "InvalidParameterValue")
        if len(tags) > 50:  # a resource has at most 50 user tags
            raise error(operation, "TagLimitExceeded")
        made = []
        for volume_id, device in attached.items():
            if volume_id in excluded or (exclude_boot and device == root):
                continue
            snapshot_id = self.add_snapshot(
                volume_id, start_time=self.now, tags={t["Key"]: t["Value"] for t in tags}, state="pending"
            )
            self.snapshots[snapshot_id]["Description"] = description
            made.append(dict(self.snapshots[snapshot_id]))
        return made

    def describe_snapshots(self, snapshot_ids: Sequence[str]) -> list[dict[str, Any]]:
        operation = "ec2:DescribeSnapshots"
        self._call(operation, *snapshot_ids)
        # DescribeSnapshots fails with InvalidSnapshot.NotFound when one id is gone; the adapter
        # then asks again with a snapshot-id filter, which leaves the missing ones out.
        if any(i not in self.snapshots for i in snapshot_ids):
            self._call(operation, *snapshot_ids)
        return [dict(self.snapshots[i]) for i in snapshot_ids if i in self.snapshots]

    def lock_snapshot(self, params: dict[str, Any]) -> dict[str, Any]:
        snapshot_id = params["SnapshotId"]
        self._call("ec2:LockSnapshot", snapshot_id)
        self.locks[snapshot_id] = self.now + timedelta(days=params["LockDuration"])
        return {"SnapshotId": snapshot_id, "LockState": params["LockMode"], "LockExpiresOn": self.locks[snapshot_id]}

    def locked_snapshots(self, snapshot_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = sorted(set(snapshot_ids))
        for start in range(0, len(ids), 200):
            self._call("ec2:DescribeLockedSnapshots", *ids[start : start + 200])
        return {
            i: {
                "SnapshotId": i,
                "LockState": "governance" if self.locks[i] > self.now else "expired",
                "LockExpiresOn": self.locks[i],
            }
            for i in ids
            if i in self.locks
        }

    def copy_snapshot(
        self, *, source_region: str, source_snapshot_id: str, kms_key: str, tags: list[dict[str, str]], description: str
    ) -> str:
        """A copy into this (destination) account-Region: pending, with EC2's placeholder VolumeId."""
        operation = "ec2:CopySnapshot"
        self._call(operation, source_snapshot_id, *(t["Value"] for t in tags))
        copy_id = self.add_snapshot(
            "vol-ffffffff", start_time=self.now, tags={t["Key"]: t["Value"] for t in tags}, state="pending"
        )
        self.snapshots[copy_id].update(Description=description, KmsKeyId=kms_key, Encrypted=True)
        return copy_id

    def shared_snapshots(self, owner: str) -> list[dict[str, Any]]:
        """Snapshots of another account shared with this one: a fake account owns all it lists."""
        self._call("ec2:DescribeSnapshots")
        return []

    def share_snapshot(self, snapshot_id: str, account: str, *, add: bool) -> str | None:
        self._call("ec2:ModifySnapshotAttribute")
        if snapshot_id not in self.snapshots:
            return "already_deleted"
        users = self.snapshots[snapshot_id].setdefault("SharedWith", set())
        if add:
            users.add(account)
        else:
            users.discard(account)
        return None

    def copies_in_flight(self) -> int:
        self._call("ec2:DescribeSnapshots")
        return sum(
            1
            for s in self.snapshots.values()
            if s["State"] == "pending" and any(t["Key"] == TAG_SOURCE_SNAPSHOT for t in s["Tags"])
        )

    def delete_snapshot(self, snapshot_id: str) -> str | None:
        self._call("ec2:DeleteSnapshot", snapshot_id)
        if snapshot_id in self.in_use:
            return "in_use"
        if snapshot_id in self.locks and self.locks[snapshot_id] > self.now:
            # As the real adapter: EC2 documents no code for it, so the refusal raises.
            raise classify(aws_error("SnapshotLocked", "DeleteSnapshot"), "ec2:DeleteSnapshot")
        if self.snapshots.pop(snapshot_id, None) is None:
            return "already_deleted"
        return None

    # -- restore (smart_vault.recovery.points builds the requests) ---------------------------------
    def availability_zones(self, *, healthy_only: bool = False) -> list[str]:
        self._call("ec2:DescribeAvailabilityZones")
        return ["us-east-1a", "us-east-1b", "us-east-1c"]

    def create_volume(self, params: dict[str, Any]) -> dict[str, Any]:
        """Same ClientToken, same volume (EC2's idempotency); a new volume is ``creating``."""
        self._call("ec2:CreateVolume", str(params.get("SnapshotId", "")))
        token = params.get("ClientToken")
        for volume in self.volume_records.values():
            if token and volume.get("ClientToken") == token:
                return dict(volume)
        tags = [t for spec in params.get("TagSpecifications") or () for t in spec.get("Tags") or ()]
        volume = {
            "VolumeId": self._id("vol"),
            "State": "creating",
            "AvailabilityZone": params["AvailabilityZone"],
            "SnapshotId": params.get("SnapshotId", ""),
            "Size": params.get("Size", 0),
            "VolumeType": params.get("VolumeType", "gp2"),
            "Tags": tags,
            "ClientToken": token,
        }
        self.volume_records[volume["VolumeId"]] = volume
        return dict(volume)

    def delete_volume(self, volume_id: str) -> bool:
        self._call("ec2:DeleteVolume", volume_id)
        return self.volume_records.pop(volume_id, None) is not None

    def tagged_volumes(self, tags: dict[str, str]) -> list[dict[str, Any]]:
        self._call("ec2:DescribeVolumes")
        return [
            dict(v)
            for v in self.volume_records.values()
            if all({"Key": k, "Value": val} in (v.get("Tags") or ()) for k, val in tags.items())
        ]

    def tag_resources(self, resource_ids: Sequence[str], tags: dict[str, str]) -> None:
        self._call("ec2:CreateTags", *resource_ids)
        for resource_id in resource_ids:
            record = self.snapshots.get(resource_id) or self.volume_records.get(resource_id)
            if record is not None:
                kept = [t for t in record.get("Tags") or () if t["Key"] not in tags]
                record["Tags"] = kept + _tags(tags)

    def register_image(self, params: dict[str, Any]) -> str:
        self._call("ec2:RegisterImage", *(m["Ebs"]["SnapshotId"] for m in params["BlockDeviceMappings"]))
        image_id = self._id("ami")
        for mapping in params["BlockDeviceMappings"]:
            self.pin_with(mapping["Ebs"]["SnapshotId"], image_id)
        self.image_names[params["Name"]] = image_id
        return image_id

    def pin_with(self, snapshot_id: str, image_id: str) -> None:
        self.in_use.add(snapshot_id)
        self.images[snapshot_id] = image_id

    def image_by_name(self, name: str) -> str | None:
        self._call("ec2:DescribeImages")
        return self.image_names.get(name)

    def image_state(self, image_id: str) -> str | None:
        # A registered image is available at once here; the emulator models the pending lag.
        self._call("ec2:DescribeImages")
        return "available" if image_id in self.image_names.values() else None

    def deregister_image(self, image_id: str) -> None:
        self._call("ec2:DeregisterImage", image_id)
        for snapshot_id, user in list(self.images.items()):
            if user == image_id:
                del self.images[snapshot_id]
                self.in_use.discard(snapshot_id)
        self.image_names = {n: i for n, i in self.image_names.items() if i != image_id}

    def run_instance(self, params: dict[str, Any]) -> dict[str, Any]:
        self._call("ec2:RunInstances", str(params.get("ImageId", "")))
        return {"InstanceId": self._id("i"), "ImageId": params.get("ImageId"), "State": {"Name": "pending"}}

    def tiering_in_progress(self, snapshot_ids: Iterable[str]) -> set[str]:
        ids = list(snapshot_ids)
        self._call("ec2:DescribeSnapshotTierStatus", *ids)
        return {i for i in ids if self.snapshots.get(i, {}).get("tiering") == "archival-in-progress"}

    def archive_snapshot(self, snapshot_id: str) -> str | None:
        """Archiving takes time on AWS: the fake marks it in progress; ``settle_archives`` ends it."""
        self._call("ec2:ModifySnapshotTier", snapshot_id)
        record = self.snapshots.get(snapshot_id)
        if record is None:
            return "InvalidSnapshot.NotFound"
        if snapshot_id in self.in_use or record["State"] != "completed" or record["StorageTier"] != "standard":
            return "IncorrectState"
        record["tiering"] = "archival-in-progress"
        return None

    def settle_archives(self) -> None:
        for record in self.snapshots.values():
            if record.pop("tiering", None) == "archival-in-progress":
                record["StorageTier"] = "archive"


class FakeStore:
    """The inventory/audit bucket: JSON bodies stored as the real adapter serialises them."""

    def __init__(self, bucket: str = "fake-inventory", session: Any = None) -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}
        self.calls: Counter[str] = Counter()
        self._faults = _Faults()

    def fail(self, operation: str, code: str, *, times: int = 1, targets: Iterable[str] = ()) -> None:
        self._faults.add(operation, code, times, targets)

    def _call(self, operation: str, *keys: str) -> None:
        self.calls[operation] += 1
        self._faults.check(operation, *keys)

    def put_json(self, key: str, body: Any) -> None:
        self._call("s3:PutObject", key)
        self.objects[key] = json.dumps(body, separators=(",", ":"), default=str).encode()

    def get_json(self, key: str) -> Any:
        self._call("s3:GetObject", key)
        if key not in self.objects:
            raise error("s3:GetObject", "NoSuchKey")
        return json.loads(self.objects[key])

    def delete(self, key: str) -> None:
        self._call("s3:DeleteObject", key)
        self.objects.pop(key, None)

    def get_optional(self, key: str) -> Any:
        self._call("s3:GetObject", key)
        return json.loads(self.objects[key]) if key in self.objects else None

    def keys(self, prefix: str) -> list[str]:
        self._call("s3:ListObjectsV2", prefix)
        return sorted(k for k in self.objects if k.startswith(prefix))  # S3 lists in key order

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        return [self.get_json(k) for k in keys]


@dataclass
class Published:
    subject: str
    text: str
    document: dict[str, Any]
    attributes: dict[str, str]


class FakeAlerts:
    # The request is built and measured by the real code: the fake only stands in for SNS.
    request = staticmethod(Alerts.request)
    request_bytes = staticmethod(Alerts.request_bytes)

    def __init__(self, topic_arn: str = "arn:aws:sns:us-east-1:123456789012:fake-alerts") -> None:
        self.topic_arn = topic_arn
        self.published: list[Published] = []

    def publish(self, request: dict[str, Any]) -> str:
        # SNS Publish: the message and its attributes at most 262,144 bytes.
        if Alerts.request_bytes(request) > SNS_MAX_MESSAGE_BYTES:
            raise error("sns:Publish", "InvalidParameter")
        message = json.loads(request["Message"])
        self.published.append(
            Published(
                subject=request["Subject"],
                text=message["default"],
                document=json.loads(message["sqs"]),
                attributes={k: v["StringValue"] for k, v in request["MessageAttributes"].items()},
            )
        )
        return f"message-{len(self.published)}"

    def subscriptions(self) -> list[dict[str, Any]]:
        return [{"SubscriptionArn": f"{self.topic_arn}:confirmed", "Protocol": "email", "Endpoint": "ops@example.com"}]
