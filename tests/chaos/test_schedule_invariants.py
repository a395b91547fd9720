"""The chaos schedule invariant on hand-made logs: a missed fire time in the window, a fire
time that started two instances or none, and a clean history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from infra.chaos.records import EventLog, LogRecord
from infra.chaos.schedule_invariants import ChaosSchedule, check_schedule_fires, fired_instances
from streams.core.definition import WorkflowDef
from streams.core.events import WorkflowStarted
from streams.core.ids import scheduled_instance_id
from streams.core.schedules.messages import ScheduleFired

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)
SCHEDULE = ChaosSchedule("s0", "*/2 * * * * ? *", "UTC", online_at=T0, offline_sent=T0 + 9 * S)
TIMES = [T0 + 2 * S, T0 + 4 * S, T0 + 6 * S, T0 + 8 * S]  # the window ends at T0 + 8 s


def fire(t: datetime) -> ScheduleFired:
    iid = scheduled_instance_id("s0", t)
    return ScheduleFired(schedule_id="s0", workflow_code="w", fire_time=t, instance_id=iid,
                         command_id=f"c{t}", cause=f"c{t}", at=t)  # fmt: skip


def started(*times: datetime) -> EventLog:
    wf = WorkflowDef(code="w")
    events = [
        WorkflowStarted(instance_id=scheduled_instance_id("s0", t), workflow=wf, cause="c", at=t)
        for t in times
    ]
    return EventLog([LogRecord(0, i, e) for i, e in enumerate(events)])


def test_every_fire_time_fired_once_with_one_instance_passes() -> None:
    fires = [fire(t) for t in TIMES] + [fire(TIMES[1])]  # fired twice: one instance still
    assert check_schedule_fires(started(*TIMES), [SCHEDULE], fires) == []
    assert len(fired_instances(fires)) == 4


def test_a_fire_time_missed_in_the_window_is_caught() -> None:
    fires = [fire(t) for t in TIMES if t != TIMES[2]]
    [v] = check_schedule_fires(started(*TIMES), [SCHEDULE], fires)
    assert v.invariant == "schedule-fires" and "1 of 4 fire times" in v.message
    assert v.evidence == (TIMES[2].isoformat(),)


def test_a_fire_time_with_two_instances_or_none_is_caught() -> None:
    fires = [fire(t) for t in TIMES]
    log = started(TIMES[0], TIMES[0], TIMES[1], TIMES[2])  # TIMES[3] never started
    [v] = check_schedule_fires(log, [SCHEDULE], fires)
    assert "2 fire times did not make exactly one instance" in v.message
    assert v.evidence == (
        f"{TIMES[0].isoformat()}: 2 instances",
        f"{TIMES[3].isoformat()}: 0 instances",
    )
