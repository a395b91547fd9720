"""One schedules partition as a scheduler holds it: every schedule's folded state, and when
each is next worth looking at (so a check of due fire times costs a comparison per
schedule, not a cron computation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from streams.core.schedules.fire import first_pending
from streams.core.schedules.messages import ScheduleEvent
from streams.core.schedules.state import ScheduleState, evolve


@dataclass
class SchedulePartition:
    partition: int
    schedules: dict[str, ScheduleState] = field(default_factory=dict)
    # schedule id -> its first fire time not yet fired (absent: nothing to fire)
    pending: dict[str, datetime] = field(default_factory=dict)

    def get(self, schedule_id: str) -> ScheduleState:
        return self.schedules.get(schedule_id) or ScheduleState(schedule_id=schedule_id)

    def fold(self, event: ScheduleEvent) -> None:
        state = evolve(self.get(event.schedule_id), event)
        self.schedules[event.schedule_id] = state
        at = first_pending(state)
        if at is None:
            self.pending.pop(event.schedule_id, None)
        else:
            self.pending[event.schedule_id] = at

    def due(self, now: datetime) -> list[ScheduleState]:
        """Schedules with a fire time at or before `now`."""
        return [self.schedules[sid] for sid, at in self.pending.items() if at <= now]
