"""Watching tideflow from the outside: every record of the events and commands topics, as
it arrives, and the projector's checkpoints in PostgreSQL.

The watcher reads with `assign()` (no group, no effect on tideflow's consumers) and the
master's client settings, so seeing a record costs the bench what a master's hop costs.
It decodes only the fingerprint (the record type) while the run is on; bodies are decoded
afterwards, for the records a figure needs.
"""

from __future__ import annotations

import bisect
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from infra.settings import Settings
from schemas.registry import registry
from schemas.serde import decode
from streams.kafka.batching import consume_batch
from streams.postgres.connection import connect

FINISHED = ("WorkflowSucceeded", "WorkflowFailed", "WorkflowStopped", "WorkflowPaused")


@dataclass(slots=True)
class Seen:
    """One record as the watcher read it."""

    kind: str  # record class name, from the writer schema's fingerprint
    partition: int
    offset: int
    ts_ms: int  # the Kafka message timestamp (the producer's append time)
    recv: float  # time.perf_counter() when the watcher read it
    recv_wall: float  # time.time() then, to compare with `ts_ms`
    value: bytes

    def record(self) -> Any:
        return decode(self.value)


def _kind(value: bytes | None) -> str:
    if not value or len(value) < 10:
        return "?"
    found = registry().by_fingerprint.get(value[2:10])
    return found.cls.__name__ if found is not None else "?"


class Watcher:
    """Records every event and command per instance id (the record key)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topics = settings.topics
        self._consumer = Consumer(
            settings.kafka.consumer_config("master", f"bench-watch-{uuid.uuid4().hex[:8]}")
        )
        wanted = []
        for topic in (self._topics.events, self._topics.commands):
            meta = self._consumer.list_topics(topic, timeout=30).topics[topic]
            wanted += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)]
        self._consumer.assign(wanted)
        self.events: dict[str, list[Seen]] = defaultdict(list)
        self.commands: dict[str, list[Seen]] = defaultdict(list)
        self.finished: dict[str, Seen] = {}
        self.owners: dict[int, str] = {}  # partition -> latest owner (PartitionTakenOver)
        self.health: Callable[[], None] | None = None  # raises when the fleet broke; polled
        self.received = 0  # records read so far
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-watch", daemon=True)

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()

    def _run(self) -> None:
        events_topic = self._topics.events
        while not self._stop.is_set():
            batch = consume_batch(self._consumer, 2000, 0.05)
            if not batch:
                continue
            recv, recv_wall = time.perf_counter(), time.time()
            self.received += len(batch)
            done: list[tuple[str, Seen]] = []
            for msg in batch:
                if msg.error():
                    continue
                value, key = msg.value() or b"", msg.key()
                seen = Seen(
                    _kind(value),
                    msg.partition() or 0,
                    msg.offset() or 0,
                    msg.timestamp()[1],
                    recv,
                    recv_wall,
                    value,
                )
                instance = key.decode(errors="replace") if key else ""
                if msg.topic() == events_topic:
                    self.events[instance].append(seen)
                    if seen.kind in FINISHED:
                        done.append((instance, seen))
                    elif seen.kind == "PartitionTakenOver":
                        taken = seen.record()
                        self.owners[seen.partition] = str(getattr(taken, "owner", ""))
                else:
                    self.commands[instance].append(seen)
            if done:
                with self._cond:
                    for instance, seen in done:
                        self.finished.setdefault(instance, seen)
                    self._cond.notify_all()

    def wait_finished(self, ids: list[str], timeout_s: float) -> list[str]:
        """Wait until every instance of `ids` ended; returns those that did not in time.
        Calls `health` about every second meanwhile (its exception ends the wait)."""
        deadline = time.monotonic() + timeout_s
        checked = time.monotonic()
        with self._cond:
            while True:
                missing = [i for i in ids if i not in self.finished]
                left = deadline - time.monotonic()
                if not missing or left <= 0:
                    return missing
                self._cond.wait(min(left, 0.5))
                if self.health is not None and time.monotonic() - checked >= 1.0:
                    checked = time.monotonic()
                    self.health()


class CheckpointProbe:
    """Polls the projector's checkpoint rows for the events topic every `interval_s`:
    the rows of a batch and its checkpoint commit together, so a checkpoint past an offset
    means that event's row is in PostgreSQL."""

    def __init__(self, settings: Settings, interval_s: float = 0.01) -> None:
        self._settings = settings
        self.interval_s = interval_s
        self._topic = settings.topics.events
        self._samples: dict[int, list[tuple[int, float]]] = defaultdict(list)  # p -> (next, t)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-lag", daemon=True)
        self.polls = 0

    def start(self) -> CheckpointProbe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        conn = connect(self._settings.db, application_name="tideflow-bench")
        conn.autocommit = True
        try:
            while not self._stop.is_set():
                try:
                    rows = conn.execute(
                        "SELECT partition, next_offset FROM projector_checkpoints"
                        " WHERE consumer = 'projector' AND topic = %s",
                        (self._topic,),
                    ).fetchall()
                except psycopg.Error:
                    rows = []
                now = time.time()
                self.polls += 1
                for partition, next_offset in rows:
                    seen = self._samples[int(partition)]
                    if not seen or seen[-1][0] < int(next_offset):
                        seen.append((int(next_offset), now))
                self._stop.wait(self.interval_s)
        finally:
            conn.close()

    def lags_ms(self, records: list[Seen]) -> list[float]:
        """For each record: first poll that showed it projected minus its Kafka timestamp
        (ms); records never seen projected are left out."""
        keys = {p: [n for n, _ in seen] for p, seen in self._samples.items()}
        out = []
        for r in records:
            seen = self._samples.get(r.partition, [])
            i = bisect.bisect_right(keys.get(r.partition, []), r.offset)
            if i < len(seen):
                out.append(seen[i][1] * 1000 - r.ts_ms)
        return out

    def covers(self, ends: dict[int, int]) -> bool:
        """True once every partition's checkpoint reached `ends` (next offsets)."""
        return all(
            self._samples.get(p) and self._samples[p][-1][0] >= end for p, end in ends.items()
        )
