"""Write a new `.avsc` version for every record class whose shape changed.

Usage: `python -m schemas.generate` writes them; `python -m schemas.generate --check` writes
nothing and exits 1 naming every class that drifted from its latest file (the schemas test
suite runs the same `check()`, so `./dev test` fails on drift). Old versions are never edited
or deleted.
"""

from __future__ import annotations

import argparse
import json
import sys

from fastavro.schema import to_parsing_canonical_form

from schemas import catalog
from schemas.errors import SchemaDrift
from schemas.mapping import derive_schema
from schemas.registry import AVSC_DIR, Registry, registry


def pending(reg: Registry | None = None) -> dict[type, dict[str, object]]:
    """Record classes whose derived schema differs from their latest file."""
    reg = reg or registry()
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


def check(reg: Registry | None = None) -> None:
    """Raise `SchemaDrift` naming every record class that no longer matches its latest file."""
    drifted = pending(reg)
    if drifted:
        names = ", ".join(sorted(cls.__name__ for cls in drifted))
        raise SchemaDrift(
            f"record classes differ from their latest .avsc: {names}; "
            "run `python -m schemas.generate` and commit the new version"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m schemas.generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 on drift")
    if parser.parse_args(argv).check:
        try:
            check()
        except SchemaDrift as exc:
            print(exc, file=sys.stderr)
            sys.exit(1)
        return
    reg = registry()
    for cls, schema in pending(reg).items():
        version = reg.latest[cls].version + 1 if cls in reg.latest else 1
        path = AVSC_DIR / f"{cls.__name__}.v{version}.avsc"
        path.write_text(json.dumps(schema, indent=2) + "\n")
        print(f"wrote {path.name}")


if __name__ == "__main__":
    main()
