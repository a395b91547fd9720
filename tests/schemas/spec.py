"""The Avro specification's single-object encoding, written from the specification alone.

Neither tideflow's serde nor fastavro is used here, so the tests that compare against these
helpers check tideflow against the specification, not against itself:

* Parsing Canonical Form: [PRIMITIVES] `{"type": "long", "logicalType": ...}` becomes `"long"`,
  [FULLNAMES], [STRIP] everything but name, type, fields, symbols, items, values, size,
  [ORDER] in that order, [STRINGS] literal UTF-8, [WHITESPACE] none.
* CRC-64-AVRO: the table-driven Rabin fingerprint whose empty value is 0xc15d213aa4d7a795.
* Header: C3 01, then the fingerprint of the writer schema's canonical form, little-endian.
"""

from __future__ import annotations

import json
from typing import Any

MARKER = b"\xc3\x01"
EMPTY = 0xC15D213AA4D7A795
PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "error", "enum", "fixed"})


def _table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY & -(fp & 1))
        table.append(fp)
    return table


_TABLE = _table()


def crc64_avro(data: bytes) -> int:
    fp = EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


def _full(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def canonical_form(schema: Any, namespace: str | None = None) -> str:
    if isinstance(schema, str):
        return _str(schema if schema in PRIMITIVES else _full(schema, namespace))
    if isinstance(schema, list):
        return "[" + ",".join(canonical_form(s, namespace) for s in schema) + "]"
    kind = schema["type"]
    if not isinstance(kind, str) or kind in PRIMITIVES:
        return canonical_form(kind, namespace)  # logical types and {"type": {...}} collapse
    if kind == "array":
        return '{"type":"array","items":' + canonical_form(schema["items"], namespace) + "}"
    if kind == "map":
        return '{"type":"map","values":' + canonical_form(schema["values"], namespace) + "}"
    if kind not in NAMED:
        raise ValueError(f"not an Avro schema: {schema!r}")
    name = _full(schema["name"], schema.get("namespace", namespace))
    inner = name.rpartition(".")[0] or None
    head = f'{{"name":{_str(name)},"type":{_str(kind)}'
    if kind in ("record", "error"):
        fields = ",".join(
            f'{{"name":{_str(f["name"])},"type":{canonical_form(f["type"], inner)}}}'
            for f in schema["fields"]
        )
        return f'{head},"fields":[{fields}]}}'
    if kind == "enum":
        return f'{head},"symbols":[{",".join(_str(s) for s in schema["symbols"])}]}}'
    return f'{head},"size":{int(schema["size"])}}}'


def fingerprint(schema: Any) -> int:
    """CRC-64-AVRO of the schema's Parsing Canonical Form (`schema`: parsed JSON)."""
    return crc64_avro(canonical_form(schema).encode())


def header(schema: Any) -> bytes:
    """The single-object header of a record written with `schema`."""
    return MARKER + fingerprint(schema).to_bytes(8, "little")


def split(data: bytes) -> tuple[int, bytes]:
    """(writer fingerprint, body) of a single-object encoded record."""
    if data[:2] != MARKER or len(data) < 10:
        raise ValueError("not Avro single-object encoding")
    return int.from_bytes(data[2:10], "little"), data[10:]
