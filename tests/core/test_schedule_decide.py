"""Schedule commands decided: given events, when a command, then events or a refusal."""

from __future__ import annotations

from datetime import timedelta

from streams.core.schedules.decide import decide
from streams.core.schedules.messages import (
    ScheduleBroughtOnline,
    ScheduleCommand,
    ScheduleCommandRejected,
    ScheduleCreated,
    ScheduleDeleted,
    ScheduleEvent,
    ScheduleReason,
    ScheduleTakenOffline,
    ScheduleUpdated,
)
from streams.core.schedules.state import ScheduleState
from tests.core.schedule_builders import (
    SID,
    T0,
    WORKFLOWS,
    create,
    delete,
    offline,
    online,
    state,
    update,
)


def given(*commands: ScheduleCommand) -> tuple[ScheduleState, list[ScheduleEvent]]:
    s, log = state([]), []
    for c in commands:
        events = decide(s, c, T0, WORKFLOWS)
        log += events
        s = state(log)
    return s, log


def rejected(events: list[ScheduleEvent]) -> ScheduleCommandRejected:
    assert [type(e) for e in events] == [ScheduleCommandRejected]
    assert isinstance(events[0], ScheduleCommandRejected)
    return events[0]


def test_a_created_schedule_is_offline_until_brought_online() -> None:
    s, log = given(create())
    assert [type(e) for e in log] == [ScheduleCreated]
    assert s.status == "OFFLINE"
    s, log = given(create(), online())
    assert [type(e) for e in log] == [ScheduleCreated, ScheduleBroughtOnline]
    assert s.status == "ONLINE" and s.armed_at == T0
    assert isinstance(log[1], ScheduleBroughtOnline)
    assert log[1].next_fire_time == T0 + timedelta(seconds=2)  # */2: the first after now


def test_create_online_is_created_and_armed_at_once() -> None:
    s, log = given(create(online=True))
    assert [type(e) for e in log] == [ScheduleCreated, ScheduleBroughtOnline]
    assert s.online


def test_a_redelivered_command_decides_nothing() -> None:
    s, _ = given(create(), online(), offline())
    for c in (create(), online(), offline()):
        assert decide(s, c, T0, WORKFLOWS) == []


def test_a_refused_command_redelivered_is_not_refused_twice() -> None:
    s, log = given(online())
    assert rejected(log).reason is ScheduleReason.NOT_FOUND
    assert decide(s, online(), T0, WORKFLOWS) == []


def test_online_for_an_unknown_schedule_is_not_found() -> None:
    _, log = given(online())
    r = rejected(log)
    assert r.message == f"expected schedule {SID}, found none"
    assert r.command_type == "BringScheduleOnline"


def test_a_schedule_of_an_unknown_workflow_is_refused() -> None:
    s = state([])
    r = rejected(decide(s, create(workflow_code="nope"), T0, WORKFLOWS))
    assert r.reason is ScheduleReason.NOT_FOUND
    assert r.message == "expected workflow nope registered, found none"


def test_online_when_the_workflow_is_gone_is_refused() -> None:
    s, _ = given(create())
    r = rejected(decide(s, online(), T0, frozenset()))
    assert r.reason is ScheduleReason.NOT_FOUND
    assert "expected workflow etl registered" in r.message


def test_a_bad_schedule_names_every_problem() -> None:
    bad = create(cron="0 0 25 * * ? *", timezone="Mars/Base", catch_up_window_s=-1.0)
    r = rejected(decide(state([]), bad, T0, WORKFLOWS))
    assert r.reason is ScheduleReason.INVALID_SCHEDULE
    assert "timezone: expected an IANA name" in r.message
    assert "catch_up_window_s" in r.message


def test_end_before_start_is_refused() -> None:
    bad = create(start_time=T0, end_time=T0 - timedelta(days=1))
    r = rejected(decide(state([]), bad, T0, WORKFLOWS))
    assert "end_time: expected after start_time" in r.message


def test_a_reserved_parameter_is_refused() -> None:
    r = rejected(decide(state([]), create(params={"BASH_ENV": "x"}), T0, WORKFLOWS))
    assert r.reason is ScheduleReason.INVALID_SCHEDULE and "params:" in r.message


def test_a_taken_id_cannot_be_created_again() -> None:
    s, _ = given(create())
    r = rejected(decide(s, create("c2"), T0, WORKFLOWS))
    assert r.reason is ScheduleReason.ALREADY_EXISTS
    assert r.message == f"expected no schedule {SID}, found one OFFLINE"


def test_an_online_schedule_cannot_be_updated_or_deleted() -> None:
    s, _ = given(create(), online())
    for c in (update(), delete()):
        r = rejected(decide(s, c, T0, WORKFLOWS))
        assert r.reason is ScheduleReason.INVALID_STATE
        assert r.message == f"expected schedule {SID} OFFLINE, found ONLINE"


def test_an_offline_schedule_is_updated() -> None:
    s, log = given(create(), update(cron="0 0 2 * * ? *"))
    assert [type(e) for e in log] == [ScheduleCreated, ScheduleUpdated]
    assert s.spec is not None and s.spec.cron == "0 0 2 * * ? *"


def test_offline_twice_is_refused() -> None:
    s, _ = given(create())
    r = rejected(decide(s, offline(), T0, WORKFLOWS))
    assert r.message == f"expected schedule {SID} ONLINE, found OFFLINE"


def test_a_deleted_schedule_refuses_everything() -> None:
    s, log = given(create(), delete())
    assert [type(e) for e in log] == [ScheduleCreated, ScheduleDeleted]
    for c in (online("x"), offline("y"), delete("z"), update("w")):
        r = rejected(decide(s, c, T0, WORKFLOWS))
        assert r.reason is ScheduleReason.INVALID_STATE and r.message.endswith("found DELETED")
    assert rejected(decide(s, create("c9"), T0, WORKFLOWS)).reason is ScheduleReason.ALREADY_EXISTS


def test_online_past_the_end_time_is_refused() -> None:
    s, _ = given(create(end_time=T0 - timedelta(seconds=1)))
    r = rejected(decide(s, online(), T0, WORKFLOWS))
    assert r.reason is ScheduleReason.INVALID_STATE
    assert "expected an end time after now" in r.message


def test_offline_then_online_again() -> None:
    s, log = given(create(online=True), offline(), online("on2"))
    assert [type(e) for e in log][-2:] == [ScheduleTakenOffline, ScheduleBroughtOnline]
    assert s.online


def test_every_schedule_event_has_an_evolver_and_every_command_a_decider() -> None:
    from streams.core.schedules.decide import DECIDERS
    from streams.core.schedules.messages import SCHEDULE_COMMAND_TYPES, SCHEDULE_EVENT_TYPES
    from streams.core.schedules.state import EVOLVERS

    assert set(EVOLVERS) == set(SCHEDULE_EVENT_TYPES)
    assert set(DECIDERS) == set(SCHEDULE_COMMAND_TYPES)
