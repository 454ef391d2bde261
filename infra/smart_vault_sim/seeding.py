"""Seeded ids: the same scenario gives the same instance, volume and snapshot ids, run after run.

moto draws every id (``i-``, ``vol-``, ``snap-``, request ids) from one ``random.Random``
(``moto.moto_api._internal.mock_random``, "Can be seeded to make identifiers deterministic"), and
its Step Functions interpreter draws a retrier's ``"JitterStrategy": "FULL"`` wait from the
``random`` module. Seeding the first from the scenario's name fixes what is created one at a time
(the fleet, the existing snapshots, their AMIs). What the Map's children create at the same time
(snapshots, copies, restored volumes) and their jittered retries would still follow thread
scheduling, so each is drawn from its own source instead: the seed, what it derives from (the
volume, the source snapshot, the child's input and state) and how many came before from the same.
Two reports of one scenario then differ only in their wall-clock fields (docs/scenarios.md).
"""

from __future__ import annotations

import json
import random
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from moto.ec2 import utils as ec2_utils
from moto.ec2.models import elastic_block_store
from moto.ec2.models.elastic_block_store import EBSBackend
from moto.moto_api._internal import mock_random
from moto.stepfunctions.parser.asl.component.common.retry import jitter_strategy_decl
from moto.stepfunctions.parser.asl.component.common.retry.jitter_strategy_decl import JitterStrategy

from smart_vault_sim import fleet


def seed_of(name: str) -> int:
    """A seed that is the same for the same scenario name in every process (``hash`` is not)."""
    return zlib.crc32(name.encode())


class Draws:
    """Random sources keyed by what a value derives from, not by when it is drawn."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._pending = threading.local()  # the id the next moto id generator call returns

    def source(self, *key: Any) -> random.Random:
        name = json.dumps(key, sort_keys=True, default=str)
        with self._lock:
            nth = self._counts[name]
            self._counts[name] += 1
        return random.Random(f"{self.seed}|{name}|{nth}")  # a str seed: the same in every process

    def resource_id(self, prefix: str, *key: Any) -> str:
        """An id in moto's shape (17 hex digits, as moto.ec2.utils.random_id)."""
        return f"{prefix}-{self.source(prefix, *key).getrandbits(68):017x}"

    @contextmanager
    def next_id(self, value: str) -> Iterator[None]:
        self._pending.value = value
        try:
            yield
        finally:
            self._pending.value = None

    def generator(self, original: Callable[[], str]) -> Callable[[], str]:
        """moto's id generator, answering the id a wrapper chose for this call first."""

        def generate() -> str:
            value = getattr(self._pending, "value", None)
            self._pending.value = None
            return value or original()

        return generate


def _keyed_creations(draws: Draws) -> list[Any]:
    """CreateSnapshot(s), CopySnapshot and CreateVolume from a snapshot, with keyed ids."""
    create_snapshot, copy_snapshot, create_volume = (
        EBSBackend.create_snapshot,
        EBSBackend.copy_snapshot,
        EBSBackend.create_volume,
    )

    def snapshot(self: Any, volume_id: str, *args: Any, **kwargs: Any) -> Any:
        with draws.next_id(draws.resource_id("snap", self.region_name, volume_id)):
            return create_snapshot(self, volume_id, *args, **kwargs)

    def copy(self: Any, source_snapshot_id: str, *args: Any, **kwargs: Any) -> Any:
        with draws.next_id(draws.resource_id("snap", self.region_name, "copy", source_snapshot_id)):
            return copy_snapshot(self, source_snapshot_id, *args, **kwargs)

    def volume(self: Any, *args: Any, **kwargs: Any) -> Any:
        snapshot_id = kwargs.get("snapshot_id") or (args[2] if len(args) > 2 else None)
        if not snapshot_id:  # the fleet's volumes, created one at a time: the seeded stream
            return create_volume(self, *args, **kwargs)
        with draws.next_id(draws.resource_id("vol", self.region_name, snapshot_id)):
            return create_volume(self, *args, **kwargs)

    return [
        mock.patch.object(EBSBackend, "create_snapshot", snapshot),
        mock.patch.object(EBSBackend, "copy_snapshot", copy),
        mock.patch.object(EBSBackend, "create_volume", volume),
        # The generators as elastic_block_store imported them (moto.ec2.utils), where it calls them.
        mock.patch.object(elastic_block_store, "random_snapshot_id", draws.generator(ec2_utils.random_snapshot_id)),
        mock.patch.object(elastic_block_store, "random_volume_id", draws.generator(ec2_utils.random_volume_id)),
    ]


def _keyed_jitter(draws: Draws) -> Any:
    """A retrier's full jitter, drawn per execution input and state (the n-th retry there)."""

    def eval_body(self: Any, env: Any) -> None:
        if self.jitter_strategy == JitterStrategy.NONE:
            return
        interval = env.stack.pop()
        context = env.states.context_object.context_object_data
        state = (context.get("State") or {}).get("Name")
        env.stack.append(draws.source("jitter", context["Execution"].get("Input"), state).uniform(0, interval))

    return mock.patch.object(jitter_strategy_decl.JitterStrategyDecl, "_eval_body", eval_body)


@contextmanager
def seeded(name: str, regions: Iterable[str]) -> Iterator[int]:
    """Inside ``mock_aws``: from here on moto's ids and the retriers' jitter follow the seed."""
    # moto builds a Region's EC2 backend (default VPC, prefix lists: random ids) on first use,
    # and only the first time in a process some of it: build them before seeding, so the ids
    # drawn afterwards are the same in a fresh process and in the tenth simulation of a test run.
    for region in regions:
        fleet.ec2_backend(region)
    seed = seed_of(name)
    mock_random.seed(seed)
    draws = Draws(seed)
    with ExitStack() as patches:
        for patch in [*_keyed_creations(draws), _keyed_jitter(draws)]:
            patches.enter_context(patch)
        yield seed
