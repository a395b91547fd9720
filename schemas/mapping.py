"""Frozen dataclasses <-> Avro: schema derivation and fast per-class converters.

The `.avsc` files are the wire contract; `derive_schema` is how the generator writes a new
version when a record class changes (a test fails until it is written). Converters are built
once per class from its type hints, so the hot path does no introspection. The same
converters give a record's other plain forms (`PlainForm`: the projector's JSON archive).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, IntEnum
from typing import Any

from schemas.catalog import NAMESPACE
from streams.core.rejections import Reason

Conv = Callable[[Any], Any]
# The symbol a reader of an enum takes for a symbol its schema version does not know (Avro
# schema resolution uses the reader's default). Given to enums that grow: a rejection reason
# added later reads as INTERNAL_ERROR, and its message still says what happened.
ENUM_DEFAULTS: dict[type[Enum], Enum] = {Reason: Reason.INTERNAL_ERROR}
_PRIMITIVES: dict[type, str] = {str: "string", int: "long", float: "double", bool: "boolean"}


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """(X, True) for `X | None`, (tp, False) for any annotation that is not a union; any
    other union is refused (TypeError): records hold one type per field, or nothing."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
        raise TypeError(f"only X | None unions are supported, found {tp}")
    return tp, False


def derive_schema(cls: type) -> dict[str, Any]:
    """The Avro record schema of a dataclass (named types defined at first use)."""
    schema: dict[str, Any] = _record(cls, set())
    return schema


def _record(cls: type, seen: set[str]) -> Any:
    name = f"{NAMESPACE}.{cls.__name__}"
    if name in seen:
        return name
    seen.add(name)
    hints = _hints(cls)
    fields = []
    for f in dataclasses.fields(cls):
        avro_type = _type(hints[f.name], seen)
        field: dict[str, Any] = {"name": f.name, "type": avro_type}
        default = _default(f)
        if default is not dataclasses.MISSING:
            field["default"] = default
        fields.append(field)
    schema: dict[str, Any] = {"type": "record", "name": name, "fields": fields}
    if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):
        schema["doc"] = " ".join(cls.__doc__.split())
    return schema


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return dataclasses.MISSING
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, tuple):
        return list(value)
    return value


def _type(tp: Any, seen: set[str]) -> Any:
    inner, optional = unwrap_optional(tp)
    avro = _plain_type(inner, seen)
    return ["null", avro] if optional else avro


def _plain_type(tp: Any, seen: set[str]) -> Any:
    origin = typing.get_origin(tp)
    if origin is tuple:
        return {"type": "array", "items": _type(typing.get_args(tp)[0], seen)}
    if origin is dict:
        return {"type": "map", "values": _type(typing.get_args(tp)[1], seen)}
    if tp is datetime:
        return {"type": "long", "logicalType": "timestamp-micros"}
    if tp in _PRIMITIVES:
        return _PRIMITIVES[tp]
    if isinstance(tp, type) and issubclass(tp, Enum):
        name = f"{NAMESPACE}.{tp.__name__}"
        if name in seen:
            return name
        seen.add(name)
        enum: dict[str, Any] = {"type": "enum", "name": name, "symbols": list(tp.__members__)}
        if issubclass(tp, IntEnum):  # keep DolphinScheduler's codes visible in the contract
            enum["doc"] = "codes: " + ", ".join(f"{m.name}={m.value}" for m in tp)
        if tp in ENUM_DEFAULTS:
            enum["default"] = ENUM_DEFAULTS[tp].name
        return enum
    if dataclasses.is_dataclass(tp):
        return _record(tp, seen)  # type: ignore[arg-type]
    raise TypeError(f"no Avro mapping for {tp}")


# --- converters -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlainForm:
    """A record as plain values: a dict of its fields, enums by name, tuples as lists, nested
    records as dicts. The forms differ only in their leaves: Avro's (`AVRO`, what fastavro
    writes) keeps times, strings and maps as they are; a JSON form converts times and
    strings, and rebuilds maps with string keys."""

    time: Conv | None = None  # for each datetime
    text: Conv | None = None  # for each str
    key: Conv | None = None  # for each key of a map, rebuilt; None: maps kept as they are


AVRO = PlainForm()


def _to_plain_conv(tp: Any, form: PlainForm) -> Conv | None:
    inner, optional = unwrap_optional(tp)
    conv = _to_plain(inner, form)
    if conv is None or not optional:
        return conv
    return lambda v: None if v is None else conv(v)


def _to_plain(tp: Any, form: PlainForm) -> Conv | None:
    origin = typing.get_origin(tp)
    if origin is tuple:
        item = _to_plain_conv(typing.get_args(tp)[0], form)
        return list if item is None else (lambda v: [item(x) for x in v])
    if origin in (dict, Mapping):
        key = form.key
        if key is None:
            return None
        value = _to_plain_conv(typing.get_args(tp)[1], form)
        if value is None:
            return lambda v: {key(k): x for k, x in v.items()}
        return lambda v: {key(k): value(x) for k, x in v.items()}
    if tp is datetime:
        return form.time
    if tp is str:
        return form.text
    if isinstance(tp, type) and issubclass(tp, Enum):
        return lambda v: v.name
    if dataclasses.is_dataclass(tp):
        return to_plain_converter(tp, form)  # type: ignore[arg-type]
    return None


def _from_avro_conv(tp: Any) -> Conv | None:
    inner, optional = unwrap_optional(tp)
    conv = _from_avro_plain(inner)
    if conv is None or not optional:
        return conv
    return lambda v: None if v is None else conv(v)


def _from_avro_plain(tp: Any) -> Conv | None:
    origin = typing.get_origin(tp)
    if origin is tuple:
        item = _from_avro_conv(typing.get_args(tp)[0])
        return tuple if item is None else (lambda v: tuple(item(x) for x in v))
    if origin is dict:
        return None
    if isinstance(tp, type) and issubclass(tp, Enum):
        return lambda v: tp[v]
    if dataclasses.is_dataclass(tp):
        return from_avro_converter(tp)  # type: ignore[arg-type]
    return None


_TO: dict[tuple[type, PlainForm], Conv] = {}
_FROM: dict[type, Conv] = {}


def to_avro_converter(cls: type) -> Conv:
    """A function turning an instance of `cls` into the dict fastavro writes."""
    return to_plain_converter(cls, AVRO)


def to_plain_converter(cls: type, form: PlainForm) -> Conv:
    """A function turning an instance of `cls` into its dict in `form`."""
    key = (cls, form)
    if key not in _TO:
        hints = _hints(cls)
        plan = [(f.name, _to_plain_conv(hints[f.name], form)) for f in dataclasses.fields(cls)]

        def convert(obj: Any) -> dict[str, Any]:
            return {n: (c(getattr(obj, n)) if c is not None else getattr(obj, n)) for n, c in plan}

        _TO[key] = convert
    return _TO[key]


def from_avro_converter(cls: type) -> Conv:
    """A function turning the dict fastavro read (already resolved to the reader schema)
    into an instance of `cls`."""
    if cls not in _FROM:
        hints = _hints(cls)
        plan = [(f.name, _from_avro_conv(hints[f.name])) for f in dataclasses.fields(cls)]

        def convert(d: dict[str, Any]) -> Any:
            return cls(**{n: (c(d[n]) if c is not None else d[n]) for n, c in plan})

        _FROM[cls] = convert
    return _FROM[cls]
