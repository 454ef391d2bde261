"""IAM in the emulated account: every AWS call of a function or of the state machine is authorized
against that caller's role from the synthesized stack, and a denied call fails as AWS fails it.

What each API call asks IAM for (action, resource ARNs, condition keys) follows the Service
Authorization Reference ("Actions, resources, and condition keys for Amazon EC2 / Amazon S3 /
Amazon SNS / AWS Lambda / AWS Step Functions / AWS KMS"):

- ec2:Describe*, and any other EC2 action without resource-level permissions: ``*``;
- ec2:CreateSnapshots: the instance, each volume it snapshots (boot volume unless
  ``ExcludeBootVolume``, data volumes not in ``ExcludeDataVolumeIds``) with their
  ``aws:ResourceTag/*``, and ``snapshot/*`` with ``aws:RequestTag/*`` and ``aws:TagKeys``; tags
  given at creation are also authorized as ec2:CreateTags on ``snapshot/*`` with
  ``ec2:CreateAction`` (EC2 User Guide, "Grant permission to tag resources during creation");
- ec2:DeleteSnapshot, ec2:ModifySnapshotTier and ec2:CreateTags: each snapshot with its
  ``aws:ResourceTag/*``;
- s3:PutObject/GetObject (HeadObject is s3:GetObject): ``arn:aws:s3:::bucket/key``;
  ListObjects(V2) is s3:ListBucket on the bucket with ``s3:prefix``; an SSE-KMS bucket also needs
  kms:GenerateDataKey (writes) or kms:Decrypt (reads) on its key (S3 User Guide, "Using SSE-KMS");
- sns:Publish on the topic; a KMS-encrypted topic also needs kms:GenerateDataKey and kms:Decrypt
  (SNS Developer Guide, "Data encryption: key management");
- lambda:InvokeFunction on the function ARN; states:StartExecution on the state machine ARN.

Same-account evaluation: the caller's identity policies together with the resource's own policy
(bucket policy, topic policy, key policy). Decisions are cached per distinct request.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from smart_vault_sim import fleet, regions, sar
from smart_vault_sim.aws_tap import STATE_MACHINE, ApiCall, aws_error, encoded_failure
from smart_vault_sim.iam import Decision, Request, evaluate
from smart_vault_sim.stack_iam import Role, StackIam

_IAM_PREFIX = {
    "stepfunctions": "states",
    "service-quotas": "servicequotas",
}  # botocore service name -> IAM service prefix


@dataclass(frozen=True)
class Need:
    """One authorization AWS performs for a call."""

    action: str
    resource: str
    context: Mapping[str, tuple[str, ...]]


def _tags_context(prefix: str, tags: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    return {f"{prefix}/{k}": (v,) for k, v in tags.items()}


def _request_tags(params: Mapping[str, Any], resource_type: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for spec in params.get("TagSpecifications") or ():
        if spec.get("ResourceType") == resource_type:
            tags.update({t["Key"]: t["Value"] for t in spec.get("Tags") or ()})
    return tags


class Requests:
    """Maps an API call to the authorizations AWS performs for it, in the emulated account."""

    def __init__(self, *, region: str, account: str, partition: str = "aws") -> None:
        self.region, self.account, self.partition = region, account, partition

    def ec2_arn(self, kind: str, resource_id: str) -> str:
        # Snapshots and images have no account in their ARN (Service Authorization Reference).
        account = "" if kind in ("snapshot", "image") else self.account
        return f"arn:{self.partition}:ec2:{self.region}:{account}:{kind}/{resource_id}"

    def _resource_tags(self, resource_id: str) -> dict[str, str]:
        return dict(fleet.ec2_backend(self.region).tags.get(resource_id, {}))

    def _existing(self, kind: str, resource_id: str) -> Need | None:
        backend = fleet.ec2_backend(self.region)
        known = {"snapshot": backend.snapshots, "volume": backend.volumes}.get(kind)
        if known is not None and resource_id not in known:
            return None  # EC2 answers NotFound for it: leave that to the emulator
        tags = self._resource_tags(resource_id)
        context = {**_tags_context("aws:ResourceTag", tags), **_tags_context("ec2:ResourceTag", tags)}
        if known is not None and kind == "snapshot":
            # ec2:Owner, the owning account (Service Authorization Reference, EC2, "snapshot").
            context["ec2:Owner"] = (str(getattr(known[resource_id], "owner_id", "") or self.account),)
        return Need("", self.ec2_arn(kind, resource_id), context)

    def needs(self, call: ApiCall) -> list[Need]:
        prefix = _IAM_PREFIX.get(call.service, call.service)
        handler = getattr(self, f"_{call.service.replace('-', '_')}_{call.operation}", None)
        if handler is not None:
            needs: list[Need] = handler(call.params)
            return needs
        if call.service == "ec2":
            return [Need(f"ec2:{call.operation}", "*", {})]  # Describe*: no resource-level permissions
        return [Need(f"{prefix}:{call.operation}", "*", {})]

    # -- EC2 -----------------------------------------------------------------------------
    def _with_action(self, action: str, need: Need | None, extra: Mapping[str, tuple[str, ...]]) -> list[Need]:
        return [] if need is None else [Need(action, need.resource, {**need.context, **extra})]

    def _ec2_CreateSnapshots(self, params: Mapping[str, Any]) -> list[Need]:
        spec = params.get("InstanceSpecification") or {}
        instance_id = str(spec.get("InstanceId", ""))
        tags = _request_tags(params, "snapshot")
        request_keys = {**_tags_context("aws:RequestTag", tags), "aws:TagKeys": tuple(tags)} if tags else {}
        needs = self._with_action("ec2:CreateSnapshots", self._existing("instance", instance_id), request_keys)
        try:
            instance = fleet.ec2_backend(self.region).get_instance(instance_id)
        except Exception:
            instance = None
        if instance is not None:
            excluded = set(spec.get("ExcludeDataVolumeIds") or ())
            for device, mapping in instance.block_device_mapping.items():
                is_boot = device == instance.root_device_name
                if (is_boot and spec.get("ExcludeBootVolume")) or (not is_boot and mapping.volume_id in excluded):
                    continue
                needs += self._with_action(
                    "ec2:CreateSnapshots", self._existing("volume", mapping.volume_id), request_keys
                )
        snapshots = self.ec2_arn("snapshot", "*")
        needs.append(Need("ec2:CreateSnapshots", snapshots, request_keys))
        if tags:
            needs.append(Need("ec2:CreateTags", snapshots, {**request_keys, "ec2:CreateAction": ("CreateSnapshots",)}))
        return needs

    def _ec2_CreateSnapshot(self, params: Mapping[str, Any]) -> list[Need]:
        tags = _request_tags(params, "snapshot")
        request_keys = {**_tags_context("aws:RequestTag", tags), "aws:TagKeys": tuple(tags)} if tags else {}
        needs = self._with_action(
            "ec2:CreateSnapshot", self._existing("volume", str(params.get("VolumeId"))), request_keys
        )
        snapshots = self.ec2_arn("snapshot", "*")
        needs.append(Need("ec2:CreateSnapshot", snapshots, request_keys))
        if tags:
            needs.append(Need("ec2:CreateTags", snapshots, {**request_keys, "ec2:CreateAction": ("CreateSnapshot",)}))
        return needs

    def _ec2_CopySnapshot(self, params: Mapping[str, Any]) -> list[Need]:
        """Sent to the destination Region. Authorizes the source snapshot (with its tags, in its
        own Region) and the new copy (snapshot/* of this Region, with the request tags); tags
        given at creation also as ec2:CreateTags with ec2:CreateAction (Service Authorization
        Reference, Amazon EC2, CopySnapshot)."""
        tags = _request_tags(params, "snapshot")
        request_keys = {**_tags_context("aws:RequestTag", tags), "aws:TagKeys": tuple(tags)} if tags else {}
        source = Requests(region=str(params.get("SourceRegion")), account=self.account, partition=self.partition)
        needs = self._with_action(
            "ec2:CopySnapshot", source._existing("snapshot", str(params.get("SourceSnapshotId"))), request_keys
        )
        copies = self.ec2_arn("snapshot", "*")
        needs.append(Need("ec2:CopySnapshot", copies, request_keys))
        if tags:
            needs.append(Need("ec2:CreateTags", copies, {**request_keys, "ec2:CreateAction": ("CopySnapshot",)}))
        return needs

    # -- EBS direct APIs: the snapshot (an ec2 ARN) with its aws:ResourceTag/* (Service
    # Authorization Reference, Amazon Elastic Block Store); ListChangedBlocks both snapshots.
    def _ebs_snapshot(self, action: str, snapshot_id: object) -> list[Need]:
        return self._with_action(action, self._existing("snapshot", str(snapshot_id)), {})

    def _ebs_ListSnapshotBlocks(self, params: Mapping[str, Any]) -> list[Need]:
        return self._ebs_snapshot("ebs:ListSnapshotBlocks", params.get("SnapshotId"))

    def _ebs_GetSnapshotBlock(self, params: Mapping[str, Any]) -> list[Need]:
        return self._ebs_snapshot("ebs:GetSnapshotBlock", params.get("SnapshotId"))

    def _ebs_ListChangedBlocks(self, params: Mapping[str, Any]) -> list[Need]:
        needs = self._ebs_snapshot("ebs:ListChangedBlocks", params.get("SecondSnapshotId"))
        if params.get("FirstSnapshotId"):
            needs += self._ebs_snapshot("ebs:ListChangedBlocks", params["FirstSnapshotId"])
        return needs

    # -- KMS ---------------------------------------------------------------------------------
    def key_need(self, action: str, key_id: str) -> Need:
        """A KMS action on the key ``key_id`` names (id, ARN, alias): KMS authorizes on the key
        ARN, with kms:ResourceAliases (its aliases) and kms:RequestAlias (an alias given)."""
        arn = regions.key_arn(self.region, key_id)
        if arn is None:  # KMS answers NotFoundException: leave that to the emulator
            return Need(action, f"arn:{self.partition}:kms:{self.region}:{self.account}:key/unknown", {})
        context: dict[str, tuple[str, ...]] = {"kms:ResourceAliases": regions.key_aliases(self.region, arn)}
        if "alias/" in key_id:
            context["kms:RequestAlias"] = ("alias/" + key_id.split("alias/", 1)[1],)
        return Need(action, arn, context)

    def _kms_DescribeKey(self, params: Mapping[str, Any]) -> list[Need]:
        return [self.key_need("kms:DescribeKey", str(params.get("KeyId")))]

    def _ec2_DeleteSnapshot(self, params: Mapping[str, Any]) -> list[Need]:
        return self._with_action("ec2:DeleteSnapshot", self._existing("snapshot", str(params.get("SnapshotId"))), {})

    def _ec2_LockSnapshot(self, params: Mapping[str, Any]) -> list[Need]:
        # The snapshot, with its tags and ec2:SnapshotLockDuration (Amazon EBS User Guide,
        # "Control access to Amazon EBS snapshot lock": restrict the lock duration with it).
        extra: dict[str, tuple[str, ...]] = {}
        if params.get("LockDuration") is not None:
            extra["ec2:SnapshotLockDuration"] = (str(params["LockDuration"]),)
        return self._with_action("ec2:LockSnapshot", self._existing("snapshot", str(params.get("SnapshotId"))), extra)

    def _ec2_ModifySnapshotAttribute(self, params: Mapping[str, Any]) -> list[Need]:
        """The snapshot, with ec2:Attribute and the account ids shared or withdrawn as
        ec2:Add/userId / ec2:Remove/userId (Service Authorization Reference, Amazon EC2), in the
        legacy form (OperationType, UserIds) and the CreateVolumePermission form."""
        extra: dict[str, tuple[str, ...]] = {
            "ec2:Attribute": (str(params.get("Attribute") or "createVolumePermission"),)
        }
        permission = params.get("CreateVolumePermission") or {}
        for operation in ("Add", "Remove"):
            users = [str(p.get("UserId")) for p in permission.get(operation) or () if p.get("UserId")]
            groups = [str(p.get("Group")) for p in permission.get(operation) or () if p.get("Group")]
            if str(params.get("OperationType") or "").lower() == operation.lower():
                users += [str(u) for u in params.get("UserIds") or ()]
                groups += [str(g) for g in params.get("GroupNames") or ()]
            if users:
                extra[f"ec2:{operation}/userId"] = tuple(users)
            if groups:
                extra[f"ec2:{operation}/group"] = tuple(groups)
        return self._with_action(
            "ec2:ModifySnapshotAttribute", self._existing("snapshot", str(params.get("SnapshotId"))), extra
        )

    def _ec2_ModifySnapshotTier(self, params: Mapping[str, Any]) -> list[Need]:
        return self._with_action(
            "ec2:ModifySnapshotTier", self._existing("snapshot", str(params.get("SnapshotId"))), {}
        )

    def _ec2_CreateTags(self, params: Mapping[str, Any]) -> list[Need]:
        tags = {t["Key"]: t.get("Value", "") for t in params.get("Tags") or ()}
        request_keys = {**_tags_context("aws:RequestTag", tags), "aws:TagKeys": tuple(tags)}
        kinds = {"snap": "snapshot", "vol": "volume", "i": "instance", "ami": "image"}
        needs: list[Need] = []
        for resource_id in params.get("Resources") or ():
            kind = kinds.get(str(resource_id).split("-", 1)[0], "resource")
            needs += self._with_action("ec2:CreateTags", self._existing(kind, str(resource_id)), request_keys)
        return needs

    # Restore (Service Authorization Reference, Amazon EC2): CreateVolume on volume/* (request
    # tags) and the snapshot (its tags); RegisterImage on image/* and each mapped snapshot;
    # RunInstances on image, instance/*, volume/*, network-interface/*, subnet, security groups and
    # key pair; DeleteVolume/DeregisterImage on the resource (its tags). Tags given at creation are
    # also ec2:CreateTags with ec2:CreateAction, as for snapshots.
    def _created(self, action: str, kind: str, params: Mapping[str, Any]) -> list[Need]:
        tags = _request_tags(params, kind)
        keys = {**_tags_context("aws:RequestTag", tags), "aws:TagKeys": tuple(tags)} if tags else {}
        needs = [Need(action, self.ec2_arn(kind, "*"), keys)]
        if tags:
            needs.append(Need("ec2:CreateTags", self.ec2_arn(kind, "*"), {**keys, "ec2:CreateAction": (action[4:],)}))
        return needs

    def _ec2_CreateVolume(self, params: Mapping[str, Any]) -> list[Need]:
        needs = self._created("ec2:CreateVolume", "volume", params)
        if params.get("SnapshotId"):
            needs += self._with_action("ec2:CreateVolume", self._existing("snapshot", str(params["SnapshotId"])), {})
        return needs

    def _ec2_DeleteVolume(self, params: Mapping[str, Any]) -> list[Need]:
        return self._with_action("ec2:DeleteVolume", self._existing("volume", str(params.get("VolumeId"))), {})

    def _ec2_RegisterImage(self, params: Mapping[str, Any]) -> list[Need]:
        needs = self._created("ec2:RegisterImage", "image", params)
        for mapping in params.get("BlockDeviceMappings") or ():
            snapshot_id = (mapping.get("Ebs") or {}).get("SnapshotId")
            if snapshot_id:
                needs += self._with_action("ec2:RegisterImage", self._existing("snapshot", str(snapshot_id)), {})
        return needs

    def _ec2_DeregisterImage(self, params: Mapping[str, Any]) -> list[Need]:
        return self._with_action("ec2:DeregisterImage", self._existing("image", str(params.get("ImageId"))), {})

    def _ec2_RunInstances(self, params: Mapping[str, Any]) -> list[Need]:
        needs = self._created("ec2:RunInstances", "instance", params)
        needs += self._with_action("ec2:RunInstances", self._existing("image", str(params.get("ImageId"))), {})
        needs += [Need("ec2:RunInstances", self.ec2_arn(kind, "*"), {}) for kind in ("volume", "network-interface")]
        if params.get("SubnetId"):
            needs += self._with_action("ec2:RunInstances", self._existing("subnet", str(params["SubnetId"])), {})
        for group in params.get("SecurityGroupIds") or ():
            needs += self._with_action("ec2:RunInstances", self._existing("security-group", str(group)), {})
        if params.get("KeyName"):
            needs.append(Need("ec2:RunInstances", self.ec2_arn("key-pair", str(params["KeyName"])), {}))
        return needs

    # -- S3 --------------------------------------------------------------------------------
    def _object(self, action: str, params: Mapping[str, Any]) -> list[Need]:
        return [Need(action, f"arn:{self.partition}:s3:::{params.get('Bucket')}/{params.get('Key')}", {})]

    def _s3_PutObject(self, params: Mapping[str, Any]) -> list[Need]:
        return self._object("s3:PutObject", params)

    def _s3_GetObject(self, params: Mapping[str, Any]) -> list[Need]:
        return self._object("s3:GetObject", params)

    def _s3_HeadObject(self, params: Mapping[str, Any]) -> list[Need]:
        return self._object("s3:GetObject", params)

    def _s3_DeleteObject(self, params: Mapping[str, Any]) -> list[Need]:
        return self._object("s3:DeleteObject", params)

    def _s3_ListObjectsV2(self, params: Mapping[str, Any]) -> list[Need]:
        context = {"s3:prefix": (str(params["Prefix"]),)} if "Prefix" in params else {}
        return [Need("s3:ListBucket", f"arn:{self.partition}:s3:::{params.get('Bucket')}", context)]

    _s3_ListObjects = _s3_ListObjectsV2

    # -- Systems Manager (Service Authorization Reference, AWS Systems Manager): SendCommand on
    # the document (its own tags) and on each instance, whose EC2 tags SSM puts in the context
    # as ssm:resourceTag/<key> and aws:ResourceTag/<key>; the reads on "*".
    def _ssm_SendCommand(self, params: Mapping[str, Any]) -> list[Need]:
        name = str(params.get("DocumentName"))
        account = "" if name.startswith("AWS") else self.account  # AWS-owned documents
        needs = [Need("ssm:SendCommand", f"arn:{self.partition}:ssm:{self.region}:{account}:document/{name}", {})]
        for instance_id in params.get("InstanceIds") or ():
            tags = self._resource_tags(str(instance_id))
            context = {**_tags_context("ssm:resourceTag", tags), **_tags_context("aws:ResourceTag", tags)}
            needs.append(Need("ssm:SendCommand", self.ec2_arn("instance", str(instance_id)), context))
        return needs

    # -- SNS, Lambda ---------------------------------------------------------------------------
    def _sns_Publish(self, params: Mapping[str, Any]) -> list[Need]:
        return [Need("sns:Publish", str(params.get("TopicArn") or params.get("TargetArn")), {})]

    _sns_PublishBatch = _sns_Publish

    def _sns_ListSubscriptionsByTopic(self, params: Mapping[str, Any]) -> list[Need]:
        return [Need("sns:ListSubscriptionsByTopic", str(params.get("TopicArn")), {})]

    def _scheduler_GetSchedule(self, params: Mapping[str, Any]) -> list[Need]:
        group = params.get("GroupName") or "default"
        arn = f"arn:{self.partition}:scheduler:{self.region}:{self.account}:schedule/{group}/{params.get('Name')}"
        return [Need("scheduler:GetSchedule", arn, {})]

    # -- Service Quotas: resource type quota, arn:...:servicequotas:<region>:<account>:<service>/<quota>
    def _service_quotas_GetServiceQuota(self, params: Mapping[str, Any]) -> list[Need]:
        quota = f"{params.get('ServiceCode')}/{params.get('QuotaCode')}"
        return [
            Need(
                "servicequotas:GetServiceQuota",
                f"arn:{self.partition}:servicequotas:{self.region}:{self.account}:{quota}",
                {},
            )
        ]

    # -- Step Functions: resource type execution, the execution's own ARN (Service
    # Authorization Reference, AWS Step Functions: DescribeExecution, RedriveExecution)
    def _stepfunctions_DescribeExecution(self, params: Mapping[str, Any]) -> list[Need]:
        return [Need("states:DescribeExecution", str(params.get("executionArn")), {})]

    def _stepfunctions_RedriveExecution(self, params: Mapping[str, Any]) -> list[Need]:
        return [Need("states:RedriveExecution", str(params.get("executionArn")), {})]

    def _lambda_Invoke(self, params: Mapping[str, Any]) -> list[Need]:
        name = str(params.get("FunctionName"))
        if not name.startswith("arn:"):
            name = f"arn:{self.partition}:lambda:{self.region}:{self.account}:function:{name}"
        return [Need("lambda:InvokeFunction", name, {})]


# What AWS answers when IAM denies, per service (each API reference's "Errors" section).
_DENIED = {
    "ec2": ("UnauthorizedOperation", 403),
    "s3": ("AccessDenied", 403),
    "sns": ("AuthorizationError", 403),
    "service-quotas": ("AccessDeniedException", 400),
    "rbin": ("AccessDeniedException", 403),
    "scheduler": ("AccessDeniedException", 403),
    "lambda": ("AccessDeniedException", 403),
    "stepfunctions": ("AccessDeniedException", 403),
    "kms": ("AccessDeniedException", 400),
    "ebs": ("AccessDeniedException", 403),
    "ssm": ("AccessDeniedException", 400),
}


class Authorizer:
    """The AwsTap check that enforces the stack's IAM on every function and state machine call."""

    def __init__(self, iam: StackIam, *, region: str, account: str, sessions: Mapping[str, str]) -> None:
        self.iam = iam
        self.region, self.account = region, account
        self.requests = Requests(region=region, account=account)
        self._regional: dict[str, Requests] = {region: self.requests}
        self.sessions = sessions  # caller -> the role session name AWS uses for it
        self._cache: dict[tuple[Any, ...], Decision] = {}
        self.lookups = 0  # authorizations asked for; len(self._cache) of them were evaluated
        self.denied: list[str] = []  # "caller action resource" of every denial, for reports

    def principal(self, caller: str) -> tuple[Role | None, str]:
        role = self.iam.roles.get(caller)
        session = self.sessions.get(caller, caller)
        name = role.name if role else caller
        return role, f"arn:aws:sts::{self.account}:assumed-role/{name}/{session}"

    def requests_in(self, region: str) -> Requests:
        if region not in self._regional:
            self._regional[region] = Requests(region=region, account=self.account)
        return self._regional[region]

    def key_allowed(self, caller: str, region: str, key_arn: str) -> bool:
        """May the caller's role use this key for EBS encryption (what EC2 asks KMS on its behalf)?"""
        requests = self.requests_in(region)
        for action in regions.KEY_ACTIONS:
            need = requests.key_need(action, key_arn)
            # EC2 calls KMS on the caller's behalf: kms:ViaService (AWS KMS Developer Guide,
            # "kms:ViaService"); the SAR table keeps GrantIsForAWSResource for CreateGrant only.
            via = {"kms:ViaService": (f"ec2.{region}.amazonaws.com",)}
            context = {**need.context, **via, "kms:GrantIsForAWSResource": ("true",)}
            if self.decide(caller, action, need.resource, context, region=region) is not Decision.ALLOW:
                return False
        return True

    def ebs_key_allowed(
        self, caller: str, region: str, key_arn: str, actions: tuple[str, ...], via_region: str | None = None
    ) -> bool:
        """May the caller's role let EBS use this key (of ``region``) for ``actions``, as the EC2
        endpoint of ``via_region`` (default: the key's) asks KMS on its behalf: KMS sees
        kms:ViaService ec2.<via_region>.amazonaws.com and, for CreateGrant,
        kms:GrantIsForAWSResource (KMS Developer Guide, "kms:ViaService"). A caller without a
        role here (the operator, unless a test gives it one) is not modelled: allowed."""
        if caller not in self.iam.roles:
            return True
        requests = self.requests_in(region)
        for action in actions:
            need = requests.key_need(action, key_arn)
            context = {**need.context, "kms:ViaService": (f"ec2.{via_region or region}.amazonaws.com",)}
            if action == "kms:CreateGrant":
                context["kms:GrantIsForAWSResource"] = ("true",)
            if self.decide(caller, action, need.resource, context, region=region) is not Decision.ALLOW:
                return False
        return True

    def decide(
        self,
        caller: str,
        action: str,
        resource: str,
        context: Mapping[str, tuple[str, ...]],
        *,
        region: str | None = None,
    ) -> Decision:
        role, _ = self.principal(caller)
        request = Request(
            action=action,
            resource=resource,
            context={
                # Only the keys the SAR lists for this action and resource reach IAM, as on AWS.
                **sar.request_context(action, resource, context),
                "aws:SecureTransport": ("true",),
                "aws:RequestedRegion": (region or self.region,),
                "aws:PrincipalAccount": (self.account,),
                **({"aws:PrincipalArn": (role.arn,)} if role else {}),
            },
            principal_arn=role.arn if role else "",
        )
        key = (caller, request.key())
        self.lookups += 1
        if key not in self._cache:
            identity = role.policies if role else ()
            self._cache[key] = evaluate(request, identity, self._resource_policy(resource))
        return self._cache[key]

    @property
    def evaluations(self) -> int:
        return len(self._cache)

    def _resource_policy(self, resource: str) -> Any:
        policies = self.iam.resource_policies
        if resource in policies:
            return policies[resource]
        if resource.startswith("arn:aws:s3:::"):
            return policies.get(resource.split("/", 1)[0])
        return None

    def __call__(self, call: ApiCall) -> None:
        region = call.region or self.region
        for need in self._with_kms(call, self.requests_in(region).needs(call)):
            decision = self.decide(call.caller, need.action, need.resource, need.context, region=region)
            if decision is not Decision.ALLOW:
                raise self._error(call, need, decision)

    def start_child_executions(self, state_machine_arn: str) -> ClientError | None:
        """The Distributed Map's StartExecution of its children, made with the state machine's role."""
        decision = self.decide(STATE_MACHINE, "states:StartExecution", state_machine_arn, {})
        if decision is Decision.ALLOW:
            return None
        call = ApiCall(service="stepfunctions", operation="StartExecution", params={}, caller=STATE_MACHINE)
        return self._error(call, Need("states:StartExecution", state_machine_arn, {}), decision)

    def _with_kms(self, call: ApiCall, needs: list[Need]) -> list[Need]:
        """Add the KMS permissions an encrypted bucket or topic requires of the caller."""
        keys = self.iam.encryption_keys
        out = list(needs)
        for need in needs:
            container = need.resource.split("/", 1)[0] if need.resource.startswith("arn:aws:s3:::") else need.resource
            key = keys.get(container)
            if key is None:
                continue
            if need.action == "s3:PutObject":
                out.append(Need("kms:GenerateDataKey", key, {}))
            elif need.action == "s3:GetObject":
                out.append(Need("kms:Decrypt", key, {}))
            elif need.action == "sns:Publish":
                out += [Need("kms:GenerateDataKey", key, {}), Need("kms:Decrypt", key, {})]
        return out

    def _error(self, call: ApiCall, need: Need, decision: Decision) -> ClientError:
        _, user = self.principal(call.caller)
        action = need.action
        shown = "SNS:Publish" if action == "sns:Publish" else action  # SNS spells its prefix upper-case
        why = (
            "with an explicit deny in an identity-based policy"
            if decision is Decision.EXPLICIT_DENY
            else f"because no identity-based policy allows the {shown} action"
        )
        resource = f'"{need.resource}"' if call.service == "s3" else need.resource
        message = f"User: {user} is not authorized to perform: {shown} on resource: {resource} {why}"
        self.denied.append(f"{call.caller} {action} {need.resource}")
        if call.service == "ec2":
            blob = encoded_failure(f"{user}|{action}|{need.resource}")
            encoded = f"Encoded authorization failure message: {blob}"
            message = f"You are not authorized to perform this operation. {message}. {encoded}"
        request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{user}|{action}|{need.resource}|{len(self.denied)}"))
        if action.startswith("kms:") and call.service == "sns":
            return aws_error("KMSAccessDenied", call.operation, message, status=400, request_id=request_id)
        code, status = _DENIED.get(call.service, ("AccessDeniedException", 400))
        return aws_error(code, call.operation, message, status=status, request_id=request_id)
