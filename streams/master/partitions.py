"""The state a master holds for one partition it owns: the core's partition fold
(`streams.core.partition.PartitionLog`: instance states, owner epoch, lost workers) plus
the runtime's deadline wheel, which says when each instance may next need a tick."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from streams.core.instance import InstanceState
from streams.core.partition import PartitionLog
from streams.core.tick import next_deadline


@dataclass
class PartitionState(PartitionLog):
    ack_timeout: timedelta | None = None
    _deadlines: list[tuple[datetime, str]] = field(default_factory=list)

    def arm(self, state: InstanceState, now: datetime, not_before: datetime | None = None) -> None:
        """Remember when `tick` may next have work for this instance."""
        self.arm_at(
            state.instance_id, next_deadline(state, self.ack_timeout, after=now), not_before
        )

    def arm_at(
        self, instance_id: str, due: datetime | None, not_before: datetime | None = None
    ) -> None:
        """`arm` with the deadline already asked of `next_deadline` (None: nothing due)."""
        if due is not None:
            if not_before is not None and due < not_before:
                due = not_before
            heapq.heappush(self._deadlines, (due, instance_id))

    def due(self, now: datetime) -> list[str]:
        """Instances whose deadline has come (each once), removed from the wheel."""
        out: dict[str, None] = {}
        while self._deadlines and self._deadlines[0][0] <= now:
            out[heapq.heappop(self._deadlines)[1]] = None
        return list(out)
