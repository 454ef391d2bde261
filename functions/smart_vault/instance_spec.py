"""What an AMI registered from a recovery point needs to boot, recorded at backup time.

RegisterImage from snapshots needs attributes the snapshots do not carry (root device,
architecture, boot mode, ENA, TPM, IMDS; EC2 API Reference, RegisterImage). A restore from an
off-site copy, or after the instance is gone, cannot read them from DescribeInstances, so Discover
reads them from the instance record and the Snapshot step writes them on every snapshot as one
compact tag (``smart-vault:instance-spec``), carried onto the copies. One tag, not eight: EC2
allows 50 tags per resource and 256 characters per value (EC2 User Guide, "Tag restrictions").

Format: ``key=value`` pairs joined by commas, like the device-map tag, e.g.
``arch=arm64,boot=uefi,ena=1,root=/dev/xvda,virt=hvm,imds=required,tpm=v2.0,type=m7g.large``.
A key EC2 omitted from the instance record is omitted here (ENA is not assumed on).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_SPEC_LENGTH = 256  # EC2 tag value limit


@dataclass(frozen=True, kw_only=True)
class InstanceSpec:
    root_device: str = ""
    architecture: str | None = None
    virtualization_type: str | None = None
    boot_mode: str | None = None  # the mode the instance booted in: legacy-bios | uefi
    ena_support: bool | None = None  # None: EC2 did not say
    http_tokens: str | None = None  # MetadataOptions.HttpTokens: required = IMDSv2 only
    tpm_support: str | None = None  # v2.0 when NitroTPM is on
    instance_type: str | None = None
    platform: str | None = None  # "windows", or absent
    usage_operation: str | None = None  # billing code, RunInstances for plain Linux

    @classmethod
    def from_instance(cls, instance: Mapping[str, Any]) -> InstanceSpec:
        """From a DescribeInstances record; only what EC2 reported."""
        ena = instance.get("EnaSupport")
        return cls(
            root_device=str(instance.get("RootDeviceName") or ""),
            architecture=instance.get("Architecture") or None,
            virtualization_type=instance.get("VirtualizationType") or None,
            # CurrentInstanceBootMode is what the instance booted in; BootMode may be
            # "uefi-preferred", which RegisterImage accepts but which says less.
            boot_mode=instance.get("CurrentInstanceBootMode") or instance.get("BootMode") or None,
            ena_support=None if ena is None else bool(ena),
            http_tokens=(instance.get("MetadataOptions") or {}).get("HttpTokens") or None,
            tpm_support=instance.get("TpmSupport") or None,
            instance_type=instance.get("InstanceType") or None,
            platform=instance.get("Platform") or None,
            usage_operation=instance.get("UsageOperation") or None,
        )

    def to_tag(self) -> str:
        """The tag value; "" when even the compact form would exceed 256 characters."""
        pairs = {
            "arch": self.architecture,
            "boot": self.boot_mode,
            "ena": None if self.ena_support is None else ("1" if self.ena_support else "0"),
            "root": self.root_device or None,
            "virt": self.virtualization_type,
            "imds": self.http_tokens,
            "tpm": self.tpm_support,
            "type": self.instance_type,
            "platform": self.platform,
            "uo": self.usage_operation,
        }
        # EC2's values here never hold "," or "="; one that did would break the format: left out.
        text = ",".join(f"{k}={v}" for k, v in pairs.items() if v and "," not in v and "=" not in v)
        return text if len(text) <= MAX_SPEC_LENGTH else ""

    @classmethod
    def from_tag(cls, value: str | None) -> InstanceSpec | None:
        """Parse the tag; None when absent or empty (snapshots taken before it existed)."""
        pairs = dict(item.split("=", 1) for item in (value or "").split(",") if "=" in item)
        if not pairs:
            return None
        ena = pairs.get("ena")
        return cls(
            root_device=pairs.get("root", ""),
            architecture=pairs.get("arch") or None,
            virtualization_type=pairs.get("virt") or None,
            boot_mode=pairs.get("boot") or None,
            ena_support=None if ena is None else ena == "1",
            http_tokens=pairs.get("imds") or None,
            tpm_support=pairs.get("tpm") or None,
            instance_type=pairs.get("type") or None,
            platform=pairs.get("platform") or None,
            usage_operation=pairs.get("uo") or None,
        )
