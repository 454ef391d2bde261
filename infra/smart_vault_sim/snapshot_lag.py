"""Eventual consistency of the EC2 API in the emulated account (moto answers consistently).

"Eventual consistency in the Amazon EC2 API" (Amazon EC2 Developer Guide,
https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html): "the result of an API
command you run that affects your Amazon EC2 resources might not be immediately visible to all
subsequent commands you run ... if you run a command to modify or describe the resource that you
just created, its ID might not have propagated throughout the system, and you will get an error
responding that the resource does not exist." The page gives no bound ("a couple of seconds ...
up to a few minutes" of backoff), so the rule here is by count, not time:

- a volume (CreateVolume), snapshot (CreateSnapshots) or copy (CopySnapshot, in its destination
  Region) the product creates is missing from the first DescribeVolumes / DescribeSnapshots of the
  product that would list it: left out of a filtered answer (tag, id or any other filter), and a
  request naming it in ``VolumeIds`` / ``SnapshotIds`` fails with ``InvalidVolume.NotFound`` /
  ``InvalidSnapshot.NotFound``, as for an id that does not exist. After that one miss it is listed;
- an AMI the product registers (RegisterImage) is ``pending`` until the product's first
  DescribeImages that lists it (which answers ``pending``); RunInstances refuses a pending AMI with
  ``InvalidAMIID.Unavailable`` (restore_rules.check_instance_request).

Only the product's calls (functions, state machines, the operator CLI: aws_tap marks them) see and
consume the lag; the simulator's and the tests' own lookups see the account as it is. On with the
scenario's ``emulator.eventual_consistency`` or ``SMART_VAULT_SIM_EVENTUAL_CONSISTENCY=1`` (to run
whole test directories with it).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from smart_vault_sim import fleet
from smart_vault_sim.answering import AnsweredApi, Handlers
from smart_vault_sim.aws_tap import CALLER_KEY, aws_error

ENV_SWITCH = "SMART_VAULT_SIM_EVENTUAL_CONSISTENCY"
_PARAMS = "smart_vault_sim.lag_params"  # request-context key: the API parameters of this call
_DONE = "smart_vault_sim.lag_done"  # a call is answered once even if a session holds the handlers twice
# Describe operation -> (list in its answer, id field, the request's id list, NotFound code, noun)
_DESCRIBES = {
    "DescribeVolumes": ("Volumes", "VolumeId", "VolumeIds", "InvalidVolume.NotFound", "volume"),
    "DescribeSnapshots": ("Snapshots", "SnapshotId", "SnapshotIds", "InvalidSnapshot.NotFound", "snapshot"),
}


def switched_on(scenario_flag: bool) -> bool:
    return scenario_flag or os.environ.get(ENV_SWITCH, "") not in ("", "0")


class Lag(AnsweredApi):
    """Install on a boto3 session (and ``everywhere``) before its clients are created."""

    def __init__(self) -> None:
        self.unseen: set[str] = set()  # new volumes, snapshots, copies not yet missed once
        self.known: set[str] = set()  # ids ever created (a repeated ClientToken is no new volume)
        self.pending_images: dict[str, str] = {}  # AMI id -> its Region, while ``pending``
        self.missed: Counter[str] = Counter()  # what the product's calls did not see: volume, snapshot, image
        self._paused = False

    def handlers(self) -> Handlers:
        remember = [(f"before-parameter-build.ec2.{op}", self._remember) for op in (*_DESCRIBES, "DescribeImages")]
        return [
            *remember,
            ("after-call.ec2.CreateVolume", self._created),
            ("after-call.ec2.CreateSnapshots", self._created),
            ("after-call.ec2.CopySnapshot", self._created),
            ("after-call.ec2.RegisterImage", self._registered),
            ("after-call.ec2.DescribeVolumes", self._describe),
            ("after-call.ec2.DescribeSnapshots", self._describe),
            ("after-call.ec2.DescribeImages", self._described_images),
        ]

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Product calls made meanwhile neither see nor create lag (a test's set-up through the CLI)."""
        self._paused, before = True, self._paused
        try:
            yield
        finally:
            self._paused = before

    # -- botocore handlers ------------------------------------------------------------------
    def _product(self, context: Any) -> bool:
        """A product call not answered yet (marks it answered)."""
        if self._paused or not context or context.get(CALLER_KEY) is None or context.get(_DONE):
            return False
        context[_DONE] = True
        return True

    def _remember(self, params: dict[str, Any], context: Any = None, **_: Any) -> None:
        if context is not None:
            context[_PARAMS] = dict(params)

    def _created(self, parsed: dict[str, Any], context: Any = None, **_: Any) -> None:
        if not self._product(context):
            return
        ids = [s.get("SnapshotId") for s in parsed.get("Snapshots") or ()]
        ids += [parsed.get("VolumeId"), parsed.get("SnapshotId")]
        for new in (i for i in ids if i and i not in self.known):
            self.known.add(new)
            self.unseen.add(new)

    def _registered(self, parsed: dict[str, Any], context: Any = None, **_: Any) -> None:
        image_id = parsed.get("ImageId")
        if not image_id or not self._product(context):
            return
        region = str(context.get("client_region") or "")
        image = fleet.ec2_backend(region).amis.get(image_id)
        if image is not None:
            image.state = "pending"
            self.pending_images[image_id] = region

    def _describe(self, parsed: dict[str, Any], model: Any = None, context: Any = None, **_: Any) -> None:
        if not self.unseen or not self._product(context):
            return
        key, field, id_list, code, noun = _DESCRIBES[model.name]
        named = [i for i in (context.get(_PARAMS) or {}).get(id_list) or () if i in self.unseen]
        if named:
            self.unseen.difference_update(named)
            self.missed[noun] += len(named)
            raise aws_error(code, model.name, f"The {noun} '{named[0]}' does not exist.")
        listed = parsed.get(key) or []
        hidden = [r for r in listed if r.get(field) in self.unseen]
        if hidden:
            parsed[key] = [r for r in listed if r.get(field) not in self.unseen]
            self.unseen.difference_update(r[field] for r in hidden)
            self.missed[noun] += len(hidden)

    def _described_images(self, parsed: dict[str, Any], context: Any = None, **_: Any) -> None:
        """A pending AMI the product has now seen pending becomes available."""
        if not self.pending_images or not self._product(context):
            return
        for listed in parsed.get("Images") or ():
            region = self.pending_images.pop(listed.get("ImageId"), None)
            if region is None:
                continue
            self.missed["image"] += 1
            image = fleet.ec2_backend(region).amis.get(listed["ImageId"])
            if image is not None:
                image.state = "available"
