"""A golden log of every schema version: one record as that version's writer wrote it (its
bytes, its header naming that version), kept forever. `python -m tests.golden.record` only
adds the versions not in the file yet; the entries already there are history and are never
rewritten, so a version released today is tested by the code of every later day.
"""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_writer

from projections.handlers import jsonable
from schemas import catalog, serde
from schemas.mapping import to_avro_converter
from schemas.registry import _FILE, AVSC_DIR
from tests.schemas import spec
from tests.schemas.samples import fit, sample

CLASSES = {cls.__name__: cls for cls in catalog.ALL}


def written_by(path: Path) -> dict[str, Any]:
    """The sample record of the file's class, written with that version's schema."""
    m = _FILE.match(path.name)
    assert m, path.name
    raw = json.loads(path.read_text())
    record = fit(sample(CLASSES[m["name"]]), raw)
    buf = BytesIO()
    schemaless_writer(
        buf, parse_schema(raw, _write_hint=False), to_avro_converter(type(record))(record)
    )
    data = spec.header(raw) + buf.getvalue()
    return {"type": m["name"], "avro": data.hex(), "record": jsonable(serde.decode(data))}


def document(existing: dict[str, Any]) -> dict[str, Any]:
    """`existing` with every schema file not in it yet added."""
    versions = dict(existing.get("versions", {}))
    for path in sorted(AVSC_DIR.glob("*.avsc")):
        versions.setdefault(path.name, written_by(path))
    return {"scenario": "schema_versions", "versions": dict(sorted(versions.items()))}
