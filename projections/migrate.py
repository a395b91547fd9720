"""Versioned migrations of the read models: `sql/NNN_name.sql`, applied in order, once each.

`migrate(conn, schema)` creates the schema, points search_path at it and applies every file
not yet recorded in its `schema_migrations` table, each in its own transaction. The SQL uses
unqualified names, so the same files build the live schema and replay's fresh ones. A
session advisory lock per schema lets several processes migrate at start-up safely.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

from streams.postgres.connection import set_search_path

_FILE = re.compile(r"^(\d{3,})_([A-Za-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    text: str


def migrations() -> list[Migration]:
    """The packaged migrations, by version."""
    found = []
    for entry in resources.files("projections").joinpath("sql").iterdir():
        m = _FILE.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in projections/sql: {versions}")
    return found


def migrate(conn: psycopg.Connection[Any], schema: str) -> list[int]:
    """Bring `schema` up to date; returns the versions applied now. Commits any transaction
    the caller left open, and leaves search_path = `schema`."""
    conn.commit()
    lock_key = f"tideflow.migrate:{schema}"
    conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (lock_key,))
    conn.commit()
    try:
        with conn.transaction():
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        set_search_path(conn, schema)
        with conn.transaction():
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            rows = conn.execute("SELECT version FROM schema_migrations").fetchall()
        done = {int(r[0]) for r in rows}
        applied = []
        for mig in migrations():
            if mig.version in done:
                continue
            with conn.transaction():
                conn.execute(mig.text.encode())  # several statements: simple query protocol
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (mig.version, mig.name),
                )
            applied.append(mig.version)
        return applied
    finally:
        conn.rollback()  # an aborted transaction would refuse the unlock
        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (lock_key,))
        conn.commit()
