"""Failing over attempts whose worker is gone: worker lost, restarted, or silent on a dispatch."""

from __future__ import annotations

from datetime import timedelta

from streams.core.decide import decide
from streams.core.decide.failover import on_lost_worker
from streams.core.enums import TaskState
from streams.core.events import (
    CommandRejected,
    TaskDispatched,
    TaskFailedOver,
    TaskKilled,
    WorkflowStopped,
)
from streams.core.placement import NO_WORKERS
from streams.core.rejections import Reason
from streams.core.tick import next_deadline, tick, waiting_for_slots
from tests.core.builders import (
    NOW,
    applied,
    chain,
    dispatched,
    given,
    later,
    report_finished,
    running,
    started,
    stop,
    workers,
)

TWO = workers("w1", "w2")
ACK = timedelta(seconds=30)


def test_attempts_on_a_lost_worker_fail_over_to_a_live_one_outside_the_retry_budget() -> None:
    state = given(started(chain("a", retries=0)), dispatched("a", 1, "w1"), running("a", 1))

    then = on_lost_worker(state, "w1", None, "worker w1 lost", "lost", later(5), workers("w2"))

    assert [type(e) for e in then] == [TaskFailedOver, TaskDispatched]
    assert (then[0].attempt, then[0].worker_id) == (1, "w1")
    assert (then[1].attempt, then[1].worker_id) == (2, "w2")
    after = applied(state, then)
    assert after.tasks["a"].tries == 1  # a failover is not a retry


def test_a_restarted_worker_loses_only_attempts_sent_to_its_previous_process() -> None:
    state = given(
        started(chain("a")),
        dispatched("a", 1, "w1", at=NOW),
    )

    untouched = on_lost_worker(state, "w1", NOW, "restarted", "lost", later(1), TWO)
    lost = on_lost_worker(state, "w1", later(0.5), "restarted", "lost", later(1), TWO)

    assert untouched == []
    assert [type(e) for e in lost] == [TaskFailedOver, TaskDispatched]


def test_an_attempt_being_killed_on_a_lost_worker_ends_killed_and_the_stop_completes() -> None:
    stopping = decide(given(started(chain("a")), dispatched("a"), running("a")), stop(), NOW)
    state = applied(given(started(chain("a")), dispatched("a"), running("a")), stopping)

    then = on_lost_worker(state, "w1", None, "worker w1 lost", "lost", later(5), TWO)

    assert [type(e) for e in then] == [TaskKilled, WorkflowStopped]


def test_with_no_live_worker_a_failed_over_task_waits_then_tick_dispatches_it() -> None:
    state = given(started(chain("a")), dispatched("a", 1, "w1"), running("a"))
    waiting = applied(
        state, on_lost_worker(state, "w1", None, "lost", "lost", later(5), NO_WORKERS)
    )

    assert waiting.tasks["a"].state is TaskState.NEED_FAULT_TOLERANCE
    assert tick(waiting, later(6), NO_WORKERS) == []
    assert waiting_for_slots(waiting, later(6)) == {"default"}
    then = tick(waiting, later(7), workers("w2"))
    assert [(type(e), e.attempt) for e in then] == [(TaskDispatched, 2)]


def test_a_dispatch_not_acknowledged_in_time_is_failed_over_by_tick() -> None:
    state = given(started(chain("a")), dispatched("a", 1, "w1", at=NOW))

    assert tick(state, NOW + ACK - timedelta(seconds=1), TWO, ACK) == []
    assert next_deadline(state, ACK) == NOW + ACK
    then = tick(state, NOW + ACK, TWO, ACK)

    assert [type(e) for e in then] == [TaskFailedOver, TaskDispatched]
    assert "not acknowledged within 30s" in then[0].reason


def test_a_late_ack_from_a_failed_over_attempt_is_recorded_and_ignored() -> None:
    state = given(started(chain("a")), dispatched("a", 1, "w1"), running("a"))
    state = applied(state, on_lost_worker(state, "w1", None, "lost", "lost", later(5), TWO))

    then = decide(state, report_finished("a", attempt=1, worker_id="w1"), later(6), TWO)

    assert [type(e) for e in then] == [CommandRejected]
    assert then[0].reason is Reason.STALE_ATTEMPT
