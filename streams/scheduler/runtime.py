"""The scheduler: a confluent-kafka consumer group on the schedule-commands topic, one owner
per partition; the schedules topic (same partition count, same key) is its log of facts.

It wires; it does not decide. On assignment a partition's schedules are rebuilt from the
schedules log (from the loop, never inside the rebalance callback). Per step: decide each
schedule command against its schedule's state (`streams.core.schedules.decide`), append the
events; fire what is due (`streams.core.schedules.fire`) before the commands of a batch are
decided; then commit the commands' offsets.

Firing one time is two writes, in this order: `StartWorkflow` on the commands topic (flushed:
acknowledged by the broker), then `ScheduleFired` on the schedules topic. A crash between the
two fires the time again after a restart; the start's instance id and command id derive from
(schedule, fire time), and a master decides a start it has seen once only, so the time still
makes one instance. The other order could record a fire whose start was lost. The same
argument covers two schedulers during a takeover and a zombie woken from SIGSTOP: firing is
idempotent, so no epoch fencing is needed for it.

Backfills (`streams.core.schedules.backfill_flow`, whose docstring says why) live in the same
partitions, keyed by backfill id: a `RequestBackfill` or `StopBackfill` is decided like a
schedule command, and the end of an instance a RUNNING backfill waits for, read from the
events topic (`InstanceEnds`), is decided as it arrives. A date's `StartWorkflow` is flushed
before its `BackfillDateStarted` (every start of a step before any backfill fact of it), as a
fire is; a rebuilt partition re-applies the ends it missed and restarts lost starts
(`top_up`), which derive the same ids.

Its parts are given (the composition root, `infra.compose.scheduler`, builds them).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from schemas.catalog import SCHEDULE_COMMANDS, SCHEDULES
from schemas.errors import DecodeError
from schemas.serde import expect
from streams.core.schedules import backfill_flow
from streams.core.schedules.backfill_messages import (
    BackfillCommand,
    BackfillDateStarted,
    BackfillEvent,
)
from streams.core.schedules.decide import decide
from streams.core.schedules.fire import due_fire_times, fire, next_fire_time
from streams.core.schedules.messages import ScheduleCommand, ScheduleEvent
from streams.kafka.batching import consume_batch
from streams.kafka.deadletter import dead_letter
from streams.kafka.partitioning import partition_for
from streams.kafka.process import CommitThrottle, utcnow
from streams.kafka.producer import Producer
from streams.kafka.reader import read_to_end
from streams.scheduler.config import SchedulerConfig
from streams.scheduler.definitions import Definitions
from streams.scheduler.instance_ends import InstanceEnds
from streams.scheduler.partition import SchedulePartition

log = logging.getLogger("tideflow.scheduler")

COMMIT_EVERY_S = 0.2


class Scheduler:
    def __init__(
        self,
        config: SchedulerConfig,
        *,
        consumer: Consumer,
        producer: Producer,
        definitions: Definitions,
        instance_ends: InstanceEnds,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """Owns `consumer` (a group consumer of the schedule-commands topic, not yet
        subscribed), `producer`, `definitions` and `instance_ends` from here on (see
        `close()`)."""
        self._cfg = config
        self._kafka = config.kafka
        self._topics = config.kafka.topics
        self.owner_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._consumer = consumer
        self._producer = producer
        self._definitions = definitions
        self._ends = instance_ends
        self._facts: list[tuple[SchedulePartition, BackfillEvent]] = []  # after the starts
        self._clock = clock
        self._commits = CommitThrottle(COMMIT_EVERY_S)
        self._parts: dict[int, SchedulePartition] = {}
        self._owned: set[int] = set()
        self._to_recover: set[int] = set()
        self._next_fire_check = 0.0
        self._missing_workflow_logged: set[str] = set()
        topic = self._topics.schedule_commands
        meta = consumer.list_topics(topic, timeout=30).topics[topic]
        self._partition_count = len(meta.partitions)
        self._joined = False
        self.fired = 0  # fire times fired by this process (a restart may fire some again)

    @property
    def partitions(self) -> frozenset[int]:
        return frozenset(self._parts)

    # -- rebalance callbacks only record what changed --------------------------------------

    def _on_assign(self, _c: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._owned.add(tp.partition)
            self._to_recover.add(tp.partition)
        log.info("assigned schedule partitions %s", sorted(tp.partition for tp in partitions))

    def _on_revoke(self, _c: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._owned.discard(tp.partition)
            self._to_recover.discard(tp.partition)
            self._parts.pop(tp.partition, None)
        log.info("revoked schedule partitions %s", sorted(tp.partition for tp in partitions))

    # -- the loop ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self.step()
        finally:
            self.close()

    def step(self, timeout: float = 0.05) -> int:
        """One step: recover, consume, fire what is due, decide the commands, commit."""
        if not self._joined:
            self._consumer.subscribe(
                [self._topics.schedule_commands],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_revoke,
            )
            self._joined = True
        while self._to_recover:
            self._recover(self._to_recover.pop())
        self._definitions.poll()
        ends = self._ends.poll()
        batch = consume_batch(self._consumer, self._cfg.batch_size, timeout)
        for p in {p for m in batch if (p := m.partition()) is not None} & self._owned:
            if p not in self._parts:
                self._recover(p)
        now = self._clock()
        # What was due before the batch's commands fires first: a fire time that came while
        # this scheduler was down still fires after it restarts, even when an offline
        # command waits behind it.
        if batch or time.monotonic() >= self._next_fire_check:
            self._next_fire_check = time.monotonic() + self._cfg.fire_check_s
            self.fire_due(now)
        if batch:
            self._definitions.catch_up()
        for msg in batch:
            self._handle(msg, now)
        self._instances_ended(ends, now)
        self._append_facts()
        self._producer.flush()
        self._commits.consumed(len(batch))
        if self._commits.due():
            self._commit()
        return len(batch)

    def _recover(self, p: int) -> SchedulePartition:
        started = time.monotonic()
        part = SchedulePartition(p)
        count = 0
        for msg in read_to_end(self._kafka, self._topics.schedules, [p]):
            try:
                part.fold(expect(msg.value(), SCHEDULES))
            except DecodeError as exc:
                log.error("schedules[%s]@%s unreadable, skipped: %s", p, msg.offset(), exc)
            count += 1
        self._parts[p] = part
        self._resume_backfills(part)
        log.info(
            "schedule partition %s rebuilt: %s events, %s schedules, %.1f ms",
            p,
            count,
            len(part.schedules),
            (time.monotonic() - started) * 1000,
        )
        return part

    def _handle(self, msg: Message, now: datetime) -> None:
        p = msg.partition()
        if msg.error() or p is None or p not in self._owned:
            return
        try:
            command: ScheduleCommand | BackfillCommand = expect(msg.value(), SCHEDULE_COMMANDS)
        except DecodeError as exc:
            dead_letter(self._producer, self._topics.dead_letter, msg, str(exc))
            return
        key = command.backfill_id if isinstance(command, BackfillCommand) else command.schedule_id
        expected = partition_for(key, self._partition_count)
        if expected != p:  # its events would land where the owner of `expected` cannot see
            self._producer.send_raw(
                self._topics.schedule_commands, msg.key(), msg.value(), partition=expected
            )
            log.warning("schedule command on partition %s forwarded to %s", p, expected)
            return
        part = self._parts.get(p) or self._recover(p)
        workflows = self._definitions.latest.keys()
        try:
            if isinstance(command, BackfillCommand):
                bf = part.backfill(command.backfill_id)
                self._backfill(part, backfill_flow.decide(bf, command, now, workflows))
                return
            events = decide(part.get(command.schedule_id), command, now, workflows)
        except Exception as exc:  # a bug in the core: recorded, never fatal
            log.exception("deciding %s raised; dead-lettered", command.command_id)
            dead_letter(self._producer, self._topics.dead_letter, msg, f"deciding raised {exc}")
            return
        self._append(part, events)

    def _append(self, part: SchedulePartition, events: list[ScheduleEvent]) -> None:
        for event in events:
            self._producer.send(
                self._topics.schedules, event.schedule_id, event, partition=part.partition
            )
            part.fold(event)

    # -- backfills ---------------------------------------------------------------------------

    def _backfill(self, part: SchedulePartition, events: list[BackfillEvent]) -> None:
        """Fold `events` into the partition, send the starts they stand for now, and queue
        the facts for `_append_facts` (after the starts are acknowledged)."""
        for event in events:
            if isinstance(event, BackfillDateStarted):
                state = part.backfill(event.backfill_id)
                assert state.spec is not None
                workflow = self._definitions.latest.get(state.spec.workflow_code)
                if workflow is None:  # unreachable once decided: a workflow is never removed
                    log.error(
                        "backfill %s: workflow %s is not registered; date %s not started",
                        event.backfill_id,
                        state.spec.workflow_code,
                        event.date,
                    )
                    continue
                start = backfill_flow.start_for(state, event, workflow)
                self._producer.send(self._topics.commands, start.instance_id, start)
            part.fold(event)
            self._facts.append((part, event))
        # An instance that ended before its start was decided again (a redelivered request
        # after a crash: its end was read already) is decided now; it will not be read again.
        for event in events:
            if isinstance(event, BackfillDateStarted):
                end_state = self._ends.ended.get(event.instance_id)
                if end_state is not None:
                    state = part.backfill(event.backfill_id)
                    now = event.at
                    self._backfill(
                        part, backfill_flow.instance_ended(state, event.instance_id, end_state, now)
                    )

    def _append_facts(self) -> None:
        if not self._facts:
            return
        self._producer.flush()  # every start of this step is acknowledged before its fact
        for part, event in self._facts:
            self._producer.send(
                self._topics.schedules, event.backfill_id, event, partition=part.partition
            )
        self._facts.clear()
        self._producer.flush()

    def _instances_ended(self, ends: list[tuple[str, str]], now: datetime) -> None:
        for instance_id, end_state in ends:
            for part in self._parts.values():
                backfill_id = part.waiting.get(instance_id)
                if backfill_id is not None:
                    state = part.backfill(backfill_id)
                    self._backfill(
                        part, backfill_flow.instance_ended(state, instance_id, end_state, now)
                    )

    def _resume_backfills(self, part: SchedulePartition) -> None:
        """A rebuilt partition's RUNNING backfills: the ends read while they were not owned
        here, and the starts a crash lost (same ids: a start sent twice is one instance)."""
        running = [b for b in part.backfills.values() if b.status == "RUNNING"]
        if not running:
            return
        self._definitions.catch_up()
        now = self._clock()
        for instance_id, backfill_id in list(part.waiting.items()):
            end_state = self._ends.ended.get(instance_id)
            if end_state is not None:
                state = part.backfill(backfill_id)
                self._backfill(
                    part, backfill_flow.instance_ended(state, instance_id, end_state, now)
                )
        for b in running:
            self._backfill(part, backfill_flow.top_up(part.backfill(b.backfill_id), now))
        self._append_facts()

    def fire_due(self, now: datetime) -> int:
        """Fire every due fire time of the owned schedules: starts first (flushed), then the
        `ScheduleFired` facts. Returns the number of fire times fired."""
        fired = []
        for part in self._parts.values():
            for state in part.due(now):
                times = due_fire_times(state, now)
                if not times:  # only times older than the catch-up window: skip to the next
                    at = next_fire_time(state, now)
                    if at is None:
                        part.pending.pop(state.schedule_id, None)
                    else:
                        part.pending[state.schedule_id] = at
                    continue
                assert state.spec is not None
                workflow = self._definitions.latest.get(state.spec.workflow_code)
                if workflow is None:
                    if state.schedule_id not in self._missing_workflow_logged:
                        self._missing_workflow_logged.add(state.schedule_id)
                        log.error(
                            "schedule %s: workflow %s is not registered; not fired",
                            state.schedule_id,
                            state.spec.workflow_code,
                        )
                    continue
                for fire_time in times:
                    start, event = fire(state, fire_time, workflow, now)
                    self._producer.send(self._topics.commands, start.instance_id, start)
                    fired.append((part, event))
        if not fired:
            return 0
        self._producer.flush()  # the starts are acknowledged before their fires are recorded
        for part, event in fired:
            self._append(part, [event])
        self._producer.flush()
        self.fired += len(fired)
        return len(fired)

    def _commit(self, wait: bool = False) -> None:
        try:
            if wait:
                self._consumer.commit(asynchronous=False)
            else:
                self._consumer.commit(asynchronous=True)
        except KafkaException as exc:
            log.warning("commit failed (%s); schedule commands will be redelivered", exc)

    def close(self, leave_group: bool | None = None) -> None:
        if leave_group is None:
            leave_group = self._kafka.leave_group_on_stop
        try:
            self._producer.flush()
            if self._commits.pending:
                self._commit(wait=True)
        finally:
            if leave_group:
                self._consumer.close()
            self._definitions.close()
            self._ends.close()
