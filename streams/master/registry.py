"""Worker liveness and load, as a master sees them on the heartbeats topic.

Reads every heartbeat partition with `assign()` (no group: each master needs all of them),
starting a little before "now" so a restarted master knows the live workers at once.
Dispatches decided since a worker's last heartbeat count against its free slots.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from infra.settings import Settings
from schemas.errors import DecodeError
from schemas.records import HEARTBEATS
from schemas.serde import expect
from streams.core.placement import Workers, WorkerView
from streams.core.records import WorkerHeartbeat

log = logging.getLogger("tideflow.master.registry")


class WorkerRegistry:
    def __init__(self, settings: Settings, clock: Callable[[], datetime]) -> None:
        self._timeout = timedelta(seconds=settings.tideflow_worker_timeout_s)
        self._latest: dict[str, WorkerHeartbeat] = {}
        self._assigned: dict[str, int] = {}
        topic = settings.topics.heartbeats
        self._consumer = Consumer(settings.consumer_config("master", f"registry-{uuid.uuid4()}"))
        parts = self._consumer.list_topics(topic, timeout=30).topics[topic].partitions
        since_ms = int((clock() - 3 * self._timeout).timestamp() * 1000)
        wanted = [TopicPartition(topic, p, since_ms) for p in sorted(parts)]
        found = self._consumer.offsets_for_times(wanted, timeout=30)
        self._consumer.assign(
            [
                TopicPartition(
                    topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                )
                for tp in found
            ]
        )

    def poll(self) -> None:
        """Take in whatever heartbeats arrived; never blocks."""
        for msg in self._consumer.consume(500, timeout=0):
            if msg.error():
                continue
            try:
                hb: WorkerHeartbeat = expect(msg.value(), HEARTBEATS)
            except DecodeError as exc:
                log.warning("ignoring undecodable heartbeat: %s", exc)
                continue
            previous = self._latest.get(hb.worker_id)
            if previous is None or hb.at >= previous.at:
                self._latest[hb.worker_id] = hb
                self._assigned.pop(hb.worker_id, None)

    def note_dispatch(self, worker_id: str) -> None:
        self._assigned[worker_id] = self._assigned.get(worker_id, 0) + 1

    def live(self, now: datetime) -> Workers:
        groups: dict[str, list[WorkerView]] = {}
        for hb in self._latest.values():
            if now - hb.at > self._timeout:
                continue
            free = hb.slots_free - self._assigned.get(hb.worker_id, 0)
            groups.setdefault(hb.worker_group, []).append(
                WorkerView(hb.worker_id, hb.worker_group, hb.slots_total, free)
            )
        return groups

    def close(self) -> None:
        self._consumer.close()
