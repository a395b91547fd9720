"""Folding one events partition (pure): the owner epoch that fences a master which lost the
partition, the workers declared lost there, and the state of every instance in it.

Every reader of the events log applies this one rule: the master rebuilding a partition it
takes over, the projector (`is_fenced` alone) and the chaos checker. A master that was
paused can wake up after its partition moved and keep writing; the log, totally ordered per
partition, is the arbiter: an event whose epoch is below the latest `PartitionTakenOver`
before it is fenced, i.e. not a fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from streams.core.events import InstanceEvent, PartitionEvent, PartitionTakenOver, WorkerLost
from streams.core.evolve import evolve
from streams.core.instance import InstanceState


def is_fenced(partition_epoch: int, event: InstanceEvent | PartitionEvent) -> bool:
    """Whether `event` was written by an owner the partition had already moved away from
    (its epoch is below `partition_epoch`, the latest takeover's). A takeover never is: it
    is what raises the epoch."""
    return not isinstance(event, PartitionTakenOver) and event.epoch < partition_epoch


@dataclass
class PartitionLog:
    """A partition's log folded so far. Mutable: the master folds each event it appends."""

    partition: int
    instances: dict[str, InstanceState] = field(default_factory=dict)
    epoch: int = 0  # the latest owner epoch in the log: lower-epoch events are fenced
    owner: str = ""
    lost: set[tuple[str, datetime]] = field(default_factory=set)  # (worker, incarnation)
    fenced: int = 0  # events ignored because a newer owner had taken over

    def get(self, instance_id: str) -> InstanceState:
        return self.instances.get(instance_id) or InstanceState(instance_id=instance_id)

    def fold(self, event: InstanceEvent | PartitionEvent) -> bool:
        """Apply one event read from the log; False when it is fenced (and only counted)."""
        if isinstance(event, PartitionTakenOver):
            self.epoch, self.owner = max(self.epoch, event.epoch), event.owner
        elif isinstance(event, WorkerLost):
            # A fact about the worker, whoever noticed it: remembered whatever its epoch, so
            # no owner declares the same process lost twice.
            self.lost.add((event.worker_id, event.incarnation))
        elif is_fenced(self.epoch, event):
            self.fenced += 1
            return False
        else:
            self.instances[event.instance_id] = evolve(self.get(event.instance_id), event)
        return True
