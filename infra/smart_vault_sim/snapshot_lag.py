"""Eventual consistency of new snapshots and copies in the emulated EC2 (moto is consistent).

"The Amazon EC2 API follows an eventual consistency model [...] if you run a command to modify or
describe the resource that you just created, its ID might not have propagated throughout the
system, and you will get an error responding that the resource does not exist" (Amazon EC2
Developer Guide, "Eventual consistency in the Amazon EC2 API",
https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html). The page gives no
bound: it advises Describe with backoff "starting with a couple of seconds of wait time, and
increasing gradually up to a few minutes".

The rule, on when the scenario sets ``emulator.eventual_consistency`` (or the environment sets
``SMART_VAULT_SIM_EVENTUAL_CONSISTENCY=1``, or ``=volumes`` with the volume hook too, to run a
test suite with it forced on):

- a snapshot made by CreateSnapshots or CreateSnapshot, and a copy made by CopySnapshot (in its
  destination Region), is left out of the first ``HIDDEN_DESCRIBES`` DescribeSnapshots answers
  that would have listed it, whatever selected it (tag filters, a ``snapshot-id`` filter, none);
  a request naming it in ``SnapshotIds`` fails with ``InvalidSnapshot.NotFound`` instead, as the
  page says. "A while" is counted in Describe answers, not time, so a run is deterministic and
  the first lookup after a create (a retry's, a check's) is the one that misses it;
- ``volumes=True`` (drill tests only): a volume made by CreateVolume is left out of DescribeVolumes
  the same way (``InvalidVolume.NotFound`` when named in ``VolumeIds``). The restore rules model
  the same lag for the restore (``restore_lag``); this hook exists so the drill's own tests do not
  depend on that module.

Only what is made after ``armed`` is set (the account built) lags: the scenario's fleet and
existing snapshots are visible from the start. Only API answers lag, never moto's own lookups
(CopySnapshot reads its source through the backend). ``misses`` counts the answers that left a
resource out, so a test can show the lag was met.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

from moto.ec2.exceptions import InvalidSnapshotIdError, InvalidVolumeIdError
from moto.ec2.models.elastic_block_store import EBSBackend
from moto.ec2.responses.elastic_block_store import ElasticBlockStore

HIDDEN_DESCRIBES = 1
FORCE_ENV = "SMART_VAULT_SIM_EVENTUAL_CONSISTENCY"


def wanted(scenario_flag: bool) -> bool:
    """The scenario's ``emulator.eventual_consistency``, or the environment forcing it on."""
    return scenario_flag or os.environ.get(FORCE_ENV, "") in ("1", "volumes")


class Lag:
    """Resource id -> Describe answers it is still left out of."""

    def __init__(self, *, describes: int = HIDDEN_DESCRIBES, volumes: bool | None = None) -> None:
        self.describes = describes
        # ``SMART_VAULT_SIM_EVENTUAL_CONSISTENCY=volumes`` forces the volume hook on too.
        self.volumes = os.environ.get(FORCE_ENV, "") == "volumes" if volumes is None else volumes
        self.armed = False
        self.hidden: dict[str, int] = {}
        self.misses: Counter[str] = Counter()  # "snapshot" / "volume" -> answers that left one out

    def made(self, resource_id: str) -> None:
        if self.armed and self.describes > 0:
            self.hidden[resource_id] = self.describes

    def visible(self, kind: str, found: list[Any], named: list[str]) -> list[Any]:
        """What this answer shows; each resource left out comes one answer closer to visible."""
        shown = []
        for resource in found:
            left = self.hidden.get(resource.id, 0)
            if left <= 0:
                shown.append(resource)
                continue
            if left == 1:
                del self.hidden[resource.id]
            else:
                self.hidden[resource.id] = left - 1
            self.misses[kind] += 1
            if resource.id in named:
                raise InvalidSnapshotIdError() if kind == "snapshot" else InvalidVolumeIdError(resource.id)
        return shown


@contextlib.contextmanager
def patched(lag: Lag) -> Iterator[None]:
    """Installed after every other EC2 patch (it wraps whatever answers DescribeSnapshots)."""
    create_snapshot = EBSBackend.create_snapshot
    copy_snapshot = EBSBackend.copy_snapshot
    create_volume = EBSBackend.create_volume
    describe_snapshots = ElasticBlockStore.describe_snapshots
    describe_volumes = ElasticBlockStore.describe_volumes

    def lagged_create_snapshot(self: Any, *args: Any, **kwargs: Any) -> Any:
        snapshot = create_snapshot(self, *args, **kwargs)  # CreateSnapshots makes each through it
        lag.made(snapshot.id)
        return snapshot

    def lagged_copy_snapshot(self: Any, *args: Any, **kwargs: Any) -> Any:
        snapshot = copy_snapshot(self, *args, **kwargs)
        lag.made(snapshot.id)
        return snapshot

    def lagged_create_volume(self: Any, *args: Any, **kwargs: Any) -> Any:
        volume = create_volume(self, *args, **kwargs)
        if lag.volumes:
            lag.made(volume.id)
        return volume

    def lagged_describe_snapshots(self: Any) -> Any:
        result = describe_snapshots(self)
        named = list(self._get_param("SnapshotIds", []))
        result.result["Snapshots"] = lag.visible("snapshot", list(result.result["Snapshots"]), named)
        return result

    def lagged_describe_volumes(self: Any) -> Any:
        result = describe_volumes(self)
        named = list(self._get_param("VolumeIds", []))
        result.result["Volumes"] = lag.visible("volume", list(result.result["Volumes"]), named)
        return result

    EBSBackend.create_snapshot = lagged_create_snapshot  # type: ignore[method-assign]
    EBSBackend.copy_snapshot = lagged_copy_snapshot  # type: ignore[method-assign]
    EBSBackend.create_volume = lagged_create_volume  # type: ignore[method-assign]
    ElasticBlockStore.describe_snapshots = lagged_describe_snapshots  # type: ignore[method-assign]
    ElasticBlockStore.describe_volumes = lagged_describe_volumes  # type: ignore[method-assign]
    try:
        yield
    finally:
        EBSBackend.create_snapshot = create_snapshot  # type: ignore[method-assign]
        EBSBackend.copy_snapshot = copy_snapshot  # type: ignore[method-assign]
        EBSBackend.create_volume = create_volume  # type: ignore[method-assign]
        ElasticBlockStore.describe_snapshots = describe_snapshots  # type: ignore[method-assign]
        ElasticBlockStore.describe_volumes = describe_volumes  # type: ignore[method-assign]
