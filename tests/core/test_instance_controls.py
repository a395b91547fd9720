"""Deciding the controls of issue 11 on instances and tasks: rerun (REPEAT_RUNNING), force
success, stop one task, the run flag, dry run, and the states each requires."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streams.core.decide import decide
from streams.core.definition import TaskDef, runnable
from streams.core.enums import FailureStrategy, Outcome, TaskState, WorkflowState
from streams.core.events import (
    CommandRejected,
    InstanceEvent,
    TaskDispatched,
    TaskKilled,
    TaskKillRequested,
    TaskSucceeded,
    TaskSuccessForced,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowRerun,
    WorkflowStarted,
    WorkflowSucceeded,
)
from streams.core.evolve import fold
from streams.core.instance import InstanceState
from streams.core.rejections import Reason
from streams.core.tick import next_deadline
from tests.core.builders import (
    IID,
    NOW,
    W1,
    applied,
    chain,
    dag,
    empty,
    force_success,
    later,
    only,
    pause,
    rejection,
    report_failed,
    report_finished,
    report_started,
    rerun,
    resume,
    start,
    stop,
    stop_task,
    task,
    through,
    types,
    workflow,
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


# -- force success ------------------------------------------------------------------------


def test_forcing_the_only_failure_of_a_failed_instance_makes_it_succeed() -> None:
    state = through(empty(), start(dag(a=(), b=())), report_finished("a"), report_failed("b"))
    assert state.state is W.FAILURE

    then = decide(state, force_success("b"), later(5), W1)

    assert types(then) == [TaskSuccessForced, WorkflowSucceeded]
    assert (then[0].task_code, then[0].attempt, then[0].cause) == ("b", 1, "force-1")
    after = applied(state, then)
    assert after.tasks["b"].state is TaskState.FORCED_SUCCESS
    assert (after.state, after.ended_at) == (W.SUCCESS, later(5))


def test_forcing_a_failure_whose_dependants_never_ran_keeps_the_instance_failed() -> None:
    state = through(empty(), start(chain("a", "b")), report_failed("a"))

    then = decide(state, force_success("a"), NOW, W1)

    assert types(then) == [TaskSuccessForced]
    after = applied(state, then)
    assert after.state is W.FAILURE
    # resume keeps the forced success and runs what depends on it
    resumed = decide(after, resume(), later(1), W1)
    assert [(e.task_code, e.attempt) for e in only(resumed, TaskDispatched)] == [("b", 1)]
    done = through(applied(after, resumed), report_finished("b"))
    assert done.state is W.SUCCESS
    assert done.tasks["a"].state is TaskState.FORCED_SUCCESS


def test_forcing_a_task_waiting_to_retry_ends_its_retries() -> None:
    wf = workflow(task("a", retries=1, retry_interval_s=60), task("b"))
    state = through(empty(), start(wf), report_started("a"), pause(), report_failed("a"),
                    report_finished("b"))  # fmt: skip
    assert state.state is W.FAILURE  # a pause with a retry pending ends FAILURE
    assert state.tasks["a"].retry_at == later(60)

    then = decide(state, force_success("a"), NOW, W1)

    after = applied(state, then)
    assert after.tasks["a"].retry_at is None and not after.retrying
    assert after.state is W.SUCCESS
    assert next_deadline(after) is None


def test_forcing_a_killed_task_of_a_stopped_instance_with_tasks_left_keeps_it_stopped() -> None:
    state = through(empty(), start(chain("a", "b")), report_started("a"), stop(),
                    report_finished("a", outcome=Outcome.KILLED))  # fmt: skip
    assert (state.state, state.tasks["a"].state) == (W.STOP, TaskState.KILL)

    then = decide(state, force_success("a"), NOW, W1)

    assert types(then) == [TaskSuccessForced]
    assert applied(state, then).state is W.STOP


FORCE_STATES = {W.RUNNING_EXECUTION, W.READY_PAUSE, W.READY_STOP}


@pytest.mark.parametrize("current", sorted(FORCE_STATES), ids=lambda s: s.name)
def test_force_success_in_an_unfinished_instance_is_rejected_invalid_state(current: W) -> None:
    refused = rejection(decide(STATES[current](), force_success("a"), NOW, W1))

    assert refused.reason is Reason.INVALID_STATE
    assert refused.message == f"expected FAILURE or PAUSE or STOP or SUCCESS, found {current.name}"


@pytest.mark.parametrize(
    ("current", "code", "found"),
    [(W.SUCCESS, "a", "SUCCESS"), (W.FAILURE, "b", "no attempt"), (W.PAUSE, "a", "SUCCESS")],
)
def test_force_success_of_a_task_not_failed_nor_killed_is_rejected(
    current: W, code: str, found: str
) -> None:
    refused = rejection(decide(STATES[current](), force_success(code), NOW, W1))

    assert refused.reason is Reason.INVALID_STATE
    assert refused.message == f"expected task {code} FAILURE or KILL, found {found}"


def test_force_success_of_an_unknown_task_or_instance_is_rejected_not_found() -> None:
    unknown_task = rejection(decide(STATES[W.FAILURE](), force_success("zz"), NOW, W1))
    unknown_instance = rejection(decide(empty(), force_success("a"), NOW, W1))

    assert (unknown_task.reason, unknown_task.message) == (
        Reason.NOT_FOUND, f"expected task zz in {IID}, found none"
    )  # fmt: skip
    assert (unknown_instance.reason, unknown_instance.message) == (
        Reason.NOT_FOUND, f"expected instance {IID}, found none"
    )  # fmt: skip


def test_force_success_redelivered_is_a_no_op() -> None:
    state = through(STATES[W.FAILURE](), force_success("a"))

    assert decide(state, force_success("a"), later(1), W1) == []


# -- stop one task ------------------------------------------------------------------------


def running_pair() -> InstanceState:
    """a running and b dispatched side by side, c after both."""
    return through(empty(), start(dag(a=(), b=(), c=("a", "b"))), report_started("a"))


def test_stop_task_asks_the_worker_to_kill_only_that_attempt() -> None:
    state = running_pair()

    then = decide(state, stop_task("a"), NOW, W1)

    assert types(then) == [TaskKillRequested]
    assert (then[0].task_code, then[0].attempt, then[0].worker_id, then[0].cause) == (
        "a", 1, "w1", "stop-task-1"
    )  # fmt: skip
    after = applied(state, then)
    assert after.state is W.RUNNING_EXECUTION
    assert after.tasks["a"].kill_requested and not after.tasks["b"].kill_requested


def test_a_stopped_task_ends_kill_and_the_instance_fails_once_nothing_else_can_run() -> None:
    wf = workflow(task("a", retries=2), task("b"), task("c", "a", "b"))
    state = through(empty(), start(wf), report_started("a"), stop_task("a"))

    then = decide(state, report_finished("a", outcome=Outcome.FAILURE), NOW, W1)

    assert types(then) == [TaskKilled]  # never retried; b still runs
    state = applied(state, then)
    assert state.state is W.RUNNING_EXECUTION
    then = decide(state, report_finished("b"), NOW, W1)
    assert types(then) == [TaskSucceeded, WorkflowFailed]
    assert then[-1].reason == "failed: a (KILL after 1 attempt)"


def test_a_stopped_task_under_failure_strategy_end_kills_the_rest() -> None:
    wf = dag(FailureStrategy.END, a=(), b=(), c=("a", "b"))
    state = through(empty(), start(wf), report_started("a"), stop_task("a"))

    then = decide(state, report_finished("a", outcome=Outcome.KILLED), NOW, W1)

    assert types(then) == [TaskKilled, TaskKillRequested]
    assert then[1].task_code == "b"


def test_a_task_stopped_while_ready_pause_pauses_the_instance_and_resume_reruns_it() -> None:
    state = through(running_pair(), pause(), stop_task("a"), report_finished("b"))

    then = decide(state, report_finished("a", outcome=Outcome.KILLED), NOW, W1)

    assert types(then) == [TaskKilled, WorkflowPaused]
    resumed = decide(applied(state, then), resume(), later(1), W1)
    assert [(e.task_code, e.attempt) for e in only(resumed, TaskDispatched)] == [("a", 2)]


def test_stop_task_of_a_dispatched_attempt_kills_it_too() -> None:
    then = decide(running_pair(), stop_task("b"), NOW, W1)

    assert [(e.task_code, e.attempt) for e in only(then, TaskKillRequested)] == [("b", 1)]


@pytest.mark.parametrize(
    "current", [W.READY_STOP, W.PAUSE, W.STOP, W.FAILURE, W.SUCCESS], ids=lambda s: s.name
)
def test_stop_task_in_an_instance_not_running_is_rejected_invalid_state(current: W) -> None:
    refused = rejection(decide(STATES[current](), stop_task("a"), NOW, W1))

    assert refused.reason is Reason.INVALID_STATE
    assert refused.message == f"expected READY_PAUSE or RUNNING_EXECUTION, found {current.name}"


def test_stop_task_of_a_task_not_active_is_rejected_invalid_state() -> None:
    finished = through(running_pair(), report_finished("a"))
    killing = through(running_pair(), stop_task("a"))

    messages = [
        rejection(decide(finished, stop_task("a", "s2"), NOW, W1)).message,
        rejection(decide(running_pair(), stop_task("c", "s2"), NOW, W1)).message,
        rejection(decide(killing, stop_task("a", "s2"), NOW, W1)).message,
    ]

    assert messages == [
        "expected task a DISPATCH or RUNNING_EXECUTION, found SUCCESS",
        "expected task c DISPATCH or RUNNING_EXECUTION, found no attempt",
        "expected task a DISPATCH or RUNNING_EXECUTION, found RUNNING_EXECUTION being killed",
    ]


def test_stop_task_of_an_unknown_task_is_rejected_not_found_and_redelivery_is_a_no_op() -> None:
    refused = rejection(decide(running_pair(), stop_task("zz"), NOW, W1))
    stopped = through(running_pair(), stop_task("a"))

    assert refused.reason is Reason.NOT_FOUND
    assert decide(stopped, stop_task("a"), later(1), W1) == []
    assert rejection(decide(empty(), stop_task("a"), NOW, W1)).reason is Reason.NOT_FOUND


# -- run flag -------------------------------------------------------------------------------


def off(code: str, *depends: str) -> TaskDef:
    return replace(task(code, *depends), run=False)


def test_a_disabled_task_is_skipped_and_its_dependant_waits_for_the_task_before_it() -> None:
    wf = workflow(task("a"), off("b", "a"), task("c", "b"))
    state = through(empty(), start(wf))
    assert sorted(state.tasks) == ["a"]

    then = decide(state, report_finished("a"), NOW, W1)

    assert [e.task_code for e in only(then, TaskDispatched)] == ["c"]
    done = through(applied(state, then), report_finished("c"))
    assert done.state is W.SUCCESS
    assert "b" not in done.tasks  # never has an attempt


def test_a_disabled_root_makes_its_dependants_roots_and_chains_are_seen_through() -> None:
    wf = workflow(off("a"), task("b", "a"), task("x"), off("y", "x"), off("z", "y"),
                  task("w", "z", "b"))  # fmt: skip

    then = decide(empty(), start(wf), NOW, W1)

    assert [e.task_code for e in only(then, TaskDispatched)] == ["b", "x"]
    assert runnable(wf).task("w").depends == ("x", "b")
    assert [t.code for t in runnable(wf).tasks] == ["b", "x", "w"]


def test_a_workflow_with_every_task_disabled_succeeds_at_once() -> None:
    then = decide(empty(), start(workflow(off("a"), off("b", "a"))), NOW, W1)

    assert types(then) == [WorkflowStarted, WorkflowSucceeded]


def test_runnable_is_the_definition_itself_when_no_task_is_disabled() -> None:
    wf = chain("a", "b")

    assert runnable(wf) == wf


def test_a_disabled_task_cannot_be_forced_or_stopped_it_has_no_attempt() -> None:
    wf = workflow(task("a"), off("b"), task("c", "a"))
    state = through(empty(), start(wf), report_failed("a"))

    refused = rejection(decide(state, force_success("b"), NOW, W1))

    assert (refused.reason, refused.message) == (
        Reason.INVALID_STATE, "expected task b enabled, found it disabled (run: false)"
    )  # fmt: skip


# -- dry run --------------------------------------------------------------------------------


def test_a_dry_run_start_is_recorded_and_orchestrated_as_any_start() -> None:
    command = replace(start(chain("a", "b")), dry_run=True)

    then = decide(empty(), command, NOW, W1)

    assert types(then) == [WorkflowStarted, TaskDispatched]
    assert then[0].dry_run
    state = applied(empty(), then)
    assert state.dry_run
    done = through(state, report_finished("a"), report_finished("b"))
    assert done.state is W.SUCCESS


def test_a_rerun_of_a_dry_run_is_a_dry_run_again() -> None:
    state = through(empty(), replace(start(chain("a")), dry_run=True), report_finished("a"))

    assert through(state, rerun()).dry_run
    assert not through(empty(), start(chain("a"))).dry_run
