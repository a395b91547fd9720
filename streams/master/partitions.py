"""The state a master holds for one partition it owns: instance states and their deadlines."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime

from streams.core.events import InstanceEvent
from streams.core.evolve import evolve
from streams.core.state import InstanceState
from streams.core.tick import next_deadline


@dataclass
class PartitionState:
    partition: int
    instances: dict[str, InstanceState] = field(default_factory=dict)
    _deadlines: list[tuple[datetime, str]] = field(default_factory=list)

    def get(self, instance_id: str) -> InstanceState:
        return self.instances.get(instance_id) or InstanceState(instance_id=instance_id)

    def apply(self, instance_id: str, events: list[InstanceEvent]) -> InstanceState:
        state = self.get(instance_id)
        for e in events:
            state = evolve(state, e)
        self.instances[instance_id] = state
        return state

    def arm(self, state: InstanceState, not_before: datetime | None = None) -> None:
        """Remember when `tick` may next have work for this instance."""
        due = next_deadline(state)
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
