"""What an AMI registered from an instance's snapshots needs of that instance, recorded at backup.

Discover reads it from DescribeInstances; the Snapshot step writes it on every snapshot, and the
Copy step onto every copy, as one compact tag (``smart-vault:instance-spec``), so that
`smart-vault restore --as ami|instance` works where the instance cannot be read: after it was
terminated, and in a copy Region while the source Region is down.

DescribeInstances (EC2 API Reference, Instance): ``Architecture``; ``BootMode`` (the AMI's, may be
``uefi-preferred``) and ``CurrentInstanceBootMode`` (what it booted with, ``legacy-bios`` or
``uefi``); ``EnaSupport`` (omitted when ENA is not enabled); ``RootDeviceName``;
``VirtualizationType``; ``MetadataOptions.HttpTokens`` (``required``: IMDSv2 only);
``TpmSupport`` (``v2.0`` with NitroTPM, else omitted); ``InstanceType``; ``Platform``
(``windows``) and ``UsageOperation`` (the billing code).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

# The tag value's keys, in the order written; short, so the value stays far below 256 characters.
_KEYS = {
    "architecture": "arch",
    "boot_mode": "boot",
    "ena_support": "ena",
    "root_device": "root",
    "virtualization_type": "virt",
    "http_tokens": "imds",
    "tpm_support": "tpm",
    "instance_type": "type",
    "platform": "platform",
    "usage_operation": "usage",
}
DEFAULT_USAGE_OPERATION = "RunInstances"  # plain Linux/UNIX (EC2 User Guide, "AMI billing")


@dataclass(frozen=True, kw_only=True)
class InstanceSpec:
    architecture: str = "x86_64"
    boot_mode: str | None = None
    ena_support: bool = False
    root_device: str = ""
    virtualization_type: str = "hvm"
    http_tokens: str | None = None
    tpm_support: str | None = None
    instance_type: str | None = None
    platform: str | None = None
    usage_operation: str = DEFAULT_USAGE_OPERATION

    @classmethod
    def from_instance(cls, instance: Mapping[str, Any]) -> InstanceSpec:
        """From a DescribeInstances record; an attribute EC2 omits is not assumed (ENA off)."""
        return cls(
            architecture=str(instance.get("Architecture") or "x86_64"),
            boot_mode=instance.get("CurrentInstanceBootMode") or instance.get("BootMode") or None,
            ena_support=instance.get("EnaSupport") is True,
            root_device=str(instance.get("RootDeviceName") or ""),
            virtualization_type=str(instance.get("VirtualizationType") or "hvm"),
            http_tokens=(instance.get("MetadataOptions") or {}).get("HttpTokens") or None,
            tpm_support=instance.get("TpmSupport") or None,
            instance_type=instance.get("InstanceType") or None,
            platform=instance.get("Platform") or None,
            usage_operation=str(instance.get("UsageOperation") or DEFAULT_USAGE_OPERATION),
        )

    def to_tag(self) -> str:
        """``arch=arm64,boot=uefi,ena=1,root=/dev/xvda,virt=hvm,imds=required,tpm=v2.0,type=m7g.large``
        (unset attributes and the default billing code left out)."""
        parts = []
        for name, key in _KEYS.items():
            value = getattr(self, name)
            if name == "ena_support":
                value = "1" if value else "0"
            if value is None or value == "" or (name == "usage_operation" and value == DEFAULT_USAGE_OPERATION):
                continue
            parts.append(f"{key}={value}")
        return ",".join(parts)

    @classmethod
    def from_tag(cls, value: str | None) -> InstanceSpec | None:
        """The spec a tag value records, or None when there is none (snapshots made before it)."""
        pairs = dict(item.split("=", 1) for item in (value or "").split(",") if "=" in item)
        if "arch" not in pairs or "root" not in pairs:
            return None
        known = {key: name for name, key in _KEYS.items()}
        data: dict[str, Any] = {known[k]: v for k, v in pairs.items() if k in known}
        data["ena_support"] = data.get("ena_support") == "1"
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InstanceSpec:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
