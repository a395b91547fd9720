"""Delay execution: a task's first attempt of a run waits in DELAY_EXECUTION until it was first
ready + its delay, through the master's timers; pause, stop, retries and resumes around it."""

from __future__ import annotations

from streams.core.decide import decide
from streams.core.enums import FailureStrategy, Outcome, TaskState, WorkflowState
from streams.core.events import (
    TaskDelayed,
    TaskDispatched,
    TaskFailed,
    TaskKilled,
    TaskSucceeded,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowPauseRequested,
    WorkflowResumed,
    WorkflowStopped,
    WorkflowStopRequested,
)
from streams.core.placement import NO_WORKERS
from streams.core.tick import next_deadline, tick, waiting_for_slots
from tests.core.builders import (
    NOW,
    W1,
    applied,
    empty,
    later,
    only,
    pause,
    report_failed,
    report_finished,
    report_started,
    rerun,
    resume,
    start,
    stop,
    task,
    through,
    types,
    workflow,
)


def test_a_delayed_root_waits_in_delay_execution_until_its_delay_has_passed() -> None:
    wf = workflow(task("a", delay_s=30))

    then = decide(empty(), start(wf), NOW, W1)

    assert types(then)[1:] == [TaskDelayed]
    delayed = only(then, TaskDelayed)[0]
    assert (delayed.task_code, delayed.attempt, delayed.until) == ("a", 1, later(30))
    state = applied(empty(), then)
    assert state.tasks["a"].state is TaskState.DELAY_EXECUTION
    assert state.state is WorkflowState.RUNNING_EXECUTION
    assert next_deadline(state) == later(30)
    assert waiting_for_slots(state, later(29)) == frozenset()


def test_a_delayed_task_is_dispatched_as_the_delayed_attempt_when_its_time_comes() -> None:
    state = through(empty(), start(workflow(task("a", delay_s=30))))

    assert tick(state, later(29), W1) == []
    then = tick(state, later(30), W1)

    assert [(type(e), e.attempt) for e in then] == [(TaskDispatched, 1)]
    after = applied(state, then)
    assert after.tasks["a"].tries == 1  # the delay spent no attempt of the retry budget


def test_a_delay_does_not_need_a_free_worker_slot() -> None:
    then = decide(empty(), start(workflow(task("a", delay_s=30))), NOW, NO_WORKERS)

    assert types(then)[1:] == [TaskDelayed]


def test_a_delay_counts_from_when_the_task_became_ready() -> None:
    wf = workflow(task("a"), task("b", "a", delay_s=30))
    state = through(empty(), start(wf))

    then = decide(state, report_finished("a"), later(100), W1)

    assert types(then) == [TaskSucceeded, TaskDelayed]
    assert only(then, TaskDelayed)[0].until == later(130)


def test_a_retry_is_not_delayed_again() -> None:
    state = through(empty(), start(workflow(task("a", delay_s=30, retries=1))))
    state = applied(state, tick(state, later(30), W1))

    then = decide(state, report_failed("a"), later(40), W1)

    assert [(type(e), e.attempt) for e in then] == [(TaskFailed, 1), (TaskDispatched, 2)]


def test_a_pending_delay_keeps_a_continue_instance_from_failing() -> None:
    wf = workflow(task("a"), task("b", delay_s=30))
    state = through(empty(), start(wf))

    then = decide(state, report_failed("a"), NOW, W1)

    assert types(then) == [TaskFailed]


def test_failure_strategy_end_kills_a_delayed_task_at_once() -> None:
    wf = workflow(task("a"), task("b", delay_s=30), failure_strategy=FailureStrategy.END)
    state = through(empty(), start(wf))

    then = decide(state, report_failed("a"), NOW, W1)

    assert types(then) == [TaskFailed, TaskKilled, WorkflowFailed]


def test_a_pause_during_a_delay_pauses_at_once_and_the_delay_goes_on_after_a_resume() -> None:
    state = through(empty(), start(workflow(task("a", delay_s=30))))

    then = decide(state, pause(), NOW, W1)

    assert types(then) == [WorkflowPauseRequested, WorkflowPaused]
    paused = applied(state, then)
    assert paused.tasks["a"].state is TaskState.DELAY_EXECUTION
    assert tick(paused, later(30), W1) == []
    assert next_deadline(paused) is None

    early = decide(paused, resume(), later(10), W1)
    assert types(early) == [WorkflowResumed]
    resumed = applied(paused, early)
    assert next_deadline(resumed) == later(30)
    assert [(type(e), e.attempt) for e in tick(resumed, later(30), W1)] == [(TaskDispatched, 1)]


def test_a_resume_after_the_delay_has_passed_dispatches_at_once() -> None:
    state = through(empty(), start(workflow(task("a", delay_s=30))), pause())

    then = decide(state, resume(), later(60), W1)

    assert [(type(e), getattr(e, "attempt", None)) for e in then] == [
        (WorkflowResumed, None),
        (TaskDispatched, 1),
    ]


def test_a_stop_during_a_delay_kills_the_delayed_task_and_stops() -> None:
    wf = workflow(task("a", delay_s=30), task("b"))
    state = through(empty(), start(wf), report_started("b"))

    then = decide(state, stop(), NOW, W1)

    assert types(then)[:1] == [WorkflowStopRequested]
    killed = only(then, TaskKilled)
    assert [(k.task_code, k.attempt) for k in killed] == [("a", 1)]
    state = applied(state, then)
    assert state.tasks["a"].state is TaskState.KILL
    assert types(decide(state, report_finished("b", outcome=Outcome.KILLED), NOW, W1)) == [
        TaskKilled,
        WorkflowStopped,
    ]


def test_a_resume_after_a_stop_runs_the_killed_task_without_a_new_delay() -> None:
    state = through(empty(), start(workflow(task("a", delay_s=30))), stop())
    assert state.state is WorkflowState.STOP

    then = decide(state, resume(), later(5), W1)

    assert [(type(e), getattr(e, "attempt", None)) for e in then] == [
        (WorkflowResumed, None),
        (TaskDispatched, 2),
    ]


def test_a_rerun_is_a_new_run_whose_first_attempts_are_delayed_again() -> None:
    state = through(empty(), start(workflow(task("a", delay_s=30))))
    state = applied(state, tick(state, later(30), W1))
    state = through(state, report_finished("a"))
    assert state.state is WorkflowState.SUCCESS

    then = decide(state, rerun(), later(100), W1)

    assert [(type(e).__name__, getattr(e, "attempt", None)) for e in then][1:] == [
        ("TaskDelayed", 2)
    ]
