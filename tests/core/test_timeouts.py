"""Timeout strategies (WARN, FAILED, WARNFAILED) and the workflow timeout warning: what the
master records, and what it asks the worker to enforce (`decide/timeouts.py`)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streams.core.decide import decide
from streams.core.decide.timeouts import worker_timeout_s
from streams.core.enums import Outcome, TaskState, WorkflowState
from streams.core.enums import TimeoutStrategy as T
from streams.core.events import (
    TaskDispatched,
    TaskFailed,
    TaskTimedOut,
    WorkflowFailed,
    WorkflowTimedOut,
)
from streams.core.ids import tick_id
from streams.core.instance import InstanceState
from streams.core.tick import next_deadline, tick
from tests.core.builders import (
    NOW,
    W1,
    applied,
    chain,
    empty,
    later,
    only,
    pause,
    report_finished,
    report_started,
    rerun,
    start,
    task,
    through,
    types,
    workflow,
)


def running(strategy: T, retries: int = 0) -> InstanceState:
    a = task("a", timeout_s=60.0, timeout_strategy=strategy, retries=retries)
    return through(empty(), start(workflow(a)), report_started("a"))


@pytest.mark.parametrize(
    ("strategy", "kill_after"), [(T.WARN, None), (T.FAILED, 60.0), (T.WARNFAILED, 60.0)]
)
def test_the_worker_kills_past_the_timeout_unless_the_strategy_only_warns(
    strategy: T, kill_after: float | None
) -> None:
    assert worker_timeout_s(task("a", timeout_s=60.0, timeout_strategy=strategy)) == kill_after


def test_a_warn_attempt_past_its_timeout_gets_one_warning_and_runs_on() -> None:
    state = running(T.WARN)
    assert next_deadline(state) == later(60)

    then = tick(state, later(61), W1)

    assert types(then) == [TaskTimedOut]
    warned = then[0]
    assert isinstance(warned, TaskTimedOut)
    assert (warned.task_code, warned.attempt, warned.worker_id) == ("a", 1, "w1")
    assert (warned.timeout_s, warned.strategy, warned.at) == (60.0, T.WARN, later(61))
    assert warned.cause == tick_id(state.instance_id, later(61).isoformat())
    after = applied(state, then)
    assert after.tasks["a"].state is TaskState.RUNNING_EXECUTION
    assert after.tasks["a"].timeout_warned
    assert tick(after, later(120), W1) == []  # once per attempt
    assert next_deadline(after) is None


def test_no_warning_before_the_timeout() -> None:
    assert tick(running(T.WARN), later(59), W1) == []


def test_a_failed_strategy_never_warns() -> None:
    state = running(T.FAILED)

    assert next_deadline(state) is None
    assert tick(state, later(3600), W1) == []
    then = decide(state, report_finished("a", outcome=Outcome.TIMEOUT), later(60), W1)
    assert types(then) == [TaskFailed, WorkflowFailed]


def test_warnfailed_warns_at_the_timeout_then_fails_when_the_worker_kills_it() -> None:
    state = running(T.WARNFAILED)
    warned = applied(state, tick(state, later(60), W1))
    assert warned.tasks["a"].timeout_warned

    then = decide(warned, report_finished("a", outcome=Outcome.TIMEOUT), later(61), W1)

    assert types(then) == [TaskFailed, WorkflowFailed]
    assert only(then, TaskFailed)[0].reason == "timed out"


def test_warnfailed_reported_by_the_worker_before_any_tick_warns_first() -> None:
    state = running(T.WARNFAILED)

    then = decide(state, report_finished("a", outcome=Outcome.TIMEOUT), later(60), W1)

    assert types(then) == [TaskTimedOut, TaskFailed, WorkflowFailed]
    assert only(then, TaskTimedOut)[0].strategy is T.WARNFAILED


def test_a_retry_after_a_timeout_is_a_new_attempt_with_its_own_warning() -> None:
    state = running(T.WARNFAILED, retries=1)

    then = decide(state, report_finished("a", outcome=Outcome.TIMEOUT), NOW, W1)

    assert types(then) == [TaskTimedOut, TaskFailed, TaskDispatched]  # retry_interval 0
    state = through(applied(state, then), report_started("a", attempt=2))
    assert not state.tasks["a"].timeout_warned
    then = tick(state, later(60), W1)

    assert [(type(e), e.attempt) for e in then] == [(TaskTimedOut, 2)]


def test_an_attempt_not_yet_started_is_not_timed() -> None:
    wf = workflow(task("a", timeout_s=1.0, timeout_strategy=T.WARN))
    state = through(empty(), start(wf))
    assert state.tasks["a"].state is TaskState.DISPATCH

    assert tick(state, later(3600), W1) == []


def test_a_workflow_past_its_timeout_gets_one_warning() -> None:
    wf = replace(chain("a"), timeout_s=600.0)
    state = through(empty(), start(wf), report_started("a"))
    assert next_deadline(state) == later(600)

    then = tick(state, later(601), W1)

    assert types(then) == [WorkflowTimedOut]
    assert (then[0].timeout_s, then[0].at) == (600.0, later(601))
    after = applied(state, then)
    assert after.state is WorkflowState.RUNNING_EXECUTION
    assert tick(after, later(1200), W1) == []
    assert next_deadline(after) is None


def test_a_workflow_warning_comes_in_ready_pause_too_but_not_once_paused() -> None:
    wf = replace(chain("a", "b"), timeout_s=600.0)
    state = through(empty(), start(wf), report_started("a"), pause())

    assert types(tick(state, later(601), W1)) == [WorkflowTimedOut]
    paused = through(state, report_finished("a"))
    assert paused.state is WorkflowState.PAUSE
    assert tick(paused, later(601), W1) == []
    assert next_deadline(paused) is None


def test_a_rerun_is_a_new_run_with_its_own_workflow_warning() -> None:
    wf = replace(chain("a"), timeout_s=600.0)
    state = through(empty(), start(wf), report_started("a"))
    state = applied(state, tick(state, later(601), W1))
    state = through(state, report_finished("a"))
    assert state.state is WorkflowState.SUCCESS

    again = through(state, rerun(), now=later(700))

    assert not again.timeout_warned
    assert next_deadline(again) == later(1300)


def test_timeout_warnings_come_before_the_dispatches_of_the_same_tick() -> None:
    wf = replace(
        workflow(
            task("a", timeout_s=10.0, timeout_strategy=T.WARN),
            task("b", retries=1, retry_interval_s=10),
        ),
        timeout_s=10.0,
    )
    state = through(empty(), start(wf), report_started("a"))
    state = through(state, report_finished("b", outcome=Outcome.FAILURE))
    assert state.tasks["b"].retry_at == later(10)

    then = tick(state, later(10), W1)

    assert types(then) == [WorkflowTimedOut, TaskTimedOut, TaskDispatched]
