"""Tamper evidence for the retained logs: seals over a hash chain of every record.

A seal says: the records of this topic partition below `next_offset` hash, in offset order, to
this digest. The chain starts from a fixed value and folds each record's offset, key and value
bytes (lengths included), so changing, removing, inserting or reordering any record below a
seal changes every digest from there on. `seal` extends the latest seal of each partition over
the records appended since (an operator runs it on a schedule and keeps the printed digests
elsewhere too: a seal kept only beside the log can be rewritten with it); `verify` reads each
partition from its first offset and compares the chain with every seal, naming the first one
that no longer matches.

Sealed: `events` and `schedules`, the facts tideflow keeps forever. Not sealed: the commands
topic (deleted after its retention), definitions (compacted: old records go by design) and
heartbeats.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from streams.kafka.config import KafkaConfig
from streams.kafka.reader import partition_count, read_to_end
from streams.postgres.connection import DbConfig, connect

SEALED = ("events", "schedules")
GENESIS = hashlib.sha256(b"tideflow log seal v1").hexdigest()


@dataclass(frozen=True, slots=True)
class Seal:
    topic: str  # short name (events, schedules)
    partition: int
    next_offset: int
    records: int
    digest: str
    sealed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Broken:
    """A seal the log no longer matches: a record below `seal.next_offset` changed since."""

    seal: Seal
    found_digest: str | None  # None: the log ends before the seal's offset
    detail: str


def link(digest: str, offset: int, key: bytes | None, value: bytes | None) -> str:
    """The chain value after one record."""
    h = hashlib.sha256(bytes.fromhex(digest))
    for part in (key or b"", value or b""):
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    h.update(offset.to_bytes(8, "big"))
    return h.hexdigest()


def _records(kafka: KafkaConfig, topic: str, partition: int, start: int) -> Iterator[Any]:
    yield from read_to_end(kafka, topic, [partition], start={partition: start})


def _latest(conn: Any, topic: str, partition: int) -> Seal | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            b"SELECT * FROM log_seals WHERE topic = %s AND partition = %s"
            b" ORDER BY next_offset DESC LIMIT 1",
            (topic, partition),
        )
        row = cur.fetchone()
    return None if row is None else Seal(**row)


def seal(kafka: KafkaConfig, db: DbConfig, now: datetime) -> list[Seal]:
    """Extend each sealed partition's chain over the records appended since its latest seal;
    returns the new seals (none for a partition with nothing new)."""
    made: list[Seal] = []
    with connect(db) as conn:
        for short in SEALED:
            topic = f"{kafka.topic_prefix}{short}"
            for p in range(partition_count(kafka, topic)):
                last = _latest(conn, short, p)
                digest = last.digest if last else GENESIS
                records = last.records if last else 0
                next_offset = last.next_offset if last else 0
                for msg in _records(kafka, topic, p, next_offset):
                    offset = msg.offset() or 0
                    digest = link(digest, offset, msg.key(), msg.value())
                    records, next_offset = records + 1, offset + 1
                if next_offset == (last.next_offset if last else 0):
                    continue  # nothing new to seal
                new = Seal(short, p, next_offset, records, digest, now)
                conn.execute(
                    b"INSERT INTO log_seals (topic, partition, next_offset, records, digest,"
                    b" sealed_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (short, p, next_offset, records, digest, now),
                )
                made.append(new)
        conn.commit()
    return made


def verify(kafka: KafkaConfig, db: DbConfig) -> tuple[int, list[Broken]]:
    """(seals checked, the first broken seal of each partition that has one)."""
    with connect(db) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(b"SELECT * FROM log_seals ORDER BY topic, partition, next_offset")
        seals = [Seal(**row) for row in cur.fetchall()]
    by_partition: dict[tuple[str, int], list[Seal]] = {}
    for s in seals:
        by_partition.setdefault((s.topic, s.partition), []).append(s)
    broken: list[Broken] = []
    for (short, p), wanted in by_partition.items():
        found = _check_partition(kafka, f"{kafka.topic_prefix}{short}", p, wanted)
        if found is not None:
            broken.append(found)
    return len(seals), broken


def _check_partition(kafka: KafkaConfig, topic: str, p: int, wanted: list[Seal]) -> Broken | None:
    pending = iter(wanted)
    target = next(pending)
    digest, records = GENESIS, 0
    for msg in _records(kafka, topic, p, 0):
        offset = msg.offset() or 0
        while offset >= target.next_offset:  # every record below the seal is in the chain
            if digest != target.digest or records != target.records:
                return Broken(target, digest, f"{records} records below it hash differently")
            nxt = next(pending, None)
            if nxt is None:
                return None
            target = nxt
        digest = link(digest, offset, msg.key(), msg.value())
        records += 1
    while True:  # the log ended: the seals at its end must match, later ones cannot
        if records == target.records and digest == target.digest:
            nxt = next(pending, None)
            if nxt is None:
                return None
            target = nxt
            continue
        if records < target.records:
            return Broken(target, None, f"the log holds {records} of its {target.records} records")
        return Broken(target, digest, f"{records} records below it hash differently")
