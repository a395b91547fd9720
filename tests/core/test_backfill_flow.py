"""Backfill decisions: serial and parallel chains, stop, idempotency (given / when / then)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.definition import WorkflowDef, parse_workflow
from streams.core.schedules.backfill import (
    BackfillSpec,
    ExecutionOrder,
    RunMode,
    date_instance_id,
)
from streams.core.schedules.backfill_flow import (
    BackfillState,
    decide,
    evolve,
    fold,
    instance_ended,
    start_for,
    top_up,
)
from streams.core.schedules.backfill_messages import (
    BACKFILL_EVENT_TYPES,
    BackfillCommandRejected,
    BackfillDateEnded,
    BackfillDateStarted,
    BackfillEvent,
    BackfillFinished,
    BackfillRequested,
    BackfillStopped,
    RequestBackfill,
    StopBackfill,
)
from streams.core.schedules.messages import ScheduleReason

BID = "bf1"
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
D1 = datetime(2026, 11, 1, tzinfo=UTC)
WORKFLOWS = frozenset({"etl"})


def days(n: int) -> tuple[datetime, ...]:
    return tuple(D1 + timedelta(days=i) for i in range(n))


def request(cid: str = "req", **kw: Any) -> RequestBackfill:
    base = BackfillSpec(workflow_code="etl", dates=days(3), order=ExecutionOrder.ASC)
    return RequestBackfill(command_id=cid, backfill_id=BID, spec=replace(base, **kw), at=NOW)


def stop(cid: str = "stop") -> StopBackfill:
    return StopBackfill(command_id=cid, backfill_id=BID, at=NOW)


def apply(s: BackfillState, events: Sequence[BackfillEvent]) -> BackfillState:
    for e in events:
        s = evolve(s, e)
    return s


def started_dates(events: list[BackfillEvent]) -> list[datetime]:
    return [e.date for e in events if isinstance(e, BackfillDateStarted)]


def requested(**kw: Any) -> BackfillState:
    s = BackfillState(backfill_id=BID)
    return apply(s, decide(s, request(**kw), NOW, WORKFLOWS))


def end(s: BackfillState, date: datetime, state: str = "SUCCESS") -> list[BackfillEvent]:
    return instance_ended(s, date_instance_id("req", date), state, NOW)


def test_serial_request_starts_the_first_date_only() -> None:
    then = decide(BackfillState(backfill_id=BID), request(), NOW, WORKFLOWS)
    assert [type(e) for e in then] == [BackfillRequested, BackfillDateStarted]
    assert then[0].dates == days(3)  # type: ignore[union-attr]
    assert started_dates(then) == [D1]
    assert then[1].instance_id == date_instance_id("req", D1)  # type: ignore[union-attr]


def test_serial_success_starts_the_next_and_the_last_finishes_success() -> None:
    s = requested()
    for i, date in enumerate(days(3)):
        then = end(s, date)
        s = apply(s, then)
        if i < 2:
            assert started_dates(then) == [days(3)[i + 1]]
    assert [type(e) for e in then] == [BackfillDateEnded, BackfillFinished]
    assert s.status == "SUCCESS"


def test_serial_failure_ends_the_chain() -> None:
    s = requested()
    then = end(s, D1, "FAILURE")
    assert [type(e) for e in then] == [BackfillDateEnded, BackfillFinished]
    assert then[1].state == "FAILURE"  # type: ignore[union-attr]
    assert apply(s, then).status == "FAILURE"


def test_serial_stopped_instance_ends_the_chain_too() -> None:
    then = end(requested(), D1, "STOP")
    assert [e.state for e in then if isinstance(e, BackfillFinished)] == ["FAILURE"]


def test_parallel_starts_n_then_one_per_end_and_a_failure_does_not_stop_the_others() -> None:
    s = requested(dates=days(4), run_mode=RunMode.PARALLEL, parallelism=2)
    assert sorted(s.started) == list(days(2))
    then = end(s, D1, "FAILURE")
    assert started_dates(then) == [days(4)[2]]
    s = apply(s, then)
    s = apply(s, end(s, days(4)[1]))
    assert sorted(s.started) == list(days(4))
    s = apply(s, end(s, days(4)[2]))
    then = end(s, days(4)[3])
    assert [e.state for e in then if isinstance(e, BackfillFinished)] == ["FAILURE"]


def test_parallelism_above_the_dates_starts_them_all() -> None:
    s = requested(run_mode=RunMode.PARALLEL, parallelism=10)
    assert sorted(s.started) == list(days(3))


def test_descending_order_starts_the_latest_date_first() -> None:
    s = requested(order=ExecutionOrder.DESC)
    assert list(s.started) == [days(3)[2]]


def test_redelivered_request_decides_nothing() -> None:
    s = requested()
    assert decide(s, request(), NOW, WORKFLOWS) == []


def test_an_end_seen_twice_or_of_an_unknown_instance_decides_nothing() -> None:
    s = requested()
    s = apply(s, end(s, D1))
    assert end(s, D1) == []
    assert instance_ended(s, "someone-else", "SUCCESS", NOW) == []


def test_stop_starts_nothing_more_but_records_ends() -> None:
    s = requested()
    then = decide(s, stop(), NOW, WORKFLOWS)
    assert [type(e) for e in then] == [BackfillStopped]
    s = apply(s, then)
    then = end(s, D1)
    assert [type(e) for e in then] == [BackfillDateEnded]
    s = apply(s, then)
    assert s.status == "STOP" and len(s.started) == 1


def test_stop_of_a_finished_backfill_is_refused_expected_running() -> None:
    s = requested(dates=days(1))
    s = apply(s, end(s, D1))
    then = decide(s, stop(), NOW, WORKFLOWS)
    assert isinstance(then[0], BackfillCommandRejected)
    assert then[0].reason is ScheduleReason.INVALID_STATE
    assert then[0].message == "expected backfill bf1 RUNNING, found SUCCESS"


def test_stop_of_an_unknown_backfill_is_not_found() -> None:
    then = decide(BackfillState(backfill_id=BID), stop(), NOW, WORKFLOWS)
    assert then[0].reason is ScheduleReason.NOT_FOUND  # type: ignore[union-attr]


def test_request_for_an_unknown_workflow_is_not_found() -> None:
    then = decide(BackfillState(backfill_id=BID), request(workflow_code="nope"), NOW, WORKFLOWS)
    assert isinstance(then[0], BackfillCommandRejected)
    assert then[0].reason is ScheduleReason.NOT_FOUND
    assert "expected workflow nope registered, found none" in then[0].message


def test_invalid_request_names_every_problem() -> None:
    then = decide(
        BackfillState(backfill_id=BID),
        request(parallelism=0, workflow_code="nope"),
        NOW,
        WORKFLOWS,
    )
    assert isinstance(then[0], BackfillCommandRejected)
    assert then[0].reason is ScheduleReason.INVALID_SCHEDULE
    assert "parallelism" in then[0].message and "workflow nope" in then[0].message


def test_second_request_under_the_same_id_is_already_exists() -> None:
    then = decide(requested(), request("req-2"), NOW, WORKFLOWS)
    assert then[0].reason is ScheduleReason.ALREADY_EXISTS  # type: ignore[union-attr]


def test_top_up_after_a_rebuild_restarts_a_lost_start() -> None:
    s = requested()
    # the end was recorded but the start it caused was lost in a crash
    ended = [e for e in end(s, D1) if isinstance(e, BackfillDateEnded)]
    s = apply(s, ended)
    assert started_dates(top_up(s, NOW)) == [days(3)[1]]


def test_every_event_has_an_evolver() -> None:
    from streams.core.schedules.backfill_flow import EVOLVERS

    assert set(EVOLVERS) == set(BACKFILL_EVENT_TYPES)


def test_start_carries_the_date_as_schedule_time_and_the_run_settings() -> None:
    wf: WorkflowDef = parse_workflow({"code": "etl", "tasks": [{"code": "a", "command": "true"}]})
    s = requested(params={"region": "eu"}, worker_group="gpu")
    ev = next(
        e
        for e in decide(BackfillState(backfill_id=BID), request(), NOW, WORKFLOWS)
        if isinstance(e, BackfillDateStarted)
    )
    start = start_for(s, ev, wf)
    assert start.schedule_time == D1
    assert start.instance_id == date_instance_id("req", D1)
    assert start.params == {"region": "eu"}
    assert start.workflow.tasks[0].worker_group == "gpu"


@settings(max_examples=60)
@given(
    st.integers(min_value=1, max_value=8),
    st.integers(min_value=1, max_value=4),
    st.sampled_from(list(RunMode)),
    st.lists(st.sampled_from(["SUCCESS", "FAILURE", "STOP"]), min_size=8, max_size=8),
    st.integers(min_value=0, max_value=10**6),
)
def test_any_order_of_ends_with_duplicates_starts_each_date_at_most_once(
    n: int, width: int, mode: RunMode, outcomes: list[str], seed: int
) -> None:
    rng = random.Random(seed)
    s = BackfillState(backfill_id=BID)
    log: list[BackfillEvent] = decide(
        s, request(dates=days(n), run_mode=mode, parallelism=width), NOW, WORKFLOWS
    )
    s = apply(s, log)
    for _ in range(4 * n):
        running = [i for i in s.started.values() if i not in s.ended] or list(s.started.values())
        instance = rng.choice(running)
        idx = sorted(s.started.values()).index(instance) % len(outcomes)
        then = instance_ended(s, instance, outcomes[idx], NOW)
        log += then
        s = apply(s, then)
        assert s.running <= (width if mode is RunMode.PARALLEL else 1)
    starts = started_dates(log)
    assert len(starts) == len(set(starts))
    assert fold(BID, log) == s
    if s.status == "SUCCESS":
        assert len(s.started) == n and set(s.ended.values()) == {"SUCCESS"}
    if mode is RunMode.SERIAL and "FAILURE" in s.ended.values():
        assert s.status == "FAILURE"
