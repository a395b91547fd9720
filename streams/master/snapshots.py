"""Snapshots of a master's partition state, so a takeover replays only the tail of the log.

Where: PostgreSQL, one row per (events topic, partition) in `master_snapshots`, not a
compacted Kafka topic, because

* a partition's state can exceed Kafka's default 1 MB message limit (`message.max.bytes`);
  a row holds any size (bytea) without broker or topic tuning;
* a row replace is atomic, and the upsert refuses to move a snapshot backwards (a slow old
  owner cannot roll the row back to a lower events offset), which a compacted topic cannot
  refuse: the last write wins there, whoever made it;
* it is inspectable: `SELECT partition, events_offset, epoch, written_at,
  length(body) FROM master_snapshots` shows what a takeover would start from.

Correctness never depends on it: a snapshot is a cache of `fold(events[0:events_offset])`.
When PostgreSQL is unreachable, or the row is absent, unreadable or of another state
format, `load` returns None and the master replays the partition from offset 0; when
`save` fails it logs and the master carries on. Errors are logged, never raised.

The caller's contract: `instances` must equal the fold of the partition's events below
`events_offset` (the next offset not covered). An owner's in-memory state equals that fold
only while nobody else writes to the partition: save when every offset from the owner's own
`PartitionTakenOver` to `events_offset - 1` was written by the owner itself (its delivery
reports are contiguous), and a paused old owner, whose successor's events are interleaved
with its own, never saves a state that skips them. This module keeps the row with the
highest events offset per partition; `epoch` is recorded for the caller and operators.

The record, its state format and its codec are in `snapshot_codec`.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import suppress
from typing import Any

import psycopg
from psycopg import sql

from streams.master.snapshot_codec import (
    STATE_FORMAT,
    PartitionSnapshot,
    SnapshotUnreadable,
    decode_snapshot,
    encode_snapshot,
)
from streams.postgres.connection import DbConfig, connect

__all__ = ["STATE_FORMAT", "PartitionSnapshot", "SnapshotStore", "SnapshotUnreadable"]

log = logging.getLogger("tideflow.master.snapshots")

# -- the store ----------------------------------------------------------------------------------

_TABLE = "master_snapshots"


class SnapshotStore:
    """Partition snapshots in `master_snapshots` of the deployment's schema, one row per
    (events topic, partition): deployments with different topic prefixes never share one.

    Connects on first use, creating the schema and table if missing. Database trouble is
    logged, never raised: `load` returns None (the caller replays everything) and `save`
    drops the snapshot. After a failure it does not try again for `retry_after_s`, so a
    database that is down costs one connection timeout, not one per partition. Thread-safe.
    """

    def __init__(
        self,
        db: DbConfig,
        events_topic: str,
        *,
        connect_timeout_s: int = 3,
        statement_timeout_s: float = 30.0,
        retry_after_s: float = 30.0,
    ) -> None:
        self._db = db
        self._events_topic = events_topic
        self._schema = db.schema
        self._table = sql.Identifier(self._schema, _TABLE)
        self._connect_timeout_s = connect_timeout_s
        self._statement_timeout_s = statement_timeout_s
        self._retry_after_s = retry_after_s
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._retry_at = 0.0  # time.monotonic() before which the database is not tried

    # -- public ------------------------------------------------------------------------------

    def save(self, snapshot: PartitionSnapshot) -> None:
        """Store `snapshot` unless the stored one covers more of the log (a higher
        events_offset): a slow old owner never rolls a partition's snapshot back."""
        p = snapshot.partition
        started = time.perf_counter()
        try:
            body = encode_snapshot(snapshot)
        except Exception:  # a state the codec cannot write: a bug, but no reason to stop
            log.warning("partition %s: snapshot not encoded; not saved", p, exc_info=True)
            return
        encoded = time.perf_counter()
        query = sql.SQL(
            "INSERT INTO {table} AS s"
            " (events_topic, partition, state_format, events_offset, epoch, written_at, body)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (events_topic, partition) DO UPDATE SET"
            " state_format = EXCLUDED.state_format, events_offset = EXCLUDED.events_offset,"
            " epoch = EXCLUDED.epoch, written_at = EXCLUDED.written_at, body = EXCLUDED.body"
            # never roll back: neither to fewer events nor to an owner that was fenced since
            " WHERE s.events_offset <= EXCLUDED.events_offset AND s.epoch <= EXCLUDED.epoch"
        ).format(table=self._table)
        params = (
            self._events_topic,
            p,
            STATE_FORMAT,
            snapshot.events_offset,
            snapshot.epoch,
            snapshot.written_at,
            body,
        )
        with self._lock:
            conn = self._connection(f"partition {p}: snapshot not saved")
            if conn is None:
                return
            try:
                written = conn.execute(query, params).rowcount
                conn.commit()
            except psycopg.Error as exc:
                self._failed(f"partition {p}: snapshot not saved", exc)
                return
        if written:
            log.info(
                "partition %s: snapshot saved at events offset %s, epoch %s: %s instances,"
                " %.0f kB (encode %.0f ms, write %.0f ms)",
                p,
                snapshot.events_offset,
                snapshot.epoch,
                len(snapshot.instances),
                len(body) / 1000,
                (encoded - started) * 1000,
                (time.perf_counter() - encoded) * 1000,
            )
        else:
            log.info(
                "partition %s: snapshot at events offset %s not saved: the stored one covers"
                " more of the log",
                p,
                snapshot.events_offset,
            )

    def load(self, partition: int) -> PartitionSnapshot | None:
        """The partition's latest snapshot, or None: absent, of another state format,
        unreadable, or the database unreachable (the caller then replays from offset 0)."""
        query = sql.SQL(
            "SELECT state_format, events_offset, epoch, body FROM {table}"
            " WHERE events_topic = %s AND partition = %s"
        ).format(table=self._table)
        started = time.perf_counter()
        with self._lock:
            conn = self._connection(f"partition {partition}: no snapshot loaded")
            if conn is None:
                return None
            try:
                row = conn.execute(query, (self._events_topic, partition)).fetchone()
                conn.commit()
            except psycopg.Error as exc:
                self._failed(f"partition {partition}: no snapshot loaded", exc)
                return None
        if row is None:
            log.info("partition %s: no snapshot stored", partition)
            return None
        state_format, events_offset, epoch, body = row
        if state_format != STATE_FORMAT:
            log.info(
                "partition %s: snapshot at events offset %s discarded: format %s != %s",
                partition,
                events_offset,
                state_format,
                STATE_FORMAT,
            )
            return None
        try:
            snapshot = decode_snapshot(bytes(body))
        except SnapshotUnreadable as exc:
            log.warning("partition %s: snapshot discarded, unreadable: %s", partition, exc)
            return None
        if (snapshot.partition, snapshot.events_offset, snapshot.epoch) != (
            partition,
            events_offset,
            epoch,
        ):
            log.warning(
                "partition %s: snapshot discarded: its body (partition %s, events offset %s,"
                " epoch %s) does not match its row (events offset %s, epoch %s)",
                partition,
                snapshot.partition,
                snapshot.events_offset,
                snapshot.epoch,
                events_offset,
                epoch,
            )
            return None
        log.info(
            "partition %s: snapshot loaded at events offset %s, epoch %s: %s instances,"
            " %.0f kB in %.0f ms",
            partition,
            events_offset,
            epoch,
            len(snapshot.instances),
            len(body) / 1000,
            (time.perf_counter() - started) * 1000,
        )
        return snapshot

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- connection ----------------------------------------------------------------------------

    def _connection(self, what: str) -> psycopg.Connection[Any] | None:
        """The open connection (opened, and the table created, if need be); None while the
        database is considered down. Call with the lock held."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        if time.monotonic() < self._retry_at:
            log.debug("%s: PostgreSQL was unreachable moments ago", what)
            return None
        conn: psycopg.Connection[Any] | None = None
        try:
            conn = connect(
                self._db,
                self._schema,
                application_name="tideflow-master-snapshots",
                connect_timeout=self._connect_timeout_s,
            )
            conn.execute(
                "SELECT set_config('statement_timeout', %s, false)",
                (f"{int(self._statement_timeout_s * 1000)}ms",),
            )
            self._create_table(conn)
        except psycopg.Error as exc:
            if conn is not None:
                conn.close()
            self._failed(what, exc)
            return None
        self._conn = conn
        return conn

    def _create_table(self, conn: psycopg.Connection[Any]) -> None:
        # IF NOT EXISTS is not safe against a concurrent creator (two masters starting
        # together can both fail on a unique index of the catalog): a lock per schema is.
        with conn.transaction():
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))",
                (f"tideflow.{_TABLE}:{self._schema}",),
            )
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self._schema))
            )
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {table} ("
                    " events_topic text NOT NULL,"
                    " partition int NOT NULL,"
                    " state_format text NOT NULL,"
                    " events_offset bigint NOT NULL,"
                    " epoch bigint NOT NULL,"
                    " written_at timestamptz NOT NULL,"
                    " body bytea NOT NULL,"
                    " PRIMARY KEY (events_topic, partition))"
                ).format(table=self._table)
            )

    def _failed(self, what: str, exc: psycopg.Error) -> None:
        """Log, drop the connection, and leave the database alone for a while. Call with
        the lock held."""
        log.warning(
            "%s: PostgreSQL error (%s: %s); not retried for %.0fs",
            what,
            type(exc).__name__,
            str(exc).strip(),
            self._retry_after_s,
        )
        if self._conn is not None:
            with suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
        self._retry_at = time.monotonic() + self._retry_after_s
