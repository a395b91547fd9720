"""The master: a confluent-kafka consumer group on the commands topic, one owner per partition.

It wires; it does not decide. Per batch: read the clock once, decide each command against
its partition's state (`intake`), tick due instances and give free worker slots to
instances waiting for one (`timed`), flush, and only then commit the commands' offsets, at
most every COMMIT_EVERY_S (at-least-once; decisions are idempotent, so a redelivered command
changes nothing). Partition state is rebuilt from the events topic on assignment
(`recovery`), from the loop, never inside the rebalance callback.

Its parts are given, not built (the composition root, `infra.compose.master`, builds them):
the group consumer, a held producer, the worker registry, the snapshot store, the clock, and
the core's `decide` and `tick`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streams.core.decide import decide as core_decide
from streams.core.tick import tick as core_tick
from streams.kafka.batching import consume_batch
from streams.kafka.process import CommitThrottle, utcnow
from streams.kafka.producer import Producer
from streams.master.appender import Appender
from streams.master.config import MasterConfig
from streams.master.decisions import Decider, Ticker
from streams.master.intake import Intake
from streams.master.partitions import PartitionState
from streams.master.recovery import Recovery
from streams.master.registry import WorkerRegistry
from streams.master.slot_waits import SlotWaits
from streams.master.snapshot_cadence import SnapshotCadence, Snapshots
from streams.master.timed import TimeDriven, active
from streams.master.worker_checks import WorkerChecks

if TYPE_CHECKING:
    from streams.master.snapshots import PartitionSnapshot

log = logging.getLogger("tideflow.master")

WORKER_CHECK_S = 1.0  # how often every attempt is swept against worker liveness
# Offsets are committed at most this often: a commit is a broker request, and a command
# decided again after a crash or a move changes nothing (decisions are idempotent).
COMMIT_EVERY_S = 0.2


class Master:
    def __init__(
        self,
        config: MasterConfig,
        *,
        consumer: Consumer,
        producer: Producer,
        registry: WorkerRegistry,
        snapshots: Snapshots | None = None,
        clock: Callable[[], datetime] = utcnow,
        decide: Decider = core_decide,
        tick: Ticker = core_tick,
        batch_size: int = 500,
    ) -> None:
        """Owns `consumer` (a group consumer of the commands topic, not yet subscribed: the
        first `step()` joins the group) and the other parts from here on (see `close()`).
        `producer` should hold records until `flush()` (`Producer(kafka, held=True)`): the
        master hands a step's records to librdkafka in one burst. `decide` and `tick` are
        the core's; a test may give others (one that raises, to prove poison is survived)."""
        self._kafka = config.kafka
        self._topics = config.kafka.topics
        self.owner_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        ack_timeout = timedelta(seconds=config.dispatch_ack_timeout_s)
        self._consumer = consumer
        self._producer = producer
        self._registry = registry
        self._clock = clock
        self._batch_size = batch_size
        self._snapshots = SnapshotCadence(snapshots, config)
        self._commits = CommitThrottle(COMMIT_EVERY_S)
        self._worker_checks = WorkerChecks(WORKER_CHECK_S)
        self._parts: dict[int, PartitionState] = {}
        self._owned: set[int] = set()
        self._to_recover: set[int] = set()
        self._slot_waits = SlotWaits()
        self._appender = Appender(
            producer, self._topics, registry.slots, self._slot_waits, self._snapshots
        )
        self._timed = TimeDriven(
            parts=self._parts, registry=registry, appender=self._appender,
            slot_waits=self._slot_waits, tick=tick, ack_timeout=ack_timeout,
            producer=producer, topics=self._topics,
        )  # fmt: skip
        self._recovery = Recovery(
            kafka=config.kafka, consumer=consumer, producer=producer, snapshots=self._snapshots,
            appender=self._appender, slots=registry.slots, arm=self._timed.arm, clock=clock,
            owner_id=self.owner_id, ack_timeout=ack_timeout,
        )  # fmt: skip
        topic = self._topics.commands
        partitions = len(consumer.list_topics(topic, timeout=30).topics[topic].partitions)
        self._intake = Intake(
            producer=producer, topics=self._topics, partitions=partitions, owned=self._owned,
            partition=self.recover, live=registry.live, decide=decide, appender=self._appender,
            ack_timeout=ack_timeout,
        )  # fmt: skip
        self._joined = False

    # -- public API --------------------------------------------------------------------------

    @property
    def partitions(self) -> frozenset[int]:
        """The commands partitions whose state this master holds now."""
        return frozenset(self._parts)

    def recover(self, partition: int) -> PartitionState:
        """The partition's state, rebuilt first if this master does not hold it yet: the
        latest snapshot, then the events after it; then `PartitionTakenOver` (the new epoch
        fences any previous owner), unacknowledged dispatches re-sent once the commands
        waiting for it are decided, timers re-armed. Held until the partition is revoked."""
        part = self._parts.get(partition)
        if part is None:
            self._to_recover.discard(partition)
            part = self._recovery.take_over(partition)
            self._parts[partition] = part
        return part

    def snapshot(self, partition: int) -> PartitionSnapshot | None:
        """Flush, then save a snapshot of the partition's state to the snapshot store now
        (as the cadence would). None when there is no store, the partition is not held, or
        another writer appended to it since our takeover (our state does not cover the log)."""
        part = self._parts.get(partition)
        if part is None:
            return None
        self._producer.flush()
        snapshot: PartitionSnapshot | None = self._snapshots.save(
            part, self._producer, self._clock()
        )
        return snapshot

    # -- rebalance callbacks only record what changed --------------------------------------

    def _on_assign(self, _c: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._owned.add(tp.partition)
            self._to_recover.add(tp.partition)
        log.info("assigned commands partitions %s", sorted(tp.partition for tp in partitions))

    def _on_revoke(self, _c: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._owned.discard(tp.partition)
            self._to_recover.discard(tp.partition)
            part = self._parts.pop(tp.partition, None)
            for t in active(part):  # the new owner counts them now
                self._registry.slots.ended(t.worker_id)
            self._slot_waits.drop_partition(tp.partition)
            self._timed.backoff.drop_partition(tp.partition)
        log.info("revoked commands partitions %s", sorted(tp.partition for tp in partitions))

    # -- the loop ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self.step()
        finally:
            self.close()

    def step(self, timeout: float = 0.05) -> int:
        """One batch: recover, consume, decide, tick, flush, commit. Returns records read."""
        if not self._joined:
            self._join()
        self._registry.poll()
        while self._to_recover:
            self.recover(self._to_recover.pop())
        batch = consume_batch(self._consumer, self._batch_size, timeout)
        for p in {p for m in batch if (p := m.partition()) is not None} & self._owned:
            self.recover(p)  # rebuilt before the clock is read: event times never go back
        now = self._clock()
        for msg in batch:
            self._intake.handle(msg, now)
        self._recovery.resend_when_caught_up(self._parts, now)
        self._timed.tick_due(now)
        self._registry.poll()  # heartbeats that came in while this step was deciding
        lost = self._registry.lost_keys(self._registry.slots.holding(), now)
        if self._worker_checks.due(time.monotonic(), lost):
            self._timed.check_workers(now)
        self._timed.place(now)
        self._producer.flush()  # acknowledged before offsets move: at-least-once
        self._commits.consumed(len(batch))
        if self._commits.due():
            self._commit()
        self._snapshots.save_due(self._parts, self._producer, now)
        return len(batch)

    def _join(self) -> None:
        """Subscribe: the group assigns partitions from the next poll on. Not done by the
        constructor, so a master used only to `recover` a partition (the bench) never joins:
        closing a consumer whose cooperative join is still in flight can hang in librdkafka
        (confluentinc/librdkafka#4041, seen here as a bench run stuck in `close()`)."""
        self._consumer.subscribe(
            [self._topics.commands],
            on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke,
        )  # fmt: skip
        self._joined = True

    def _commit(self, wait: bool = False) -> None:
        """Commit the positions of everything decided (its output is already flushed)."""
        try:
            if wait:
                self._consumer.commit(asynchronous=False)
            else:
                self._consumer.commit(asynchronous=True)
        except KafkaException as exc:  # partitions moved mid-batch; the new owner redoes it
            log.warning("commit failed (%s); commands will be redelivered", exc)

    def close(self, leave_group: bool | None = None) -> None:
        """Flush, commit what was decided, close the registry and the snapshot store. The
        consumer is closed (leaving the group: partitions move at once) when `leave_group`
        is true, by default `KafkaConfig.leave_group_on_stop`; otherwise it is left to the
        process's end (`exit_keeping_membership`), and partitions move after the session
        timeout. A process that goes on after `close()` must leave: a consumer left to the
        garbage collector blocks it."""
        if leave_group is None:
            leave_group = self._kafka.leave_group_on_stop
        try:
            self._producer.flush()
            if self._commits.pending:
                self._commit(wait=True)
        finally:
            if leave_group:
                self._consumer.close()
            self._registry.close()
            self._snapshots.close()
