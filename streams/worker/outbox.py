"""The worker's outbox: any thread enqueues a record; one thread produces and flushes.

Why: acks sent one at a time (produce, flush, under a lock) cost one broker round trip each,
so with many slots the acks queued behind each other and heartbeats behind the acks, and a
broker bound by its request count got one produce request per record. Here callers only
enqueue; the outbox thread takes everything queued, produces it all and flushes once (a group
commit), so a round trip carries whatever arrived meanwhile. One FIFO queue drained by one
thread into one idempotent producer keeps the order of records with the same key (a started
ack reaches its partition before the finished ack of the same attempt).

A batch whose delivery failed is sent again, whole, with backoff, up to `tries` times, then
logged and given up: callers send records whose duplicates are harmless (acks have derived
command ids, heartbeats and dead letters are idempotent to their readers). Nothing here
decides what a record means.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from schemas.serde import encode
from streams.core.errors import TideflowError
from streams.kafka.errors import DeliveryFailed
from streams.kafka.producer import RawSender

log = logging.getLogger("tideflow.outbox")

TRIES = 5


class OutboxClosed(TideflowError):
    """A record was sent to an outbox after `close()`; it is not delivered."""


class Sink(RawSender, Protocol):
    """What the outbox needs of a producer (`streams.kafka.producer.Producer`)."""

    def flush(self, timeout: float = ...) -> None: ...


@dataclass(frozen=True, slots=True)
class _Item:
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None
    headers: dict[str, str] | None


class Outbox:
    def __init__(self, producer: Sink, *, tries: int = TRIES, backoff_s: float = 0.2) -> None:
        self._producer = producer
        self._tries = tries
        self._backoff_s = backoff_s
        self._cond = threading.Condition()  # guards everything below
        self._queue: list[_Item] = []
        self._enqueued = 0  # records ever enqueued; a record's number is the count after it
        self._done = 0  # records delivered or given up, in enqueue order
        self._lost: deque[tuple[int, int]] = deque(maxlen=1000)  # (first, last) given up
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def send(self, topic: str, key: str, record: Any) -> None:
        """Enqueue an Avro record (encoded here, so a bad record fails its caller)."""
        self.send_raw(topic, key.encode(), encode(record))

    def send_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Enqueue raw bytes; returns at once."""
        with self._cond:
            if self._closing:
                raise OutboxClosed(f"outbox closed; record for {topic} not sent")
            self._queue.append(_Item(topic, key, value, partition, headers))
            self._enqueued += 1
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every record enqueued before this call is delivered or given up.

        Returns True when all the records still pending at the call were delivered; False
        when one of them was given up or `timeout` passed first."""
        with self._cond:
            start, target = self._done, self._enqueued
            if not self._cond.wait_for(lambda: self._done >= target, timeout):
                return False
            return not any(first <= target and last > start for first, last in self._lost)

    def close(self, timeout: float | None = None) -> None:
        """Refuse new records, deliver (or give up) the queued ones, stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("outbox not drained within %ss; %d records left", timeout, self.pending())

    def pending(self) -> int:
        """Records enqueued and not yet delivered or given up."""
        with self._cond:
            return self._enqueued - self._done

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue) or self._closing)
                if not self._queue:
                    return  # closing and drained
                batch, self._queue = self._queue, []
            delivered = self._deliver(batch)
            with self._cond:
                if not delivered:
                    self._lost.append((self._done + 1, self._done + len(batch)))
                self._done += len(batch)
                self._cond.notify_all()

    def _deliver(self, batch: list[_Item]) -> bool:
        for attempt in range(1, self._tries + 1):
            try:
                for item in batch:
                    self._producer.send_raw(
                        item.topic,
                        item.key,
                        item.value,
                        partition=item.partition,
                        headers=item.headers,
                    )
                self._producer.flush()
                return True
            except DeliveryFailed as exc:
                log.warning("delivery of %d records failed (try %d): %s", len(batch), attempt, exc)
            except Exception:  # a bug must not stop the thread: wait() would never return
                log.exception("sending %d records failed (try %d)", len(batch), attempt)
            if attempt < self._tries:
                time.sleep(min(5.0, self._backoff_s * 2 ** (attempt - 1)))
        topics = sorted({item.topic for item in batch})
        log.error("gave up delivering %d records to %s", len(batch), ", ".join(topics))
        return False
