"""Deciding the controls of issue 11 on instances and tasks: rerun (REPEAT_RUNNING), and the
states each requires."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streams.core.decide import decide
from streams.core.enums import TaskState, WorkflowState
from streams.core.events import CommandRejected, InstanceEvent, TaskDispatched, WorkflowRerun
from streams.core.evolve import fold
from streams.core.rejections import Reason
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
    rejection,
    report_failed,
    report_finished,
    rerun,
    start,
    through,
    types,
)
from tests.core.test_control import STATES

W = WorkflowState

# -- rerun (REPEAT_RUNNING) ---------------------------------------------------------------


def test_rerun_of_a_succeeded_instance_starts_the_whole_dag_again_from_its_roots() -> None:
    state = through(empty(), start(dag(a=(), b=(), c=("a", "b"))), report_finished("a"),
                    report_finished("b"), report_finished("c"))  # fmt: skip
    assert state.state is W.SUCCESS

    then = decide(state, rerun(), later(60), W1)

    assert types(then) == [WorkflowRerun, TaskDispatched, TaskDispatched]
    assert [(e.task_code, e.attempt) for e in only(then, TaskDispatched)] == [("a", 2), ("b", 2)]
    after = applied(state, then)
    assert after.state is W.RUNNING_EXECUTION
    assert (after.started_at, after.ended_at) == (later(60), None)
    assert sorted(after.tasks) == ["a", "b"]  # c waits for both again
    assert after.succeeded == 0


def test_rerun_runs_each_task_again_in_dag_order_until_success() -> None:
    state = through(empty(), start(chain("a", "b")), report_finished("a"), report_finished("b"))
    state = through(state, rerun(), report_finished("a", attempt=2))

    assert [(c, t.attempt, t.state) for c, t in sorted(state.tasks.items())] == [
        ("a", 2, TaskState.SUCCESS),
        ("b", 2, TaskState.DISPATCH),
    ]
    state = through(state, report_finished("b", attempt=2))
    assert state.state is W.SUCCESS


def test_rerun_of_a_failure_gives_a_fresh_retry_budget_and_never_reuses_an_attempt() -> None:
    wf = chain("a", "b", retries=1)
    state = through(empty(), start(wf), report_failed("a"), report_failed("a", attempt=2))
    assert state.state is W.FAILURE

    then = decide(state, rerun(), later(60), W1)

    [dispatched] = only(then, TaskDispatched)
    assert (dispatched.task_code, dispatched.attempt) == ("a", 3)
    state = applied(state, then)
    assert state.tasks["a"].tries == 1
    state = through(state, report_failed("a", attempt=3), now=later(61))
    assert (state.tasks["a"].attempt, state.tasks["a"].tries) == (4, 2)  # retried again
    state = through(state, report_finished("a", attempt=4), now=later(62))
    assert (state.tasks["b"].attempt, state.tasks["b"].state) == (1, TaskState.DISPATCH)


def test_a_second_rerun_keeps_counting_attempts_of_tasks_the_first_never_reached() -> None:
    state = through(empty(), start(chain("a", "b")), report_finished("a"), report_finished("b"))
    state = through(state, rerun(), report_failed("a", attempt=2))  # b not reached this time
    assert state.state is W.FAILURE

    state = through(state, rerun("rerun-2"), report_finished("a", attempt=3))

    # b's only attempt so far is 1 (before the first rerun): the next is 2, never 1 again
    assert (state.tasks["b"].attempt, state.tasks["b"].state) == (2, TaskState.DISPATCH)


def test_an_ack_of_an_attempt_from_before_the_rerun_changes_nothing() -> None:
    state = through(empty(), start(chain("a", "b")), report_finished("a"), report_finished("b"))
    state = through(state, rerun())
    redelivered = report_finished("a", attempt=1)

    other = rejection(decide(state, replace(redelivered, command_id="other"), NOW, W1))

    assert decide(state, redelivered, NOW, W1) == []
    assert other.reason is Reason.STALE_ATTEMPT


def test_a_log_with_a_rerun_folds_to_the_live_state() -> None:
    log: list[InstanceEvent] = []
    state = empty()
    for command in (start(chain("a", "b")), report_finished("a"), report_failed("b"), rerun(),
                    report_finished("a", attempt=2)):  # fmt: skip
        then = decide(state, command, NOW, W1)
        log += then
        state = applied(state, then)

    assert fold(log, IID) == state
    assert state.earlier_attempts == {"a": 1, "b": 1}


RERUN_REFUSED = [W.RUNNING_EXECUTION, W.READY_PAUSE, W.READY_STOP]


@pytest.mark.parametrize("current", RERUN_REFUSED, ids=lambda s: s.name)
def test_rerun_of_an_unfinished_instance_is_rejected_invalid_state(current: W) -> None:
    state = STATES[current]()

    then = decide(state, rerun(), later(3), W1)

    refused = rejection(then)
    assert refused.reason is Reason.INVALID_STATE
    assert refused.message == f"expected FAILURE or PAUSE or STOP or SUCCESS, found {current.name}"
    assert refused.at == later(3)
    assert applied(state, then).state is current


@pytest.mark.parametrize("current", [W.PAUSE, W.STOP, W.FAILURE, W.SUCCESS], ids=lambda s: s.name)
def test_rerun_of_any_finished_instance_is_accepted(current: W) -> None:
    then = decide(STATES[current](), rerun(), NOW, W1)

    assert types(then)[:1] == [WorkflowRerun]


def test_rerun_of_an_unknown_instance_is_rejected_not_found() -> None:
    refused = rejection(decide(empty(), rerun(), NOW, W1))

    assert refused.reason is Reason.NOT_FOUND
    assert refused.message == f"expected instance {IID}, found none"


def test_rerun_redelivered_is_a_no_op() -> None:
    state = through(STATES[W.SUCCESS](), rerun())

    assert decide(state, rerun(), later(1), W1) == []
    assert not any(isinstance(e, CommandRejected) for e in decide(state, rerun(), NOW, W1))
