"""Seeded ids: the same scenario gives the same instance, volume and snapshot ids, run after run.

moto draws every id (``i-``, ``vol-``, ``snap-``, request ids) from one ``random.Random``
(``moto.moto_api._internal.mock_random``, "Can be seeded to make identifiers deterministic"), and
its Step Functions interpreter draws a retrier's ``"JitterStrategy": "FULL"`` wait from the
``random`` module. Both are seeded from the scenario's name, so two reports of one scenario differ
only in their wall-clock fields (docs/scenarios.md, "Seeded ids").
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from unittest import mock

from moto.moto_api._internal import mock_random
from moto.stepfunctions.parser.asl.component.common.retry import jitter_strategy_decl

from smart_vault_sim import fleet


def seed_of(name: str) -> int:
    """A seed that is the same for the same scenario name in every process (``hash`` is not)."""
    return zlib.crc32(name.encode())


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
    with mock.patch.object(jitter_strategy_decl, "random", random.Random(seed)):
        yield seed
