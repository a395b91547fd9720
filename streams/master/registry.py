"""Worker liveness and load, as a master sees them on the heartbeats topic.

Reads every heartbeat partition with `assign()` (no group: each master needs all of them),
starting a little before "now" so a restarted master knows the live workers at once.
Free slots are estimated by `SlotCount` (slot_count.py), which the master tells of its
dispatches and ended attempts through `slots`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from schemas.catalog import HEARTBEATS
from schemas.errors import DecodeError
from schemas.serde import expect
from streams.core.placement import Workers, WorkerView, has_free_slot
from streams.core.worker_messages import WorkerHeartbeat
from streams.master.config import MasterConfig
from streams.master.slot_count import SlotCount

log = logging.getLogger("tideflow.master.registry")

WARM_S = 5.0  # a master trusts the absence of a worker's heartbeat only this long after start


@dataclass(frozen=True, slots=True)
class LostWorker:
    worker_id: str
    worker_group: str
    incarnation: datetime  # start time of the lost process (datetime.min when unknown)
    last_heartbeat_at: datetime | None
    reason: str
    dispatched_before: datetime | None  # a restart loses only attempts sent to the old process


def view(hb: WorkerHeartbeat, config: MasterConfig, slots: SlotCount) -> WorkerView:
    """The master's view of a worker from its latest heartbeat: free slots by `slots`, load
    as shares, its group's selector and whether it is over the BUSY thresholds."""
    cpu, memory = hb.cpu_percent / 100.0, hb.memory_percent / 100.0
    return WorkerView(
        hb.worker_id,
        hb.worker_group,
        hb.slots_total,
        slots.free(hb),
        cpu=cpu,
        memory=memory,
        weight=hb.weight,
        last_assigned=slots.last_dispatch(hb.worker_id),
        selector=config.selector(hb.worker_group),
        busy=config.busy.busy(cpu, memory),
    )


class WorkerRegistry:
    def __init__(self, config: MasterConfig, clock: Callable[[], datetime]) -> None:
        self._timeout = timedelta(seconds=config.worker_timeout_s)
        self._config = config
        self._latest: dict[str, WorkerHeartbeat] = {}
        self.slots = SlotCount()
        self._previous: dict[str, WorkerHeartbeat] = {}
        # Until a full timeout has passed (and at least WARM_S: with a timeout of a second or
        # two, a master starting on a busy machine may not have read the heartbeats yet), a
        # worker we have no heartbeat of may just not have been read yet: nothing is declared
        # lost before then.
        self._warm_at = clock() + max(self._timeout, timedelta(seconds=WARM_S))
        topic = config.kafka.topics.heartbeats
        self._consumer = Consumer(
            config.kafka.consumer_config("registry", f"registry-{uuid.uuid4()}")
        )
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
                if previous is not None and previous.started_at != hb.started_at:
                    self._previous[hb.worker_id] = previous  # restarted under the same id
                self._latest[hb.worker_id] = hb
                self.slots.heartbeat(hb)

    def live(self, now: datetime) -> Workers:
        groups: dict[str, list[WorkerView]] = {}
        for hb in self._latest.values():
            if now - hb.at > self._timeout:
                continue
            groups.setdefault(hb.worker_group, []).append(view(hb, self._config, self.slots))
        return groups

    def has_free_slot(self, group: str, now: datetime) -> bool:
        return has_free_slot(self.live(now), group)

    def lost(self, worker_id: str, now: datetime) -> LostWorker | None:
        """Why attempts on `worker_id` can no longer finish, or None while it is alive."""
        hb = self._latest.get(worker_id)
        if hb is None:
            if now < self._warm_at:
                return None
            return LostWorker(worker_id, "", datetime.min.replace(tzinfo=UTC), None,
                              "no heartbeat from the worker", None)  # fmt: skip
        if now - hb.at > self._timeout:
            age = (now - hb.at).total_seconds()
            return LostWorker(worker_id, hb.worker_group, hb.started_at, hb.at,
                              f"no heartbeat for {age:.1f}s", None)  # fmt: skip
        old = self._previous.get(worker_id)
        if old is None:
            return None
        return LostWorker(worker_id, hb.worker_group, old.started_at, old.at,
                          "worker restarted", hb.started_at)  # fmt: skip

    def lost_keys(self, worker_ids: list[str], now: datetime) -> list[tuple[str, datetime, object]]:
        """Which of `worker_ids` are lost now, each as (worker, lost process, dispatches
        covered): a key that changes only when a new verdict does."""
        out: list[tuple[str, datetime, object]] = []
        for w in worker_ids:
            v = self.lost(w, now)
            if v is not None:
                out.append((w, v.incarnation, v.dispatched_before))
        return out

    def close(self) -> None:
        self._consumer.close()
