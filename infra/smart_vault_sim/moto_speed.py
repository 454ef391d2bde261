"""moto made fast enough for a fleet: the same answers, without its per-request scans.

A 10,000-instance run makes every Map child ask moto for its own instance and its own
snapshots, and moto answers each by walking the whole region, so the emulator's cost grew with
the square of the fleet. These patches change how moto finds things, never what it answers:

- ``get_instance``: an id -> instance index (moto never removes an instance from its
  reservations, so an indexed entry stays right; a miss walks the newest reservations first);
- ``DescribeSnapshots`` and ``DescribeVolumes``: ids looked up by id; exact ``snapshot-id``,
  ``volume-id`` and ``tag:`` filter values narrow the candidates (through an index of tag
  values), then moto's own filters decide, and results keep moto's order (insertion order);
- the interpreter's JSONPath expressions are parsed once per text (jsonpath_ng builds a new
  parser, tables and all, on every ``parse``), and moto's response dispatch lists a class's
  methods once per class, not per request;
- moto's response serializer works out, for every attribute of every object it writes, which
  names to look the value up by (six alias rules); the names depend only on the object's type,
  the attribute and the model shape, so they are worked out once per combination;
- the interpreter deep-copies every state's input, result and event details with
  ``copy.deepcopy``; for JSON values (dicts, lists, strings, numbers) a plain recursive copy
  gives the same value several times faster, and anything else still goes to ``copy.deepcopy``.

Installed with ``patched()``, restored on exit. moto is pinned exactly in pyproject.toml.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Callable, Iterator
from typing import Any

from moto.core import responses as moto_responses
from moto.core import serialize as moto_serialize
from moto.core.utils import get_value, method_names_from_class
from moto.ec2.exceptions import InvalidSnapshotIdError
from moto.ec2.models.elastic_block_store import EBSBackend
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.models.tags import TagBackend
from moto.ec2.utils import generic_filter
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.common.string import string_expression
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.eval import environment, states
from moto.stepfunctions.parser.asl.eval.event import event_manager
from moto.stepfunctions.parser.asl.utils import json_path

_WILDCARDS = frozenset("*?[")  # EC2 filter values may be patterns; those need moto's full scan


_IMMUTABLE = (str, int, float, bool, type(None))


def json_deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """``copy.deepcopy`` for JSON values without its memo bookkeeping; other types go to it."""
    kind = type(value)
    if kind is dict:
        return {key: json_deepcopy(item) for key, item in value.items()}
    if kind is list:
        return [json_deepcopy(item) for item in value]
    if kind in _IMMUTABLE:
        return value
    return copy.deepcopy(value, memo)


class _CopyModule:
    """The ``copy`` module with ``deepcopy`` replaced, for the interpreter modules that use it."""

    deepcopy = staticmethod(json_deepcopy)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


class _Ordered(dict[str, Any]):
    """moto's ``snapshots`` or ``volumes`` dict, remembering each id's insertion position."""

    def __init__(self, existing: dict[str, Any]) -> None:
        super().__init__()
        self.position: dict[str, int] = {}
        self._next = 0
        for key, value in existing.items():
            self[key] = value

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self:
            self.position[key] = self._next
            self._next += 1
        super().__setitem__(key, value)


def _ordered(backend: Any, attribute: str) -> _Ordered:
    resources = getattr(backend, attribute)
    if not isinstance(resources, _Ordered):
        resources = _Ordered(resources)
        setattr(backend, attribute, resources)
    return resources


def _tag_index(backend: Any) -> dict[tuple[str, str], set[str]]:
    """(tag key, value) -> ids of the resources that have carried it: a superset of those that
    carry it now (moto's filters re-check), built from moto's tags on first use."""
    index: dict[tuple[str, str], set[str]] | None = backend.__dict__.get("_sv_tag_index")
    if index is None:
        index = {}
        for resource_id, tags in backend.tags.items():
            for key, value in tags.items():
                index.setdefault((key, value), set()).add(resource_id)
        backend._sv_tag_index = index
    return index


def _candidates(backend: Any, filters: dict[str, Any], id_filter: str) -> set[str] | None:
    """Ids that can match every filter, from the narrowest exact id filter (``snapshot-id``,
    ``volume-id``) or ``tag:`` filter; None when no filter can use the index."""
    best: set[str] | None = None
    for name, raw in filters.items():
        values = [str(v) for v in (raw if isinstance(raw, list) else [raw])]
        if any(_WILDCARDS & set(v) for v in values):
            continue
        if name == id_filter:
            found = set(values)
        elif name.startswith("tag:"):
            index = _tag_index(backend)
            found = set().union(*(index.get((name[4:], v), ()) for v in values))
        else:
            continue
        if best is None or len(found) < len(best):
            best = found
    return best


@contextlib.contextmanager
def patched() -> Iterator[None]:
    original_create_tags = TagBackend.create_tags
    original_describe_snapshots = EBSBackend.describe_snapshots
    original_describe_volumes = EBSBackend.describe_volumes
    original_get_instance = InstanceBackend.get_instance

    def create_tags(self: Any, resource_ids: list[str], tags: dict[str, str]) -> bool:
        result = original_create_tags(self, resource_ids, tags)
        index = _tag_index(self)
        for resource_id in resource_ids:
            for key, value in tags.items():
                index.setdefault((key, value), set()).add(resource_id)
        return result

    def narrowed(
        self: Any, attribute: str, id_filter: str, ids: list[str] | None, filters: Any, missing: Callable[[], Exception]
    ) -> list[Any] | None:
        """moto's describe over the indexed candidates; None when the full scan must decide."""
        resources = _ordered(self, attribute)
        if ids:
            # As moto: every named id must exist (a repeated id counts twice), else NotFound.
            matches = [resources[i] for i in dict.fromkeys(ids) if i in resources]
            if len(ids) > len(matches):
                raise missing()
        else:
            candidates = _candidates(self, filters, id_filter) if filters else None
            if candidates is None:
                return None
            matches = [resources[i] for i in candidates if i in resources]
        matches.sort(key=lambda resource: resources.position[resource.id])
        return generic_filter(filters, matches) if filters else matches

    def describe_snapshots(self: Any, snapshot_ids: list[str] | None = None, filters: Any = None) -> list[Any]:
        found = narrowed(self, "snapshots", "snapshot-id", snapshot_ids, filters, InvalidSnapshotIdError)
        return original_describe_snapshots(self, snapshot_ids, filters) if found is None else found

    def describe_volumes(self: Any, volume_ids: list[str] | None = None, filters: Any = None) -> list[Any]:
        if volume_ids:  # moto's error names the unknown ids
            return original_describe_volumes(self, volume_ids, filters)
        found = narrowed(self, "volumes", "volume-id", None, filters, Exception)
        return original_describe_volumes(self, volume_ids, filters) if found is None else found

    def get_instance(self: Any, instance_id: str) -> Any:
        index: dict[str, Any] = self.__dict__.setdefault("_sv_instances", {})
        instance = index.get(instance_id)
        if instance is None:
            for reservation in reversed(self.reservations.values()):  # the newest first
                for candidate in reservation.instances:
                    index[candidate.id] = candidate
                if instance_id in index:
                    return index[instance_id]
            return original_get_instance(self, instance_id)  # moto's error for an unknown id
        return instance

    original_pick = moto_serialize.AttributePicker.__call__
    possible_keys: dict[tuple[Any, ...], tuple[str, ...]] = {}
    missing = object()

    def pick(self: Any, context: Any) -> Any:
        if self.alias_providers is not moto_serialize.DEFAULT_ALIAS_PROVIDERS:
            return original_pick(self, context)
        obj = context.obj
        # The shape itself is in the key (not its id), so it stays alive and its id unique.
        cache_key = (type(self), type(obj), context.key, context.shape)
        keys = possible_keys.get(cache_key)
        if keys is None:
            keys = possible_keys[cache_key] = tuple(self.get_possible_keys(context))
        value = None
        for key in keys:
            found = get_value(obj, key, missing)
            if found is not missing:
                value = found
                break
        key_path = f"{context.key_path}.{context.key}"
        for transform_path, transform in self.response_transformers.items():
            if key_path.endswith(transform_path):
                return transform(value)
        return value

    cached_parse = functools.lru_cache(maxsize=None)(json_path.parse)  # type: ignore[attr-defined]
    cached_plain_parse = functools.lru_cache(maxsize=None)(result_path.parse)  # type: ignore[attr-defined]
    cached_method_names = functools.lru_cache(maxsize=None)(method_names_from_class)

    patches: list[tuple[Any, str, Any]] = [
        (TagBackend, "create_tags", create_tags),
        (EBSBackend, "describe_snapshots", describe_snapshots),
        (EBSBackend, "describe_volumes", describe_volumes),
        (InstanceBackend, "get_instance", get_instance),
        (json_path, "parse", cached_parse),
        (result_path, "parse", cached_plain_parse),
        (moto_responses, "method_names_from_class", cached_method_names),
        (moto_serialize.AttributePicker, "__call__", pick),
        *(
            (module, "copy", _CopyModule())
            for module in (string_expression, result_path, execute_state, states, event_manager, environment)
        ),
    ]
    with replaced(patches):
        yield


@contextlib.contextmanager
def replaced(patches: list[tuple[Any, str, Any]]) -> Iterator[None]:
    """Each (target, attribute, replacement) set for the duration, the originals restored after."""
    originals = [(target, name, getattr(target, name)) for target, name, _ in patches]
    for target, name, replacement in patches:
        setattr(target, name, replacement)
    try:
        yield
    finally:
        for target, name, original in originals:
            setattr(target, name, original)
