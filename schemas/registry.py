"""Every schema version ever released, loaded from `avsc/<Name>.v<N>.avsc`.

Writers always use a class's latest version; readers accept any known version by its
CRC-64-AVRO fingerprint and resolve it to the latest (old events stay readable forever).

Byte order: the header carries the fingerprint little-endian, as the Avro specification says
(the CRC-64-AVRO of `"null"`, 0x63DD24E7CC258F8A, is written 8A 8F 25 CC E7 24 DD 63).
Releases before that fix wrote it reversed (big-endian); every version is therefore also
indexed under its reversed bytes, so records in logs already written still decode. That is
safe because the two orders cannot be confused: `registry()` refuses to load a set of schemas in
which one schema's reversed fingerprint equals another schema's fingerprint (so a key could
name two layouts). For n schemas of 64-bit CRCs the odds are about n^2 / 2^64 (under 2^-50 for
a hundred), and the check is deterministic: the schemas test suite fails the day such an
`.avsc` is added, before any record is written with it. A schema whose fingerprint reads the
same both ways maps to itself under both keys, which is harmless.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from schemas import catalog

AVSC_DIR = Path(__file__).with_name("avsc")
_FILE = re.compile(r"^(?P<name>[A-Za-z0-9]+)\.v(?P<version>\d+)\.avsc$")


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    cls: type
    version: int
    parsed: Any  # fastavro parsed schema
    fingerprint: bytes  # 8 bytes, little-endian as written in single-object encoding
    path: Path


def schema_fingerprint(schema: Any) -> bytes:
    """The 8 header bytes of `schema`: its CRC-64-AVRO fingerprint of the Parsing Canonical
    Form, little-endian. fastavro's `fingerprint` already gives those bytes, as hex."""
    canonical = to_parsing_canonical_form(schema)
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


def legacy_fingerprint(schema: Any) -> bytes:
    """The header bytes that releases before the byte-order fix wrote (reversed)."""
    return schema_fingerprint(schema)[::-1]


class FingerprintClash(ValueError):
    """Two schema versions would share header bytes: the registry cannot tell them apart."""


@dataclass(frozen=True, slots=True)
class Registry:
    by_fingerprint: dict[bytes, SchemaVersion]  # spec order and legacy (reversed) order
    latest: dict[type, SchemaVersion]


@cache
def registry() -> Registry:
    classes = {cls.__name__: cls for cls in catalog.ALL}
    versions: list[SchemaVersion] = []
    latest: dict[type, SchemaVersion] = {}
    for path in sorted(AVSC_DIR.glob("*.avsc")):
        m = _FILE.match(path.name)
        if not m or m["name"] not in classes:
            continue  # a retired record type: nothing reads it any more
        cls = classes[m["name"]]
        raw = json.loads(path.read_text())
        parsed = parse_schema(raw, _write_hint=False)
        sv = SchemaVersion(cls, int(m["version"]), parsed, schema_fingerprint(raw), path)
        versions.append(sv)
        if cls not in latest or sv.version > latest[cls].version:
            latest[cls] = sv
    return Registry(index_fingerprints(versions), latest)


def index_fingerprints(versions: list[SchemaVersion]) -> dict[bytes, SchemaVersion]:
    """Each version under its fingerprint and under the legacy reversed bytes; raises
    `FingerprintClash` if two different canonical forms would share a key (in either order).

    Two versions with the same canonical form (they differ only in docs or defaults, which
    a writer does not use) encode alike: the key names the later version."""
    by_fp: dict[bytes, SchemaVersion] = {}
    for sv in sorted(versions, key=lambda v: (v.cls.__name__, v.version)):
        for key in {sv.fingerprint, sv.fingerprint[::-1]}:
            other = by_fp.get(key)
            if other is not None and other.fingerprint != sv.fingerprint:
                raise FingerprintClash(
                    f"{sv.path.name} and {other.path.name} share header bytes {key.hex()}"
                )
            by_fp[key] = sv
    return by_fp
