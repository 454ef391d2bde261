"""EC2's eventual consistency on the restore side: new volumes and registered AMIs (opt-in).

"Eventual consistency in the Amazon EC2 API" (EC2 Developer Guide): "if you run a command to
modify or describe the resource that you just created, its ID might not have propagated
throughout the system, and you will get an error responding that the resource does not exist";
callers should "run the Describe command repeatedly, starting with a couple of seconds of wait
time, and increasing gradually up to a few minutes". moto answers every Describe at once. With
the scenario's ``emulator.eventual_consistency`` on, this module makes:

- a volume CreateVolume made absent from the first DescribeVolumes that would list it (by a
  ``volume-id`` or tag filter: left out; by ``VolumeIds``: ``InvalidVolume.NotFound``, as EC2
  answers an id it does not know yet);
- an AMI RegisterImage made ``pending`` for its first ``PENDING_DESCRIBES`` DescribeImages calls,
  then ``available`` (DescribeImages, EC2 API Reference: State ``pending | available | ...``).
  RunInstances refuses a pending image with ``InvalidAMIID.Unavailable`` (``restore_rules``).

The snapshot and copy side of the same setting lives elsewhere (the backup steps'); this module
only adds the restore's resources. Installed with ``patched(enabled)``, restored on exit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import InvalidVolumeIdError
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.elastic_block_store import ElasticBlockStore

# DescribeImages calls that still see a newly registered AMI ``pending`` (AWS: seconds to minutes).
PENDING_DESCRIBES = 2


def _unseen_volumes(backend: Any) -> set[str]:
    """Volumes created but not yet listed by any DescribeVolumes (per backend)."""
    store: set[str] = backend.__dict__.setdefault("_sv_unseen_volumes", set())
    return store


def _pending_images(backend: Any) -> dict[str, int]:
    """Image id -> DescribeImages calls left that see it ``pending``."""
    store: dict[str, int] = backend.__dict__.setdefault("_sv_pending_images", {})
    return store


@contextlib.contextmanager
def patched(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    create_volume = ElasticBlockStore.create_volume
    describe_volumes = ElasticBlockStore.describe_volumes
    register_image = AmisResponse.register_image
    describe_images = AmisResponse.describe_images

    def lagging_create_volume(self: Any) -> Any:
        known = set(self.ec2_backend.volumes)
        result = create_volume(self)
        made = getattr(result, "result", None)
        volume_id = getattr(made, "id", None)
        if volume_id and volume_id not in known:  # not a ClientToken repeat of an older volume
            _unseen_volumes(self.ec2_backend).add(volume_id)
        return result

    def lagging_describe_volumes(self: Any) -> Any:
        unseen = _unseen_volumes(self.ec2_backend)
        named = set(self._get_param("VolumeIds", []) or [])
        if named & unseen:
            missing = sorted(named & unseen)
            unseen.difference_update(missing)  # the next call finds them
            raise InvalidVolumeIdError(missing)
        result = describe_volumes(self)
        volumes = list(result.result["Volumes"])
        hidden = [v for v in volumes if v.id in unseen]
        if not hidden:
            return result
        unseen.difference_update(v.id for v in hidden)
        return ActionResult({"Volumes": [v for v in volumes if v not in hidden]})

    def lagging_register_image(self: Any) -> Any:
        backend = self.ec2_backend
        known = set(backend.amis)
        result = register_image(self)
        for image_id in set(backend.amis) - known:
            backend.amis[image_id].state = "pending"
            _pending_images(backend)[image_id] = PENDING_DESCRIBES
        return result

    def lagging_describe_images(self: Any) -> Any:
        # Before answering: the response is serialized from the images after this returns.
        backend = self.ec2_backend
        pending = _pending_images(backend)
        for image_id in list(pending):
            if pending[image_id] > 0:
                pending[image_id] -= 1
                continue
            del pending[image_id]
            image = backend.amis.get(image_id)
            if image is not None and image.state == "pending":
                image.state = "available"
        return describe_images(self)

    ElasticBlockStore.create_volume = lagging_create_volume  # type: ignore[method-assign]
    ElasticBlockStore.describe_volumes = lagging_describe_volumes  # type: ignore[method-assign]
    AmisResponse.register_image = lagging_register_image  # type: ignore[method-assign]
    AmisResponse.describe_images = lagging_describe_images  # type: ignore[method-assign]
    try:
        yield
    finally:
        ElasticBlockStore.create_volume = create_volume  # type: ignore[method-assign]
        ElasticBlockStore.describe_volumes = describe_volumes  # type: ignore[method-assign]
        AmisResponse.register_image = register_image  # type: ignore[method-assign]
        AmisResponse.describe_images = describe_images  # type: ignore[method-assign]
