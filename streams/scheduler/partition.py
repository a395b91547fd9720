"""One schedules partition as a scheduler holds it: every schedule's folded state, and when
each is next worth looking at (so a check of due fire times costs a comparison per
schedule, not a cron computation); and every backfill keyed to the partition, with the
instances its RUNNING backfills wait for."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from streams.core.schedules import backfill_flow
from streams.core.schedules.backfill_flow import BackfillState
from streams.core.schedules.backfill_messages import BackfillEvent
from streams.core.schedules.fire import first_pending
from streams.core.schedules.messages import ScheduleEvent
from streams.core.schedules.state import ScheduleState, evolve


@dataclass
class SchedulePartition:
    partition: int
    schedules: dict[str, ScheduleState] = field(default_factory=dict)
    # schedule id -> its first fire time not yet fired (absent: nothing to fire)
    pending: dict[str, datetime] = field(default_factory=dict)
    backfills: dict[str, BackfillState] = field(default_factory=dict)
    # instance id -> the backfill waiting for its end (started, not ended yet)
    waiting: dict[str, str] = field(default_factory=dict)

    def get(self, schedule_id: str) -> ScheduleState:
        return self.schedules.get(schedule_id) or ScheduleState(schedule_id=schedule_id)

    def backfill(self, backfill_id: str) -> BackfillState:
        return self.backfills.get(backfill_id) or BackfillState(backfill_id=backfill_id)

    def fold(self, event: ScheduleEvent | BackfillEvent) -> None:
        if isinstance(event, BackfillEvent):
            self._fold_backfill(event)
            return
        state = evolve(self.get(event.schedule_id), event)
        self.schedules[event.schedule_id] = state
        at = first_pending(state)
        if at is None:
            self.pending.pop(event.schedule_id, None)
        else:
            self.pending[event.schedule_id] = at

    def _fold_backfill(self, event: BackfillEvent) -> None:
        state = backfill_flow.evolve(self.backfill(event.backfill_id), event)
        self.backfills[event.backfill_id] = state
        for instance_id in state.started.values():
            if instance_id in state.ended:
                self.waiting.pop(instance_id, None)
            else:
                self.waiting[instance_id] = event.backfill_id

    def due(self, now: datetime) -> list[ScheduleState]:
        """Schedules with a fire time at or before `now`."""
        return [self.schedules[sid] for sid, at in self.pending.items() if at <= now]
