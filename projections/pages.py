"""Keyset pagination for the read-model lists: a page of rows in a stable order and an opaque
cursor that continues after its last row.

Why keyset and not OFFSET: a page costs the same at the millionth row as at the first (an index
range scan from the cursor), and rows inserted while someone pages do not shift the pages.
The cursor is the sort key of the last row, base64url-encoded JSON; it is not a secret and not
signed: a forged cursor only moves where a list the caller may read anyway starts.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from projections.errors import UnknownCursor


@dataclass(frozen=True, slots=True)
class Key:
    """One sort column of a list and the SQL type its cursor value is cast to."""

    column: str
    sql_type: str


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None  # None: this is the last page


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, keys: tuple[Key, ...]) -> list[Any]:
    """The sort-key values a cursor carries; `UnknownCursor` if it is not one of this list's."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError):
        values = None
    if not isinstance(values, list) or len(values) != len(keys):
        raise UnknownCursor(f"unknown cursor {cursor[:40]!r}: pass next_cursor of a page")
    if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
        raise UnknownCursor(f"unknown cursor {cursor[:40]!r}: pass next_cursor of a page")
    return values


@dataclass(frozen=True, slots=True)
class Ordering:
    """The stable order of a list: its sort keys (unique together), all in one direction so
    that a row-value comparison `(a, b) < (x, y)` continues after the cursor."""

    keys: tuple[Key, ...]
    descending: bool

    def order_by(self) -> str:
        direction = "DESC" if self.descending else "ASC"
        return ", ".join(f"{k.column} {direction}" for k in self.keys)

    def after(self, cursor: str) -> tuple[str, list[Any]]:
        """The WHERE condition and its parameters for the rows after `cursor`."""
        values = decode_cursor(cursor, self.keys)
        columns = ", ".join(k.column for k in self.keys)
        placeholders = ", ".join(f"%s::{k.sql_type}" for k in self.keys)
        op = "<" if self.descending else ">"
        return f"({columns}) {op} ({placeholders})", values

    def cursor_of(self, row: dict[str, Any]) -> str:
        return encode_cursor([row[k.column.split(".")[-1].strip('"')] for k in self.keys])
