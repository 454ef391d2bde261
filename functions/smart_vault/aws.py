"""AWS access: thin adapters that turn botocore errors into Smart Vault error classes.

Clients come from boto3's default session and are cached per cold start; ``reset_clients``
lets the simulator start each emulated account with fresh ones.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from smart_vault.constants import TAG_INSTANCE_ID, TAG_MANAGED, TAG_RUN_ID, TAG_SOURCE_SNAPSHOT
from smart_vault.errors import (
    DryRunAllowedError,
    PermissionDeniedError,
    ThrottledError,
    TransientAwsError,
    classify,
    error_code,
)

# Reads may be retried by botocore. CreateSnapshots takes no client token, so a retried request
# could create a second set: it gets no SDK retries, and the workflow retries the whole step,
# which first looks for this run's snapshots.
_READ_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, user_agent_extra="smart-vault")
_ONCE_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1}, user_agent_extra="smart-vault")


@functools.cache
def client(service: str, *, once: bool = False, region: str | None = None, dry_run: bool = False) -> Any:
    """``region``: another Region's endpoint (off-site copies); None: the function's own.
    ``dry_run``: every mutating EC2 request this client sends carries ``DryRun=True`` (preflight)."""
    config = _ONCE_CONFIG if once else _READ_CONFIG
    api = (
        boto3.client(service, config=config)
        if region is None
        else boto3.client(service, config=config, region_name=region)
    )
    if dry_run:
        api.meta.events.register(f"provide-client-params.{service}.*", _dry_run_params)
    return api


_READ_ONLY_PREFIXES = ("Describe", "Get", "List", "Search")


def _dry_run_params(params: dict[str, Any], model: Any, **_: Any) -> None:
    """EC2 API Reference, every mutating action's DryRun: "Checks whether you have the required
    permissions for the action, without actually making the request": EC2 answers
    DryRunOperation (allowed) or UnauthorizedOperation. Reads go out as they are."""
    if not model.name.startswith(_READ_ONLY_PREFIXES) and "DryRun" in model.input_shape.members:
        params["DryRun"] = True


def reset_clients() -> None:
    client.cache_clear()


def call(operation: str, func: Any, **kwargs: Any) -> Any:
    try:
        return func(**kwargs)
    except (ClientError, BotoCoreError) as error:
        raise classify(error, operation) from error


# EC2 rejects a Describe call whose filter carries more than 200 values (FilterLimitExceeded,
# "The maximum number of filter values specified on a single call is 200"; EC2 API Reference,
# "Error codes for the Amazon EC2 API"), so id lists are sent in chunks of this size.
MAX_FILTER_VALUES = 200


def _chunks(ids: Iterable[str], size: int = MAX_FILTER_VALUES) -> Iterator[list[str]]:
    """Distinct ids, sorted, in lists of at most ``size``."""
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


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

    ``session`` lets the operator CLI make the same calls with its own credentials; ``region``
    addresses a destination Region of off-site copies (None: the function's own Region)."""

    def __init__(self, session: Any = None, *, region: str | None = None, dry_run: bool = False) -> None:
        self._session = session
        self._session_client: Any = None
        self.region = region
        # Preflight: every mutating call is sent with DryRun=True and raises DryRunAllowedError
        # when IAM allows it; nothing in the account changes (smart_vault.preflight.checks).
        self.dry_run = dry_run

    def _api(self, *, once: bool = False) -> Any:
        if self._session is not None:
            # One client per Ec2 of a session: creating a botocore client costs far more than a call.
            if self._session_client is None:
                kwargs = {"region_name": self.region} if self.region else {}
                self._session_client = self._session.client("ec2", **kwargs)
            return self._session_client
        return client("ec2", once=once, region=self.region, dry_run=self.dry_run)

    def region_name(self) -> str:
        """The Region these calls go to (approvals and breakers are per Region)."""
        return self.region or str(self._api().meta.region_name)

    def find_instances(self, tag_key: str, states: Sequence[str]) -> list[dict[str, Any]]:
        """Every instance carrying ``tag_key`` in one of ``states``, whatever the tag's value.

        Tag values are case-sensitive and a ``tag:<key>`` filter matches them exactly, so it would
        hide ``backup=true`` from a run selecting ``True``; ``tag-key`` finds them all, in the
        same pages (DescribeInstances, Amazon EC2 API Reference: filters ``tag-key``, ``tag:<key>``).
        """
        filters = [
            {"Name": "tag-key", "Values": [tag_key]},
            {"Name": "instance-state-name", "Values": list(states)},
        ]
        return self._instances(filters)

    def instances_by_id(self, instance_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The named instances that exist, whatever their state or tags.

        An ``instance-id`` filter, not ``InstanceIds``: with ``InstanceIds`` one id that no longer
        exists fails the whole call (InvalidInstanceID.NotFound); a filter just leaves it out.
        """
        found: list[dict[str, Any]] = []
        for chunk in _chunks(instance_ids):
            found.extend(self._instances([{"Name": "instance-id", "Values": chunk}]))
        return found

    def _instances(self, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        instances: list[dict[str, Any]] = []
        # Pages of 1,000, the most MaxResults allows (filters only: it cannot go with InstanceIds).
        pages = {"PaginationConfig": {"PageSize": 1000}}
        for reservation in _paginate(self._api(), "describe_instances", "Reservations", Filters=filters, **pages):
            instances.extend(reservation.get("Instances", ()))
        return instances

    def volumes(self, volume_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Volume id -> DescribeVolumes record (size and tags), 200 ids per request.

        A ``volume-id`` filter with pagination rather than ``VolumeIds``: the DescribeVolumes
        reference says MaxResults cannot be combined with VolumeIds, and an id that vanished
        since DescribeInstances would fail a ``VolumeIds`` call (InvalidVolume.NotFound).
        """
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(volume_ids):
            for volume in _paginate(
                self._api(),
                "describe_volumes",
                "Volumes",
                Filters=[{"Name": "volume-id", "Values": chunk}],
            ):
                found[volume["VolumeId"]] = volume
        return found

    def volume_initialization(self, volume_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Volume id -> DescribeVolumeStatus InitializationStatusDetails (InitializationType,
        Progress, and EstimatedTimeToCompleteInSeconds only for a provisioned rate; EC2 API
        Reference, InitializationStatusDetails); volumes created empty have none."""
        statuses = _paginate(self._api(), "describe_volume_status", "VolumeStatuses", VolumeIds=list(volume_ids))
        return {str(v["VolumeId"]): dict(v.get("InitializationStatusDetails") or {}) for v in statuses}

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

    def all_managed_snapshots(self, deployment_id: str) -> list[dict[str, Any]]:
        """Every snapshot this deployment made, in one paginated scan over its marker."""
        # DescribeSnapshots: MaxResults 5-1000 per page, NextToken to continue; without it a
        # request may time out or be throttled on large accounts
        # (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSnapshots.html).
        return list(
            _paginate(
                self._api(),
                "describe_snapshots",
                "Snapshots",
                OwnerIds=["self"],
                Filters=[{"Name": f"tag:{TAG_MANAGED}", "Values": [deployment_id]}],
                PaginationConfig={"PageSize": 1000},
            )
        )

    def shared_snapshots(self, owner: str) -> list[dict[str, Any]]:
        """Completed snapshots of account ``owner`` shared with this account (DescribeSnapshots
        OwnerIds and RestorableByUserIds=self, EC2 API Reference). The owner's tags are not
        listed: tags belong to the account that set them."""
        return list(
            _paginate(
                self._api(),
                "describe_snapshots",
                "Snapshots",
                OwnerIds=[owner],
                RestorableByUserIds=["self"],
                Filters=[{"Name": "status", "Values": ["completed"]}],
                PaginationConfig={"PageSize": 1000},
            )
        )

    def share_snapshot(self, snapshot_id: str, account: str, *, add: bool) -> str | None:
        """Add (or withdraw) ``account``'s createVolumePermission (ModifySnapshotAttribute, EC2
        API Reference): safe to repeat. None on success, ``already_deleted`` for a snapshot gone
        meanwhile. A snapshot on the AWS managed key raises (OperationNotPermitted: it cannot be
        shared; preflight says so before any run)."""
        try:
            self._api().modify_snapshot_attribute(
                SnapshotId=snapshot_id,
                Attribute="createVolumePermission",
                OperationType="add" if add else "remove",
                UserIds=[account],
            )
        except ClientError as error:
            if error_code(error) == "InvalidSnapshot.NotFound":
                return "already_deleted"
            raise classify(error, "ec2:ModifySnapshotAttribute") from error
        except BotoCoreError as error:
            raise classify(error, "ec2:ModifySnapshotAttribute") from error
        return None

    def owned_snapshot_count(self) -> int:
        """How many snapshots the account owns in this Region (what "Snapshots per Region" counts)."""
        return sum(
            1
            for _ in _paginate(
                self._api(), "describe_snapshots", "Snapshots", OwnerIds=["self"], PaginationConfig={"PageSize": 1000}
            )
        )

    def ebs_encryption_default(self) -> tuple[bool, str | None]:
        """EBS encryption by default and, when on, its key (GetEbsEncryptionByDefault,
        GetEbsDefaultKmsKeyId; like Describe*, no resource types)."""
        api = self._api()
        on = bool(call("ec2:GetEbsEncryptionByDefault", api.get_ebs_encryption_by_default)["EbsEncryptionByDefault"])
        if not on:
            return False, None
        return True, call("ec2:GetEbsDefaultKmsKeyId", api.get_ebs_default_kms_key_id).get("KmsKeyId")

    def existing_snapshot_ids(self, snapshot_ids: Iterable[str]) -> set[str]:
        """Which of these snapshots still exist. A ``snapshot-id`` filter, not ``SnapshotIds``:
        the latter fails the whole request with InvalidSnapshot.NotFound for one missing id."""
        return {s["SnapshotId"] for s in self.describe_snapshots(list(snapshot_ids))}

    def ami_snapshots(self, snapshot_ids: Iterable[str]) -> dict[str, str]:
        """Snapshot id -> id of an AMI of this account that uses it (EC2 refuses to delete those).

        DescribeImages with Owners=self and the ``block-device-mapping.snapshot-id`` filter,
        paginated as AWS recommends ("We strongly recommend using only paginated requests",
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImages.html), at most
        MAX_FILTER_VALUES values per filter. IAM: ec2:DescribeImages has no resource
        types, so it is granted on "*"."""
        wanted = set(snapshot_ids)
        pinned: dict[str, str] = {}
        for chunk in _chunks(wanted):
            for image in _paginate(
                self._api(),
                "describe_images",
                "Images",
                Owners=["self"],
                IncludeDisabled=True,  # a disabled AMI still keeps its snapshots in use
                Filters=[{"Name": "block-device-mapping.snapshot-id", "Values": chunk}],
            ):
                for mapping in image.get("BlockDeviceMappings") or ():
                    snapshot_id = (mapping.get("Ebs") or {}).get("SnapshotId")
                    if snapshot_id in wanted:
                        pinned.setdefault(snapshot_id, image["ImageId"])
        return pinned

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
        """The named snapshots that still exist (a deleted one is left out, not an error).

        A ``snapshot-id`` filter (200 values a call, paged), not ``SnapshotIds``: EC2 fails a
        whole ``SnapshotIds`` call for one missing id (InvalidSnapshot.NotFound), and an
        unfiltered, unpaginated DescribeSnapshots draws from the smaller of its two request
        buckets (50 tokens, 10 per second, against 100 and 20 for filtered or paginated
        requests; "Request throttling for the Amazon EC2 API"): the completion checks of a large
        fleet need the larger one.
        """
        found: list[dict[str, Any]] = []
        for chunk in _chunks(snapshot_ids):
            found.extend(
                _paginate(
                    self._api(),
                    "describe_snapshots",
                    "Snapshots",
                    OwnerIds=["self"],
                    Filters=[{"Name": "snapshot-id", "Values": chunk}],
                )
            )
        return found

    # -- restore (smart_vault.recovery.points builds the requests) -----------------------------------
    def availability_zones(self, *, healthy_only: bool = False) -> list[str]:
        """The region's zones (DescribeAvailabilityZones; ec2:Describe* has no resource type, so
        IAM grants it on "*"): every opted-in zone, or with ``healthy_only`` only Availability
        Zones (not Local or Wavelength Zones, ``zone-type``) that are ``available`` (not impaired
        or unavailable, ``state``), filtered by EC2 (EC2 API Reference, DescribeAvailabilityZones)."""
        filters = (
            [{"Name": "zone-type", "Values": ["availability-zone"]}, {"Name": "state", "Values": ["available"]}]
            if healthy_only
            else []
        )
        response = call("ec2:DescribeAvailabilityZones", self._api().describe_availability_zones, Filters=filters)
        return [z["ZoneName"] for z in response.get("AvailabilityZones", ())]

    def create_volume(self, params: dict[str, Any]) -> dict[str, Any]:
        """CreateVolume with a ClientToken: a retry (SDK or re-run) returns the same volume
        (EC2 API Reference, "Ensuring idempotency"), so SDK retries are safe here."""
        return dict(call("ec2:CreateVolume", self._api().create_volume, **params))

    def delete_volume(self, volume_id: str) -> bool:
        """Delete; False when it was already gone (InvalidVolume.NotFound)."""
        try:
            self._api().delete_volume(VolumeId=volume_id)
        except ClientError as error:
            if error_code(error) == "InvalidVolume.NotFound":
                return False
            raise classify(error, "ec2:DeleteVolume") from error
        except BotoCoreError as error:
            raise classify(error, "ec2:DeleteVolume") from error
        return True

    def register_image(self, params: dict[str, Any]) -> str:
        return str(call("ec2:RegisterImage", self._api(once=True).register_image, **params)["ImageId"])

    def image_by_name(self, name: str) -> str | None:
        """This account's AMI with this name (names are unique per account and region)."""
        for image in _paginate(
            self._api(), "describe_images", "Images", Owners=["self"], Filters=[{"Name": "name", "Values": [name]}]
        ):
            return str(image["ImageId"])
        return None

    def image_state(self, image_id: str) -> str | None:
        """The AMI's State (pending, available, failed, ...), or None when EC2 does not list it
        (an ``image-id`` filter: ``ImageIds`` fails the call for an id not propagated yet)."""
        for image in _paginate(
            self._api(),
            "describe_images",
            "Images",
            Owners=["self"],
            Filters=[{"Name": "image-id", "Values": [image_id]}],
        ):
            return str(image.get("State") or "")
        return None

    def deregister_image(self, image_id: str) -> None:
        call("ec2:DeregisterImage", self._api().deregister_image, ImageId=image_id)

    def run_instance(self, params: dict[str, Any]) -> dict[str, Any]:
        """RunInstances (with a ClientToken, so a retry launches no second instance)."""
        return dict(call("ec2:RunInstances", self._api().run_instances, **params)["Instances"][0])

    def lock_snapshot(self, params: dict[str, Any]) -> dict[str, Any]:
        """LockSnapshot (EC2 API Reference): one snapshot per request. Retried by botocore: a
        repeated identical lock request is harmless (same mode and duration)."""
        response = call("ec2:LockSnapshot", self._api().lock_snapshot, **params)
        return dict(response)

    def locked_snapshots(self, snapshot_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Snapshot id -> its DescribeLockedSnapshots record (lock state, expiry), for the named
        snapshots that have a lock. EC2 API Reference, DescribeLockedSnapshots: MaxResults 5-1000
        with NextToken; botocore has no paginator for it, so pages are followed here. Ids are
        sent MAX_FILTER_VALUES at a time, like every id list Smart Vault sends. IAM: the Service
        Authorization Reference lists no resource type for it, so it is granted on "*"."""
        found: dict[str, dict[str, Any]] = {}
        api = self._api()
        for chunk in _chunks(snapshot_ids):
            kwargs: dict[str, Any] = {"SnapshotIds": chunk}
            while True:
                page = call("ec2:DescribeLockedSnapshots", api.describe_locked_snapshots, **kwargs)
                for info in page.get("Snapshots") or ():
                    found[info["SnapshotId"]] = info
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
        return found

    def copy_snapshot(
        self, *, source_region: str, source_snapshot_id: str, kms_key: str, tags: list[dict[str, str]], description: str
    ) -> str:
        """Start a copy into this client's Region (CopySnapshot is sent to the destination's
        endpoint; botocore adds the PresignedUrl and DestinationRegion). EC2 API Reference,
        CopySnapshot: ``Encrypted`` with ``KmsKeyId`` encrypts the copy with that key, which EC2
        "authenticates asynchronously": an unusable key lets the call succeed and the copy end
        in state ``error``. No client token exists for it and no SDK retry is made: the Copy
        step looks for this run's copies by tag before starting one."""
        response = call(
            "ec2:CopySnapshot",
            self._api(once=True).copy_snapshot,
            SourceRegion=source_region,
            SourceSnapshotId=source_snapshot_id,
            Encrypted=True,
            KmsKeyId=kms_key,
            Description=description[:255],
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}],
        )
        return str(response["SnapshotId"])

    def copies_in_flight(self) -> int:
        """Copies into this Region still pending, made by any Smart Vault deployment (their
        source-snapshot tag): what counts toward EC2's 20 concurrent copies per destination."""
        return len(
            list(
                _paginate(
                    self._api(),
                    "describe_snapshots",
                    "Snapshots",
                    OwnerIds=["self"],
                    Filters=[
                        {"Name": "tag-key", "Values": [TAG_SOURCE_SNAPSHOT]},
                        {"Name": "status", "Values": ["pending"]},
                    ],
                )
            )
        )

    def delete_snapshot(self, snapshot_id: str) -> str | None:
        """Delete; returns None on success, or the reason it was skipped (``in_use``,
        ``already_deleted``). Any other refusal raises: EC2 documents no error code for a locked
        snapshot, so deferral.py re-checks the lock on every refusal instead of matching one."""
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

    # -- restore drills ------------------------------------------------------------------
    def tagged_volumes(self, tags: dict[str, str]) -> list[dict[str, Any]]:
        """Every volume carrying all these tags (DescribeVolumes, tag filters, paginated)."""
        filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in sorted(tags.items())]
        return list(_paginate(self._api(), "describe_volumes", "Volumes", Filters=filters))

    def tag_resources(self, resource_ids: Sequence[str], tags: dict[str, str]) -> None:
        """CreateTags on up to 1,000 resources a call (EC2 API Reference, CreateTags: "Constraints:
        Up to 1000 resource IDs")."""
        ids = list(resource_ids)
        for start in range(0, len(ids), 1000):
            call(
                "ec2:CreateTags",
                self._api().create_tags,
                Resources=ids[start : start + 1000],
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )

    def tiering_in_progress(self, snapshot_ids: Iterable[str]) -> set[str]:
        """Which of these snapshots are being archived or restored right now.

        DescribeSnapshots keeps answering StorageTier ``standard`` until an archive completes;
        DescribeSnapshotTierStatus (EC2 API Reference; filter ``snapshot-id``, paginated) tells the
        tiering in progress, so a run does not ask again for an archive already under way."""
        busy: set[str] = set()
        for chunk in _chunks(snapshot_ids):
            for status in _paginate(
                self._api(),
                "describe_snapshot_tier_status",
                "SnapshotTierStatuses",
                Filters=[{"Name": "snapshot-id", "Values": chunk}],
            ):
                if str(status.get("LastTieringOperationStatus") or "").endswith("-in-progress"):
                    busy.add(status["SnapshotId"])
        return busy

    def archive_snapshot(self, snapshot_id: str) -> str | None:
        """ModifySnapshotTier to ``archive`` (the only value it takes, EC2 API Reference). Returns
        None when EC2 accepted it, or EC2's error code when it refused this snapshot (not
        completed, in use by an AMI, already archiving: "Archive an Amazon EBS snapshot", EBS
        User Guide), which keeps it in the standard tier: nothing is lost. Throttling, server
        and permission errors raise, so the step retries or fails visibly."""
        try:
            self._api().modify_snapshot_tier(SnapshotId=snapshot_id, StorageTier="archive")
        except ClientError as error:
            failure = classify(error, "ec2:ModifySnapshotTier")
            if isinstance(failure, ThrottledError | TransientAwsError | PermissionDeniedError | DryRunAllowedError):
                raise failure from error
            return error_code(error) or "refused"
        except BotoCoreError as error:
            raise classify(error, "ec2:ModifySnapshotTier") from error
        return None


class Ssm:
    """The Systems Manager calls of application consistency (smart_vault.consistency)."""

    def send_command(self, *, instance_id: str, document: str, comment: str, timeout_seconds: int) -> str:
        """Run ``document`` on the instance; its CommandId. SendCommand takes no client token,
        so it gets no SDK retries (a retried request would run the script twice); the workflow
        retries the step. TimeoutSeconds: the command is not started after it (SSM API Reference)."""
        response = call(
            "ssm:SendCommand",
            client("ssm", once=True).send_command,
            InstanceIds=[instance_id],
            DocumentName=document,
            Comment=comment[:100],
            TimeoutSeconds=timeout_seconds,
        )
        return str(response["Command"]["CommandId"])

    def invocation(self, command_id: str, instance_id: str) -> dict[str, Any]:
        response = call(
            "ssm:GetCommandInvocation",
            client("ssm").get_command_invocation,
            CommandId=command_id,
            InstanceId=instance_id,
        )
        return dict(response)

    def managed(self, instance_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Instance id -> SSM's record of it, for the ones SSM manages (DescribeInstanceInformation)."""
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(instance_ids, 50):  # InstanceInformationFilter: at most 50 values
            for item in _paginate(
                "ssm",
                "describe_instance_information",
                "InstanceInformationList",
                Filters=[{"Key": "InstanceIds", "Values": chunk}],
            ):
                found[str(item["InstanceId"])] = dict(item)
        return found


class Kms:
    """KMS in one Region: Discover checks each destination's key before any copy is started."""

    def __init__(self, region: str) -> None:
        self.region = region

    def describe_key(self, key_id: str) -> dict[str, Any]:
        """DescribeKey accepts a key id, key ARN, alias name or alias ARN (KMS API Reference,
        DescribeKey); NotFoundException for a key or alias that does not exist."""
        response = call("kms:DescribeKey", client("kms", region=self.region).describe_key, KeyId=key_id)
        return dict(response["KeyMetadata"])


class EbsBlocks:
    """The EBS direct APIs' reads of one Region (restore drill verification): which blocks of a
    snapshot hold data, and a block's data with its checksum (EBS direct APIs reference,
    ListSnapshotBlocks and GetSnapshotBlock; MaxResults 100-10,000)."""

    def __init__(self, region: str | None = None) -> None:
        self.region = region

    def _call(self, operation: str, method: str, **params: Any) -> Any:
        return call(f"ebs:{operation}", getattr(client("ebs", region=self.region), method), **params)

    def list_blocks(self, snapshot_id: str, *, start: int = 0, max_results: int = 100) -> dict[str, Any]:
        """One page from ``start`` (or the next written block): Blocks, VolumeSize, NextToken."""
        page = self._call(
            "ListSnapshotBlocks",
            "list_snapshot_blocks",
            SnapshotId=snapshot_id,
            StartingBlockIndex=start,
            MaxResults=max_results,
        )
        return dict(page)

    def get_block(self, snapshot_id: str, index: int, token: str) -> tuple[bytes, str, str]:
        """The block's data, its Checksum and ChecksumAlgorithm as EBS returned them."""
        response = self._call(
            "GetSnapshotBlock", "get_snapshot_block", SnapshotId=snapshot_id, BlockIndex=index, BlockToken=token
        )
        return (
            response["BlockData"].read(),
            str(response.get("Checksum") or ""),
            str(response.get("ChecksumAlgorithm") or ""),
        )


class Store:
    """The inventory/audit bucket. ``session``: the operator CLI's own credentials."""

    def __init__(self, bucket: str, session: Any = None):
        self.bucket = bucket
        self._session = session

    def _api(self) -> Any:
        return self._session.client("s3") if self._session is not None else client("s3")

    def put_json(self, key: str, body: Any) -> None:
        call(
            "s3:PutObject",
            self._api().put_object,
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(body, separators=(",", ":"), default=str).encode(),
            ContentType="application/json",
        )

    def get_json(self, key: str) -> Any:
        response = call("s3:GetObject", self._api().get_object, Bucket=self.bucket, Key=key)
        return json.loads(response["Body"].read())

    def delete(self, key: str) -> None:
        call("s3:DeleteObject", self._api().delete_object, Bucket=self.bucket, Key=key)

    def get_optional(self, key: str) -> Any:
        """The object's JSON, or None when there is no such key. S3 answers NoSuchKey only to a
        caller that may list the bucket, otherwise 403 AccessDenied
        (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html), so the functions
        that call this are granted s3:ListBucket on their prefixes."""
        try:
            response = self._api().get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error_code(error) in ("NoSuchKey", "404"):
                return None
            raise classify(error, "s3:GetObject") from error
        except BotoCoreError as error:
            raise classify(error, "s3:GetObject") from error
        return json.loads(response["Body"].read())

    def keys(self, prefix: str) -> list[str]:
        return [
            obj["Key"]
            for obj in _paginate(self._api(), "list_objects_v2", "Contents", Bucket=self.bucket, Prefix=prefix)
        ]

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        if len(keys) < 8:
            return [self.get_json(k) for k in keys]
        with ThreadPoolExecutor(max_workers=16) as pool:
            return list(pool.map(self.get_json, keys))


# SNS Publish (Amazon SNS API Reference): the message plus its attributes (names, types and
# values) may be at most 262,144 bytes, with at most 10 attributes; a Subject must have "no line
# breaks or control characters, and [be] less than 100 characters long". We also keep it to
# printable ASCII, which e-mail shows unchanged.
SNS_MAX_MESSAGE_BYTES = 262_144
SNS_MAX_ATTRIBUTES = 10
SNS_MAX_SUBJECT = 99
_MACHINE_PROTOCOLS = ("sqs", "lambda", "https", "http")


def sns_subject(subject: str) -> str:
    """A Subject SNS accepts: printable ASCII, one line, fewer than 100 characters."""
    printable = "".join(c if " " <= c <= "~" else " " for c in subject)
    return " ".join(printable.split())[:SNS_MAX_SUBJECT] or "Smart Vault"


class Alerts:
    def __init__(self, topic_arn: str):
        self.topic_arn = topic_arn

    @staticmethod
    def request(*, subject: str, text: str, document: dict[str, Any], attributes: dict[str, str]) -> dict[str, Any]:
        """The Publish parameters: e-mail (``default``) gets the readable text once; machine
        subscribers (SQS, Lambda, HTTPS) get the compact JSON document."""
        body = json.dumps(document, separators=(",", ":"), default=str)
        message = {"default": text, **dict.fromkeys(_MACHINE_PROTOCOLS, body)}
        if len(attributes) > SNS_MAX_ATTRIBUTES:
            raise ValueError(f"SNS allows at most {SNS_MAX_ATTRIBUTES} message attributes, got {len(attributes)}")
        return {
            "Subject": sns_subject(subject),
            "Message": json.dumps(message, separators=(",", ":")),
            "MessageStructure": "json",
            "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        }

    @staticmethod
    def request_bytes(request: dict[str, Any]) -> int:
        """What SNS counts against its size limit: message and attribute names, types, values
        (the subject is added too, to stay on the safe side)."""
        size = len(request["Message"].encode()) + len(request["Subject"].encode())
        for name, value in request["MessageAttributes"].items():
            size += len(name.encode()) + len(value["DataType"].encode()) + len(value["StringValue"].encode())
        return size

    def publish(self, request: dict[str, Any]) -> str:
        response = call("sns:Publish", client("sns").publish, TopicArn=self.topic_arn, **request)
        return str(response.get("MessageId", ""))

    def subscriptions(self) -> list[dict[str, Any]]:
        """The topic's subscriptions (ListSubscriptionsByTopic, 100 a page with NextToken)."""
        return list(_paginate("sns", "list_subscriptions_by_topic", "Subscriptions", TopicArn=self.topic_arn))


# -- account facts preflight reads (smart_vault.preflight.report) -----------------------------
def service_quota(service_code: str, quota_code: str) -> float:
    """Service Quotas GetServiceQuota: the quota's applied Value."""
    response = call(
        "servicequotas:GetServiceQuota",
        client("service-quotas").get_service_quota,
        ServiceCode=service_code,
        QuotaCode=quota_code,
    )
    return float(response["Quota"]["Value"])


def recycle_bin_rules(resource_type: str, tags: Mapping[str, str]) -> list[dict[str, Any]]:
    """Recycle Bin ListRules for that resource type, matching these resource tags (paginated)."""
    wanted = [{"ResourceTagKey": k, "ResourceTagValue": v} for k, v in tags.items()]
    return list(_paginate("rbin", "list_rules", "Rules", ResourceType=resource_type, ResourceTags=wanted))


def schedule(name: str) -> dict[str, Any]:
    """EventBridge Scheduler GetSchedule of a schedule in the default group."""
    return dict(call("scheduler:GetSchedule", client("scheduler").get_schedule, Name=name))


def redrive_count(execution_arn: str) -> int:
    """Step Functions DescribeExecution ``redriveCount``: how many times the execution was
    redriven (0 before any; Step Functions API Reference, DescribeExecution)."""
    response = call("states:DescribeExecution", client("stepfunctions").describe_execution, executionArn=execution_arn)
    return int(response.get("redriveCount") or 0)
