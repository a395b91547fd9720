"""The fire rule: which fire times are due (catch-up window, latest only, armed from now,
start and end), what a fire sends, and fire times against croniter in several timezones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.definition import TaskDef, WorkflowDef
from streams.core.enums import FailureStrategy, Priority
from streams.core.ids import scheduled_instance_id
from streams.core.schedules.fire import due_fire_times, fire, fire_id, next_fire_time
from streams.core.schedules.messages import ScheduleBroughtOnline, ScheduleCreated, ScheduleFired
from streams.core.schedules.spec import Misfire
from streams.core.schedules.state import ScheduleState, evolve
from tests.core.schedule_builders import SID, T0, spec, state

S = timedelta(seconds=1)


def armed(at: datetime = T0, **kw: object) -> ScheduleState:
    return state(
        [
            ScheduleCreated(schedule_id=SID, spec=spec(**kw), cause="c", at=at),
            ScheduleBroughtOnline(schedule_id=SID, cause="c", at=at),
        ]
    )


def fired(s: ScheduleState, *times: datetime) -> ScheduleState:
    for t in times:
        s = evolve(s, fire(s, t, WorkflowDef(code="etl"), t)[1])
    return s


def test_nothing_before_it_was_brought_online_fires() -> None:
    s = armed(T0 + S)  # armed at 12:00:01: 12:00:00 is in the past
    assert due_fire_times(s, T0 + S) == []
    assert due_fire_times(s, T0 + 2 * S) == [T0 + 2 * S]


def test_an_offline_or_deleted_schedule_fires_nothing() -> None:
    created = ScheduleCreated(schedule_id=SID, spec=spec(), cause="c", at=T0)
    s = evolve(ScheduleState(schedule_id=SID), created)
    assert due_fire_times(s, T0 + 60 * S) == []
    assert next_fire_time(s, T0) is None


def test_after_downtime_every_missed_time_in_the_window_fires_oldest_first() -> None:
    s = fired(armed(catch_up_window_s=10.0), T0 + 2 * S)
    due = due_fire_times(s, T0 + 60 * S)  # down from 12:00:02 to 12:01:00
    assert due == [T0 + t * S for t in (50, 52, 54, 56, 58, 60)]


def test_latest_only_fires_the_newest_missed_time() -> None:
    s = fired(armed(misfire=Misfire.LATEST), T0 + 2 * S)
    assert due_fire_times(s, T0 + 61 * S) == [T0 + 60 * S]


def test_a_fired_time_is_not_due_again_and_firing_it_twice_counts_once() -> None:
    s = fired(armed(), T0 + 2 * S, T0 + 2 * S)
    assert s.fires == 1 and s.last_fire_time == T0 + 2 * S
    assert due_fire_times(s, T0 + 3 * S) == []
    assert due_fire_times(s, T0 + 4 * S) == [T0 + 4 * S]


def test_start_is_inclusive_and_end_is_inclusive() -> None:
    s = armed(T0 - 60 * S, start_time=T0 + 10 * S, end_time=T0 + 14 * S)
    assert due_fire_times(s, T0 + 9 * S) == []
    assert due_fire_times(s, T0 + 20 * S) == [T0 + 10 * S, T0 + 12 * S, T0 + 14 * S]
    assert next_fire_time(fired(s, T0 + 14 * S), T0 + 15 * S) is None


def test_the_limit_bounds_one_call_and_the_next_goes_on() -> None:
    s = armed(catch_up_window_s=3600.0)
    first = due_fire_times(s, T0 + 100 * S, limit=3)
    assert first == [T0 + 2 * S, T0 + 4 * S, T0 + 6 * S]
    assert due_fire_times(fired(s, *first), T0 + 100 * S, limit=1) == [T0 + 8 * S]


def test_a_fire_starts_one_instance_named_by_schedule_and_time() -> None:
    tasks = (TaskDef(code="a"), TaskDef(code="b", worker_group="gpu"))
    workflow = WorkflowDef(code="etl", tasks=tasks)
    s = armed(failure_strategy=FailureStrategy.END, worker_group="etl-hosts", params={"d": "1"},
              workflow_priority=Priority.HIGH)  # fmt: skip
    fire_time = datetime(2026, 11, 30, 20, 0, 2, tzinfo=ZoneInfo("Asia/Shanghai"))
    start, event = fire(s, fire_time, workflow, T0 + 5 * S)
    again, _ = fire(s, fire_time.astimezone(UTC), workflow, T0 + 9 * S)
    assert start.instance_id == again.instance_id == scheduled_instance_id(SID, fire_time)
    assert start.command_id == again.command_id == fire_id(SID, fire_time)
    assert start.schedule_time == fire_time and start.params == {"d": "1"}
    assert start.workflow.failure_strategy is FailureStrategy.END
    assert start.priority is Priority.HIGH
    assert [t.worker_group for t in start.workflow.tasks] == ["etl-hosts", "gpu"]
    assert isinstance(event, ScheduleFired) and event.at - event.fire_time == 3 * S  # lateness
    assert event.next_fire_time == fire_time + 2 * S


def test_a_fire_id_is_the_same_for_the_same_instant_in_any_zone() -> None:
    utc = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert fire_id(SID, utc) == fire_id(SID, utc.astimezone(ZoneInfo("Europe/Berlin")))
    assert fire_id(SID, utc) != fire_id("other", utc)


# -- daylight saving: the rule in streams/core/cron.py, seen through a schedule -------------


def test_spring_forward_a_missing_time_fires_right_after_the_gap() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # 2026-03-29 02:00 -> 03:00
    s = armed(datetime(2026, 3, 28, 12, 0, tzinfo=UTC), cron="0 30 2 * * ? *",
              timezone="Europe/Berlin", catch_up_window_s=3 * 86400.0)  # fmt: skip
    due = due_fire_times(s, datetime(2026, 3, 30, 12, 0, tzinfo=UTC))
    assert [d.astimezone(berlin).isoformat() for d in due] == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]


def test_fall_back_a_repeated_time_fires_once() -> None:
    ny = ZoneInfo("America/New_York")  # 2026-11-01 02:00 EDT -> 01:00 EST
    s = armed(datetime(2026, 10, 31, 12, 0, tzinfo=UTC), cron="0 30 1 * * ? *",
              timezone="America/New_York", catch_up_window_s=7 * 86400.0)  # fmt: skip
    due = due_fire_times(s, datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    assert [d.astimezone(ny).isoformat() for d in due] == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-02T01:30:00-05:00",
    ]


# -- fire times against croniter ------------------------------------------------------------

ZONES = ["UTC", "Asia/Shanghai", "Europe/Berlin", "America/New_York", "Australia/Sydney"]
CRONS = ["*/7 * * * *", "15 */3 * * *", "0 9 * * 1-5", "30 2 1,15 * *", "0 0 * * 0"]


@settings(max_examples=40, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    cron=st.sampled_from(CRONS),
    start=st.datetimes(datetime(2024, 1, 1), datetime(2027, 12, 31)),
    hours=st.integers(1, 24 * 10),
)
def test_due_fire_times_agree_with_croniter_away_from_dst(
    zone: str, cron: str, start: datetime, hours: int
) -> None:
    z = ZoneInfo(zone)
    armed_at = start.replace(tzinfo=UTC)
    now = armed_at + timedelta(hours=hours)
    s = armed(armed_at, cron=cron, timezone=zone, catch_up_window_s=7 * 86400.0)
    ours = due_fire_times(s, now, limit=10_000)
    it = croniter(cron, armed_at.astimezone(z))
    theirs: list[datetime] = []
    window_start = now - timedelta(days=7)
    while (t := it.get_next(datetime)) <= now:
        if t >= window_start:
            theirs.append(t)
    # Near a DST change croniter and the rule (each wall time once, gaps fire after) may
    # differ; elsewhere they agree exactly, as instants.
    if any(_near_dst(z, t) for t in [*ours, *theirs]):
        return
    assert [t.astimezone(UTC) for t in ours] == [t.astimezone(UTC) for t in theirs]


def _near_dst(z: ZoneInfo, t: datetime) -> bool:
    wall = t.astimezone(z).replace(tzinfo=None)
    return bool(z.utcoffset(wall) != z.utcoffset(wall - timedelta(hours=3)))
