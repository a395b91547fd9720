"""Taking over a partition: its state rebuilt from the latest snapshot and the events after
it, `PartitionTakenOver` appended (the new epoch fences any previous owner), worker slots
counted, timers re-armed, and dispatches never acknowledged re-sent once the commands that
were waiting for the partition are decided.

It runs from the master's loop, never inside a rebalance callback (those only record what
changed), as quix-streams runs its state recovery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from confluent_kafka import Consumer, TopicPartition

from schemas.catalog import EVENTS
from schemas.errors import DecodeError
from schemas.serde import expect
from streams.core.events import PartitionTakenOver
from streams.kafka.config import KafkaConfig
from streams.kafka.process import watermarks
from streams.kafka.producer import Producer
from streams.kafka.reader import read_to_end
from streams.master.appender import Appender
from streams.master.dispatching import unacknowledged
from streams.master.partitions import PartitionState
from streams.master.slot_count import SlotCount
from streams.master.snapshot_cadence import SnapshotCadence
from streams.master.timed import active

log = logging.getLogger("tideflow.master")


class Recovery:
    def __init__(
        self,
        *,
        kafka: KafkaConfig,
        consumer: Consumer,
        producer: Producer,
        snapshots: SnapshotCadence,
        appender: Appender,
        slots: SlotCount,
        arm: Callable[[PartitionState, datetime], None],
        clock: Callable[[], datetime],
        owner_id: str,
        ack_timeout: timedelta,
    ) -> None:
        self._kafka = kafka
        self._topics = kafka.topics
        self._consumer = consumer
        self._producer = producer
        self._snapshots = snapshots
        self._appender = appender
        self._slots = slots
        self._arm = arm
        self._clock = clock
        self._owner_id = owner_id
        self._ack_timeout = ack_timeout
        self._resend_at: dict[int, int] = {}  # partition -> commands offset to reach first

    def take_over(self, p: int) -> PartitionState:
        """Rebuild partition `p` and append our `PartitionTakenOver`; flushed on return."""
        part = PartitionState(p, ack_timeout=self._ack_timeout)
        started = time.monotonic()
        snapshot = self._snapshots.load(p)
        end = 0
        if snapshot is not None:
            part.instances, part.epoch = dict(snapshot.instances), snapshot.epoch
            part.owner, part.lost = snapshot.owner, set(snapshot.lost)
            end = snapshot.events_offset
        count = 0
        for msg in read_to_end(self._kafka, self._topics.events, [p], start={p: end}):
            try:
                part.fold(expect(msg.value(), EVENTS))
            except DecodeError as exc:
                log.error("events[%s]@%s unreadable, skipped: %s", p, msg.offset(), exc)
            end = (msg.offset() or 0) + 1
            count += 1
        now = self._clock()
        taken = PartitionTakenOver(
            partition=p,
            owner=self._owner_id,
            previous_owner=part.owner,
            epoch=part.epoch + 1,
            events_offset=end,
            at=now,
        )
        self._producer.flush()  # earlier records of ours must not count as written after `end`
        self._snapshots.taken_over(p, end, self._producer, replayed=count)
        self._producer.send(self._topics.events, f"partition/{p}", taken, partition=p)
        part.fold(taken)
        self._arm(part, now)
        for t in active(part):
            self._slots.dispatched(t.worker_id)
        # Dispatches never acknowledged in the log are re-sent only once the commands that
        # were waiting for this partition are decided: their acks may be among them, and an
        # attempt already run (by a worker that has since restarted) must not run again.
        self._resend_at[p] = self._commands_end(p)
        self._producer.flush()
        log.info(
            "partition %s taken over at epoch %s: snapshot %s, %s events replayed, "
            "%s instances, %s fenced, %.1f ms",
            p, part.epoch, "used" if snapshot else "none", count, len(part.instances),
            part.fenced, (time.monotonic() - started) * 1000,
        )  # fmt: skip
        return part

    def _commands_end(self, p: int) -> int:
        """The commands offset to reach before re-sending (-1: nothing is waiting)."""
        tp = TopicPartition(self._topics.commands, p)
        _, end = watermarks(self._consumer, tp)
        committed = self._consumer.committed([tp], timeout=10)[0].offset
        return -1 if committed >= end else end

    def resend_when_caught_up(self, parts: dict[int, PartitionState], now: datetime) -> None:
        for p, end in list(self._resend_at.items()):
            part = parts.get(p)
            if part is None:
                del self._resend_at[p]
                continue
            position = self._consumer.position([TopicPartition(self._topics.commands, p)])[0]
            if position.offset < end:
                continue  # still deciding the backlog
            del self._resend_at[p]
            for state in part.instances.values():
                for record in unacknowledged(state, part.epoch, now):
                    self._appender.send_dispatch(record)
