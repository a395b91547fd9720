"""The master: a confluent-kafka consumer group on the commands topic, one owner per partition.

It wires; it does not decide. Per batch: read the clock once, decide each command against
its partition's state, append the events (and derived dispatch records), tick due
instances, give free worker slots to instances waiting for one, flush, and only then commit
the commands' offsets, at most every COMMIT_EVERY_S (at-least-once; decisions are
idempotent, so a redelivered command changes nothing). Partition state is rebuilt from the
events topic on assignment, from the loop, never inside the rebalance callback.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from schemas.catalog import COMMANDS, EVENTS
from schemas.errors import DecodeError
from schemas.serde import expect
from streams.core.decide import decide
from streams.core.decide.failover import lost_workers, on_worker_lost
from streams.core.events import (
    InstanceEvent,
    PartitionTakenOver,
    TaskDispatched,
    TaskFailed,
    TaskFailedOver,
    TaskKilled,
    TaskKillRequested,
    TaskSucceeded,
    WorkerLost,
)
from streams.core.instance import TaskRun
from streams.core.tick import tick, waiting_for_slots
from streams.core.worker_messages import KillTask, TaskAssignment
from streams.kafka.batching import consume_batch
from streams.kafka.deadletter import dead_letter
from streams.kafka.partitioning import partition_for
from streams.kafka.process import (
    CommitThrottle,
    utcnow,
    watermarks,
)
from streams.kafka.producer import Producer
from streams.kafka.reader import read_to_end
from streams.master.config import MasterConfig
from streams.master.dispatching import assignment, kill, unacknowledged
from streams.master.partitions import PartitionState
from streams.master.registry import LostWorker, WorkerRegistry
from streams.master.slot_waits import SlotWaits
from streams.master.snapshot_cadence import SnapshotCadence, Snapshots

log = logging.getLogger("tideflow.master")

# An instance is not ticked again sooner than this (slot waits are not ticks: see _place).
TICK_GAP = timedelta(milliseconds=500)
WORKER_CHECK_S = 1.0  # how often attempts are checked against worker liveness
# Offsets are committed at most this often: a commit is a broker request, and a command
# decided again after a crash or a move changes nothing (decisions are idempotent).
COMMIT_EVERY_S = 0.2


class Master:
    def __init__(
        self,
        config: MasterConfig,
        clock: Callable[[], datetime] = utcnow,
        batch_size: int = 500,
        snapshots: Snapshots | None = None,
    ) -> None:
        self._kafka = config.kafka
        self.owner_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._ack_timeout = timedelta(seconds=config.dispatch_ack_timeout_s)
        self._snapshots = SnapshotCadence(snapshots, config)
        self._resend_at: dict[int, int] = {}  # partition -> commands offset to reach first
        self._next_worker_check = 0.0
        self._commits = CommitThrottle(COMMIT_EVERY_S)
        self._topics = config.kafka.topics
        self._clock = clock
        self._batch_size = batch_size
        self._producer = Producer(config.kafka, held=True)  # one burst per step
        self._registry = WorkerRegistry(config, clock)
        self._parts: dict[int, PartitionState] = {}
        self._slot_waits = SlotWaits()
        self._owned: set[int] = set()
        self._to_recover: set[int] = set()
        self._consumer = Consumer(
            config.kafka.consumer_config("master", f"{self._topics.prefix}master")
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
            part = self._parts.pop(tp.partition, None)
            for t in _active(part):  # the new owner counts them now
                self._registry.slots.ended(t.worker_id)
            self._slot_waits.drop_partition(tp.partition)
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
        for p in {p for m in batch if (p := m.partition()) is not None} & self._owned:
            self._partition(p)  # rebuilt before the clock is read: event times never go back
        now = self._clock()
        for msg in batch:
            self._handle(msg, now)
        self._resend_when_caught_up(now)
        self._tick(now)
        if time.monotonic() >= self._next_worker_check:
            self._next_worker_check = time.monotonic() + WORKER_CHECK_S
            self._check_workers(now)
        self._place(now)
        self._producer.flush()  # acknowledged before offsets move: at-least-once
        self._commits.consumed(len(batch))
        if self._commits.due():
            self._commit()
        self._snapshots.save_due(self._parts, self._producer, now)
        return len(batch)

    def _commit(self, wait: bool = False) -> None:
        """Commit the positions of everything decided (its output is already flushed)."""
        try:
            if wait:
                self._consumer.commit(asynchronous=False)
            else:
                self._consumer.commit(asynchronous=True)
        except KafkaException as exc:  # partitions moved mid-batch; the new owner redoes it
            log.warning("commit failed (%s); commands will be redelivered", exc)

    def close(self) -> None:
        try:
            self._producer.flush()
            if self._commits.pending:
                self._commit(wait=True)
        finally:
            if self._kafka.leave_group_on_stop:
                self._consumer.close()  # leaves the group: partitions move at once
            self._registry.close()
            self._snapshots.close()

    # -- per record --------------------------------------------------------------------------

    def _handle(self, msg: Message, now: datetime) -> None:
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
            dead_letter(self._producer, self._topics.dead_letter, msg, str(exc))
            return
        expected = partition_for(command.instance_id, self._partitions)
        if expected != p:  # its events would split the instance across two owners
            reason = f"instance {command.instance_id} belongs to partition {expected}, not {p}"
            dead_letter(self._producer, self._topics.dead_letter, msg, reason)
            return
        part = self._partition(p)
        workers = self._registry.live(now)  # per command: earlier ones took slots
        events = decide(part.get(command.instance_id), command, now, workers)
        self._emit(part, command.instance_id, events, now)
        self._arm(part, command.instance_id, now)

    def _tick(self, now: datetime) -> None:
        for part in list(self._parts.values()):
            for instance_id in part.due(now):
                self._tick_one(part, instance_id, now, not_before=now + TICK_GAP)

    def _tick_one(
        self, part: PartitionState, instance_id: str, now: datetime, not_before: datetime | None
    ) -> None:
        workers = self._registry.live(now)
        events = tick(part.get(instance_id), now, workers, self._ack_timeout)
        self._emit(part, instance_id, events, now)
        self._arm(part, instance_id, now, not_before)

    def _arm(
        self,
        part: PartitionState,
        instance_id: str,
        now: datetime,
        not_before: datetime | None = None,
    ) -> None:
        """Schedule the instance's next tick, and queue it for a slot if it waits for one."""
        state = part.get(instance_id)
        part.arm(state, now, not_before)
        self._slot_waits.update((part.partition, instance_id), waiting_for_slots(state, now))

    def _place(self, now: datetime) -> None:
        """Give free slots to the instances that have waited for one longest."""
        has_free_slot = partial(self._registry.has_free_slot, now=now)
        for p, instance_id in self._slot_waits.ready(has_free_slot):
            part = self._parts.get(p)
            if part is None:  # revoked: its new owner places it
                self._slot_waits.update((p, instance_id), frozenset())
                continue
            self._tick_one(part, instance_id, now, not_before=None)

    def _emit(
        self, part: PartitionState, instance_id: str, events: list[InstanceEvent], now: datetime
    ) -> None:
        for event in events:
            event = replace(event, epoch=part.epoch)  # fencing: every event carries its epoch
            self._producer.send(self._topics.events, instance_id, event, partition=part.partition)
            if isinstance(event, TaskSucceeded | TaskFailed | TaskKilled | TaskFailedOver):
                ended = part.get(instance_id).tasks.get(event.task_code)
                if ended is not None:
                    self._registry.slots.ended(ended.worker_id)  # its slot is free again
            part.fold(event)
            self._snapshots.appended(part.partition)
            state = part.get(instance_id)
            if isinstance(event, TaskDispatched):
                task = state.tasks[event.task_code]
                self._send_dispatch(assignment(state, task, part.epoch, now))
                self._registry.slots.dispatched(event.worker_id)
            elif isinstance(event, TaskKillRequested | TaskFailedOver):
                # a failed-over attempt is killed too, should its worker come back
                self._send_dispatch(kill(state, state.tasks[event.task_code], part.epoch, now))

    def _send_dispatch(self, record: TaskAssignment | KillTask) -> None:
        self._producer.send(self._topics.dispatch, record.worker_id, record)

    # -- worker failover --------------------------------------------------------------------

    def _check_workers(self, now: datetime) -> None:
        """Fail over every active attempt whose worker is lost (silent past the timeout,
        unknown, or restarted since the dispatch); recount the attempts on each worker."""
        self._registry.slots.recount(Counter(t.worker_id for t in _active(*self._parts.values())))
        for part in list(self._parts.values()):
            for instance_id, state in list(part.instances.items()):
                for verdict in lost_workers(state, partial(self._registry.lost, now=now), now):
                    self._record_lost(part, verdict, now)
                    live = self._registry.live(now)
                    events = on_worker_lost(part.get(instance_id), verdict, now, live)
                    self._emit(part, instance_id, events, now)
                    self._arm(part, instance_id, now)

    def _record_lost(self, part: PartitionState, verdict: LostWorker, now: datetime) -> None:
        if (verdict.worker_id, verdict.incarnation) in part.lost:
            return
        event = WorkerLost(
            worker_id=verdict.worker_id,
            worker_group=verdict.worker_group,
            incarnation=verdict.incarnation,
            last_heartbeat_at=verdict.last_heartbeat_at or verdict.incarnation,
            partition=part.partition,
            at=now,
            epoch=part.epoch,
        )
        key = f"worker/{verdict.worker_id}"
        self._producer.send(self._topics.events, key, event, partition=part.partition)
        part.fold(event)
        log.warning("partition %s: %s", part.partition, verdict.reason)

    # -- recovery ----------------------------------------------------------------------------

    def _partition(self, p: int) -> PartitionState:
        """The partition's state, rebuilt the first time it is needed: the latest snapshot,
        then the events after it; then `PartitionTakenOver` (the new epoch fences any
        previous owner), unacknowledged dispatches re-sent, timers re-armed."""
        part = self._parts.get(p)
        if part is not None:
            return part
        self._to_recover.discard(p)
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
            owner=self.owner_id,
            previous_owner=part.owner,
            epoch=part.epoch + 1,
            events_offset=end,
            at=now,
        )
        self._producer.flush()  # earlier records of ours must not count as written after `end`
        self._snapshots.taken_over(p, end, self._producer, replayed=count)
        self._producer.send(self._topics.events, f"partition/{p}", taken, partition=p)
        part.fold(taken)
        for instance_id in part.instances:
            self._arm(part, instance_id, now)
        for t in _active(part):
            self._registry.slots.dispatched(t.worker_id)
        # Dispatches never acknowledged in the log are re-sent only once the commands that
        # were waiting for this partition are decided: their acks may be among them, and an
        # attempt already run (by a worker that has since restarted) must not run again.
        self._resend_at[p] = self._commands_end(p)
        self._producer.flush()
        self._parts[p] = part
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

    def _resend_when_caught_up(self, now: datetime) -> None:
        for p, end in list(self._resend_at.items()):
            part = self._parts.get(p)
            if part is None:
                del self._resend_at[p]
                continue
            position = self._consumer.position([TopicPartition(self._topics.commands, p)])[0]
            if position.offset < end:
                continue  # still deciding the backlog
            del self._resend_at[p]
            for state in part.instances.values():
                for record in unacknowledged(state, part.epoch, now):
                    self._send_dispatch(record)


def _active(*parts: PartitionState | None) -> Iterator[TaskRun]:
    for part in parts:
        if part is not None:
            for state in part.instances.values():
                yield from state.active()
