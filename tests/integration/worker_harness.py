"""A worker on a thread of the test process, and a tail of a topic: what the worker tests
share. Their `worker` and `commands` fixtures are in conftest.py; each module defines the
`settings` of its own deployment."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from infra.settings import Settings
from schemas.serde import decode
from streams.worker.worker import Worker


class Tail:
    """Every record of a topic from the beginning, decoded (raw messages for `raw=True`)."""

    def __init__(self, settings: Settings, topic: str, raw: bool = False) -> None:
        self._raw = raw
        self._consumer = Consumer(settings.kafka.consumer_config("admin", f"tail-{uuid.uuid4()}"))
        parts = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        self.seen: list[Any] = []

    def until(self, done: Callable[[list[Any]], bool], timeout_s: float = 10.0) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        while not done(self.seen):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; seen {self.seen}")
            for msg in self._consumer.consume(100, timeout=0.05):
                if not msg.error():
                    self.seen.append(
                        msg
                        if self._raw
                        else (bytes(msg.key() or b"").decode(), decode(msg.value()))
                    )
        return self.seen

    def close(self) -> None:
        self._consumer.close()


class Running:
    """A Worker on a thread of this test process."""

    def __init__(self, settings: Settings, grace_s: float = 2.0) -> None:
        self.worker = Worker(settings.worker, grace_s=grace_s)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.worker.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(20)
        assert not self.thread.is_alive()
