"""Deciding the operator's controls: pause, stop and resume, and the states each requires."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streams.core.commands import Command
from streams.core.decide import decide
from streams.core.enums import FailureStrategy, Outcome, TaskState, WorkflowState
from streams.core.events import (
    TaskDispatched,
    TaskFailed,
    TaskKilled,
    TaskKillRequested,
    TaskSucceeded,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowPauseRequested,
    WorkflowResumed,
    WorkflowStopped,
    WorkflowStopRequested,
    WorkflowSucceeded,
)
from streams.core.instance import InstanceState
from streams.core.placement import NO_WORKERS
from streams.core.rejections import Reason
from streams.core.tick import next_deadline, tick
from tests.core.builders import (
    IID,
    NOW,
    W1,
    applied,
    chain,
    dag,
    empty,
    later,
    only,
    pause,
    rejection,
    report_failed,
    report_finished,
    report_started,
    resume,
    start,
    stop,
    task,
    through,
    types,
    workflow,
)

W = WorkflowState


def running_pair() -> InstanceState:
    """a and b running side by side, c after both."""
    return through(empty(), start(dag(a=(), b=(), c=("a", "b"))), report_started("a"))


# -- pause --------------------------------------------------------------------------------


def test_pause_with_active_tasks_asks_for_ready_pause_only() -> None:
    state = running_pair()

    then = decide(state, pause(), NOW, W1)

    assert types(then) == [WorkflowPauseRequested]
    assert applied(state, then).state is W.READY_PAUSE


def test_pause_lets_active_tasks_finish_without_dispatching_more() -> None:
    state = through(running_pair(), pause(), report_finished("a"))

    then = decide(state, report_finished("b"), NOW, W1)

    assert types(then) == [TaskSucceeded, WorkflowPaused]
    after = applied(state, then)
    assert after.state is W.PAUSE
    assert "c" not in after.tasks


def test_pause_without_active_tasks_pauses_at_once() -> None:
    state = through(empty(), start(chain("a", "b")), workers=NO_WORKERS)

    then = decide(state, pause(), NOW, W1)

    assert types(then) == [WorkflowPauseRequested, WorkflowPaused]


def test_ready_pause_tick_dispatches_nothing_even_when_a_retry_is_due() -> None:
    wf = workflow(task("a", retries=1, retry_interval_s=10), task("b"))
    state = through(empty(), start(wf), report_failed("a"), pause())
    assert state.state is W.READY_PAUSE

    assert tick(state, later(3600), W1) == []
    assert next_deadline(state) is None


def test_ready_pause_failure_with_retries_left_ends_failure_not_pause() -> None:
    # DolphinScheduler's processReadyPause: a retry still to come makes the pause FAILURE.
    wf = workflow(task("a", retries=1))
    state = through(empty(), start(wf), pause())

    then = decide(state, report_failed("a"), NOW, W1)

    assert types(then) == [TaskFailed, WorkflowFailed]
    assert only(then, WorkflowFailed)[0].reason == (
        "failed: a (FAILURE after 1 attempt); awaiting a retry when the pause ended"
    )


def test_ready_pause_with_a_retry_pending_ends_failure_when_the_last_active_task_ends() -> None:
    wf = workflow(task("a", retries=1, retry_interval_s=10), task("b"))
    state = through(empty(), start(wf), report_failed("a"), pause())

    then = decide(state, report_finished("b"), NOW, W1)

    assert types(then) == [TaskSucceeded, WorkflowFailed]


def test_pause_with_nothing_active_and_a_retry_pending_ends_failure_at_once() -> None:
    wf = workflow(task("a", retries=1, retry_interval_s=10))
    state = through(empty(), start(wf), report_failed("a"))

    then = decide(state, pause(), NOW, W1)

    assert types(then) == [WorkflowPauseRequested, WorkflowFailed]


def test_an_instance_failed_by_a_pause_with_a_retry_pending_resumes_the_task() -> None:
    wf = workflow(task("a", retries=1))
    state = through(empty(), start(wf), pause(), report_failed("a"))
    assert state.state is W.FAILURE

    then = decide(state, resume(), NOW, W1)

    assert types(then) == [WorkflowResumed, TaskDispatched]
    assert only(then, TaskDispatched)[0].attempt == 2


def test_ready_pause_failure_with_no_retry_left_pauses() -> None:
    state = through(empty(), start(workflow(task("a"), task("b"))), pause(), report_failed("a"))

    then = decide(state, report_finished("b"), NOW, W1)

    assert types(then) == [TaskSucceeded, WorkflowPaused]


def test_ready_pause_whose_last_tasks_succeed_ends_success() -> None:
    state = through(empty(), start(chain("a")), pause())

    then = decide(state, report_finished("a"), NOW, W1)

    assert types(then) == [TaskSucceeded, WorkflowSucceeded]


# -- stop ---------------------------------------------------------------------------------


def test_stop_asks_for_ready_stop_and_kills_active_tasks() -> None:
    state = running_pair()

    then = decide(state, stop(), NOW, W1)

    assert types(then) == [WorkflowStopRequested, TaskKillRequested, TaskKillRequested]
    kills = only(then, TaskKillRequested)
    assert [(k.task_code, k.attempt, k.worker_id, k.cause) for k in kills] == [
        ("a", 1, "w1", "stop-1"),
        ("b", 1, "w1", "stop-1"),
    ]
    after = applied(state, then)
    assert after.state is W.READY_STOP
    assert all(t.kill_requested for t in after.tasks.values())


@pytest.mark.parametrize("outcome", [Outcome.KILLED, Outcome.FAILURE, Outcome.TIMEOUT])
def test_stop_finished_acks_become_task_killed_then_stop(outcome: Outcome) -> None:
    state = through(running_pair(), stop(), report_finished("a", outcome=outcome))

    then = decide(state, report_finished("b", outcome=outcome), NOW, W1)

    assert types(then) == [TaskKilled, WorkflowStopped]
    after = applied(state, then)
    assert after.state is W.STOP
    assert [after.tasks[c].state for c in "ab"] == [TaskState.KILL, TaskState.KILL]


def test_stop_task_that_already_succeeded_keeps_its_success() -> None:
    state = through(running_pair(), stop())

    then = decide(state, report_finished("a"), NOW, W1)

    assert types(then) == [TaskSucceeded]
    assert applied(state, then).state is W.READY_STOP


def test_stop_with_retries_left_does_not_retry() -> None:
    wf = workflow(task("a", retries=3))
    state = through(empty(), start(wf))
    state = applied(state, [*decide(state, stop(), NOW, W1)])
    # the kill request raced the task's own failure; with the kill requested it counts as KILL
    then = decide(state, report_failed("a"), NOW, W1)

    assert types(then) == [TaskKilled, WorkflowStopped]


def test_stop_without_active_tasks_stops_at_once() -> None:
    state = through(empty(), start(chain("a")), workers=NO_WORKERS)

    then = decide(state, stop(), NOW, W1)

    assert types(then) == [WorkflowStopRequested, WorkflowStopped]


def test_stop_while_ready_pause_kills_what_still_runs() -> None:
    state = through(running_pair(), pause())

    then = decide(state, stop(), NOW, W1)

    assert types(then) == [WorkflowStopRequested, TaskKillRequested, TaskKillRequested]


def test_stop_after_end_strategy_kill_requests_each_task_once() -> None:
    wf = workflow(task("a"), task("b"), failure_strategy=FailureStrategy.END)
    state = through(empty(), start(wf), report_failed("a"))
    assert state.tasks["b"].kill_requested

    then = decide(state, stop(), NOW, W1)

    assert types(then) == [WorkflowStopRequested]


# -- resume -------------------------------------------------------------------------------


def test_resume_from_pause_dispatches_what_was_held_back() -> None:
    state = through(running_pair(), pause(), report_finished("a"), report_finished("b"))
    assert state.state is W.PAUSE

    then = decide(state, resume(), later(60), W1)

    assert types(then) == [WorkflowResumed, TaskDispatched]
    assert (then[1].task_code, then[1].attempt, then[1].at) == ("c", 1, later(60))
    assert applied(state, then).state is W.RUNNING_EXECUTION


def test_resume_from_stop_reruns_killed_tasks_as_new_attempts_and_keeps_successes() -> None:
    state = through(
        running_pair(), stop(), report_finished("a"), report_finished("b", outcome=Outcome.KILLED)
    )
    assert state.state is W.STOP

    then = decide(state, resume(), later(60), W1)

    assert types(then) == [WorkflowResumed, TaskDispatched]
    assert (then[1].task_code, then[1].attempt) == ("b", 2)
    after = applied(state, then)
    assert after.tasks["a"].state is TaskState.SUCCESS
    assert after.tasks["a"].attempt == 1
    b = after.tasks["b"]
    assert (b.attempt, b.tries, b.state, b.kill_requested) == (2, 1, TaskState.DISPATCH, False)


def test_resume_from_failure_reruns_failed_tasks_with_a_fresh_retry_budget() -> None:
    wf = chain("a", "b", retries=1)
    state = through(empty(), start(wf), report_failed("a"), report_failed("a", attempt=2))
    assert state.state is W.FAILURE

    then = decide(state, resume(), later(60), W1)

    assert types(then) == [WorkflowResumed, TaskDispatched]
    assert (then[1].task_code, then[1].attempt) == ("a", 3)
    state = applied(state, then)
    assert state.tasks["a"].tries == 1
    then = decide(state, report_failed("a", attempt=3), later(61), W1)
    assert [(e.task_code, e.attempt) for e in only(then, TaskDispatched)] == [("a", 4)]


def test_resume_then_success_finishes_the_workflow() -> None:
    state = through(empty(), start(chain("a", "b")), report_finished("a"), report_failed("b"))

    state = through(state, resume(), report_finished("b", attempt=2))

    assert state.state is W.SUCCESS


def test_resume_without_live_worker_waits_for_tick() -> None:
    state = through(empty(), start(chain("a")), report_failed("a"))
    state = through(state, resume(), now=later(60), workers=NO_WORKERS)
    assert state.state is W.RUNNING_EXECUTION
    assert next_deadline(state) == later(60)

    then = tick(state, later(61), W1)

    assert [(e.task_code, e.attempt) for e in only(then, TaskDispatched)] == [("a", 2)]


# -- wrong states ------------------------------------------------------------------------


def _running() -> InstanceState:
    return through(empty(), start(chain("a", "b")))


STATES: dict[W, Callable[[], InstanceState]] = {
    W.RUNNING_EXECUTION: _running,
    W.READY_PAUSE: lambda: through(_running(), pause("p")),
    W.PAUSE: lambda: through(_running(), pause("p"), report_finished("a")),
    W.READY_STOP: lambda: through(_running(), stop("s")),
    W.STOP: lambda: through(_running(), stop("s"), report_failed("a")),
    W.FAILURE: lambda: through(_running(), report_failed("a")),
    W.SUCCESS: lambda: through(_running(), report_finished("a"), report_finished("b")),
}
ALLOWED: dict[str, set[W]] = {
    "pause": {W.RUNNING_EXECUTION},
    "stop": {W.RUNNING_EXECUTION, W.READY_PAUSE},
    "resume": {W.PAUSE, W.STOP, W.FAILURE},
}
CONTROLS: dict[str, Callable[[], Command]] = {"pause": pause, "stop": stop, "resume": resume}
EXPECTED: dict[str, str] = {
    "pause": "RUNNING_EXECUTION",
    "stop": "READY_PAUSE or RUNNING_EXECUTION",
    "resume": "FAILURE or PAUSE or STOP",
}


def test_control_state_builders_reach_the_state_they_name() -> None:
    assert {s: build().state for s, build in STATES.items()} == {s: s for s in STATES}


REFUSED = [(c, s) for c in CONTROLS for s in STATES if s not in ALLOWED[c]]
ACCEPTED = [(c, s) for c in CONTROLS for s in STATES if s in ALLOWED[c]]


def _id(case: tuple[str, W]) -> str:
    return f"{case[0]}-{case[1].name}"


@pytest.mark.parametrize(("control", "current"), REFUSED, ids=map(_id, REFUSED))
def test_control_in_wrong_state_is_rejected_invalid_state(control: str, current: W) -> None:
    state = STATES[current]()

    then = decide(state, CONTROLS[control](), NOW, W1)

    refused = rejection(then)
    assert refused.reason is Reason.INVALID_STATE
    assert refused.message == f"expected {EXPECTED[control]}, found {current.name}"
    assert applied(state, then).state is current


@pytest.mark.parametrize(("control", "current"), ACCEPTED, ids=map(_id, ACCEPTED))
def test_control_in_allowed_state_is_accepted(control: str, current: W) -> None:
    state = STATES[current]()

    then = decide(state, CONTROLS[control](), NOW, W1)

    assert then
    assert type(then[0]) in (WorkflowPauseRequested, WorkflowStopRequested, WorkflowResumed)


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_control_for_an_unknown_instance_is_rejected_not_found(control: str) -> None:
    then = decide(empty(), CONTROLS[control](), NOW, W1)

    refused = rejection(then)
    assert refused.reason is Reason.NOT_FOUND
    assert refused.message == f"expected instance {IID}, found none"


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_control_redelivered_is_a_no_op(control: str) -> None:
    base = STATES[W.FAILURE]() if control == "resume" else running_pair()
    state = through(base, CONTROLS[control]())

    assert decide(state, CONTROLS[control](), later(1), W1) == []


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_control_refusals_are_dated_at_the_decision(control: str) -> None:
    missing = rejection(decide(empty(), CONTROLS[control](), later(4), W1))
    wrong = rejection(decide(STATES[W.SUCCESS](), CONTROLS[control](), later(4), W1))

    assert (missing.at, wrong.at) == (later(4), later(4))
