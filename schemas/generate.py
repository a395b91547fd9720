"""Write a new `.avsc` version for every record class whose shape changed.

Usage: `python -m schemas.generate`. Old versions are never edited or deleted.
"""

from __future__ import annotations

import json

from fastavro.schema import to_parsing_canonical_form

from schemas import catalog
from schemas.mapping import derive_schema
from schemas.registry import AVSC_DIR, registry


def pending() -> dict[type, dict[str, object]]:
    """Record classes whose derived schema differs from their latest file."""
    reg = registry()
    out = {}
    for cls in catalog.ALL:
        derived = derive_schema(cls)
        latest = reg.latest.get(cls)
        if latest is None or _canonical_json(derived) != _canonical_json(
            json.loads(latest.path.read_text())
        ):
            out[cls] = derived
    return out


def _canonical_json(schema: dict[str, object]) -> str:
    # Defaults and docs matter for resolution, so compare the full JSON, not just the PCF.
    return json.dumps(schema, sort_keys=True) + to_parsing_canonical_form(schema)


def main() -> None:
    reg = registry()
    for cls, schema in pending().items():
        version = reg.latest[cls].version + 1 if cls in reg.latest else 1
        path = AVSC_DIR / f"{cls.__name__}.v{version}.avsc"
        path.write_text(json.dumps(schema, indent=2) + "\n")
        print(f"wrote {path.name}")


if __name__ == "__main__":
    main()
