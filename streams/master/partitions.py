"""The state a master holds for one partition it owns: instance states, their deadlines, the
owner epoch (fence) and the workers already declared lost here."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from streams.core.events import InstanceEvent, PartitionTakenOver, WorkerLost
from streams.core.evolve import evolve
from streams.core.instance import InstanceState
from streams.core.tick import next_deadline


@dataclass
class PartitionState:
    partition: int
    ack_timeout: timedelta | None = None
    instances: dict[str, InstanceState] = field(default_factory=dict)
    epoch: int = 0  # the latest owner epoch in the log: lower-epoch events are fenced
    owner: str = ""
    lost: set[tuple[str, datetime]] = field(default_factory=set)  # (worker, incarnation)
    fenced: int = 0  # events ignored because a newer owner had taken over
    _deadlines: list[tuple[datetime, str]] = field(default_factory=list)

    def get(self, instance_id: str) -> InstanceState:
        return self.instances.get(instance_id) or InstanceState(instance_id=instance_id)

    def fold(self, event: InstanceEvent | PartitionTakenOver | WorkerLost) -> None:
        """Apply one event read from the log, as every reader of the log must."""
        if isinstance(event, PartitionTakenOver):
            self.epoch, self.owner = max(self.epoch, event.epoch), event.owner
        elif isinstance(event, WorkerLost):
            self.lost.add((event.worker_id, event.incarnation))
        elif event.epoch < self.epoch:
            self.fenced += 1  # written by a master that had lost the partition: not a fact
        else:
            self.instances[event.instance_id] = evolve(self.get(event.instance_id), event)

    def arm(self, state: InstanceState, now: datetime, not_before: datetime | None = None) -> None:
        """Remember when `tick` may next have work for this instance."""
        due = next_deadline(state, self.ack_timeout, after=now)
        if due is not None:
            if not_before is not None and due < not_before:
                due = not_before
            heapq.heappush(self._deadlines, (due, state.instance_id))

    def due(self, now: datetime) -> list[str]:
        """Instances whose deadline has come (each once), removed from the wheel."""
        out: dict[str, None] = {}
        while self._deadlines and self._deadlines[0][0] <= now:
            out[heapq.heappop(self._deadlines)[1]] = None
        return list(out)
