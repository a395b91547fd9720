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


def as_written_with(record: Any, schema: Any) -> Any:
    """`record` as a reader gets it from a writer of the older record schema `schema`: each
    field that schema lacks at its dataclass default, in nested records too (a definition's
    tasks gained fields after the first release of the records that carry them)."""
    fields = {f["name"]: f["type"] for f in schema["fields"]}
    absent = {f.name for f in dataclasses.fields(record)} - set(fields)
    changes = {
        name: _nested(getattr(record, name), tp)
        for name, tp in fields.items()
        if name not in absent and hasattr(record, name)
    }
    return dataclasses.replace(with_defaults_for(record, absent), **changes)


def _nested(value: Any, tp: Any) -> Any:
    if isinstance(tp, list):  # a union: the record branch, if any
        records = [t for t in tp if isinstance(t, dict) and t.get("type") in ("record", "array")]
        return _nested(value, records[0]) if records and value is not None else value
    if isinstance(tp, dict) and tp.get("type") == "record" and dataclasses.is_dataclass(value):
        return as_written_with(value, tp)
    if isinstance(tp, dict) and tp.get("type") == "array" and isinstance(value, tuple):
        return tuple(_nested(v, tp["items"]) for v in value)
    return value
