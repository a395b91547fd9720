"""Deciding `RerunTasks` (DolphinScheduler's EXECUTE_TASK): chosen tasks of a finished
instance run again inside it, the others keep their results; the states it requires."""

from __future__ import annotations

import pytest

from streams.core.commands import RerunTasks
from streams.core.decide import decide
from streams.core.enums import FailureStrategy, TaskDependType, TaskState, WorkflowState
from streams.core.events import (
    InstanceEvent,
    TaskDispatched,
    TasksRerun,
    TaskSucceeded,
    WorkflowFailed,
)
from streams.core.evolve import fold
from streams.core.instance import InstanceState
from streams.core.rejections import Reason
from tests.core.builders import (
    IID,
    NOW,
    W1,
    applied,
    chain,
    empty,
    only,
    pause,
    rejection,
    report_failed,
    report_finished,
    report_started,
    resume,
    start,
    task,
    through,
    types,
    workflow,
)

ONLY, PRE, POST = TaskDependType.TASK_ONLY, TaskDependType.TASK_PRE, TaskDependType.TASK_POST
W = WorkflowState


def execute(*nodes: str, scope: TaskDependType = POST, command_id: str = "exec-1") -> RerunTasks:
    return RerunTasks(
        command_id=command_id, instance_id=IID, start_nodes=nodes, scope=scope, at=NOW
    )


def failed_at_b() -> InstanceState:
    """a -> b -> c and x apart; a and x succeeded, b failed, c never ran: FAILURE."""
    wf = workflow(task("a"), task("b", "a"), task("c", "b"), task("x"))
    state = through(empty(), start(wf), report_finished("a"), report_finished("x"),
                    report_failed("b"))  # fmt: skip
    assert state.state is W.FAILURE
    return state


def test_task_post_from_the_failed_task_runs_it_and_its_downstream_to_success() -> None:
    state = failed_at_b()

    then = decide(state, execute("b"), NOW, W1)

    assert types(then) == [TasksRerun, TaskDispatched]
    assert then[0].task_codes == ("b", "c")
    assert (then[1].task_code, then[1].attempt) == ("b", 2)
    done = through(applied(state, then), report_finished("b", attempt=2), report_finished("c"))
    assert done.state is W.SUCCESS
    assert {c: t.attempt for c, t in done.tasks.items()} == {"a": 1, "x": 1, "b": 2, "c": 1}


def test_task_only_runs_the_task_alone_and_the_instance_fails_again_naming_what_never_ran() -> None:
    state = through(failed_at_b(), execute("b", scope=ONLY))

    then = decide(state, report_finished("b", attempt=2), NOW, W1)

    assert types(then) == [TaskSucceeded, WorkflowFailed]  # c is ready, not chosen: not run
    assert then[1].reason == "not run: c"
    done = through(applied(state, then), resume(), report_finished("c"))
    assert done.state is W.SUCCESS  # a resume runs what was left


def test_task_pre_reruns_the_upstream_tasks_too_even_succeeded_ones() -> None:
    then = decide(failed_at_b(), execute("b", scope=PRE), NOW, W1)

    assert then[0].task_codes == ("a", "b")
    assert [(e.task_code, e.attempt) for e in only(then, TaskDispatched)] == [("a", 2)]
    state = applied(failed_at_b(), then)
    assert sorted(state.tasks) == ["a", "x"] and "b" not in state.tasks
    done = through(state, report_finished("a", attempt=2), report_finished("b", attempt=2))
    assert (done.state, done.failure_reason) == (W.FAILURE, "not run: c")  # c is not chosen


def test_a_succeeded_instance_runs_the_chosen_task_again_and_succeeds() -> None:
    state = through(empty(), start(chain("a", "b")), report_finished("a"), report_finished("b"))

    done = through(state, execute("a", scope=ONLY), report_finished("a", attempt=2))

    assert done.state is W.SUCCESS
    assert (done.tasks["a"].attempt, done.tasks["b"].attempt) == (2, 1)


def test_a_chosen_task_that_fails_again_fails_the_instance_with_its_name() -> None:
    state = through(failed_at_b(), execute("b", scope=ONLY))

    then = decide(state, report_failed("b", attempt=2), NOW, W1)

    assert [e.reason for e in only(then, WorkflowFailed)] == [
        "failed: b (FAILURE after 1 attempt); not run: c"
    ]


def test_a_log_with_tasks_rerun_folds_to_the_live_state() -> None:
    events: list[InstanceEvent] = []
    state = empty()
    commands = [start(chain("a", "b")), report_finished("a"), report_failed("b"),
                execute("a", scope=POST), report_finished("a", attempt=2),
                report_started("b", attempt=2)]  # fmt: skip
    for c in commands:
        out = decide(state, c, NOW, W1)
        events += out
        state = applied(state, out)

    assert fold(events) == state
    assert state.tasks["b"].state is TaskState.RUNNING_EXECUTION


def test_rerun_tasks_redelivered_is_a_no_op() -> None:
    state = through(failed_at_b(), execute("b"))

    assert decide(state, execute("b"), NOW, W1) == []


@pytest.mark.parametrize("current", ["running", "paused"])
def test_rerun_tasks_in_an_instance_not_success_nor_failure_is_rejected_invalid_state(
    current: str,
) -> None:
    state = through(empty(), start(chain("a", "b")))
    if current == "paused":
        state = through(state, pause(), report_finished("a"))

    refused = rejection(decide(state, execute("a"), NOW, W1))

    assert refused.reason is Reason.INVALID_STATE
    assert refused.message == f"expected FAILURE or SUCCESS, found {state.state.name}"  # type: ignore[union-attr]


def test_rerun_tasks_of_a_task_the_instance_does_not_run_is_rejected_not_found() -> None:
    refused = rejection(decide(failed_at_b(), execute("b", "nope"), NOW, W1))

    assert refused.reason is Reason.NOT_FOUND
    assert refused.message == f"expected a task that instance {IID} runs, found 'nope'"
    missing = rejection(decide(empty(), execute("b"), NOW, W1))
    assert missing.reason is Reason.NOT_FOUND


def test_rerun_tasks_after_a_task_that_did_not_succeed_is_rejected_invalid_state() -> None:
    refused = rejection(decide(failed_at_b(), execute("c", scope=ONLY), NOW, W1))

    assert refused.reason is Reason.INVALID_STATE
    assert refused.message == (
        "expected every task before the chosen ones succeeded, found b FAILURE"
    )


def test_under_failure_strategy_end_a_failure_outside_the_chosen_tasks_does_not_stop_them() -> None:
    wf = workflow(task("a"), task("b"), failure_strategy=FailureStrategy.END)
    state = through(empty(), start(wf), report_failed("a"), report_failed("b"))
    assert state.state is W.FAILURE

    then = decide(state, execute("a", scope=ONLY), NOW, W1)

    assert [e.task_code for e in only(then, TaskDispatched)] == ["a"]
    done = through(applied(state, then), report_finished("a", attempt=2))
    assert (done.state, done.failure_reason) == (W.FAILURE, "failed: b (KILL after 1 attempt)")
