"""CreateVolume, RegisterImage and RunInstances as AWS validates them (moto is lenient).

moto ignores ClientToken, accepts any size, IOPS or throughput, makes volumes ``available`` at
once and reads nothing from RegisterImage but the name. These patches make the emulated
account refuse what EC2 refuses, with its error codes, and behave as EC2 does:

- CreateVolume (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateVolume.html):
  Size "equal to or larger than the snapshot size" and within the type's range; Iops valid for
  gp3/io1/io2 only (required for io1/io2) within the type's range; Throughput for gp3 only,
  125-2,000 MiB/s; the zone must be one of the region's. An archived snapshot must be restored
  first (EBS User Guide, "Archive Amazon EBS snapshots"). ClientToken: "If you repeat a request
  with the same client token but change another request parameter, Amazon EC2 returns an
  IdempotentParameterMismatch error"; the same request returns the same result (EC2 API
  Reference, "Ensuring idempotency"): here the same volume, ``deleted`` if it was deleted since
  (the reference does not say what EC2 answers then; we take the conservative reading, which a
  restore must survive). A new volume is ``creating`` before it is ``available``.
- RegisterImage (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RegisterImage.html):
  the root device must be one of the block device mappings, with a snapshot; "You can't set the
  encryption state of the volume using the block device mapping"; a mapping's VolumeSize at
  least its snapshot's size; one mapping per device name; Architecture, BootMode and
  VirtualizationType from their enumerations, TpmSupport and ImdsSupport ``v2.0`` only; the image
  keeps BootMode, EnaSupport, TpmSupport and ImdsSupport as sent; the name unique in the account and region
  (InvalidAMIName.Duplicate). The image then lists those mappings (moto lists a placeholder), and
  its snapshots cannot be deleted while it exists (InvalidSnapshot.InUse).
- RunInstances (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html):
  ClientToken idempotency as above; the instance's volumes come from the image's mappings, its
  architecture and boot mode from the image, and an image with ImdsSupport ``v2.0`` launches
  instances with HttpTokens ``required`` (RegisterImage, ImdsSupport); the security groups must
  be in the subnet's VPC.

Installed with ``patched()``, restored on exit.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.amis import Ami
from moto.ec2.models.elastic_block_store import Volume
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.ec2.responses.instances import InstanceResponse

from smart_vault.constants import TAG_INSTANCE_ID
from smart_vault_sim import fleet

# CreateVolume "Size" and "Iops" (EC2 API Reference, current): GiB and IOPS ranges per type.
SIZE_RANGE = {
    "gp2": (1, 16_384),
    "gp3": (1, 65_536),
    "io1": (4, 16_384),
    "io2": (4, 65_536),
    "st1": (125, 16_384),
    "sc1": (125, 16_384),
    "standard": (1, 1_024),
}
IOPS_RANGE = {"gp3": (3_000, 80_000), "io1": (100, 64_000), "io2": (100, 256_000)}
THROUGHPUT_RANGE = (125, 2_000)  # gp3 only
ARCHITECTURES = ("i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac")
BOOT_MODES = ("legacy-bios", "uefi", "uefi-preferred")
VIRTUALIZATION_TYPES = ("hvm", "paravirtual")
TPM_SUPPORT = ("v2.0",)  # RegisterImage TpmSupport: Valid Values: v2.0
IMDS_SUPPORT = ("v2.0",)  # RegisterImage ImdsSupport: Valid Values: v2.0
# DescribeVolumes calls that still see a new volume ``creating`` (AWS: seconds to minutes).
CREATING_DESCRIBES = 1


def _invalid(message: str, code: str = "InvalidParameterValue") -> EC2ClientError:
    return EC2ClientError(code, message)


def _tokens(backend: Any, kind: str) -> dict[str, tuple[str, str]]:
    """ClientToken -> (the request's other parameters, the resource id), per backend."""
    store: dict[str, dict[str, tuple[str, str]]] = backend.__dict__.setdefault("_sv_client_tokens", {})
    return store.setdefault(kind, {})


def _fingerprint(params: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in params.items() if k != "ClientToken"}, sort_keys=True, default=str)


def _idempotent(backend: Any, kind: str, params: dict[str, Any]) -> str | None:
    """The id the same token created before, or None; a mismatch fails as EC2 fails it."""
    token = params.get("ClientToken")
    if not token:
        return None
    seen = _tokens(backend, kind).get(token)
    if seen is None:
        return None
    if seen[0] != _fingerprint(params):
        raise _invalid(
            "The client token you have provided is associated with a resource that was created with "
            "different parameters.",
            "IdempotentParameterMismatch",
        )
    return seen[1]


def _remember(backend: Any, kind: str, params: dict[str, Any], resource_id: str) -> None:
    if params.get("ClientToken"):
        _tokens(backend, kind)[params["ClientToken"]] = (_fingerprint(params), resource_id)


def _made(backend: Any) -> dict[str, Any]:
    """Volume id -> the moto Volume CreateVolume made (kept after deletion, for its token)."""
    store: dict[str, Any] = backend.__dict__.setdefault("_sv_made_volumes", {})
    return store


def _creating(backend: Any) -> dict[str, int]:
    store: dict[str, int] = backend.__dict__.setdefault("_sv_creating", {})
    return store


def check_volume_request(backend: Any, params: dict[str, Any]) -> None:
    zone = params.get("AvailabilityZone")
    if zone and backend.get_zone_by_name(zone) is None:
        raise _invalid(f"Invalid availability zone: [{zone}]")
    volume_type = params.get("VolumeType") or "gp2"
    if volume_type not in SIZE_RANGE:
        raise _invalid(f"Value ({volume_type}) for parameter volumeType is invalid.")
    size = params.get("Size")
    snapshot_id = params.get("SnapshotId")
    if snapshot_id:
        snapshot = backend.get_snapshot(snapshot_id)  # InvalidSnapshot.NotFound
        if getattr(snapshot, "storage_tier", "standard") == "archive":
            raise _invalid(
                f"Snapshot '{snapshot_id}' is archived; restore it (RestoreSnapshotTier) before using it.",
                "IncorrectState",
            )
        if size is not None and int(size) < int(snapshot.volume.size):
            expected = snapshot.volume.size
            raise _invalid(
                f"Volume of {size}GiB is smaller than snapshot '{snapshot_id}', expect size >= {expected}GiB"
            )
        size = size if size is not None else snapshot.volume.size
    if size is not None:
        low, high = SIZE_RANGE[volume_type]
        if not low <= int(size) <= high:
            raise _invalid(f"Volume size {size} GiB is out of range for {volume_type} ({low}-{high} GiB).")
    iops = params.get("Iops")
    if volume_type in ("io1", "io2") and iops is None:
        raise _invalid(f"The parameter iops must be specified for {volume_type} volumes.", "MissingParameter")
    if iops is not None:
        if volume_type not in IOPS_RANGE:
            raise _invalid(
                f"The parameter iops is not supported for {volume_type} volumes.", "InvalidParameterCombination"
            )
        low, high = IOPS_RANGE[volume_type]
        if not low <= int(iops) <= high:
            raise _invalid(f"Iops {iops} is out of range for {volume_type} ({low}-{high}).")
    throughput = params.get("Throughput")
    if throughput is not None:
        if volume_type != "gp3":
            raise _invalid(
                f"The parameter throughput is not supported for {volume_type} volumes.", "InvalidParameterCombination"
            )
        if not THROUGHPUT_RANGE[0] <= int(throughput) <= THROUGHPUT_RANGE[1]:
            raise _invalid(f"Throughput {throughput} MiB/s is out of range for gp3 (125-2000).")


def check_image_request(backend: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The validated block device mappings of a RegisterImage request."""
    name = params.get("Name") or ""
    if any(image.name == name for image in backend.amis.values()):
        raise _invalid(
            f"AMI name {name} is already in use by an AMI owned by this account.", "InvalidAMIName.Duplicate"
        )
    for key, allowed in (
        ("Architecture", ARCHITECTURES),
        ("BootMode", BOOT_MODES),
        ("VirtualizationType", VIRTUALIZATION_TYPES),
        ("TpmSupport", TPM_SUPPORT),
        ("ImdsSupport", IMDS_SUPPORT),
    ):
        if params.get(key) is not None and params[key] not in allowed:
            raise _invalid(f"Value ({params[key]}) for parameter {key} is invalid.")
    mappings = list(params.get("BlockDeviceMappings") or [])
    devices = [m.get("DeviceName") for m in mappings]
    if len(set(devices)) != len(devices):
        raise _invalid("The device names of the block device mappings must be unique.", "InvalidBlockDeviceMapping")
    root = params.get("RootDeviceName")
    if not root or root not in devices:
        raise _invalid(
            f"The root device name {root} is not one of the block device mappings.", "InvalidBlockDeviceMapping"
        )
    for mapping in mappings:
        ebs = mapping.get("Ebs") or {}
        snapshot_id = ebs.get("SnapshotId")
        if mapping.get("DeviceName") == root and not snapshot_id:
            raise _invalid(f"The root device {root} needs a snapshot.", "InvalidBlockDeviceMapping")
        if snapshot_id and ("Encrypted" in ebs or "KmsKeyId" in ebs):
            raise _invalid(
                "You can't set the encryption state of a volume created from a snapshot in RegisterImage.",
                "InvalidBlockDeviceMapping",
            )
        if snapshot_id:
            snapshot = backend.get_snapshot(snapshot_id)
            if snapshot.status != "completed":
                raise _invalid(f"Snapshot {snapshot_id} is {snapshot.status}, not completed.", "IncorrectState")
            size = ebs.get("VolumeSize")
            if size is not None and int(size) < int(snapshot.volume.size):
                raise _invalid(
                    f"Volume of {size}GiB is smaller than snapshot '{snapshot_id}', expect size >= "
                    f"{snapshot.volume.size}GiB",
                    "InvalidBlockDeviceMapping",
                )
    return mappings


def check_instance_request(backend: Any, params: dict[str, Any]) -> None:
    image = backend.amis.get(params.get("ImageId"))
    if image is not None and image.state != "available":
        raise _invalid(f"Image {image.id} is {image.state}.", "InvalidAMIID.Unavailable")
    subnet_id, groups = params.get("SubnetId"), params.get("SecurityGroupIds") or []
    if subnet_id and groups:
        vpc = backend.get_subnet(subnet_id).vpc_id
        for group_id in groups:
            group = backend.get_security_group_from_id(group_id)
            if group is not None and group.vpc_id != vpc:
                raise _invalid(
                    f"Security group {group_id} and subnet {subnet_id} belong to different networks.",
                    "InvalidParameter",
                )


@contextlib.contextmanager
def patched() -> Iterator[None]:
    create_volume = ElasticBlockStore.create_volume
    describe_volumes = ElasticBlockStore.describe_volumes
    register_image = AmisResponse.register_image
    deregister_image = AmisResponse.deregister_image
    run_instances = InstanceResponse.run_instances
    backend_run = InstanceBackend.run_instances
    status = Volume.status
    mappings = Ami.block_device_mappings

    def patched_create_volume(self: Any) -> ActionResult:
        params = self._get_params()
        existing = _idempotent(self.ec2_backend, "volume", params)
        if existing is not None:
            # The volume this token made, even deleted since (then in state ``deleted``).
            return ActionResult(_made(self.ec2_backend)[existing])
        check_volume_request(self.ec2_backend, params)
        result = create_volume(self)
        volume: Any = result.result
        volume_id = str(volume.id)
        _remember(self.ec2_backend, "volume", params, volume_id)
        _made(self.ec2_backend)[volume_id] = volume
        _creating(self.ec2_backend)[volume_id] = CREATING_DESCRIBES + 1
        return result

    def patched_describe_volumes(self: Any) -> Any:
        creating = _creating(self.ec2_backend)
        for volume_id in list(creating):
            creating[volume_id] -= 1
            if creating[volume_id] <= 0:
                del creating[volume_id]
        return describe_volumes(self)

    def volume_status(self: Any) -> str:
        if self.id not in self.ec2_backend.volumes:
            return "deleted"
        if self.id in _creating(self.ec2_backend):
            return "creating"
        return str(status.fget(self))  # type: ignore[attr-defined]

    def patched_register_image(self: Any) -> ActionResult:
        params = self._get_params()
        backend = self.ec2_backend
        checked = check_image_request(backend, params)
        result = register_image(self)
        image = backend.amis[_newest_image(backend)]
        placeholder = image.ebs_snapshot
        backend.snapshots.pop(placeholder.id, None)  # moto's own placeholder snapshot
        image.root_device_name = params["RootDeviceName"]
        image.root_device_type = "ebs"
        image.architecture = params.get("Architecture") or "x86_64"
        image.virtualization_type = params.get("VirtualizationType") or "hvm"
        image.boot_mode = params.get("BootMode")
        image.ena_support = bool(params.get("EnaSupport"))
        image.tpm_support = params.get("TpmSupport")
        image.imds_support = params.get("ImdsSupport")
        image.__dict__["_sv_mappings"] = checked
        for mapping in checked:
            snapshot_id = (mapping.get("Ebs") or {}).get("SnapshotId")
            if snapshot_id:
                snapshot = backend.get_snapshot(snapshot_id)
                snapshot.from_ami = image.id  # EC2 refuses to delete it while the AMI exists
                if mapping["DeviceName"] == image.root_device_name:
                    image.ebs_snapshot = snapshot
        for spec in params.get("TagSpecifications") or []:
            if spec.get("ResourceType") == "image":
                image.add_tags({t["Key"]: t["Value"] for t in spec.get("Tags") or []})
        return result

    def patched_deregister_image(self: Any) -> Any:
        image = self.ec2_backend.amis.get(self._get_param("ImageId"))
        result = deregister_image(self)
        for mapping in (image.__dict__.get("_sv_mappings") or []) if image is not None else []:
            snapshot = self.ec2_backend.snapshots.get((mapping.get("Ebs") or {}).get("SnapshotId"))
            if snapshot is not None and snapshot.from_ami == image.id:
                snapshot.from_ami = None
        return result

    def backend_run_instances(
        self: Any, image_id: str, count: int, user_data: Any, security_group_names: Any, **kwargs: Any
    ) -> Any:
        image = self.amis.get(image_id)
        own = image.__dict__.get("_sv_mappings") if image is not None else None
        if own and not kwargs.get("block_device_mappings"):
            # EC2 launches the image's mappings: volumes from its snapshots, its root device.
            kwargs["block_device_mappings"] = copy.deepcopy(own)
        reservation = backend_run(self, image_id, count, user_data, security_group_names, **kwargs)
        for instance in reservation.instances if own else ():
            # Serialized by DescribeInstances as BootMode, CurrentInstanceBootMode, EnaSupport, TpmSupport.
            instance.__dict__.update(
                boot_mode=image.boot_mode,
                current_instance_boot_mode=image.boot_mode,
                ena_support=image.ena_support,
                tpm_support=image.tpm_support,
            )
            if image.imds_support == "v2.0":
                instance.metadata_options.http_tokens = "required"
        return reservation

    def patched_run_instances(self: Any) -> ActionResult:
        params = self._get_params()
        backend = self.ec2_backend
        existing = _idempotent(backend, "instance", params)
        if existing is not None:
            return ActionResult(backend.reservations[existing])
        check_instance_request(backend, params)
        result = run_instances(self)
        reservation: Any = result.result
        _remember(backend, "instance", params, reservation.id)
        return result

    ElasticBlockStore.create_volume = patched_create_volume  # type: ignore[method-assign]
    ElasticBlockStore.describe_volumes = patched_describe_volumes  # type: ignore[method-assign]
    AmisResponse.register_image = patched_register_image  # type: ignore[method-assign]
    AmisResponse.deregister_image = patched_deregister_image  # type: ignore[method-assign]
    InstanceResponse.run_instances = patched_run_instances  # type: ignore[method-assign]
    InstanceBackend.run_instances = backend_run_instances  # type: ignore[method-assign]
    Volume.status = property(volume_status)  # type: ignore[assignment,method-assign]
    Ami.block_device_mappings = property(  # type: ignore[assignment,method-assign]
        lambda self: self.__dict__.get("_sv_mappings") or mappings.fget(self)  # type: ignore[attr-defined]
    )
    try:
        yield
    finally:
        ElasticBlockStore.create_volume = create_volume  # type: ignore[method-assign]
        ElasticBlockStore.describe_volumes = describe_volumes  # type: ignore[method-assign]
        AmisResponse.register_image = register_image  # type: ignore[method-assign]
        AmisResponse.deregister_image = deregister_image  # type: ignore[method-assign]
        InstanceResponse.run_instances = run_instances  # type: ignore[method-assign]
        InstanceBackend.run_instances = backend_run  # type: ignore[method-assign]
        Volume.status = status  # type: ignore[method-assign]
        Ami.block_device_mappings = mappings  # type: ignore[method-assign]


def _newest_image(backend: Any) -> str:
    return str(list(backend.amis)[-1])


def restored_targets(region: str, instance_id: str) -> Callable[[], list[str]]:
    """Ids a restore request of this instance names: its managed snapshots (CreateVolume,
    RegisterImage), the images registered from them (RunInstances) and the volumes restored
    from them or tagged with its id (a drill's DeleteVolume names only the volume, docs/
    scenarios.md: an instance fault on DeleteVolume matches that instance's drill volumes)."""

    def targets() -> list[str]:
        backend = fleet.ec2_backend(region)
        snapshots = [
            sid
            for sid, snap in backend.snapshots.items()
            if backend.tags.get(sid, {}).get(TAG_INSTANCE_ID) == instance_id
        ]
        mine = set(snapshots)
        images = [
            image_id
            for image_id, image in backend.amis.items()
            if any((m.get("Ebs") or {}).get("SnapshotId") in mine for m in image.__dict__.get("_sv_mappings") or ())
        ]
        volumes = [
            volume_id
            for volume_id, volume in backend.volumes.items()
            if volume.snapshot_id in mine or backend.tags.get(volume_id, {}).get(TAG_INSTANCE_ID) == instance_id
        ]
        return snapshots + images + volumes

    return targets
