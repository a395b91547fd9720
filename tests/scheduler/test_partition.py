"""A scheduler's partition: when each schedule is next worth looking at, kept current as
events are folded (so a check costs a comparison per schedule, not a cron computation)."""

from __future__ import annotations

from datetime import timedelta

from streams.core.definition import WorkflowDef
from streams.core.schedules.fire import fire, first_pending
from streams.core.schedules.messages import (
    ScheduleBroughtOnline,
    ScheduleCreated,
    ScheduleTakenOffline,
)
from streams.scheduler.partition import SchedulePartition
from tests.core.schedule_builders import SID, T0, spec

S = timedelta(seconds=1)


def test_a_schedule_is_pending_from_online_to_offline_and_moves_on_with_each_fire() -> None:
    part = SchedulePartition(0)
    part.fold(ScheduleCreated(schedule_id=SID, spec=spec(), cause="c", at=T0))
    assert part.pending == {} and part.due(T0 + 60 * S) == []
    part.fold(ScheduleBroughtOnline(schedule_id=SID, cause="c", at=T0))
    assert part.pending == {SID: T0 + 2 * S}
    assert part.due(T0 + S) == [] and [s.schedule_id for s in part.due(T0 + 2 * S)] == [SID]
    _, fired = fire(part.get(SID), T0 + 2 * S, WorkflowDef(code="etl"), T0 + 2 * S)
    part.fold(fired)
    assert part.pending == {SID: T0 + 4 * S} == {SID: first_pending(part.get(SID))}
    part.fold(ScheduleTakenOffline(schedule_id=SID, cause="off", at=T0 + 3 * S))
    assert part.pending == {}
