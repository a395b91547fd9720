"""One batch of decoded records and its checkpoint rows, applied in ONE transaction (the
eventsourcing "tracking record"): a crash neither loses nor doubles a row. The handlers'
writes are coalesced per row and sent as a few statements per batch (changes.py).

Shared by the projector and replay. Records below the stored checkpoint were projected
already and are skipped; a record that PostgreSQL refuses as data (DataError,
IntegrityError) is handed to `on_poison` and skipped, so it cannot stall the projection.
Connection failures (OperationalError) propagate: the caller reconnects and re-reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from projections.changes import Changes, Cur
from projections.handlers import Fence, Meta, project

log = logging.getLogger("tideflow.projections")

Position = tuple[str, int]  # (real topic name, partition)


@dataclass(frozen=True, slots=True)
class Item:
    """A decoded record, where it came from, and (live only) the Kafka message itself."""

    record: Any
    meta: Meta
    topic: str  # the real (prefixed) topic: checkpoints are positions in real topics
    source: Any = None


Poison = Callable[[Item, Exception], None]
_REFUSED = (psycopg.DataError, psycopg.IntegrityError)


def load_checkpoints(cur: Cur, consumer: str, *, lock: bool = False) -> dict[Position, int]:
    """Next offset to project per (topic, partition); `lock` serialises concurrent writers."""
    cur.execute(
        "SELECT topic, partition, next_offset FROM projector_checkpoints WHERE consumer = %s"
        + (" FOR UPDATE" if lock else ""),
        (consumer,),
    )
    return {(str(t), int(p)): int(n) for t, p, n in cur.fetchall()}


def _save_checkpoints(cur: Cur, consumer: str, positions: Mapping[Position, int]) -> None:
    if not positions:
        return
    cur.executemany(
        "INSERT INTO projector_checkpoints (consumer, topic, partition, next_offset)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (consumer, topic, partition) DO UPDATE"
        " SET next_offset = GREATEST(projector_checkpoints.next_offset, EXCLUDED.next_offset)",
        [(consumer, t, p, n) for (t, p), n in sorted(positions.items())],
    )


def _new(items: Iterable[Item], done: Mapping[Position, int]) -> list[Item]:
    return [i for i in items if i.meta.offset >= done.get((i.topic, i.meta.partition), 0)]


def apply_batch(
    conn: psycopg.Connection[Any],
    items: Sequence[Item],
    positions: Mapping[Position, int],
    *,
    consumer: str,
    on_poison: Poison,
    before_commit: Callable[[], None] | None = None,
) -> int:
    """Project `items` and record `positions` (next offset per partition, covering every
    record read, decodable or not) in one transaction. `before_commit` runs just before the
    commit (the projector flushes its dead letters there). Returns the records applied."""
    if conn.info.transaction_status != TransactionStatus.IDLE:
        # conn.transaction() inside an open transaction is only a savepoint: nothing commits.
        raise RuntimeError("apply_batch needs a connection with no transaction open")
    try:
        # Pipeline mode: the batch's statements go out without waiting for each reply.
        with conn.transaction(), conn.pipeline(), conn.cursor() as cur:
            todo = _new(items, load_checkpoints(cur, consumer, lock=True))
            fence, changes = Fence(cur), Changes(cur)
            for item in todo:
                project(changes, item.record, item.meta, fence)
            changes.flush()
            _save_checkpoints(cur, consumer, positions)
            if before_commit is not None:
                before_commit()
        return len(todo)
    except _REFUSED as exc:
        log.warning("batch of %d refused (%s); applying record by record", len(items), exc)
    return _one_by_one(conn, items, positions, consumer, on_poison, before_commit)


def _one_by_one(
    conn: psycopg.Connection[Any],
    items: Sequence[Item],
    positions: Mapping[Position, int],
    consumer: str,
    on_poison: Poison,
    before_commit: Callable[[], None] | None,
) -> int:
    applied = 0
    with conn.transaction(), conn.cursor() as cur:
        todo = _new(items, load_checkpoints(cur, consumer, lock=True))
        fence = Fence(cur)
        for item in todo:
            try:
                with conn.transaction():  # a savepoint: only this record is undone
                    changes = Changes(cur)  # nothing left over from a refused record
                    project(changes, item.record, item.meta, fence)
                    changes.flush()
                applied += 1
            except _REFUSED as exc:
                on_poison(item, exc)
        _save_checkpoints(cur, consumer, positions)
        if before_commit is not None:
            before_commit()
    return applied
