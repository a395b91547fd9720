"""How instances ended, as the scheduler learns it for its backfills: the events topic read
from the beginning with a plain (group-less) consumer, as the definitions are read.

Only `WorkflowSucceeded` / `WorkflowFailed` / `WorkflowStopped` are kept (instance id ->
SUCCESS / FAILURE / STOP; the first end of an instance); every other record is skipped on
its header's schema fingerprint, its body never decoded (a `WorkflowStarted` carries the
whole definition). The map is what a restarted scheduler
needs: a backfill rebuilt from the schedules log asks it for the ends of the instances it
started (`streams.core.schedules.backfill_flow`); it costs one short string per instance
ever run. `poll` returns the ends read since the last call, so the runtime hands each new
end to the backfill that owns the instance.
"""

from __future__ import annotations

import logging
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from schemas.catalog import EVENTS
from schemas.errors import DecodeError
from schemas.registry import registry
from schemas.serde import MARKER, expect
from streams.core.events import WorkflowFailed, WorkflowStopped, WorkflowSucceeded
from streams.kafka.config import KafkaConfig

log = logging.getLogger("tideflow.scheduler")

_ENDS: dict[type, str] = {
    WorkflowSucceeded: "SUCCESS",
    WorkflowFailed: "FAILURE",
    WorkflowStopped: "STOP",
}


def _writer_class(data: bytes | None) -> type | None:
    """The record class a single-object encoded value names in its header (None: unknown)."""
    if data is None or len(data) < len(MARKER) + 8 or data[: len(MARKER)] != MARKER:
        return None
    writer = registry().by_fingerprint.get(data[len(MARKER) : len(MARKER) + 8])
    return None if writer is None else writer.cls


class InstanceEnds:
    def __init__(self, kafka: KafkaConfig) -> None:
        topic = kafka.topics.events
        self._consumer = Consumer(
            kafka.consumer_config("scheduler", f"instance-ends-reader-{uuid.uuid4()}")
        )
        meta = self._consumer.list_topics(topic, timeout=30).topics[topic]
        self._consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)]
        )
        self.ended: dict[str, str] = {}  # instance id -> SUCCESS, FAILURE or STOP

    def poll(self, timeout: float = 0.0, max_records: int = 2000) -> list[tuple[str, str]]:
        """Fold what the consumer has fetched; returns the new (instance id, end state)."""
        new: list[tuple[str, str]] = []
        for msg in self._consumer.consume(max_records, timeout=timeout):
            if msg.error() or _writer_class(msg.value()) not in _ENDS:
                continue  # most records: skipped on their header, the body is not decoded
            try:
                event = expect(msg.value(), EVENTS)
            except DecodeError as exc:
                log.warning("events@%s unreadable, skipped: %s", msg.offset(), exc)
                continue
            state = _ENDS.get(type(event))
            if state is not None and event.instance_id not in self.ended:
                self.ended[event.instance_id] = state
                new.append((event.instance_id, state))
        return new

    def close(self) -> None:
        self._consumer.close()
