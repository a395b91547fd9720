"""Writing and reading an Avro body with a given schema, as another writer or reader of that
schema version would (fastavro alone, no tideflow code): what version tests need."""

from __future__ import annotations

from io import BytesIO
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer


def write_body(schema: dict[str, Any], datum: dict[str, Any]) -> bytes:
    buf = BytesIO()
    schemaless_writer(buf, parse_schema(schema, _write_hint=False), datum)
    return buf.getvalue()


def read_body(body: bytes, writer: dict[str, Any], reader: dict[str, Any]) -> Any:
    """`body` written with `writer`, resolved to `reader` (Avro schema resolution)."""
    parsed = [parse_schema(s, _write_hint=False) for s in (writer, reader)]
    return schemaless_reader(BytesIO(body), *parsed)
