"""Every schema version ever released, loaded from `avsc/<Name>.v<N>.avsc`.

Writers always use a class's latest version; readers accept any known version by its
CRC-64-AVRO fingerprint and resolve it to the latest (old events stay readable forever).
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
    canonical = to_parsing_canonical_form(schema)
    return int(fingerprint(canonical, "CRC-64-AVRO"), 16).to_bytes(8, "little")


@dataclass(frozen=True, slots=True)
class Registry:
    by_fingerprint: dict[bytes, SchemaVersion]
    latest: dict[type, SchemaVersion]


@cache
def registry() -> Registry:
    classes = {cls.__name__: cls for cls in catalog.ALL}
    by_fp: dict[bytes, SchemaVersion] = {}
    latest: dict[type, SchemaVersion] = {}
    for path in sorted(AVSC_DIR.glob("*.avsc")):
        m = _FILE.match(path.name)
        if not m or m["name"] not in classes:
            continue  # a retired record type: nothing reads it any more
        cls = classes[m["name"]]
        raw = json.loads(path.read_text())
        parsed = parse_schema(raw, _write_hint=False)
        sv = SchemaVersion(cls, int(m["version"]), parsed, schema_fingerprint(raw), path)
        by_fp[sv.fingerprint] = sv
        if cls not in latest or sv.version > latest[cls].version:
            latest[cls] = sv
    return Registry(by_fp, latest)
