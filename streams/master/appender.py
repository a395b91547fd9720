"""Applying a staged decision: its events appended to the partition, its dispatch records
sent, the partition state and the worker slot counts brought along, its next tick armed.

Nothing here decides or raises on bad input (the core's part is done in `decisions.stage`);
records are handed to the master's held producer, which sends them at the step's flush.
"""

from __future__ import annotations

from datetime import datetime

from streams.core.events import (
    TaskDispatched,
    TaskFailed,
    TaskFailedOver,
    TaskKilled,
    TaskSucceeded,
    WorkerLost,
)
from streams.core.worker_messages import KillTask, TaskAssignment
from streams.kafka.producer import Producer
from streams.kafka.topics import Topics
from streams.master.decisions import Decision
from streams.master.partitions import PartitionState
from streams.master.registry import LostWorker
from streams.master.slot_count import SlotCount
from streams.master.slot_waits import SlotWaits
from streams.master.snapshot_cadence import SnapshotCadence

ENDED = TaskSucceeded | TaskFailed | TaskKilled | TaskFailedOver


class Appender:
    def __init__(
        self,
        producer: Producer,
        topics: Topics,
        slots: SlotCount,
        slot_waits: SlotWaits,
        snapshots: SnapshotCadence,
    ) -> None:
        self._producer = producer
        self._events = topics.events
        self._dispatch = topics.dispatch
        self._slots = slots
        self._slot_waits = slot_waits
        self._snapshots = snapshots

    def apply(
        self, part: PartitionState, decision: Decision, not_before: datetime | None = None
    ) -> None:
        """Append `decision`'s events, send its dispatch records, fold it into `part`, and
        arm its next tick (not before `not_before`) and its wait for a slot."""
        p, instance_id = part.partition, decision.instance_id
        for step in decision.steps:
            event = step.event
            self._producer.send(self._events, instance_id, event, partition=p)
            if isinstance(event, ENDED):
                ended = step.before.tasks.get(event.task_code)
                if ended is not None:
                    self._slots.ended(ended.worker_id)  # its slot is free again
            self._snapshots.appended(p)
            if step.dispatch is not None:
                self.send_dispatch(step.dispatch)
                if isinstance(event, TaskDispatched):
                    self._slots.dispatched(event.worker_id)
        if decision.steps:
            part.instances[instance_id] = decision.after
        part.arm_at(instance_id, decision.due, not_before)
        self._slot_waits.update((p, instance_id), decision.waits, decision.after.priority)

    def send_dispatch(self, record: TaskAssignment | KillTask) -> None:
        self._producer.send(self._dispatch, record.worker_id, record)

    def worker_lost(self, part: PartitionState, verdict: LostWorker, now: datetime) -> bool:
        """Append `WorkerLost` once per partition and worker process; False if it was known."""
        if (verdict.worker_id, verdict.incarnation) in part.lost:
            return False
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
        self._producer.send(self._events, key, event, partition=part.partition)
        part.fold(event)
        return True
