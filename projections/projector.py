"""The projector: Kafka (events, definitions, heartbeats, schedules) -> PostgreSQL read models.

A confluent-kafka consumer in group `<prefix>projector`. Positions live in PostgreSQL, not
in Kafka: on assignment each partition starts at its stored checkpoint (the beginning when
there is none), and each batch is applied with its checkpoint rows in one transaction
(batch.py). Undecodable records go to the dead-letter topic, flushed before that commit.
The Kafka commit that follows is informational only. When PostgreSQL drops the connection
the projector reconnects with backoff and re-positions every partition at its checkpoint.
It only moves data: what a record means is handlers.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from projections.batch import Item, Position, apply_batch, load_checkpoints
from projections.handlers import Meta
from schemas.catalog import DEFINITIONS, EVENTS, HEARTBEATS, SCHEDULES
from schemas.errors import DecodeError
from schemas.serde import expect
from streams.kafka.batching import consume_batch
from streams.kafka.config import KafkaConfig
from streams.kafka.deadletter import dead_letter
from streams.kafka.process import watermarks
from streams.kafka.producer import Producer
from streams.postgres.connection import DbConfig, connect_with_retry
from streams.postgres.errors import DatabaseUnavailable

log = logging.getLogger("tideflow.projector")


def projected_topics(kafka: KafkaConfig) -> dict[str, tuple[str, tuple[type, ...]]]:
    """Real topic name -> (name without prefix, record classes allowed on it)."""
    t = kafka.topics
    return {
        t.events: ("events", EVENTS),
        t.definitions: ("definitions", DEFINITIONS),
        t.heartbeats: ("heartbeats", HEARTBEATS),
        t.schedules: ("schedules", SCHEDULES),
    }


class Projector:
    def __init__(
        self,
        kafka: KafkaConfig,
        db: DbConfig,
        consumer_name: str = "projector",
        *,
        batch_size: int = 500,
        poll_s: float = 0.2,
    ) -> None:
        self.kafka, self.db = kafka, db
        self.consumer_name = consumer_name
        self.batch_size = batch_size
        self.poll_s = poll_s
        self.topics = projected_topics(kafka)
        self.application_name = f"tideflow-{consumer_name}@{db.schema}"[:63]
        self._stop = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._producer: Producer | None = None
        self._next: dict[Position, int] = {}  # next offset per assigned partition (committed)
        self._reposition = False  # set when a failed batch moved the consumer past the DB
        group = f"{kafka.topic_prefix}{consumer_name}"
        config = kafka.consumer_config("projector", group)
        self._cooperative = "cooperative" in str(config.get("partition.assignment.strategy"))
        self._consumer = Consumer(config)
        self._consumer.subscribe(
            list(self.topics), on_assign=self._on_assign, on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )  # fmt: skip

    # -- positions ---------------------------------------------------------------------------

    def _db(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect_with_retry(
                self.db, application_name=self.application_name, stop=self._stop
            )
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def _checkpoints(self) -> dict[Position, int]:
        conn = self._db()
        with conn.transaction(), conn.cursor() as cur:
            return load_checkpoints(cur, self.consumer_name)

    def _positioned(self, parts: list[TopicPartition]) -> list[TopicPartition]:
        """`parts` starting at their checkpoints (the beginning when none is stored)."""
        stored = self._checkpoints()
        out = []
        for p in parts:
            start = stored.get((p.topic, p.partition))
            self._next[(p.topic, p.partition)] = start or 0
            out.append(
                TopicPartition(p.topic, p.partition, OFFSET_BEGINNING if start is None else start)
            )
        return out

    def _assign(self, consumer: Consumer, parts: list[TopicPartition]) -> None:
        if self._cooperative:
            consumer.incremental_assign(parts)
        else:
            consumer.assign(parts)

    def _on_assign(self, consumer: Consumer, parts: list[TopicPartition]) -> None:
        try:
            parts = self._positioned(parts)
        except (psycopg.OperationalError, DatabaseUnavailable) as exc:
            # Kafka's committed offsets never pass the DB's (committed after it): start
            # there and re-position from the loop once PostgreSQL is back.
            log.warning("checkpoints unavailable at assignment (%s); re-positioning later", exc)
            self._drop_connection()
            self._reposition = True
        self._assign(consumer, parts)
        log.info("assigned %s", ", ".join(f"{p.topic}[{p.partition}]@{p.offset}" for p in parts))

    def _on_revoke(self, consumer: Consumer, parts: list[TopicPartition]) -> None:
        for p in parts:
            self._next.pop((p.topic, p.partition), None)
        log.info("revoked %s", ", ".join(f"{p.topic}[{p.partition}]" for p in parts))

    def _reposition_all(self) -> None:
        """Move every assigned partition back to its DB checkpoint (after a failed batch)."""
        parts = self._consumer.assignment()
        positioned = self._positioned(parts)
        if self._cooperative:
            self._consumer.incremental_unassign(parts)
        self._assign(self._consumer, positioned)
        self._reposition = False
        log.info("re-positioned %d partitions at their checkpoints", len(positioned))

    # -- the loop ----------------------------------------------------------------------------

    def _dead_letter(self, msg: Message, reason: str) -> None:
        if self._producer is None:
            self._producer = Producer(self.kafka)
        dead_letter(self._producer, self.kafka.topics.dead_letter, msg, reason)

    def _decode(self, batch: list[Message]) -> tuple[list[Item], dict[Position, int]]:
        """Decoded records, and the next offset per partition of every record read."""
        items: list[Item] = []
        positions: dict[Position, int] = {}
        for msg in batch:
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            if msg.error() is not None or topic is None or partition is None or offset is None:
                log.warning("consumer error: %s", msg.error())
                continue
            positions[(topic, partition)] = max(positions.get((topic, partition), 0), offset + 1)
            short, allowed = self.topics[topic]
            try:
                record = expect(msg.value(), allowed)
            except DecodeError as exc:
                self._dead_letter(msg, str(exc))
                continue
            key = msg.key()
            meta = Meta(
                short, partition, offset, None if key is None else key.decode(errors="replace")
            )
            items.append(Item(record, meta, topic, msg))
        return items, positions

    def _poison(self, item: Item, exc: Exception) -> None:
        self._dead_letter(item.source, f"cannot apply {type(item.record).__name__}: {exc}")

    def _flush_dead_letters(self) -> None:
        if self._producer is not None:
            self._producer.flush()  # dead letters acknowledged before the offsets move

    def step(self) -> int:
        """Consume and project one batch; returns the number of records read."""
        if self._reposition:
            self._reposition_all()
        batch = consume_batch(self._consumer, self.batch_size, self.poll_s)
        if not batch:
            return 0
        items, positions = self._decode(batch)
        if positions:
            try:
                apply_batch(
                    self._db(), items, positions, consumer=self.consumer_name,
                    on_poison=self._poison, before_commit=self._flush_dead_letters,
                )  # fmt: skip
            except (psycopg.OperationalError, DatabaseUnavailable):
                self._reposition = True  # the batch was not recorded: read it again
                raise
            self._next.update(positions)
            self._commit_kafka(positions)
        return len(batch)

    def _commit_kafka(self, positions: Mapping[Position, int]) -> None:
        offsets = [TopicPartition(t, p, n) for (t, p), n in positions.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:  # informational only: PostgreSQL holds the positions
            log.debug("kafka commit skipped: %s", exc)

    def _guarded_step(self) -> int:
        try:
            return self.step()
        except (psycopg.OperationalError, DatabaseUnavailable) as exc:
            log.error("PostgreSQL failed (%s); reconnecting and re-reading from checkpoints", exc)
            self._drop_connection()
            self._reposition = True
            return 0

    def run(self, stop: threading.Event) -> None:
        """Project until `stop` is set."""
        self._stop = stop
        while not stop.is_set():
            self._guarded_step()

    def lag(self) -> dict[str, int]:
        """Records not yet projected per assigned partition ("topic[p]"): one ListOffsets
        request per partition (see `watermarks`)."""
        out: dict[str, int] = {}
        assigned = self._consumer.assignment()
        for tp, pos in zip(assigned, self._consumer.position(assigned), strict=True):
            low, high = watermarks(self._consumer, tp, timeout_s=5.0)
            done = max(self._next.get((tp.topic, tp.partition), 0), pos.offset, low)
            out[f"{tp.topic}[{tp.partition}]"] = max(0, high - done)
        return out

    def _partition_count(self) -> int:
        meta = self._consumer.list_topics(timeout=10.0).topics
        return sum(len(meta[t].partitions) for t in self.topics if t in meta)

    def run_until_idle(self, timeout_s: float = 60.0) -> int:
        """Project until every partition of the subscribed topics is assigned and read to its
        end (for tests and one-shot catch-up); returns records read. TimeoutError otherwise."""
        deadline = time.monotonic() + timeout_s
        wanted, total = self._partition_count(), 0
        while time.monotonic() < deadline:
            n = self._guarded_step()
            total += n
            idle = n == 0 and not self._reposition
            if idle and len(self._consumer.assignment()) >= wanted and not any(self.lag().values()):
                return total
        raise TimeoutError(f"projector not idle after {timeout_s}s (lag {self.lag()})")

    def close(self) -> None:
        try:
            self._flush_dead_letters()
        finally:
            if self.kafka.leave_group_on_stop:
                self._consumer.close()  # see KafkaConfig.leave_group_on_stop
            self._drop_connection()

    def __enter__(self) -> Projector:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
