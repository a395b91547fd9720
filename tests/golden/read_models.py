"""What a golden instance log folds to in PostgreSQL: its events applied by the projector's
own batch path (`projections.batch.apply_batch`), then read back through the documented
contract views (v1_instances, v1_task_attempts, v1_command_rejections).

`python -m tests.golden.record --read-models` writes `tests/golden/read_models/<log>.json`
(it starts the local stack for a PostgreSQL); tests/integration/test_golden_read_models.py
projects every golden log again and compares. A view may gain columns at its end (the
contract's rule), so a recorded row is compared on the columns it has.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from projections.batch import Item, apply_batch
from projections.handlers import Meta
from projections.migrate import migrate
from schemas import serde
from streams.postgres.connection import DbConfig, connect

READ_MODELS = Path(__file__).with_name("read_models")
VIEWS = {
    "instances": "SELECT * FROM v1_instances ORDER BY instance_id",
    "task_attempts": "SELECT * FROM v1_task_attempts ORDER BY task_code, attempt",
    "rejections": "SELECT * FROM v1_command_rejections ORDER BY at, command_id",
}


def log_events(log: dict[str, Any]) -> list[Any]:
    """The events of an instance golden log, in log order, decoded from their bytes."""
    return [serde.decode(bytes.fromhex(e["avro"])) for s in log["steps"] for e in s["events"]]


def project(conn: psycopg.Connection[Any], events: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """Apply `events` as partition 0 of the events topic and read the contract views."""
    items = [
        Item(record=e, meta=Meta("events", 0, n, getattr(e, "instance_id", None)), topic="events")
        for n, e in enumerate(events)
    ]
    apply_batch(conn, items, {("events", 0): len(items)}, consumer="golden", on_poison=_refuse)
    out = {}
    with conn.cursor() as cur:
        for name, query in VIEWS.items():
            cur.execute(query)
            columns = [d.name for d in cur.description or ()]
            out[name] = [dict(zip(columns, map(_plain, row), strict=True)) for row in cur]
    conn.commit()
    return out


def _refuse(item: Item, exc: Exception) -> None:
    raise AssertionError(f"PostgreSQL refused {type(item.record).__name__}: {exc}")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def path_of(name: str) -> Path:
    return READ_MODELS / f"{name}.json"


def write(name: str, rows: dict[str, Any]) -> None:
    READ_MODELS.mkdir(exist_ok=True)
    path_of(name).write_text(json.dumps(rows, indent=1, sort_keys=True, default=str) + "\n")


@contextmanager
def fresh_schema(db: DbConfig, schema: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to a newly migrated `schema`, dropped again at the end."""
    with connect(db, schema) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.commit()
        migrate(conn, schema)
        try:
            yield conn
        finally:
            conn.rollback()
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
            conn.commit()
