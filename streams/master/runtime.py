"""The master: a confluent-kafka consumer group on the commands topic, one owner per partition.

It wires; it does not decide. Per batch: read the clock once, decide each command against
its partition's state, append the events (and derived dispatch records), tick due
instances, flush, and only then commit the commands' offsets (at-least-once; decisions are
idempotent, so a redelivered command changes nothing). Partition state is rebuilt from the
events topic on assignment, from the loop, never inside the rebalance callback.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from infra.settings import Settings
from schemas.errors import DecodeError
from schemas.records import COMMANDS, EVENTS
from schemas.serde import expect
from streams.core.decide import decide
from streams.core.events import InstanceEvent, TaskDispatched, TaskKillRequested
from streams.core.evolve import evolve
from streams.core.placement import Workers
from streams.core.records import KillTask, TaskAssignment
from streams.core.tick import tick
from streams.kafka.batching import consume_batch
from streams.kafka.deadletter import dead_letter
from streams.kafka.partitioning import partition_for
from streams.kafka.producer import Producer
from streams.kafka.reader import read_to_end
from streams.master.dispatching import assignment, kill, unacknowledged
from streams.master.partitions import PartitionState
from streams.master.registry import WorkerRegistry

log = logging.getLogger("tideflow.master")

WAIT_FOR_WORKER = timedelta(milliseconds=500)  # how often a task with no live worker retries


def utcnow() -> datetime:
    return datetime.now(UTC)


class Master:
    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
        batch_size: int = 500,
    ) -> None:
        self._settings = settings
        self._topics = settings.topics
        self._clock = clock
        self._batch_size = batch_size
        self._producer = Producer(settings)
        self._registry = WorkerRegistry(settings, clock)
        self._parts: dict[int, PartitionState] = {}
        self._owned: set[int] = set()
        self._to_recover: set[int] = set()
        self.epoch = 0
        self._consumer = Consumer(
            settings.consumer_config("master", f"{self._topics.prefix}master")
        )
        topic = self._topics.commands
        self._partitions = len(
            self._consumer.list_topics(topic, timeout=30).topics[topic].partitions
        )
        self._consumer.subscribe(
            [self._topics.commands],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )

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
            self._parts.pop(tp.partition, None)
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
        self._registry.poll()
        while self._to_recover:
            self._partition(self._to_recover.pop())
        batch = consume_batch(self._consumer, self._batch_size, timeout)
        now = self._clock()
        workers = self._registry.live(now)
        for msg in batch:
            self._handle(msg, now, workers)
        self._tick(now, workers)
        self._producer.flush()  # acknowledged before offsets move: at-least-once
        if batch:
            try:
                self._consumer.commit(asynchronous=False)
            except KafkaException as exc:  # partitions moved mid-batch; the new owner redoes it
                log.warning("commit failed (%s); commands will be redelivered", exc)
        return len(batch)

    def close(self) -> None:
        try:
            self._producer.flush()
        finally:
            self._consumer.close()  # leaves the group: partitions move without a timeout
            self._registry.close()

    # -- per record --------------------------------------------------------------------------

    def _handle(self, msg: Message, now: datetime, workers: Workers) -> None:
        p = msg.partition()
        if msg.error() or p is None:
            if msg.error():
                log.warning("consume error: %s", msg.error())
            return
        if p not in self._owned:
            return  # revoked while this batch was in flight
        try:
            command: Any = expect(msg.value(), COMMANDS)
        except DecodeError as exc:
            dead_letter(self._producer, self._settings, msg, str(exc))
            return
        expected = partition_for(command.instance_id, self._partitions)
        if expected != p:  # its events would split the instance across two owners
            reason = f"instance {command.instance_id} belongs to partition {expected}, not {p}"
            dead_letter(self._producer, self._settings, msg, reason)
            return
        part = self._partition(p)
        events = decide(part.get(command.instance_id), command, now, workers)
        self._emit(part, command.instance_id, events, now)
        part.arm(part.get(command.instance_id))

    def _tick(self, now: datetime, workers: Workers) -> None:
        for part in list(self._parts.values()):
            for instance_id in part.due(now):
                self._emit(part, instance_id, tick(part.get(instance_id), now, workers), now)
                part.arm(part.get(instance_id), not_before=now + WAIT_FOR_WORKER)

    def _emit(
        self, part: PartitionState, instance_id: str, events: list[InstanceEvent], now: datetime
    ) -> None:
        state = part.get(instance_id)
        for event in events:
            self._producer.send(self._topics.events, instance_id, event, partition=part.partition)
            state = evolve(state, event)
            if isinstance(event, TaskDispatched):
                task = state.tasks[event.task_code]
                self._send_dispatch(assignment(state, task, self.epoch, now))
                self._registry.note_dispatch(event.worker_id)
            elif isinstance(event, TaskKillRequested):
                self._send_dispatch(kill(state, state.tasks[event.task_code], self.epoch, now))
        part.instances[instance_id] = state

    def _send_dispatch(self, record: TaskAssignment | KillTask) -> None:
        self._producer.send(self._topics.dispatch, record.worker_id, record)

    # -- recovery ----------------------------------------------------------------------------

    def _partition(self, p: int) -> PartitionState:
        """The partition's state, rebuilt from the events topic the first time it is needed."""
        part = self._parts.get(p)
        if part is not None:
            return part
        self._to_recover.discard(p)
        part = PartitionState(p)
        count = 0
        for msg in read_to_end(self._settings, self._topics.events, [p]):
            try:
                event = expect(msg.value(), EVENTS)
            except DecodeError as exc:
                log.error("events[%s]@%s unreadable, skipped: %s", p, msg.offset(), exc)
                continue
            part.apply(event.instance_id, [event])
            count += 1
        now = self._clock()
        for state in part.instances.values():
            for record in unacknowledged(state, self.epoch, now):
                self._send_dispatch(record)
            part.arm(state)
        self._parts[p] = part
        log.info("partition %s rebuilt from %s events, %s instances", p, count, len(part.instances))
        return part


def run_master(settings: Settings) -> None:
    """Run a master until SIGTERM or SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    Master(settings).run(stop)
