"""Functions: the six Lambda functions, each with its own role, log group and IAM.

Each function's sizing and permissions are one row of function_specs() below, next to the reason
its wildcard resources are acceptable (the cdk-nag AwsSolutions-IAM5 acknowledgment is made from
the same row).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from smart_vault.backup.keys import key_region
from smart_vault.constants import (
    APPROVALS_PREFIX,
    DRILLS_PREFIX,
    FUNCTION_HANDLERS,
    METRIC_NAMESPACE,
    PREFLIGHT_PREFIX,
    RUNS_PREFIX,
    SCHEDULE_NAME_ENV,
    SERVICE_NAME,
    TAG_DRILL,
    TAG_MANAGED,
    TAG_VERIFIED_AT,
    construct_name,
)
from smart_vault.settings import CopyRegion
from smart_vault_infra.checks import GUARD, acknowledge, acknowledge_log_retention
from smart_vault_infra.config import LOG_RETENTION, DeploymentConfig
from smart_vault_infra.paths import FUNCTIONS_DIR
from smart_vault_infra.storage import Storage


class On(Enum):
    """What a statement's Resource names, resolved per deployment by the construct."""

    ANY = "any"  # actions without resource-level permissions (EC2 Describe*)
    RUN_RECORDS = "run records"  # objects under runs/ in the bucket
    APPROVALS = "approvals"  # objects under approvals/ (written by `smart-vault approve`)
    DRILL_RECORDS = "drill records"  # objects under drills/ (restore drill results and history)
    PREFLIGHT_RECORDS = "preflight records"  # objects under preflight/ (results, probe objects)
    BUCKET = "bucket"  # the bucket itself (ListBucket)
    TOPIC = "topic"
    INSTANCES = "instances"
    VOLUMES = "volumes"
    SNAPSHOTS = "snapshots"  # snapshot ARNs have no account: arn:...:ec2:<region>::snapshot/*
    COPY_SNAPSHOTS = "copy snapshots"  # snapshot/* in every copy destination Region
    COPY_VOLUMES = "copy volumes"  # volume/* in the destinations the drill restores in by turns


@dataclass(frozen=True)
class Allow:
    actions: tuple[str, ...]
    on: tuple[On, ...]
    conditions: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    # Literal ARN templates ({partition}, {account} filled per stack), for per-destination keys.
    arns: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class FunctionSpec:
    memory_mb: int
    timeout: Duration  # the Duration alarm fires at 80% of it
    allow: tuple[Allow, ...]
    uses_key: bool  # reads or writes the encrypted bucket or topic
    wildcards: str  # why this row's wildcard resources are acceptable (AwsSolutions-IAM5)


def key_grants(actions: tuple[str, ...], copy_regions: tuple[CopyRegion, ...]) -> tuple[Allow, ...]:
    """``actions`` on each destination's KMS key (see region_key_grants)."""
    return region_key_grants(actions, tuple((d.region, d.kms_key) for d in copy_regions))


def region_key_grants(
    actions: tuple[str, ...], keys: tuple[tuple[str, str], ...], conditions: Mapping[str, Mapping[str, object]] = {}
) -> tuple[Allow, ...]:
    """``actions`` on each (Region, key). KMS authorizes on the key ARN, never the alias
    (KMS Developer Guide, "Using aliases to control access"), so an alias becomes key/* of that
    Region narrowed by kms:ResourceAliases, which KMS supports for DescribeKey, CreateGrant,
    Decrypt, ReEncrypt* and GenerateDataKey* (Service Authorization Reference, AWS KMS)."""
    grants: list[Allow] = []
    for region, key in keys:
        if key.startswith("arn:") and ":key/" in key:
            grants.append(Allow(actions, (), dict(conditions), arns=(key,)))
            continue
        alias = key.split(":", 5)[-1] if key.startswith("arn:") else key
        arn = f"arn:{{partition}}:kms:{region}:{{account}}:key/{'*' if alias.startswith('alias/') else key}"
        narrowed = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": [alias]}} if alias.startswith("alias/") else {}
        grants.append(Allow(actions, (), {**narrowed, **conditions}, arns=(arn,)))
    return tuple(grants)


# What EBS needs of the caller to use a customer managed key ("Requirements for Amazon EBS
# encryption", Amazon EBS User Guide: kms:CreateGrant, kms:Decrypt, kms:DescribeKey,
# kms:GenerateDataKeyWithoutPlaintext, kms:ReEncrypt*; "Required IAM permissions for archiving
# Amazon EBS snapshots": kms:CreateGrant, kms:Decrypt, kms:DescribeKey for encrypted snapshots).
EBS_KEY_ACTIONS = (
    "kms:DescribeKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)
ARCHIVE_KEY_ACTIONS = ("kms:DescribeKey", "kms:Decrypt")


def _regional(keys: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(Region, key) of each key: the Region its ARN names, else the stack's ("{region}")."""
    return tuple((key_region(k, "{region}"), k) for k in keys)


def fleet_key_grants(
    fleet_keys: tuple[str, ...], actions: tuple[str, ...], via_regions: tuple[str, ...] = ("{region}",)
) -> tuple[Allow, ...]:
    """``actions`` (and kms:CreateGrant for AWS resources only) on the fleet's own keys, usable
    only through EC2 (kms:ViaService ec2.<region>.amazonaws.com; "{region}" is the stack's): EBS
    makes these calls on the function's behalf when it copies, archives or restores. A
    cross-Region copy reads the source from the destination's endpoint, so the copy role's
    grant names the EC2 of every destination too (the docs do not say which one KMS sees)."""
    if not fleet_keys:
        return ()
    keys = _regional(fleet_keys)
    services = [f"ec2.{r}.amazonaws.com" for r in via_regions]
    via: dict[str, Mapping[str, object]] = {
        "StringEquals": {"kms:ViaService": services[0] if len(services) == 1 else services}
    }
    grant = {**via, "Bool": {"kms:GrantIsForAWSResource": "true"}}
    return region_key_grants(actions, keys, via) + region_key_grants(("kms:CreateGrant",), keys, grant)


def function_specs(
    deployment_id: str,
    lock_days: int | None = None,
    *,
    archive: bool = False,
    copy_regions: tuple[CopyRegion, ...] = (),
    fleet_keys: tuple[str, ...] = (),
    recycle_bin: bool = False,
    drill_regions: tuple[CopyRegion, ...] = (),
    backup_tag: tuple[str, str] = ("backup", "True"),
    documents: tuple[str, ...] = (),
    vault_account: str | None = None,
) -> dict[str, FunctionSpec]:
    """Every function's sizing and IAM. deployment_id is the managed marker's value; lock_days
    the configured snapshot lock (None: no lock, and no ec2:LockSnapshot); ``archive``
    (archive_after_days is set) lets Prune move this deployment's snapshots to the archive tier;
    copy_regions the off-site copy destinations (none: the copy function may only describe);
    fleet_keys the customer managed keys of the fleet's volumes (fleet_kms_keys): Discover
    checks them, and the roles whose EC2 calls make EBS use them (copy, archive, drill) may;
    drill_regions the copy destinations the drill restores in by turns (drill.regions in_turn):
    its three roles get there what they have in the source Region, on that Region's copies."""
    managed_at_create = {"StringEquals": {f"aws:RequestTag/{TAG_MANAGED}": deployment_id}}
    managed = {"StringEquals": {f"aws:ResourceTag/{TAG_MANAGED}": deployment_id}}
    copy_source = {"StringEquals": {f"aws:RequestTag/{TAG_MANAGED}": deployment_id, "ec2:Owner": "{account}"}}
    describe = "EC2 Describe* and X-Ray support no resource-level permissions (Resource::*)"
    runs = f"run records have generated keys under {RUNS_PREFIX}/ only"
    drills = f"drill records have generated keys under {DRILLS_PREFIX}/ only"
    preflight = f"preflight writes, reads and deletes generated keys under {PREFLIGHT_PREFIX}/ only"
    # Preflight's probe of the bucket (its policy, key and any SCP): write, read, delete one object.
    probe = Allow(("s3:PutObject", "s3:GetObject", "s3:DeleteObject"), (On.PREFLIGHT_RECORDS,))
    drill_at_create = {"StringEquals": {f"aws:RequestTag/{TAG_DRILL}": deployment_id}}
    drill_volume = {"StringEquals": {f"aws:ResourceTag/{TAG_DRILL}": deployment_id}}
    drill_prefix = {"StringLike": {"s3:prefix": [f"{DRILLS_PREFIX}/*"]}}
    by_alias = any(":key/" not in k for k in fleet_keys)
    fleet = "; a fleet key named by alias is key/* of the Region narrowed by kms:ResourceAliases" if by_alias else ""
    tagged_instance = {"StringEquals": {f"ssm:resourceTag/{backup_tag[0]}": backup_tag[1]}}
    return {
        "discover": FunctionSpec(
            memory_mb=1024,
            timeout=Duration.minutes(5),
            allow=(
                # DescribeSnapshots: preflight finds its targets (this deployment's newest snapshot).
                Allow(("ec2:DescribeInstances", "ec2:DescribeVolumes", "ec2:DescribeSnapshots"), (On.ANY,)),
                Allow(("s3:PutObject",), (On.RUN_RECORDS,)),
                # Each copy destination's key and each fleet key is checked before the run
                # snapshots anything (a direct call: no kms:ViaService).
                *key_grants(("kms:DescribeKey",), copy_regions),
                *region_key_grants(("kms:DescribeKey",), _regional(fleet_keys)),
            ),
            uses_key=True,
            wildcards=f"{describe}; {runs}; a destination key named by alias is key/* of its Region "
            "narrowed by kms:ResourceAliases" + fleet + ".",
        ),
        "snapshot": FunctionSpec(
            memory_mb=256,
            timeout=Duration.minutes(1),
            allow=(
                Allow(("ec2:DescribeSnapshots",), (On.ANY,)),
                # The instance and its volumes are the sources; the snapshots must carry this
                # deployment's marker from creation on, and tags are written only by the create.
                Allow(("ec2:CreateSnapshots",), (On.INSTANCES, On.VOLUMES)),
                Allow(("ec2:CreateSnapshots",), (On.SNAPSHOTS,), managed_at_create),
                Allow(("ec2:CreateTags",), (On.SNAPSHOTS,), {"StringEquals": {"ec2:CreateAction": "CreateSnapshots"}}),
                *_lock_rows(deployment_id, lock_days),
            ),
            uses_key=False,
            wildcards=f"{describe}; instance, volume and snapshot ARNs are unknown before the call, so "
            "CreateSnapshots requires the managed tag on the snapshot (aws:RequestTag) and CreateTags "
            "is allowed only inside it (ec2:CreateAction).",
        ),
        "check": FunctionSpec(
            memory_mb=256,
            timeout=Duration.minutes(1),
            allow=(
                Allow(("ec2:DescribeSnapshots",), (On.ANY,)),
                # Locks the new snapshots whose lock the Snapshot step could not set (throttled):
                # a retried Snapshot step could snapshot again (snapshots.lock_new).
                *_lock_rows(deployment_id, lock_days),
            ),
            uses_key=False,
            wildcards=f"{describe}.",
        ),
        "prune": FunctionSpec(
            memory_mb=256,
            timeout=Duration.minutes(3),
            allow=(
                # DescribeImages finds AMI-registered snapshots before the plan; like every EC2
                # Describe* it has no resource types (Service Authorization Reference, EC2).
                # DescribeLockedSnapshots: locks are checked before every deletion, whether or not
                # this deployment locks (a lock set by hand must be honoured too).
                Allow(("ec2:DescribeSnapshots", "ec2:DescribeImages", "ec2:DescribeLockedSnapshots"), (On.ANY,)),
                Allow(("ec2:DeleteSnapshot",), (On.SNAPSHOTS,), managed),
                # Archive tier (opt-in): ModifySnapshotTier has the snapshot resource type with
                # aws:ResourceTag; DescribeSnapshotTierStatus, like every Describe*, none
                # (Service Authorization Reference, Amazon EC2).
                *(
                    (
                        Allow(("ec2:ModifySnapshotTier",), (On.SNAPSHOTS,), managed),
                        Allow(("ec2:DescribeSnapshotTierStatus",), (On.ANY,)),
                        # Archiving an encrypted snapshot uses its key through EC2.
                        *fleet_key_grants(fleet_keys, ARCHIVE_KEY_ACTIONS),
                    )
                    if archive
                    else ()
                ),
                # Retention of the copies in each destination, on the same managed marker.
                *((Allow(("ec2:DeleteSnapshot",), (On.COPY_SNAPSHOTS,), managed),) if copy_regions else ()),
                # Every run locks what should be locked and is not (a LockSnapshot that failed on
                # an earlier night): this deployment's snapshots, and its copies in destinations.
                *_lock_only(deployment_id, lock_days, On.SNAPSHOTS),
                *(_lock_only(deployment_id, lock_days, On.COPY_SNAPSHOTS) if copy_regions else ()),
                *_vault_share_rows(managed, vault_account),
                Allow(("s3:PutObject",), (On.RUN_RECORDS,)),
                # Its deletion journal and the inventory (orphan step); operator approvals.
                Allow(("s3:GetObject",), (On.RUN_RECORDS, On.APPROVALS)),
                # Without ListBucket, GetObject of a missing key (no journal yet, no approval)
                # answers AccessDenied instead of NoSuchKey (S3 API Reference, GetObject).
                Allow(
                    ("s3:ListBucket",),
                    (On.BUCKET,),
                    {"StringLike": {"s3:prefix": [f"{RUNS_PREFIX}/*", f"{APPROVALS_PREFIX}/*"]}},
                ),
                probe,
            ),
            uses_key=True,
            wildcards=f"{describe}; DeleteSnapshot (ModifySnapshotTier) only on snapshots with this deployment's "
            "marker "
            f"(aws:ResourceTag); {runs}; approvals are read-only keys under {APPROVALS_PREFIX}/; {preflight}"
            + fleet
            + ".",
        ),
        "copy": FunctionSpec(
            memory_mb=256,
            timeout=Duration.minutes(1),
            allow=(
                # DescribeSnapshots in the destinations finds this run's copies and counts copies in flight.
                Allow(("ec2:DescribeSnapshots",), (On.ANY,)),
                *(
                    (
                        # CopySnapshot authorizes the source snapshot and the new copy (AWS
                        # Storage Blog, "Enhancing resource-level permissions for copying Amazon
                        # EBS snapshots"), but the Service Authorization Reference (Amazon EC2,
                        # CopySnapshot, snapshot*) lists no aws:ResourceTag for it: aws:RequestTag,
                        # aws:TagKeys and ec2: keys such as ec2:Owner only. So a source must be a
                        # snapshot of this account in this Region, copied only into a copy that
                        # carries this deployment's marker from creation (aws:RequestTag is the
                        # request's, present for both resources); tags only inside the copy.
                        Allow(("ec2:CopySnapshot",), (On.SNAPSHOTS,), copy_source),
                        Allow(("ec2:CopySnapshot",), (On.COPY_SNAPSHOTS,), managed_at_create),
                        Allow(
                            ("ec2:CreateTags",),
                            (On.COPY_SNAPSHOTS,),
                            {"StringEquals": {"ec2:CreateAction": "CopySnapshot"}},
                        ),
                        # EBS encrypts each copy with the destination key on the caller's behalf
                        # (Amazon EBS User Guide, "Permissions to use AWS KMS keys"); grants only
                        # for AWS resources (kms:GrantIsForAWSResource).
                        *key_grants(
                            (
                                "kms:DescribeKey",
                                "kms:GenerateDataKeyWithoutPlaintext",
                                "kms:Decrypt",
                                "kms:ReEncryptFrom",
                                "kms:ReEncryptTo",
                            ),
                            copy_regions,
                        ),
                        *(
                            replace(a, conditions={**a.conditions, "Bool": {"kms:GrantIsForAWSResource": "true"}})
                            for a in key_grants(("kms:CreateGrant",), copy_regions)
                        ),
                        # The source snapshots' key: EBS decrypts them to copy (through EC2 only).
                        *fleet_key_grants(fleet_keys, EBS_KEY_ACTIONS, ("{region}", *(d.region for d in copy_regions))),
                        # Copies are locked like the snapshots (snapshot lock), in their own Region.
                        *(
                            replace(a, on=(On.COPY_SNAPSHOTS,)) if On.SNAPSHOTS in a.on else a
                            for a in _lock_rows(deployment_id, lock_days)
                        ),
                    )
                    if copy_regions
                    else ()
                ),
            ),
            uses_key=False,
            wildcards=f"{describe}; copies are new snapshots whose ARNs are unknown before the call, so "
            "CopySnapshot takes only this account's snapshots of this Region (ec2:Owner) and requires the managed "
            "tag on the copy (aws:RequestTag) "
            "and CreateTags is allowed only inside it (ec2:CreateAction); a destination key named by alias "
            "is key/* of its Region narrowed by kms:ResourceAliases" + fleet + ".",
        ),
        "notify": FunctionSpec(
            memory_mb=1024,
            timeout=Duration.minutes(10),
            allow=(
                # Confirms journaled deletions and finds the snapshots of an unrecorded instance.
                Allow(("ec2:DescribeSnapshots",), (On.ANY,)),
                Allow(("s3:PutObject", "s3:GetObject"), (On.RUN_RECORDS,)),
                Allow(("s3:ListBucket",), (On.BUCKET,), {"StringLike": {"s3:prefix": [f"{RUNS_PREFIX}/*"]}}),
                Allow(("sns:Publish",), (On.TOPIC,)),
                # Preflight's account facts: a confirmed subscription, EBS encryption by default
                # and its key (Get* without resource types, like Describe*), the snapshot quota
                # (Service Quotas), and its record under preflight/.
                Allow(("sns:ListSubscriptionsByTopic",), (On.TOPIC,)),
                Allow(("ec2:GetEbsEncryptionByDefault", "ec2:GetEbsDefaultKmsKeyId"), (On.ANY,)),
                # On "*": parliament's IAM database lists no resource type for GetServiceQuota
                # (the SAR names quota); "*" is what works whichever is right, and it only reads.
                Allow(("servicequotas:GetServiceQuota",), (On.ANY,)),
                Allow(("s3:PutObject",), (On.PREFLIGHT_RECORDS,)),
                # The stack's Recycle Bin rule, when configured: ListRules has no resource type
                # (Service Authorization Reference, AWS Recycle Bin).
                *((Allow(("rbin:ListRules",), (On.ANY,)),) if recycle_bin else ()),
                # The redrive gate reads its own execution's redriveCount (resource type
                # execution, Service Authorization Reference, AWS Step Functions).
                Allow(
                    ("states:DescribeExecution",),
                    (),
                    arns=(f"arn:{{partition}}:states:{{region}}:{{account}}:execution:{deployment_id}-backup:*",),
                ),
                # The backup schedule is enabled (resource type schedule, Service Authorization
                # Reference, Amazon EventBridge Scheduler).
                Allow(
                    ("scheduler:GetSchedule",),
                    (),
                    arns=(
                        f"arn:{{partition}}:scheduler:{{region}}:{{account}}:schedule/default/{deployment_id}-backup",
                    ),
                ),
            ),
            uses_key=True,
            wildcards=f"{describe}; {runs}; {preflight}.",
        ),
        # Application consistency (smart_vault.consistency). Service Authorization Reference,
        # AWS Systems Manager: SendCommand authorizes the document (document*) and each instance
        # (instance, whose keys are aws:ResourceTag and ssm:resourceTag); GetCommandInvocation
        # and DescribeInstanceInformation have no resource type. The tag condition goes on the
        # instance row only: IAM evaluates a statement's condition against each resource it
        # authorizes, and a document carries no backup tag, so one statement for both would grant
        # nothing. Documents: the deployment's named ones, no wildcard.
        "consistency": FunctionSpec(
            memory_mb=256,
            timeout=Duration.minutes(1),
            allow=(
                Allow(("ssm:SendCommand",), (), arns=tuple(document_arn(name) for name in documents)),
                Allow(("ssm:SendCommand",), (On.INSTANCES,), tagged_instance),
                Allow(("ssm:GetCommandInvocation", "ssm:DescribeInstanceInformation"), (On.ANY,)),
            ),
            uses_key=False,
            wildcards="SendCommand reaches instance/* only where the instance carries the backup tag "
            f"(ssm:resourceTag/{backup_tag[0]}), and only the deployment's named documents; "
            "GetCommandInvocation and DescribeInstanceInformation support no resource-level permissions.",
        ),
        # The restore drill (statemachine/drill.asl.json). Service Authorization Reference, EC2:
        # CreateVolume authorizes volume/* (aws:RequestTag, aws:TagKeys) and the source snapshot
        # (aws:ResourceTag); DeleteVolume the volume (aws:ResourceTag); CreateTags the tagged
        # resource (aws:ResourceTag, aws:RequestTag, aws:TagKeys, ec2:CreateAction).
        "drill": FunctionSpec(
            memory_mb=512,
            timeout=Duration.minutes(2),
            allow=(
                # DescribeInstances: the instances in scope it cannot drill are reported.
                Allow(
                    (
                        "ec2:DescribeSnapshots",
                        "ec2:DescribeVolumes",
                        "ec2:DescribeVolumeStatus",
                        "ec2:DescribeAvailabilityZones",
                        "ec2:DescribeInstances",
                    ),
                    (On.ANY,),
                ),
                # Only volumes that carry the drill marker from creation on (DeleteVolume needs
                # it), only from this deployment's snapshots, tagged only by the create itself.
                Allow(("ec2:CreateVolume",), (On.VOLUMES,), drill_at_create),
                Allow(("ec2:CreateVolume",), (On.SNAPSHOTS,), managed),
                Allow(("ec2:CreateTags",), (On.VOLUMES,), {"StringEquals": {"ec2:CreateAction": "CreateVolume"}}),
                # Verify reads a sample of blocks of this deployment's snapshots only (Service
                # Authorization Reference, Amazon Elastic Block Store: snapshot*, aws:ResourceTag).
                Allow(("ebs:ListSnapshotBlocks", "ebs:GetSnapshotBlock"), (On.SNAPSHOTS,), managed),
                # The same in each destination it restores in by turns, from the copies there,
                # which EBS decrypts with the destination's key (grants for AWS resources only).
                *(
                    (
                        Allow(("ec2:CreateVolume",), (On.COPY_VOLUMES,), drill_at_create),
                        Allow(("ec2:CreateVolume",), (On.COPY_SNAPSHOTS,), managed),
                        Allow(
                            ("ec2:CreateTags",),
                            (On.COPY_VOLUMES,),
                            {"StringEquals": {"ec2:CreateAction": "CreateVolume"}},
                        ),
                        Allow(("ebs:ListSnapshotBlocks", "ebs:GetSnapshotBlock"), (On.COPY_SNAPSHOTS,), managed),
                        *key_grants(EBS_KEY_ACTIONS, drill_regions),
                        *(
                            replace(a, conditions={**a.conditions, "Bool": {"kms:GrantIsForAWSResource": "true"}})
                            for a in key_grants(("kms:CreateGrant",), drill_regions)
                        ),
                    )
                    if drill_regions
                    else ()
                ),
                # A volume restored from an encrypted snapshot uses its key (through EC2 only).
                *fleet_key_grants(fleet_keys, EBS_KEY_ACTIONS),
                Allow(("s3:GetObject",), (On.DRILL_RECORDS,)),
                Allow(("s3:ListBucket",), (On.BUCKET,), drill_prefix),
            ),
            uses_key=True,
            wildcards=f"{describe}; volume ARNs are unknown before CreateVolume, so it requires the "
            f"drill marker on the volume (aws:RequestTag) and this deployment's marker on the snapshot "
            f"(aws:ResourceTag), and CreateTags is allowed only inside it (ec2:CreateAction); {drills}" + fleet + ".",
        ),
        "drill_cleanup": FunctionSpec(
            memory_mb=256,
            timeout=Duration.minutes(2),
            allow=(
                Allow(("ec2:DescribeVolumes",), (On.ANY,)),
                Allow(("ec2:DeleteVolume",), (On.VOLUMES,), drill_volume),
                *((Allow(("ec2:DeleteVolume",), (On.COPY_VOLUMES,), drill_volume),) if drill_regions else ()),
            ),
            uses_key=False,
            wildcards=f"{describe}; DeleteVolume only on volumes with this deployment's drill marker "
            "(aws:ResourceTag).",
        ),
        "drill_report": FunctionSpec(
            memory_mb=256,
            timeout=Duration.minutes(2),
            allow=(
                # smart-vault:verified-at, and only that key, on this deployment's snapshots.
                Allow(
                    ("ec2:CreateTags",),
                    (On.SNAPSHOTS, *((On.COPY_SNAPSHOTS,) if drill_regions else ())),
                    {**managed, "ForAllValues:StringEquals": {"aws:TagKeys": [TAG_VERIFIED_AT]}},
                ),
                Allow(("s3:GetObject", "s3:PutObject"), (On.DRILL_RECORDS,)),
                Allow(("s3:ListBucket",), (On.BUCKET,), drill_prefix),
                Allow(("sns:Publish",), (On.TOPIC,)),
                probe,
            ),
            uses_key=True,
            wildcards=f"CreateTags only of {TAG_VERIFIED_AT} (aws:TagKeys) on snapshots with this "
            f"deployment's marker (aws:ResourceTag); {drills}; {preflight}.",
        ),
    }


def document_arn(name: str) -> str:
    """An SSM document's ARN: AWS-owned documents (AWS-*, AWSEC2-*...) have no account in it
    (Systems Manager User Guide, "Restricting access to Run Command documents")."""
    account = "" if name.startswith("AWS") else "{account}"
    return f"arn:{{partition}}:ssm:{{region}}:{account}:document/{name}"


def _vault_share_rows(managed: Mapping[str, Mapping[str, str]], vault_account: str | None) -> tuple[Allow, ...]:
    """Sharing with the vault (opt-in): ModifySnapshotAttribute on this deployment's snapshots,
    granting or withdrawing createVolumePermission for the vault account only (Service
    Authorization Reference, Amazon EC2: snapshot*, aws:ResourceTag, ec2:Add/userId,
    ec2:Remove/userId). Two rows: a StringEquals on a key the request lacks does not match."""
    if vault_account is None:
        return ()
    tag = dict(managed["StringEquals"])
    return tuple(
        Allow(("ec2:ModifySnapshotAttribute",), (On.SNAPSHOTS,), {"StringEquals": {**tag, key: vault_account}})
        for key in ("ec2:Add/userId", "ec2:Remove/userId")
    )


def _lock_rows(deployment_id: str, lock_days: int | None) -> tuple[Allow, ...]:
    """LockSnapshot on this deployment's snapshots only, and only for the configured duration
    (ec2:SnapshotLockDuration, Amazon EBS User Guide "Control access to Amazon EBS snapshot lock"):
    a compromised function cannot lock snapshots for decades. Resource type: snapshot (Service
    Authorization Reference, EC2). DescribeLockedSnapshots has no resource type: "*". No
    ec2:UnlockSnapshot for any function: unlocking is an operator's decision."""
    if lock_days is None:
        return ()
    return (
        Allow(
            ("ec2:LockSnapshot",),
            (On.SNAPSHOTS,),
            {
                "StringEquals": {f"aws:ResourceTag/{TAG_MANAGED}": deployment_id},
                "NumericLessThanEquals": {"ec2:SnapshotLockDuration": str(lock_days)},
            },
        ),
        Allow(("ec2:DescribeLockedSnapshots",), (On.ANY,)),
    )


def _lock_only(deployment_id: str, lock_days: int | None, on: On) -> tuple[Allow, ...]:
    """The LockSnapshot row of ``_lock_rows`` (same conditions) on ``on``, for a function that
    already describes locks."""
    return tuple(replace(a, on=(on,)) for a in _lock_rows(deployment_id, lock_days) if "ec2:LockSnapshot" in a.actions)


class Functions(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig, storage: Storage) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._storage = storage
        lock = config.settings.lock
        self.specs = function_specs(
            config.deployment_id,
            lock.days if lock else None,
            archive=config.settings.archive_after_days is not None,
            copy_regions=config.settings.copy_regions,
            fleet_keys=config.settings.fleet_kms_keys,
            recycle_bin=config.settings.recycle_bin_days is not None,
            drill_regions=config.settings.copy_regions if config.settings.drill.regions == "in_turn" else (),
            backup_tag=(config.settings.backup_tag_key, config.settings.backup_tag_value),
            documents=config.settings.consistency_document_names(),
            vault_account=config.settings.vault.account if config.settings.vault else None,
        )
        if set(self.specs) != set(FUNCTION_HANDLERS):
            raise ValueError("function_specs needs exactly one row per function in FUNCTION_HANDLERS")
        self._powertools = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "PowertoolsLayer",
            ssm.StringParameter.value_for_string_parameter(
                self, f"/aws/service/powertools/python/arm64/python3.14/{config.powertools_version}"
            ),
        )
        self.functions = {key: self._function(key, spec) for key, spec in self.specs.items()}

    def _function(self, key: str, spec: FunctionSpec) -> lambda_.Function:
        name = construct_name(key)
        log_group = logs.LogGroup(
            self,
            f"{name}Logs",
            retention=logs.RetentionDays[LOG_RETENTION[self._config.log_retention_days]],
            encryption_key=self._storage.key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge_log_retention(log_group, self._config.log_retention_days)
        # Own role without the AWS managed basic-execution policy: logs go to our group only.
        role = iam.Role(
            self,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Smart Vault {key} function",
        )
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            f"{name}Function",
            description=f"Smart Vault: {key}",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler=FUNCTION_HANDLERS[key],
            code=lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=["**/__pycache__", "*.pyc", "**/*.egg-info"]),
            memory_size=spec.memory_mb,
            timeout=spec.timeout,
            role=role,
            layers=[self._powertools],
            environment={
                **self._config.settings.to_env(),
                "BUCKET_NAME": self._storage.bucket.bucket_name,
                "TOPIC_ARN": self._storage.topic.topic_arn,
                SCHEDULE_NAME_ENV: self._config.schedule_name,
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRIC_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
            },
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            tracing=lambda_.Tracing.ACTIVE,
        )
        acknowledge(
            function,
            GUARD + "lambda_inside_vpc_check",
            "CT.LAMBDA.PR.3: the functions call only AWS APIs (EC2, S3, SNS) and reach no private "
            "network; a VPC would add NAT or five interface endpoints and nothing to protect.",
        )
        self._grant(role, key, spec)
        return function

    def _grant(self, role: iam.Role, key: str, spec: FunctionSpec) -> None:
        for allow in spec.allow:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=list(allow.actions),
                    resources=[arn for on in allow.on for arn in self._arns(on)] + self._literal(allow.arns),
                    conditions=self._filled(allow.conditions) or None,
                )
            )
        if spec.uses_key:
            role.add_to_policy(self._storage.key_use())
        wildcard = {on for allow in spec.allow for on in allow.on} - {On.BUCKET, On.TOPIC}
        findings = {f for on in wildcard if on is not On.ANY for f in self._nag_findings(on)}
        findings |= {
            "Resource::" + a.format(partition="<AWS::Partition>", account="<AWS::AccountId>", region="<AWS::Region>")
            for allow in spec.allow
            for a in allow.arns
            if a.endswith("*")
        }
        acknowledge(
            role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5",
            f"{key}: {spec.wildcards}",
            "Resource::*",  # X-Ray PutTraceSegments/PutTelemetryRecords (active tracing)
            *sorted(findings),
        )

    def _filled(self, conditions: Mapping[str, Mapping[str, object]]) -> dict[str, dict[str, Any]]:
        """Conditions with ``{account}``, ``{partition}`` and ``{region}`` (kms:ViaService
        ec2.{region}.amazonaws.com) filled for this stack."""
        stack = Stack.of(self)

        def fill(value: Any) -> Any:
            if isinstance(value, str):
                return (
                    value.replace("{account}", stack.account)
                    .replace("{partition}", stack.partition)
                    .replace("{region}", stack.region)
                )
            return [fill(v) for v in value] if isinstance(value, list) else value

        return {op: {key: fill(value) for key, value in keys.items()} for op, keys in conditions.items()}

    def _literal(self, arns: tuple[str, ...]) -> list[str]:
        stack = Stack.of(self)
        return [a.format(partition=stack.partition, account=stack.account, region=stack.region) for a in arns]

    def _arns(self, on: On) -> list[str]:
        stack = Stack.of(self)
        regions = [d.region for d in self._config.settings.copy_regions]
        if on is On.COPY_SNAPSHOTS:
            return [f"arn:{stack.partition}:ec2:{r}::snapshot/*" for r in regions]
        if on is On.COPY_VOLUMES:
            return [f"arn:{stack.partition}:ec2:{r}:{stack.account}:volume/*" for r in regions]
        return [self._arn(on)]

    def _nag_findings(self, on: On) -> list[str]:
        regions = [d.region for d in self._config.settings.copy_regions]
        if on is On.COPY_SNAPSHOTS:
            return [f"Resource::arn:<AWS::Partition>:ec2:{r}::snapshot/*" for r in regions]
        if on is On.COPY_VOLUMES:
            return [f"Resource::arn:<AWS::Partition>:ec2:{r}:<AWS::AccountId>:volume/*" for r in regions]
        return [self._nag_finding(on)]

    def _arn(self, on: On) -> str:
        stack = Stack.of(self)
        ec2 = f"arn:{stack.partition}:ec2:{stack.region}"
        return {
            On.ANY: "*",
            On.RUN_RECORDS: self._storage.objects(RUNS_PREFIX),
            On.APPROVALS: self._storage.objects(APPROVALS_PREFIX),
            On.DRILL_RECORDS: self._storage.objects(DRILLS_PREFIX),
            On.PREFLIGHT_RECORDS: self._storage.objects(PREFLIGHT_PREFIX),
            On.BUCKET: self._storage.bucket.bucket_arn,
            On.TOPIC: self._storage.topic.topic_arn,
            On.INSTANCES: f"{ec2}:{stack.account}:instance/*",
            On.VOLUMES: f"{ec2}:{stack.account}:volume/*",
            On.SNAPSHOTS: f"{ec2}::snapshot/*",
        }[on]

    def _nag_finding(self, on: On) -> str:
        """How cdk-nag names a wildcard resource in its IAM5 finding id."""
        bucket = Stack.of(self).get_logical_id(self._storage.bucket.node.default_child)  # type: ignore[arg-type]
        ec2 = "arn:<AWS::Partition>:ec2:<AWS::Region>"
        return {
            On.RUN_RECORDS: f"Resource::<{bucket}.Arn>/{RUNS_PREFIX}/*",
            On.APPROVALS: f"Resource::<{bucket}.Arn>/{APPROVALS_PREFIX}/*",
            On.DRILL_RECORDS: f"Resource::<{bucket}.Arn>/{DRILLS_PREFIX}/*",
            On.PREFLIGHT_RECORDS: f"Resource::<{bucket}.Arn>/{PREFLIGHT_PREFIX}/*",
            On.INSTANCES: f"Resource::{ec2}:<AWS::AccountId>:instance/*",
            On.VOLUMES: f"Resource::{ec2}:<AWS::AccountId>:volume/*",
            On.SNAPSHOTS: f"Resource::{ec2}::snapshot/*",
        }[on]
