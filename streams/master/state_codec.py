"""The msgpack codec of a state class and everything it reaches (msgspec decodes straight into
the annotated types and refuses any other value). Interned classes (definitions) are written
once per distinct value in tables and referenced by place, so the states read back share
one object each. See snapshot_codec.py for the measurements."""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, is_dataclass
from operator import attrgetter
from typing import Annotated, Any, NamedTuple, get_args, get_origin, get_type_hints

import msgspec

from schemas.mapping import unwrap_optional
from streams.master.state_format import (
    reachable_classes,
    referenced,
)

Write = Callable[[Any, "_Written"], Any]
Read = Callable[[Any, list[list[Any]]], Any]


class _Plan(NamedTuple):
    """How an annotation that reaches an interned class travels: `wire` is the type msgspec
    reads, `write` and `read` convert to and from it."""

    wire: Any
    write: Write
    read: Read


_PLACE = Annotated[int, msgspec.Meta(ge=0)]  # a place in a table: never counted from the end


def _of(origin: Any, *args: object) -> Any:
    """`origin[args]`, built at run time for msgspec to read."""
    return origin[args[0] if len(args) == 1 else args]


@dataclass(slots=True)
class _Written:
    """Definitions met while writing one snapshot, per interned class: each distinct value
    is encoded once (its bytes are both its key and what the table holds)."""

    tables: list[list[msgspec.Raw]]
    by_key: list[dict[bytes, int]]
    by_id: list[dict[int, int]]  # id(object) -> place (the objects outlive the write)


def _refuse_opaque(classes: Iterable[type]) -> None:
    """msgspec would read an `Any`/`object` field back as plain builtins, not as what was
    written, and cannot fill a field outside `__init__`: such a shape is refused."""
    for cls in reachable_classes(classes):
        if not is_dataclass(cls):
            continue
        hints = get_type_hints(cls)
        for f in fields(cls):
            if not f.init:
                raise TypeError(f"snapshot codec: {cls.__qualname__}.{f.name} is outside __init__")
            if any(tp is object or tp is Any for tp in _walk(hints[f.name])):
                raise TypeError(f"snapshot codec: {cls.__qualname__}.{f.name} has no fixed type")


def _walk(tp: object) -> Iterator[object]:
    """`tp` and every annotation nested in it."""
    yield tp
    for arg in get_args(tp):
        yield from _walk(arg)


class StateCodec:
    """Writes and reads `{key: root}` with each interned class (a frozen definition shared by
    many roots) written once per distinct value and referred to by its place.

    msgspec reads every other value straight into its annotated type (dataclasses, enums by
    value, times, tuples, frozensets, mappings as dicts), so only the fields that reach an
    interned class are converted here; a class with such a field travels as the array of its
    field values in declaration order (the order the state format covers).
    """

    def __init__(self, root: type, interned: tuple[type, ...]) -> None:
        _refuse_opaque([root])
        self._interned = interned
        self._reach: dict[object, bool] = {}
        self._entries = [self._class_plan(cls, entry=True) for cls in interned]
        self._root = self._plan(root)
        tables = _of(
            tuple,
            *(_of(list, _wire(cls, p)) for cls, p in zip(interned, self._entries, strict=True)),
        )
        self._decoder = msgspec.msgpack.Decoder(
            _of(tuple, tables, _of(dict, str, _wire(root, self._root)))
        )

    def _reaches(self, tp: object) -> bool:
        known = self._reach.get(tp)
        if known is None:
            found = reachable_classes(referenced(tp))
            known = self._reach[tp] = any(c in self._interned for c in found)
        return known

    def _plan(self, tp: object, within: int | None = None) -> _Plan | None:
        """None for an annotation that reaches no interned class: msgspec takes it as is."""
        if not self._reaches(tp):
            return None
        if tp in self._interned:
            at = self._interned.index(tp)
            if within is not None and at >= within:
                raise TypeError(f"snapshot codec: {tp!r} must be interned before what holds it")
            return _Plan(_PLACE, self._ref_writer(at), lambda v, tables: tables[at][v])
        inner, optional = unwrap_optional(tp)
        origin, args = get_origin(inner), get_args(inner)
        if optional:
            w, r, wire = self._converters(inner, within)
            return _Plan(
                wire | None,
                lambda v, out: None if v is None else w(v, out),
                lambda v, tables: None if v is None else r(v, tables),
            )
        if origin in (Mapping, dict) and len(args) == 2 and not self._reaches(args[0]):
            w, r, wire = self._converters(args[1], within)
            return _Plan(
                _of(dict, args[0], wire),
                lambda v, out: {k: w(x, out) for k, x in v.items()},
                lambda v, tables: {k: r(x, tables) for k, x in v.items()},
            )
        if origin in (tuple, frozenset, list) and (
            origin is not tuple or (len(args) == 2 and args[1] is Ellipsis)
        ):
            w, r, wire = self._converters(args[0], within)
            build: Callable[[Iterable[Any]], Any] = origin
            return _Plan(
                _of(tuple, wire, ...),
                lambda v, out: [w(x, out) for x in v],
                lambda v, tables: build([r(x, tables) for x in v]),
            )
        if isinstance(tp, type) and is_dataclass(tp):
            plan = self._class_plan(tp, within)
            assert plan is not None  # it reaches an interned class
            return plan
        raise TypeError(f"snapshot codec: no plan for the annotation {tp!r}")

    def _converters(self, tp: object, within: int | None) -> tuple[Write, Read, Any]:
        plan = self._plan(tp, within)
        assert plan is not None  # called only for what reaches an interned class
        return plan.write, plan.read, plan.wire

    def _class_plan(
        self, cls: type, within: int | None = None, *, entry: bool = False
    ) -> _Plan | None:
        """A dataclass as the array of its field values; an interned class none of whose
        fields reaches another (an entry of its own table) travels as msgspec writes it."""
        if entry:
            within = self._interned.index(cls)
        hints = get_type_hints(cls)
        names = tuple(f.name for f in fields(cls))
        plans = [self._plan(hints[n], within) for n in names]
        if entry and all(p is None for p in plans):
            return None
        writes = [(i, p.write) for i, p in enumerate(plans) if p is not None]
        reads = [(names[i], i, p.read) for i, p in enumerate(plans) if p is not None]
        values = attrgetter(*names) if len(names) > 1 else (lambda v: (getattr(v, names[0]),))

        def write(v: Any, out: _Written) -> list[Any]:
            row = list(values(v))
            for i, w in writes:
                row[i] = w(row[i], out)
            return row

        def read(v: tuple[Any, ...], tables: list[list[Any]]) -> Any:
            kwargs = dict(zip(names, v, strict=True))
            for name, i, r in reads:
                kwargs[name] = r(v[i], tables)
            return cls(**kwargs)

        wire = _of(tuple, *(_wire(hints[n], p) for n, p in zip(names, plans, strict=True)))
        return _Plan(wire, write, read)

    def _ref_writer(self, at: int) -> Write:
        def write_once(obj: Any, out: _Written) -> int:
            place = out.by_id[at].get(id(obj))
            if place is None:
                entry = self._entries[at]
                value = obj if entry is None else entry.write(obj, out)
                # Keyed by its bytes (hashed in C), not by the dataclass, whose generated
                # __hash__ and __eq__ run Python per field.
                key = ENCODER.encode(value)
                place = out.by_key[at].get(key)
                if place is None:
                    place = out.by_key[at][key] = len(out.tables[at])
                    out.tables[at].append(msgspec.Raw(key))
                out.by_id[at][id(obj)] = place
            return place

        return write_once

    def encode(self, values: Mapping[str, Any]) -> bytes:
        n = len(self._interned)
        out = _Written([[] for _ in range(n)], [{} for _ in range(n)], [{} for _ in range(n)])
        root = self._root
        body = dict(values) if root is None else {k: root.write(v, out) for k, v in values.items()}
        return ENCODER.encode((out.tables, body))

    def decode(self, data: bytes) -> dict[str, Any]:
        """Raises `msgspec.DecodeError` (a `ValidationError` for a value of the wrong type)
        or `IndexError` (a place outside its table) for bytes it did not write."""
        entries, body = self._decoder.decode(data)
        tables: list[list[Any]] = []
        for plan, entry in zip(self._entries, entries, strict=True):
            tables.append(entry if plan is None else [plan.read(e, tables) for e in entry])
        root = self._root
        return dict(body) if root is None else {k: root.read(v, tables) for k, v in body.items()}


def _wire(tp: object, plan: _Plan | None) -> Any:
    return tp if plan is None else plan.wire


def _as_builtin(value: object) -> object:
    """msgspec's fallback: a read-only mapping (`MappingProxyType`) is written as a dict."""
    if isinstance(value, types.MappingProxyType):
        return dict(value)
    raise NotImplementedError(f"snapshot codec: cannot write {type(value).__name__}")


ENCODER = msgspec.msgpack.Encoder(enc_hook=_as_builtin)
