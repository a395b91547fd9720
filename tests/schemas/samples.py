"""A sample of every record class, built from its type hints, with no field at its default
(so a field that a codec drops or a default that hides it shows up as a difference)."""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import UTC, datetime
from enum import Enum
from typing import Any

AT = datetime(2024, 6, 1, 12, 34, 56, 789012, tzinfo=UTC)


def sample(cls: type, salt: int = 1) -> Any:
    """An instance of the dataclass `cls` whose every field is set away from its default."""
    hints = typing.get_type_hints(cls)
    values = {f.name: _value(hints[f.name], f.name, salt) for f in dataclasses.fields(cls)}
    return cls(**values)


def _value(tp: Any, name: str, salt: int) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _value(inner, name, salt)
    if origin is tuple:
        item = typing.get_args(tp)[0]
        return (_value(item, f"{name}-a", salt), _value(item, f"{name}-b", salt + 1))
    if origin is dict:
        return {f"{name}-key": _value(typing.get_args(tp)[1], name, salt), "é ü": "∑"}
    if tp is datetime:
        return AT.replace(second=salt % 60)
    if tp is bool:
        return True
    if tp is int:
        return 1_000_000_000_000 + salt  # beyond 32 bits: longs stay longs
    if tp is float:
        return 2.5 + salt
    if tp is str:
        return f"{name}-{salt}"
    if isinstance(tp, type) and issubclass(tp, Enum):
        members = list(tp)
        return members[salt % len(members)] if len(members) > 1 else members[0]
    if dataclasses.is_dataclass(tp):
        return sample(tp, salt + 1)  # type: ignore[arg-type]
    raise TypeError(f"no sample for {tp}")


def with_defaults_for(record: Any, absent: set[str]) -> Any:
    """`record` with each field named in `absent` at its dataclass default."""
    changes = {}
    for f in dataclasses.fields(record):
        if f.name in absent:
            if f.default is not dataclasses.MISSING:
                changes[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                changes[f.name] = f.default_factory()
            else:
                raise AssertionError(f"{f.name} has no default: older records cannot omit it")
    return dataclasses.replace(record, **changes)


def fit(record: Any, schema: dict[str, Any], named: dict[str, Any] | None = None) -> Any:
    """`record` as a writer of the record schema `schema` (an older version) could have
    written it: fields the schema lacks, at any depth, at their defaults; an enum value the
    schema lacks replaced by its first symbol."""
    named = {} if named is None else named
    named[schema["name"]] = schema
    types_ = {f["name"]: f["type"] for f in schema["fields"]}
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        if f.name not in types_:
            changes[f.name] = (
                f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            )
        else:
            changes[f.name] = _fit(getattr(record, f.name), types_[f.name], named)
    return dataclasses.replace(record, **changes)


def _fit(value: Any, avro: Any, named: dict[str, Any]) -> Any:
    if value is None:
        return None
    if isinstance(avro, list):
        return _fit(value, next(t for t in avro if t != "null"), named)
    if isinstance(avro, str):
        if avro not in named:
            return value
        avro = named[avro]
    kind = avro.get("type") if isinstance(avro, dict) else None
    if kind == "record":
        return fit(value, avro, named)
    if kind == "enum":
        named[avro["name"]] = avro
        return value if value.name in avro["symbols"] else type(value)[avro["symbols"][0]]
    if kind == "array":
        return tuple(_fit(v, avro["items"], named) for v in value)
    if kind == "map":
        return {k: _fit(v, avro["values"], named) for k, v in value.items()}
    return value
