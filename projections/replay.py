"""Replay: rebuild every read model from offset zero into a fresh schema, and compare two
schemas' read models (audit: rebuilt tables must equal the live ones).

`replay` reads each partition of definitions, events and heartbeats with
`streams.kafka.reader.read_to_end` and applies the projector's own handlers and batches
(batch.py), checkpoints included, so a projector pointed at the rebuilt schema carries on
from where replay stopped. It never dead-letters (the live projector did); it counts.
`switch` then makes a replayed schema the live one without downtime (see its docstring).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from projections.batch import Item, Position, apply_batch, load_checkpoints
from projections.handlers import Meta
from projections.migrate import migrate
from projections.projector import projected_topics
from schemas.errors import DecodeError
from schemas.serde import expect
from streams.core.errors import TideflowError
from streams.kafka.config import KafkaConfig
from streams.kafka.reader import read_to_end
from streams.postgres.connection import DbConfig, connect_with_retry

log = logging.getLogger("tideflow.replay")

BATCH = 1000

# Compared read models: table -> key columns. Checkpoints and workers (heartbeats keep
# arriving while the live projector runs) are not compared; every other column is, since
# every timestamp in them is an event's `at`.
COMPARED: dict[str, tuple[str, ...]] = {
    "workflow_definitions": ("code", "version"),
    "workflow_instances": ("instance_id",),
    "task_instances": ("task_instance_id",),
    "command_rejections": ("command_id",),
    "event_archive": ("topic", "partition", "offset"),
    "partition_owners": ("partition",),
    "schedules": ("schedule_id",),
    "schedule_fires": ("schedule_id", "fire_time"),
    "schedule_rejections": ("command_id",),
    "backfills": ("backfill_id",),
    "backfill_dates": ("backfill_id", "date"),
    "backfill_rejections": ("command_id",),
}
_MAX_ROWS = 100  # differing rows reported per table and side
# Written on every schema a replay creates: a replay drops and rebuilds only schemas with it.
REPLAY_MARK = "tideflow replay"


class ReplayRefused(TideflowError):
    """The target schema is the live one, or exists and was not created by a replay."""


def _check_target(conn: psycopg.Connection[Any], db: DbConfig, schema: str) -> None:
    """Refuse any schema a replay would destroy without having made it (`public`, another
    deployment's read models, anything of anyone else's): only a missing schema, or one
    marked by an earlier replay, is dropped and rebuilt."""
    if schema == db.schema:
        raise ReplayRefused(f"refusing to replay into the live schema {schema!r}")
    found = conn.execute(
        "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
        (schema,),
    ).fetchone()
    conn.commit()
    if found is not None and found[0] != REPLAY_MARK:
        raise ReplayRefused(
            f"refusing to replay into schema {schema!r}: it exists and was not created by "
            "`tideflow replay` (choose a new name, or drop it yourself)"
        )


def replay(
    kafka: KafkaConfig, db: DbConfig, schema: str, *, consumer: str = "projector"
) -> dict[str, int]:
    """Drop and rebuild `schema` from the log; returns records applied per topic (without
    prefix), plus "undecodable" and "refused" counts. `ReplayRefused` for the live schema
    or an existing schema that no replay created."""
    counts: Counter[str] = Counter()
    conn = connect_with_retry(db, schema)
    try:
        _check_target(conn, db, schema)
        with conn.transaction():
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        migrate(conn, schema)
        with conn.transaction():
            conn.execute(
                sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                    sql.Identifier(schema), sql.Literal(REPLAY_MARK)
                )
            )

        _project(conn, kafka, counts, consumer, start={})
        log.info("replayed into %s: %s", schema, dict(counts))
        return dict(counts)
    finally:
        conn.close()


def _project(
    conn: psycopg.Connection[Any],
    kafka: KafkaConfig,
    counts: Counter[str],
    consumer: str,
    start: Mapping[Position, int],
) -> None:
    """Apply every record of the projected topics from `start` (default: the beginning) to
    their end, in batches with their checkpoints."""

    def refused(item: Item, exc: Exception) -> None:
        log.warning("replay: %s refused: %s", item.meta, exc)
        counts["refused"] += 1

    def flush(short: str, items: list[Item], positions: dict[Position, int]) -> None:
        counts[short] += apply_batch(conn, items, positions, consumer=consumer, on_poison=refused)

    for topic, (short, allowed) in projected_topics(kafka).items():
        counts[short] += 0
        items: list[Item] = []
        positions: dict[Position, int] = {}
        begin = {p: o for (t, p), o in start.items() if t == topic}
        for msg in read_to_end(kafka, topic, start=begin or None):
            partition, offset, key = msg.partition(), msg.offset(), msg.key()
            assert partition is not None and offset is not None
            positions[(topic, partition)] = offset + 1
            try:
                record = expect(msg.value(), allowed)
            except DecodeError:
                counts["undecodable"] += 1
                continue
            decoded_key = None if key is None else key.decode(errors="replace")
            items.append(Item(record, Meta(short, partition, offset, decoded_key), topic))
            if len(items) >= BATCH:
                flush(short, items, positions)
                items, positions = [], {}
        if positions:
            flush(short, items, positions)


def switch(kafka: KafkaConfig, db: DbConfig, schema: str, *, consumer: str = "projector") -> str:
    """Make the replayed `schema` the live read models without downtime; returns the name
    the previous live schema now has (kept until someone drops it).

    `schema` first catches up from its own checkpoints. Then, in one transaction, the live
    schema is renamed away and `schema` takes its name: a reader's next statement sees the
    rebuilt models whole, never half of each. Last, the sessions of the live projector and of
    the masters' snapshot stores are ended: their statements were bound to the old tables.
    The projector reconnects, reads its checkpoints from the new live schema (the replay's)
    and goes on from there; whatever it wrote into the old one meanwhile is read again."""
    counts: Counter[str] = Counter()
    conn = connect_with_retry(db, schema)
    try:
        _check_target(conn, db, schema)
        with conn.transaction(), conn.cursor() as cur:
            start = load_checkpoints(cur, consumer)
        _project(conn, kafka, counts, consumer, start)
        retired = f"{db.schema}_before_{datetime.now(UTC):%Y%m%d%H%M%S}"[:63]
        with conn.transaction():
            for statement in (
                sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                    sql.Identifier(db.schema), sql.Identifier(retired)
                ),
                sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                    sql.Identifier(schema), sql.Identifier(db.schema)
                ),
                sql.SQL("COMMENT ON SCHEMA {} IS NULL").format(sql.Identifier(db.schema)),
                sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                    sql.Identifier(retired), sql.Literal(REPLAY_MARK)
                ),
            ):
                conn.execute(statement)
        with conn.transaction():
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE pid <> pg_backend_pid() AND application_name = ANY(%s)",
                ([f"tideflow-{consumer}@{db.schema}"[:63], "tideflow-master-snapshots"],),
            )
        log.info("switched %s to the replay in %s (caught up %s); previous: %s",
                 db.schema, schema, dict(counts), retired)  # fmt: skip
        return retired
    finally:
        conn.close()


def _columns(cur: psycopg.Cursor[Any], schema: str, table: str) -> list[str]:
    cur.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    )
    return [str(r[0]) for r in cur.fetchall()]


def _only_in(
    cur: psycopg.Cursor[Any],
    columns: list[str],
    table: str,
    first: str,
    second: str,
    retired_in: str,
) -> list[tuple[Any, ...]]:
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    # Instances retention retired from the live models are not compared (the log keeps them).
    kept = (
        sql.SQL(
            " WHERE instance_id IS NULL OR instance_id NOT IN (SELECT instance_id FROM {r})"
        ).format(r=sql.Identifier(retired_in, "retired_instances"))
        if "instance_id" in columns
        else sql.SQL("")
    )
    cur.execute(
        sql.SQL("SELECT {c} FROM {a}{k} EXCEPT SELECT {c} FROM {b}{k} ORDER BY 1 LIMIT {n}").format(
            c=cols,
            a=sql.Identifier(first, table),
            b=sql.Identifier(second, table),
            k=kept,
            n=sql.Literal(_MAX_ROWS),
        )
    )
    return cur.fetchall()


def _diff_table(cur: psycopg.Cursor[Any], table: str, a: str, b: str) -> list[str]:
    cols_a, cols_b = _columns(cur, a, table), _columns(cur, b, table)
    if cols_a != cols_b:
        return [f"{table}: columns differ: {a}={cols_a} {b}={cols_b}"]
    key = COMPARED[table]
    at = [cols_a.index(k) for k in key]
    rows_a = {tuple(r[i] for i in at): r for r in _only_in(cur, cols_a, table, a, b, a)}
    rows_b = {tuple(r[i] for i in at): r for r in _only_in(cur, cols_a, table, b, a, a)}
    out = []
    for k in sorted(rows_a.keys() | rows_b.keys(), key=repr):
        name = f"{table}[{', '.join(map(str, k))}]"
        if k not in rows_b:
            out.append(f"{name}: only in {a}")
        elif k not in rows_a:
            out.append(f"{name}: only in {b}")
        else:
            for col, va, vb in zip(cols_a, rows_a[k], rows_b[k], strict=True):
                if va != vb:
                    out.append(f"{name}.{col}: {a}={va!r} {b}={vb!r}")
    return out


def compare(db: DbConfig, schema_a: str, schema_b: str) -> list[str]:
    """Differences between the read models of two schemas (empty when equal); at most
    100 differing rows per table and side are reported. Instances retired from `schema_a`
    (retention) are left out of both sides."""
    conn = connect_with_retry(db, schema_a)
    try:
        with conn.transaction(), conn.cursor() as cur:
            return [d for table in COMPARED for d in _diff_table(cur, table, schema_a, schema_b)]
    finally:
        conn.close()
