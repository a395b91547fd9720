"""The shape of a state, as a digest: field names and annotations of dataclasses, member names
and values of enums, and a revision. A snapshot names the digest it was written under, so a
state class that changes shape makes older snapshots unreadable (discarded, never misread)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import fields, is_dataclass
from enum import Enum
from typing import get_args, get_origin, get_type_hints


def annotation_text(tp: object) -> str:
    if isinstance(tp, str):
        return tp
    if isinstance(tp, type) and get_origin(tp) is None:
        return tp.__qualname__
    return repr(tp).replace("typing.", "")


def referenced(tp: object) -> Iterable[type]:
    """Classes named in a resolved annotation, nested arguments included."""
    if isinstance(tp, type) and get_origin(tp) is None:
        yield tp
    for arg in get_args(tp):
        yield from referenced(arg)


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
                    for c in referenced(tp)
                    if c not in seen and (is_dataclass(c) or issubclass(c, Enum))
                )
    return seen


def state_fingerprint(classes: Iterable[type], revision: int) -> str:
    """A stable digest of the shape of `classes` (and of what they reach): field names and
    annotations of dataclasses, member names and values of enums, and `revision`."""
    lines = [f"revision {revision}"]
    for cls in reachable_classes(classes):
        if is_dataclass(cls):
            lines.append(f"dataclass {cls.__qualname__}")
            lines.extend(f"  {f.name}: {annotation_text(f.type)}" for f in fields(cls))
        elif issubclass(cls, Enum):
            lines.append(f"enum {cls.__qualname__}")
            lines.extend(f"  {m.name} = {m.value!r}" for m in cls)
    digest = hashlib.blake2b("\n".join(lines).encode(), digest_size=12).hexdigest()
    return f"{revision}-{digest}"
