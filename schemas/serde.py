"""Avro single-object encoding: marker C3 01, the writer schema's CRC-64-AVRO fingerprint
(8 bytes, little-endian), then the Avro body. A record names its writer schema with no
registry; a reader resolves it to the latest version of the same record.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from schemas.errors import DecodeError
from schemas.mapping import from_avro_converter, to_avro_converter
from schemas.registry import registry

MARKER = b"\xc3\x01"
_HEADER = len(MARKER) + 8


def encode(record: Any) -> bytes:
    """Bytes of `record` (a frozen dataclass from `schemas.catalog.ALL`), latest schema."""
    sv = registry().latest[type(record)]
    buf = BytesIO()
    buf.write(MARKER)
    buf.write(sv.fingerprint)
    schemaless_writer(buf, sv.parsed, to_avro_converter(type(record))(record))
    return buf.getvalue()


def decode(data: bytes | None) -> Any:
    """The record in `data`; raises `DecodeError` saying why it cannot be read."""
    if data is None:
        raise DecodeError("empty record (no value)")
    if len(data) < _HEADER or data[:2] != MARKER:
        raise DecodeError("not Avro single-object encoding (marker C3 01 missing)")
    fp = data[2:_HEADER]
    reg = registry()
    writer = reg.by_fingerprint.get(fp)
    if writer is None:
        fp_value = int.from_bytes(fp, "little")
        raise DecodeError(
            f"unknown writer schema fingerprint 0x{fp_value:016x} (header bytes {fp.hex(' ')})"
        )
    reader = reg.latest[writer.cls]
    try:
        body = schemaless_reader(
            BytesIO(data[_HEADER:]),
            writer.parsed,
            None if reader is writer else reader.parsed,
        )
        return from_avro_converter(writer.cls)(body)
    except Exception as exc:  # any malformed body: the caller dead-letters the record
        raise DecodeError(f"cannot decode {writer.cls.__name__} v{writer.version}: {exc}") from exc


def expect(data: bytes | None, allowed: tuple[type, ...]) -> Any:
    """Decode and check the record type belongs on the topic being read."""
    record = decode(data)
    if not isinstance(record, allowed):
        names = ", ".join(c.__name__ for c in allowed)
        raise DecodeError(f"unexpected record type {type(record).__name__}; expected {names}")
    return record
