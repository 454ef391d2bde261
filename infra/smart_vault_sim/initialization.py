"""Volume initialization in the emulated account: moto implements no DescribeVolumeStatus and
ignores CreateVolume's VolumeInitializationRate.

From the EC2 API Reference (CreateVolume VolumeInitializationRate, InitializationStatusDetails)
and the Amazon EBS User Guide ("Initialize Amazon EBS volumes"):
- VolumeInitializationRate is 100-300 MiB/s and only for a volume created from a snapshot;
- DescribeVolumeStatus gives a volume created from a snapshot ``InitializationStatusDetails``:
  ``InitializationType`` (``default`` or ``provisioned-rate``), ``Progress`` (0-100) and, only
  for a provisioned rate, ``EstimatedTimeToCompleteInSeconds`` (0 once complete); an empty
  volume has none.

The model: the blocks to download are the volume's size (GiB x 1,024 MiB), from the moment the
volume is created, at the provisioned rate, or at ``DEFAULT_RATE_MIBPS`` (the default rate
"fluctuates ... completion times unpredictable": the emulator's own figure, for Progress only).
Time is the run's virtual seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smart_vault_sim import fleet
from smart_vault_sim.answering import AnsweredApi, Handlers, Response
from smart_vault_sim.aws_tap import aws_error

RATE_RANGE = (100, 300)
DEFAULT_RATE_MIBPS = 40


@dataclass(frozen=True)
class Initializing:
    created: float  # virtual seconds
    rate: int | None
    size_gib: int

    def seconds(self) -> float:
        return self.size_gib * 1024 / (self.rate or DEFAULT_RATE_MIBPS)


@dataclass
class VolumeInitialization(AnsweredApi):
    region: str
    seconds: Callable[[], float]
    volumes: dict[str, Initializing] = field(default_factory=dict)

    def handlers(self) -> Handlers:
        return [
            ("before-parameter-build.ec2.CreateVolume", self.remember),
            ("before-parameter-build.ec2.DescribeVolumeStatus", self.remember),
            ("before-call.ec2.CreateVolume", self._check_create),
            ("after-call.ec2.CreateVolume", self._created),
            ("before-call.ec2.DescribeVolumeStatus", self._describe),
        ]

    def _check_create(self, context: Any = None, **_: Any) -> None:
        params = self.params(context)
        rate = params.get("VolumeInitializationRate")
        if rate is None:
            return
        low, high = RATE_RANGE
        if not params.get("SnapshotId"):
            raise aws_error(
                "InvalidParameterCombination",
                "CreateVolume",
                "VolumeInitializationRate is supported only for volumes created from a snapshot.",
            )
        if not low <= int(rate) <= high:
            raise aws_error(
                "InvalidParameterValue", "CreateVolume", f"VolumeInitializationRate must be {low}-{high} MiB/s."
            )

    def _created(self, parsed: dict[str, Any], context: Any = None, **_: Any) -> None:
        params = self.params(context)
        volume_id = parsed.get("VolumeId")
        if volume_id and params.get("SnapshotId") and volume_id not in self.volumes:
            rate = params.get("VolumeInitializationRate")
            self.volumes[str(volume_id)] = Initializing(
                created=self.seconds(), rate=int(rate) if rate else None, size_gib=int(parsed.get("Size") or 0)
            )

    def details(self, volume_id: str) -> dict[str, Any] | None:
        """InitializationStatusDetails of a volume created from a snapshot (None: empty volume)."""
        init = self.volumes.get(volume_id)
        if init is None:
            return None
        elapsed = max(0.0, self.seconds() - init.created)
        total = init.seconds()
        done = elapsed >= total
        detail: dict[str, Any] = {
            "InitializationType": "provisioned-rate" if init.rate else "default",
            "Progress": 100 if done else int(100 * elapsed / total),
        }
        if init.rate:
            detail["EstimatedTimeToCompleteInSeconds"] = 0 if done else round(total - elapsed)
        return detail

    def _describe(self, context: Any = None, **_: Any) -> tuple[Response, dict[str, Any]]:
        params = self.params(context)
        region = str((context or {}).get("client_region") or self.region)
        backend = fleet.ec2_backend(region)
        ids = list(params.get("VolumeIds") or backend.volumes)
        missing = [i for i in ids if i not in backend.volumes]
        if missing:
            raise aws_error(
                "InvalidVolume.NotFound", "DescribeVolumeStatus", f"The volume '{missing[0]}' does not exist."
            )
        statuses = []
        for volume_id in ids:
            volume = backend.volumes[volume_id]
            item: dict[str, Any] = {
                "VolumeId": volume_id,
                "AvailabilityZone": volume.zone.name,
                "VolumeStatus": {"Status": "ok", "Details": [{"Name": "io-enabled", "Status": "passed"}]},
                "Actions": [],
                "Events": [],
            }
            detail = self.details(volume_id)
            if detail is not None:
                item["InitializationStatusDetails"] = detail
            statuses.append(item)
        return Response(), {"VolumeStatuses": statuses}
