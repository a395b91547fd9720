"""Snapshots of a master's partition state, so a takeover replays only the tail of the log.

Where: PostgreSQL, one row per (events topic, partition) in `master_snapshots`, not a
compacted Kafka topic, because

* a partition's state can exceed Kafka's default 1 MB message limit (`message.max.bytes`);
  a row holds any size (bytea) without broker or topic tuning;
* a row replace is atomic, and the upsert refuses to move a snapshot backwards (a slow old
  owner cannot roll the row back to a lower events offset), which a compacted topic cannot
  refuse: the last write wins there, whoever made it;
* it is inspectable: `SELECT partition, events_offset, epoch, written_at,
  length(body) FROM master_snapshots` shows what a takeover would start from.

Correctness never depends on it: a snapshot is a cache of `fold(events[0:events_offset])`.
When PostgreSQL is unreachable, or the row is absent, unreadable or of another state
format, `load` returns None and the master replays the partition from offset 0; when
`save` fails it logs and the master carries on. Errors are logged, never raised.

The caller's contract: `instances` must equal the fold of the partition's events below
`events_offset` (the next offset not covered). `events_offset` and `epoch` are metadata for
the caller; this module only keeps the highest offset per partition.

State format: `STATE_FORMAT` fingerprints the state's shape (field names and annotations of
`InstanceState`, `TaskRun`, `WorkflowDef`, `TaskDef` and every dataclass reachable from
them, the members of every enum they use, and `FORMAT_REVISION`). It changes by itself when
a field is added, removed, renamed or retyped, so an old snapshot is discarded, not misread.
Bump `FORMAT_REVISION` when a field keeps its name and type but changes meaning, or when
this codec changes.

Codec: each dataclass is written as a tuple of its field values in declaration order (the
order the fingerprint covers), enums as their values, read-only mappings as dicts, and
definitions (`WorkflowDef`, `TaskDef`) once per distinct value, referenced by index; the
result is pickled (protocol 5, plain builtins and datetimes only) and compressed with zlib
level 1. Reading uses an unpickler that refuses every global but `datetime`'s, so a
tampered row cannot run code, and rebuilds the dataclasses through their constructors.
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
import threading
import time
import types
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from operator import attrgetter
from typing import Any, Union, get_args, get_origin, get_type_hints

import psycopg
from psycopg import sql

from infra.errors import TideflowError
from infra.settings import Settings
from projections.db import connect
from streams.core.definition import TaskDef, WorkflowDef
from streams.core.state import InstanceState, TaskRun

log = logging.getLogger("tideflow.master.snapshots")

# Bump when the meaning of a field changes without its name or type changing, or when the
# codec below changes how it writes values.
FORMAT_REVISION = 1

STATE_CLASSES: tuple[type, ...] = (InstanceState, TaskRun, WorkflowDef, TaskDef)

# Frozen, hashable and shared by many instances: written once per distinct value.
_INTERNED: frozenset[type] = frozenset({WorkflowDef, TaskDef})

_MAGIC = "tideflow.partition-snapshot"


class SnapshotUnreadable(TideflowError):
    """Bytes that are not a snapshot of the current state format (corrupt, truncated, or
    written by another version)."""


@dataclass(frozen=True, slots=True)
class PartitionSnapshot:
    partition: int
    events_offset: int  # the next events-topic offset NOT covered (replay from here)
    epoch: int  # the owner epoch at the time of the snapshot
    instances: Mapping[str, InstanceState]
    written_at: datetime


# -- state format ----------------------------------------------------------------------------


def _annotation_text(tp: object) -> str:
    if isinstance(tp, str):
        return tp
    if isinstance(tp, type) and get_origin(tp) is None:
        return tp.__qualname__
    return repr(tp).replace("typing.", "")


def _referenced(tp: object) -> Iterable[type]:
    """Classes named in a resolved annotation, nested arguments included."""
    if isinstance(tp, type) and get_origin(tp) is None:
        yield tp
    for arg in get_args(tp):
        yield from _referenced(arg)


def reachable_classes(classes: Iterable[type]) -> list[type]:
    """`classes` and every dataclass and enum their fields reach, in discovery order."""
    seen: list[type] = []
    todo = list(classes)
    while todo:
        cls = todo.pop(0)
        if cls in seen:
            continue
        seen.append(cls)
        if is_dataclass(cls):
            for tp in get_type_hints(cls).values():
                todo.extend(
                    c
                    for c in _referenced(tp)
                    if c not in seen and (is_dataclass(c) or issubclass(c, Enum))
                )
    return seen


def state_fingerprint(classes: Iterable[type], revision: int = FORMAT_REVISION) -> str:
    """A stable digest of the shape of `classes` (and of what they reach): field names and
    annotations of dataclasses, member names and values of enums, and `revision`."""
    lines = [f"revision {revision}"]
    for cls in reachable_classes(classes):
        if is_dataclass(cls):
            lines.append(f"dataclass {cls.__qualname__}")
            lines.extend(f"  {f.name}: {_annotation_text(f.type)}" for f in fields(cls))
        elif issubclass(cls, Enum):
            lines.append(f"enum {cls.__qualname__}")
            lines.extend(f"  {m.name} = {m.value!r}" for m in cls)
    digest = hashlib.blake2b("\n".join(lines).encode(), digest_size=12).hexdigest()
    return f"{revision}-{digest}"


STATE_FORMAT: str = state_fingerprint(STATE_CLASSES)


# -- codec plans: how to write and read each annotated type -----------------------------------

Convert = Callable[[Any], Any]
_PLAIN: frozenset[object] = frozenset({str, int, float, bool, bytes, type(None), datetime})


@dataclass(slots=True)
class _Interned:
    """Definitions written once per snapshot (by value) and referenced by index."""

    table: list[Any]  # encoded values, in the order they were first met
    index: dict[Any, int]  # value -> its place in `table` (writing)
    built: dict[int, Any]  # place -> value (reading; built on first use)


class _Codec:
    """Writers and readers compiled once from the state classes' type annotations."""

    def __init__(self, root: type) -> None:
        self._classes: dict[type, tuple[Convert, Convert]] = {}
        self.interned = _Interned([], {}, {})
        self.encode, self.decode = self._plan_class(root)

    # A plan is (encode, decode); None stands for "as is" (pickle writes it natively).
    def _plan(self, tp: object) -> tuple[Convert | None, Convert | None]:
        origin, args = get_origin(tp), get_args(tp)
        if tp in _PLAIN:
            return None, None
        if isinstance(tp, type) and origin is None:
            if issubclass(tp, Enum):
                return attrgetter("_value_"), tp._value2member_map_.__getitem__
            if is_dataclass(tp):
                return self._plan_class(tp)
        if origin is Union or origin is types.UnionType:
            options = [a for a in args if a is not type(None)]
            plans = [self._plan(a) for a in options]
            converting = [p for p in plans if p != (None, None)]
            if not converting:
                return None, None
            if len(options) == 1:
                enc, dec = converting[0]
                assert enc is not None and dec is not None
                return (
                    lambda v: None if v is None else enc(v),
                    lambda v: None if v is None else dec(v),
                )
        if origin in (tuple, frozenset, set, list) and args:
            if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
                raise TypeError(f"snapshot codec: fixed-size tuples are not supported: {tp}")
            item_enc, item_dec = self._plan(args[0])
            if item_enc is None or item_dec is None:
                return None, None
            build: Callable[[Iterable[Any]], Any] = origin
            e, d = item_enc, item_dec
            return (lambda v: [e(x) for x in v]), (lambda v: build(d(x) for x in v))
        if origin in (Mapping, dict, types.MappingProxyType) and len(args) == 2:
            key_enc, _ = self._plan(args[0])
            if key_enc is not None:
                raise TypeError(f"snapshot codec: mapping keys must be plain values: {tp}")
            val_enc, val_dec = self._plan(args[1])
            if val_enc is None or val_dec is None:
                return (lambda v: v if type(v) is dict else dict(v)), None
            e, d = val_enc, val_dec
            return (
                lambda v: {k: e(x) for k, x in v.items()},
                lambda v: {k: d(x) for k, x in v.items()},
            )
        raise TypeError(f"snapshot codec: no plan for the annotation {tp!r}")

    def _plan_class(self, cls: type) -> tuple[Convert, Convert]:
        known = self._classes.get(cls)
        if known is not None:
            return known
        # Placeholders first: a class that reaches itself gets its own (finished) plan.
        cell: list[tuple[Convert, Convert]] = []
        self._classes[cls] = (lambda v: cell[0][0](v), lambda v: cell[0][1](v))
        hints = get_type_hints(cls)
        names = [f.name for f in fields(cls)]
        plans = [self._plan(hints[n]) for n in names]
        enc_steps = [(i, e) for i, (e, _) in enumerate(plans) if e is not None]
        dec_steps = [(i, d) for i, (_, d) in enumerate(plans) if d is not None]
        getter = attrgetter(*names)
        single = len(names) == 1
        count = len(names)

        def encode(obj: Any) -> Any:
            values = getter(obj)
            if single:
                values = (values,)
            if not enc_steps:
                return values
            out = list(values)
            for i, e in enc_steps:
                out[i] = e(out[i])
            return tuple(out)

        def decode(values: Any) -> Any:
            if len(values) != count:
                raise ValueError(f"{cls.__qualname__}: {len(values)} values for {count} fields")
            values = list(values)
            for i, d in dec_steps:
                values[i] = d(values[i])
            return cls(**dict(zip(names, values, strict=True)))

        if cls in _INTERNED:
            interned = self.interned
            encode_value, decode_value = encode, decode

            def encode(obj: Any) -> Any:
                at = interned.index.get(obj)
                if at is None:
                    value = encode_value(obj)  # interns what it contains first
                    at = interned.index[obj] = len(interned.table)
                    interned.table.append(value)
                return at

            def decode(at: Any) -> Any:
                obj = interned.built.get(at)
                if obj is None:
                    obj = interned.built[at] = decode_value(interned.table[at])
                return obj

        cell.append((encode, decode))
        self._classes[cls] = (encode, decode)
        return encode, decode


# -- bytes ------------------------------------------------------------------------------------

_ALLOWED_GLOBALS = {
    ("datetime", "datetime"): datetime,
    ("datetime", "timezone"): timezone,
    ("datetime", "timedelta"): timedelta,
}


class _PlainUnpickler(pickle.Unpickler):
    """Builtins and datetimes only: a tampered row cannot name any other callable."""

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED_GLOBALS.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a snapshot")
        return found


def encode_snapshot(s: PartitionSnapshot) -> bytes:
    """The snapshot as compressed bytes (see the module docstring for the layout)."""
    codec = _Codec(InstanceState)
    encode = codec.encode
    instances = {key: encode(state) for key, state in s.instances.items()}
    payload = (
        _MAGIC,
        STATE_FORMAT,
        s.partition,
        s.events_offset,
        s.epoch,
        s.written_at,
        codec.interned.table,
        instances,
    )
    return zlib.compress(pickle.dumps(payload, protocol=5), 1)


def decode_snapshot(data: bytes) -> PartitionSnapshot:
    """The snapshot `encode_snapshot` wrote; `SnapshotUnreadable` for anything else."""
    try:
        payload = _PlainUnpickler(io.BytesIO(zlib.decompress(data))).load()
    except Exception as exc:
        raise SnapshotUnreadable(f"not a snapshot: {type(exc).__name__}: {exc}") from exc
    if not (isinstance(payload, tuple) and len(payload) == 8 and payload[0] == _MAGIC):
        raise SnapshotUnreadable("not a snapshot: unexpected layout")
    _, state_format, partition, events_offset, epoch, written_at, table, instances = payload
    if state_format != STATE_FORMAT:
        raise SnapshotUnreadable(f"state format {state_format} != {STATE_FORMAT}")
    try:
        codec = _Codec(InstanceState)
        codec.interned.table = table
        decode = codec.decode
        states = {key: decode(values) for key, values in instances.items()}
        return PartitionSnapshot(
            partition=_int(partition),
            events_offset=_int(events_offset),
            epoch=_int(epoch),
            instances=states,
            written_at=_datetime(written_at),
        )
    except SnapshotUnreadable:
        raise
    except Exception as exc:
        raise SnapshotUnreadable(f"damaged snapshot: {type(exc).__name__}: {exc}") from exc


def _int(value: object) -> int:
    if type(value) is not int:
        raise SnapshotUnreadable(f"expected an int, found {type(value).__name__}")
    return value


def _datetime(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise SnapshotUnreadable(f"expected a datetime, found {type(value).__name__}")
    return value
