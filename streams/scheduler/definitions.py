"""The registered workflows, as the scheduler knows them: the definitions topic read from the
beginning with a plain (group-less) consumer, folded to the latest version of each code.

The first registration of a (code, version) in the log wins it, as the projector decides
(`api.service.Service.register` claims versions optimistically); a later record claiming the
same version is a loser and ignored. Deciding a schedule command asks for a catch-up first
(`catch_up`: read to the high watermarks), so a workflow registered just before its schedule
is known.
"""

from __future__ import annotations

import logging
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from schemas.catalog import DEFINITIONS
from schemas.errors import DecodeError
from schemas.serde import expect
from streams.core.definition import WorkflowDef
from streams.core.events import WorkflowDefinitionRegistered
from streams.kafka.config import KafkaConfig
from streams.kafka.process import watermarks

log = logging.getLogger("tideflow.scheduler")


class Definitions:
    def __init__(self, kafka: KafkaConfig) -> None:
        self._topic = kafka.topics.definitions
        self._consumer = Consumer(
            kafka.consumer_config("scheduler", f"definitions-reader-{uuid.uuid4()}")
        )
        meta = self._consumer.list_topics(self._topic, timeout=30).topics[self._topic]
        self._partitions = sorted(meta.partitions)
        self._consumer.assign(
            [TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in self._partitions]
        )
        self._positions: dict[int, int] = {}
        self._claimed: set[tuple[str, int]] = set()
        self.latest: dict[str, WorkflowDef] = {}

    def poll(self, timeout: float = 0.0, max_records: int = 500) -> int:
        """Fold whatever the consumer has fetched; returns records read."""
        batch = self._consumer.consume(max_records, timeout=timeout)
        for msg in batch:
            if msg.error() or msg.partition() is None:
                continue
            self._positions[int(msg.partition() or 0)] = int(msg.offset() or 0) + 1
            try:
                event = expect(msg.value(), DEFINITIONS)
            except DecodeError as exc:
                log.warning("definitions@%s unreadable, skipped: %s", msg.offset(), exc)
                continue
            self._fold(event)
        return len(batch)

    def _fold(self, event: WorkflowDefinitionRegistered) -> None:
        wf = event.workflow
        if (wf.code, wf.version) in self._claimed:
            return  # lost the race for this version
        self._claimed.add((wf.code, wf.version))
        current = self.latest.get(wf.code)
        if current is None or wf.version > current.version:
            self.latest[wf.code] = wf

    def catch_up(self, timeout_s: float = 10.0) -> None:
        """Read to the current end of the topic (or until `timeout_s`)."""
        ends = {
            p: watermarks(self._consumer, TopicPartition(self._topic, p))[1]
            for p in self._partitions
        }
        deadline = time.monotonic() + timeout_s
        while any(self._positions.get(p, 0) < end for p, end in ends.items() if end > 0):
            if time.monotonic() > deadline:
                log.warning("definitions not read to the end within %.0f s", timeout_s)
                return
            self.poll(timeout=0.1)

    def close(self) -> None:
        self._consumer.close()
