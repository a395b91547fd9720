"""`tick` and `next_deadline`: time-driven dispatch of due retries and of tasks that waited
for a free slot; deadlines live in the state."""

from __future__ import annotations

from datetime import timedelta

from streams.core.decide import decide
from streams.core.decide.scheduling import dispatchable
from streams.core.enums import FailureStrategy, WorkflowState
from streams.core.events import TaskDispatched, TaskFailed, WorkflowFailed
from streams.core.ids import tick_id
from streams.core.placement import NO_WORKERS, WorkerView
from streams.core.tick import next_deadline, tick, waiting_for_slots
from tests.core.builders import (
    NOW,
    W1,
    applied,
    chain,
    dag,
    empty,
    later,
    only,
    pause,
    report_failed,
    report_finished,
    report_started,
    start,
    task,
    through,
    types,
    workers,
    workflow,
)


def test_tick_of_an_unknown_instance_does_nothing() -> None:
    assert tick(empty(), later(1), W1) == []
    assert next_deadline(empty()) is None


def test_tick_with_nothing_waiting_does_nothing() -> None:
    state = through(empty(), start(chain("a", "b")))

    assert tick(state, later(1), W1) == []
    assert next_deadline(state) is None


def test_tick_of_a_finished_instance_does_nothing() -> None:
    state = through(empty(), start(chain("a")), report_finished("a"))
    assert state.state is WorkflowState.SUCCESS

    assert tick(state, later(1), W1) == []
    assert next_deadline(state) is None


def test_tick_names_itself_as_the_cause() -> None:
    state = through(empty(), start(chain("a")), workers=NO_WORKERS)

    then = tick(state, later(2), W1)

    assert [e.cause for e in then] == [tick_id(state.instance_id, later(2).isoformat())]


def test_tick_without_worker_leaves_the_deadline_armed() -> None:
    state = through(empty(), start(chain("a", retries=1, retry_interval_s=5)), report_failed("a"))

    assert tick(state, later(10), NO_WORKERS) == []
    assert next_deadline(state) == later(5)


def test_tick_dispatches_only_the_retries_that_are_due() -> None:
    wf = workflow(
        task("soon", retries=1, retry_interval_s=10),
        task("late", retries=1, retry_interval_s=100),
        task("other"),
    )
    state = through(empty(), start(wf), report_failed("soon"), report_failed("late"))
    assert next_deadline(state) == later(10)

    then = tick(state, later(50), W1)

    assert [(e.task_code, e.attempt) for e in only(then, TaskDispatched)] == [("soon", 2)]
    assert next_deadline(applied(state, then)) == later(100)


def test_tick_dispatches_ready_tasks_and_due_retries_together() -> None:
    wf = dag(a=(), b=())
    state = through(empty(), start(wf), workers=NO_WORKERS)

    then = tick(state, later(1), W1)

    assert [e.task_code for e in only(then, TaskDispatched)] == ["a", "b"]


def test_a_ready_task_with_no_free_slot_waits_for_slots_not_for_the_clock() -> None:
    state = through(empty(), start(chain("a")), workers=NO_WORKERS)

    assert next_deadline(state) is None
    assert waiting_for_slots(state, NOW) == {"default"}


def test_a_full_worker_gets_nothing_and_the_task_waits_for_a_slot() -> None:
    full = {"default": [WorkerView("w1", "default", slots_total=2, slots_free=0)]}
    state = through(empty(), start(chain("a")), workers=full)

    assert "a" not in state.tasks
    assert waiting_for_slots(state, NOW) == {"default"}
    assert types(tick(state, later(1), W1)) == [TaskDispatched]


def test_next_deadline_takes_the_retry_and_slots_the_waiting_task() -> None:
    wf = workflow(task("a", retries=1, retry_interval_s=30), task("b", group="gpu"))
    state = through(empty(), start(wf))
    state = through(state, report_failed("a"), now=later(10))
    assert next_deadline(state) == later(40)
    assert waiting_for_slots(state, later(10)) == {"gpu"}  # b waits for a gpu worker

    state = applied(state, tick(state, later(11), workers("g1", group="gpu")))

    assert "b" in state.tasks
    assert waiting_for_slots(state, later(11)) == frozenset()
    assert next_deadline(state) == later(40)


def test_a_due_retry_with_no_free_slot_is_left_to_slots() -> None:
    wf = workflow(task("a", retries=1, retry_interval_s=30))
    state = through(through(empty(), start(wf)), report_failed("a"), now=later(10))

    assert tick(state, later(40), NO_WORKERS) == []
    assert next_deadline(state, after=later(40)) is None
    assert waiting_for_slots(state, later(40)) == {"default"}


def test_tick_under_continue_with_a_final_failure_still_runs_other_retries() -> None:
    wf = workflow(task("a"), task("b", retries=1, retry_interval_s=10))
    state = through(empty(), start(wf), report_failed("b"), report_failed("a"))
    assert state.state is WorkflowState.RUNNING_EXECUTION

    then = tick(state, later(10), W1)
    assert [(e.task_code, e.attempt) for e in only(then, TaskDispatched)] == [("b", 2)]
    then = decide(applied(state, then), report_failed("b", attempt=2), later(11), W1)

    assert types(then) == [TaskFailed, WorkflowFailed]
    assert then[-1].reason == "failed: a (FAILURE after 1 attempt), b (FAILURE after 2 attempts)"


def test_tick_under_end_never_retries_after_a_final_failure() -> None:
    wf = workflow(
        task("a"), task("b", retries=1, retry_interval_s=10), failure_strategy=FailureStrategy.END
    )
    state = through(empty(), start(wf), report_failed("b"), report_failed("a"))
    assert state.state is WorkflowState.FAILURE

    assert tick(state, later(10), W1) == []


def test_next_deadline_counts_the_ack_deadline_of_dispatches_not_yet_started_only() -> None:
    ack = timedelta(seconds=30)
    state = through(empty(), start(dag(a=(), b=())))
    assert next_deadline(state, ack) == NOW + ack

    running = through(state, report_started("a"), report_started("b"), now=later(5))

    assert next_deadline(running, ack) is None  # both started: nothing to time out
    assert tick(running, later(60), W1, ack) == []


def test_next_deadline_without_an_ack_timeout_ignores_dispatches() -> None:
    state = through(empty(), start(chain("a")))

    assert next_deadline(state, None) is None


def test_a_ready_pause_instance_waits_for_no_slot() -> None:
    wf = workflow(task("a"), task("b", group="gpu"))
    state = through(empty(), start(wf), pause())  # b waits for a gpu slot; a runs
    assert state.state is WorkflowState.READY_PAUSE

    assert waiting_for_slots(state, later(1)) == frozenset()
    assert dispatchable(state, later(1)) == []
    assert tick(state, later(1), workers("g1", group="gpu")) == []


def test_dispatchable_names_the_ready_tasks_that_found_no_slot() -> None:
    state = through(empty(), start(dag(a=(), b=())), workers=NO_WORKERS)

    assert [t.code for t in dispatchable(state, NOW)] == ["a", "b"]


def test_next_deadline_is_the_earliest_of_ack_deadlines_and_retries() -> None:
    ack = timedelta(seconds=30)
    wf = workflow(task("a"), task("b", retries=1, retry_interval_s=100))
    state = through(empty(), start(wf), report_started("b"), report_failed("b"))  # a unacked

    assert next_deadline(state, ack) == NOW + ack
    assert next_deadline(state, timedelta(seconds=500)) == later(100)
