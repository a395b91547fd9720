"""Avro single-object encoding: marker C3 01, the writer schema's CRC-64-AVRO fingerprint
(8 bytes, little-endian), then the Avro body. A record names its writer schema with no
registry; a reader resolves it to the latest version of the same record.

Reading is on a master's takeover path (every event of a partition is decoded), so each
writer schema is prepared once: fastavro's `schemaless_reader` walks the writer (and
reader) schema again on every call to collect its named types, which was half of the time
of reading a small event (measured: 16 us of a 68-byte `TaskSucceeded` against 8 us with
the walk done once). The prepared path calls fastavro's compiled reader, `_read_data`, with
the named types collected once; a fastavro without it falls back to `schemaless_reader`.
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from typing import Any

import fastavro._read as _fastavro_read
from fastavro import parse_schema, schemaless_reader, schemaless_writer

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


_READ_DATA: Callable[..., Any] | None = getattr(_fastavro_read, "_read_data", None)
_DEFAULTS: Callable[[], dict[str, dict[str, Any]]] | None = getattr(
    _fastavro_read, "_default_named_schemas", None
)
_OPTIONS = {  # schemaless_reader's defaults
    "return_record_name": False,
    "return_record_name_override": False,
    "handle_unicode_errors": "strict",
    "return_named_type": False,
    "return_named_type_override": False,
}


_BODY_READERS: dict[bytes, Callable[[bytes], Any]] = {}  # writer fingerprint -> reader


def _body_reader(writer: Any, reader: Any) -> Callable[[bytes], Any]:
    """Reads an Avro body written with `writer` as `reader` (None: the writer's own)."""
    read_data, defaults = _READ_DATA, _DEFAULTS
    if read_data is None or defaults is None:
        return lambda body: schemaless_reader(BytesIO(body), writer, reader)
    named = defaults()
    w = parse_schema(writer, named["writer"])
    r = None if reader is None else parse_schema(reader, named["reader"])
    return lambda body: read_data(BytesIO(body), w, named, r, _OPTIONS)


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
        read = _BODY_READERS.get(fp)
        if read is None:
            read = _BODY_READERS[fp] = _body_reader(
                writer.parsed, None if reader is writer else reader.parsed
            )
        return from_avro_converter(writer.cls)(read(data[_HEADER:]))
    except Exception as exc:  # any malformed body: the caller dead-letters the record
        raise DecodeError(f"cannot decode {writer.cls.__name__} v{writer.version}: {exc}") from exc


def expect(data: bytes | None, allowed: tuple[type, ...]) -> Any:
    """Decode and check the record type belongs on the topic being read."""
    record = decode(data)
    if not isinstance(record, allowed):
        names = ", ".join(c.__name__ for c in allowed)
        raise DecodeError(f"unexpected record type {type(record).__name__}; expected {names}")
    return record
