"""Deciding the workers' acks: started and finished, retries, failure strategies, stale acks."""

from __future__ import annotations

from dataclasses import replace

from streams.core.commands import ReportTaskFinished
from streams.core.decide import decide
from streams.core.enums import FailureStrategy, Outcome, TaskState, WorkflowState
from streams.core.events import (
    TaskDispatched,
    TaskFailed,
    TaskKilled,
    TaskKillRequested,
    TaskStarted,
    TaskSucceeded,
    WorkflowFailed,
    WorkflowSucceeded,
)
from streams.core.rejections import Reason
from streams.core.tick import next_deadline, tick
from tests.core.builders import (
    IID,
    NOW,
    W1,
    applied,
    chain,
    dag,
    dispatched,
    empty,
    failed,
    given,
    later,
    only,
    rejection,
    report_failed,
    report_finished,
    report_started,
    running,
    start,
    started,
    stop,
    succeeded,
    task,
    through,
    types,
    workers,
    workflow,
)

END = FailureStrategy.END


# -- started / finished acks -------------------------------------------------------------


def test_report_started_for_dispatched_attempt_marks_it_running() -> None:
    state = given(started(chain("a")), dispatched("a"))

    then = decide(state, report_started("a"), later(1), W1)

    assert types(then) == [TaskStarted]
    run = applied(state, then).tasks["a"]
    assert (run.state, run.started_at) == (TaskState.RUNNING_EXECUTION, later(1))


def test_report_finished_success_records_it_and_dispatches_the_next_task() -> None:
    state = given(started(chain("a", "b")), dispatched("a"), running("a"))

    then = decide(state, report_finished("a"), later(3), W1)

    assert types(then) == [TaskSucceeded, TaskDispatched]
    assert (then[0].task_code, then[0].exit_code, then[0].at) == ("a", 0, later(3))
    assert (then[1].task_code, then[1].attempt, then[1].cause) == (
        "b",
        1,
        report_finished("a").command_id,
    )


def test_report_finished_last_task_succeeds_the_workflow() -> None:
    state = given(
        started(chain("a", "b")),
        dispatched("a"),
        running("a"),
        succeeded("a"),
        dispatched("b"),
        running("b"),
    )

    then = decide(state, report_finished("b"), later(9), W1)

    assert types(then) == [TaskSucceeded, WorkflowSucceeded]
    after = applied(state, then)
    assert (after.state, after.ended_at) == (WorkflowState.SUCCESS, later(9))


def test_report_fan_in_waits_for_every_upstream() -> None:
    wf = dag(a=(), b=(), c=(), join=("a", "b", "c"))
    state = through(empty(), start(wf), report_finished("a"), report_finished("b"))
    assert "join" not in state.tasks

    then = decide(state, report_finished("c"), NOW, W1)

    assert types(then) == [TaskSucceeded, TaskDispatched]
    assert then[1].task_code == "join"


def test_report_fan_in_upstream_failed_never_dispatches_the_join() -> None:
    wf = dag(a=(), b=(), join=("a", "b"))
    state = through(empty(), start(wf), report_failed("a"))

    then = decide(state, report_finished("b"), NOW, W1)

    assert types(then) == [TaskSucceeded, WorkflowFailed]
    assert "join" not in applied(state, then).tasks


def test_report_finished_timeout_fails_the_attempt_as_timed_out() -> None:
    state = given(started(chain("a", "b")), dispatched("a"), running("a"))

    then = decide(state, report_finished("a", outcome=Outcome.TIMEOUT, exit_code=137), NOW, W1)

    assert types(then) == [TaskFailed, WorkflowFailed]
    assert (then[0].reason, then[0].exit_code) == ("timed out", 137)


def test_report_finished_failure_reason_names_the_exit_code() -> None:
    state = given(started(chain("a")), dispatched("a"), running("a"))

    then = decide(state, report_finished("a", outcome=Outcome.FAILURE, exit_code=3), NOW, W1)

    assert then[0].reason == "exit code 3"
    assert then[1].reason == "failed: a (FAILURE after 1 attempt)"


# -- retries ------------------------------------------------------------------------------


def test_report_failure_with_retries_left_waits_out_the_interval() -> None:
    state = given(started(chain("a", retries=2, retry_interval_s=30)), dispatched("a"))

    then = decide(state, report_failed("a"), later(10), W1)

    assert types(then) == [TaskFailed]
    assert then[0].retry_at == later(40)
    after = applied(state, then)
    assert after.state is WorkflowState.RUNNING_EXECUTION
    assert next_deadline(after) == later(40)


def test_tick_before_retry_at_does_nothing_and_at_it_dispatches_attempt_two() -> None:
    state = through(empty(), start(chain("a", retries=2, retry_interval_s=30)), report_failed("a"))

    assert tick(state, later(29.999), W1) == []
    then = tick(state, later(30), W1)

    assert types(then) == [TaskDispatched]
    assert (then[0].task_code, then[0].attempt, then[0].at) == ("a", 2, later(30))
    run = applied(state, then).tasks["a"]
    assert (run.attempt, run.tries, run.state, run.retry_at) == (2, 2, TaskState.DISPATCH, None)


def test_tick_after_retry_at_dispatches_the_next_attempt() -> None:
    state = through(empty(), start(chain("a", retries=1, retry_interval_s=30)), report_failed("a"))

    then = tick(state, later(3600), W1)

    assert [(e.task_code, e.attempt) for e in only(then, TaskDispatched)] == [("a", 2)]


def test_report_failure_with_zero_interval_redispatches_at_once() -> None:
    state = through(empty(), start(chain("a", retries=1)))

    then = decide(state, report_failed("a"), later(1), W1)

    assert types(then) == [TaskFailed, TaskDispatched]
    assert then[0].retry_at == later(1)
    assert then[1].attempt == 2


def test_report_failure_out_of_retries_fails_the_workflow() -> None:
    state = through(empty(), start(chain("a", "b", retries=2)), report_failed("a"))
    state = through(state, report_failed("a", attempt=2))

    then = decide(state, report_failed("a", attempt=3), NOW, W1)

    assert types(then) == [TaskFailed, WorkflowFailed]
    assert then[0].retry_at is None
    assert then[1].reason == "failed: a (FAILURE after 3 attempts)"
    assert applied(state, then).state is WorkflowState.FAILURE


def test_report_success_on_a_retry_carries_on_downstream() -> None:
    state = through(empty(), start(chain("a", "b", retries=1)), report_failed("a"))

    then = decide(state, report_finished("a", attempt=2), NOW, W1)

    assert types(then) == [TaskSucceeded, TaskDispatched]
    assert (then[1].task_code, then[1].attempt) == ("b", 1)


# -- failure strategies -------------------------------------------------------------------


def test_report_final_failure_under_continue_lets_other_branches_finish_first() -> None:
    wf = dag(a=(), after_a=("a",), b=(), after_b=("b",))
    state = through(empty(), start(wf))

    state = through(state, report_failed("a"))
    assert state.state is WorkflowState.RUNNING_EXECUTION
    then = decide(state, report_finished("b"), NOW, W1)
    assert types(then) == [TaskSucceeded, TaskDispatched]
    assert then[1].task_code == "after_b"
    state = applied(state, then)

    then = decide(state, report_finished("after_b"), NOW, W1)

    assert types(then) == [TaskSucceeded, WorkflowFailed]
    assert then[1].reason == "failed: a (FAILURE after 1 attempt)"
    assert "after_a" not in applied(state, then).tasks


def test_report_final_failure_under_continue_waits_for_pending_retries() -> None:
    wf = workflow(task("a"), task("b", retries=1, retry_interval_s=60))
    state = through(empty(), start(wf), report_failed("b"))

    then = decide(state, report_failed("a"), later(1), W1)

    assert types(then) == [TaskFailed]
    state = applied(state, then)
    then = tick(state, later(60), W1)
    assert [(e.task_code, e.attempt) for e in only(then, TaskDispatched)] == [("b", 2)]
    then = decide(applied(state, then), report_finished("b", attempt=2), later(61), W1)
    assert types(then) == [TaskSucceeded, WorkflowFailed]


def test_report_final_failure_under_end_requests_kills_of_active_tasks() -> None:
    wf = workflow(task("a"), task("b"), task("c"), failure_strategy=END)
    state = through(empty(), start(wf), report_started("b"))

    then = decide(state, report_failed("a"), NOW, W1)

    assert types(then) == [TaskFailed, TaskKillRequested, TaskKillRequested]
    assert [(k.task_code, k.attempt, k.worker_id) for k in only(then, TaskKillRequested)] == [
        ("b", 1, "w1"),
        ("c", 1, "w1"),
    ]
    assert applied(state, then).state is WorkflowState.RUNNING_EXECUTION


def test_report_killed_tasks_under_end_then_fail_the_workflow() -> None:
    wf = workflow(task("a"), task("b"), task("c"), failure_strategy=END)
    state = through(empty(), start(wf), report_failed("a"))

    state = through(state, report_finished("b", outcome=Outcome.KILLED))
    assert state.tasks["b"].state is TaskState.KILL
    assert state.state is WorkflowState.RUNNING_EXECUTION
    then = decide(state, report_finished("c", outcome=Outcome.FAILURE, exit_code=143), NOW, W1)

    assert types(then) == [TaskKilled, WorkflowFailed]
    assert then[1].reason == (
        "failed: a (FAILURE after 1 attempt), b (KILL after 1 attempt), c (KILL after 1 attempt)"
    )


def test_report_success_racing_an_end_kill_is_kept_and_the_workflow_fails() -> None:
    wf = workflow(task("a"), task("b"), failure_strategy=END)
    state = through(empty(), start(wf), report_failed("a"))

    then = decide(state, report_finished("b"), NOW, W1)

    assert types(then) == [TaskSucceeded, WorkflowFailed]
    assert then[1].reason == "failed: a (FAILURE after 1 attempt)"


def test_report_final_failure_under_end_gives_up_pending_retries() -> None:
    wf = workflow(task("a"), task("b", retries=3, retry_interval_s=60), failure_strategy=END)
    state = through(empty(), start(wf), report_failed("b"))

    then = decide(state, report_failed("a"), NOW, W1)

    assert types(then) == [TaskFailed, WorkflowFailed]
    assert next_deadline(applied(state, then)) is None


def test_report_killed_without_a_request_fails_the_workflow() -> None:
    state = through(empty(), start(chain("a", "b", retries=2)))

    then = decide(state, report_finished("a", outcome=Outcome.KILLED), NOW, W1)

    assert types(then) == [TaskKilled, WorkflowFailed]
    assert then[1].reason == "failed: a (KILL after 1 attempt)"


# -- stale, duplicate and late acks -------------------------------------------------------


def test_report_finished_for_a_superseded_attempt_is_rejected_stale_attempt() -> None:
    state = given(
        started(chain("extract", "load", retries=1)),
        dispatched("extract", 1),
        failed("extract", 1, retry_at=NOW),
        dispatched("extract", 2),
    )

    then = decide(state, report_finished("extract", attempt=1), NOW, W1)

    refused = rejection(then)
    assert refused.reason is Reason.STALE_ATTEMPT
    assert refused.message == "expected attempt 2 of extract, found an ack for 1"


def test_report_started_for_a_superseded_attempt_is_rejected_stale_attempt() -> None:
    state = through(empty(), start(chain("a", retries=1)), report_failed("a"))

    then = decide(state, report_started("a", attempt=1), NOW, W1)

    assert rejection(then).reason is Reason.STALE_ATTEMPT


def test_report_duplicate_finished_ack_is_a_no_op() -> None:
    state = through(empty(), start(chain("a", "b")), report_finished("a"))

    assert decide(state, report_finished("a"), later(5), W1) == []


def test_report_duplicate_started_ack_is_a_no_op() -> None:
    state = through(empty(), start(chain("a")), report_started("a"))

    assert decide(state, report_started("a"), later(5), W1) == []


def test_report_finished_while_still_dispatch_is_accepted() -> None:
    state = through(empty(), start(chain("a", "b")))
    assert state.tasks["a"].state is TaskState.DISPATCH

    then = decide(state, report_finished("a"), NOW, W1)

    assert types(then) == [TaskSucceeded, TaskDispatched]


def test_report_started_after_finished_is_refused() -> None:
    state = through(empty(), start(chain("a", "b")), report_finished("a"))

    then = decide(state, report_started("a"), NOW, W1)

    refused = rejection(then)
    assert refused.reason is Reason.INVALID_STATE
    assert refused.message == "expected attempt 1 of a DISPATCH, found SUCCESS"
    assert applied(state, then).tasks["a"].state is TaskState.SUCCESS


def test_report_finished_under_another_id_for_an_ended_attempt_is_refused() -> None:
    state = through(empty(), start(chain("a", "b")), report_finished("a"))
    other = replace(report_finished("a", outcome=Outcome.FAILURE), command_id="bogus")

    then = decide(state, other, NOW, W1)

    refused = rejection(then)
    assert refused.reason is Reason.INVALID_STATE
    assert refused.message == "expected attempt 1 of a active, found SUCCESS"


def test_report_for_an_unknown_instance_is_rejected_not_found() -> None:
    then = decide(empty(), report_finished("a"), NOW, W1)

    refused = rejection(then)
    assert refused.reason is Reason.NOT_FOUND
    assert refused.message == f"expected a dispatched task a in {IID}"


def test_report_for_a_task_not_yet_dispatched_is_rejected_not_found() -> None:
    state = through(empty(), start(chain("a", "b")))

    then = decide(state, report_started("b"), NOW, W1)

    assert rejection(then).reason is Reason.NOT_FOUND


def test_report_rejection_is_remembered_so_a_redelivery_is_a_no_op() -> None:
    state = through(empty(), start(chain("a", "b")), report_finished("a"))
    state = through(state, report_started("a"))

    assert decide(state, report_started("a"), NOW, W1) == []


def test_report_finished_places_fan_out_on_the_group_of_each_task() -> None:
    wf = workflow(task("a"), task("gpu_job", "a", group="gpu"), task("cpu_job", "a"))
    live = workers("w1") | workers("g1", group="gpu")
    state = through(empty(), start(wf), workers=live)

    then = decide(state, report_finished("a"), NOW, live)

    placed = {d.task_code: d.worker_id for d in only(then, TaskDispatched)}
    assert placed == {"gpu_job": "g1", "cpu_job": "w1"}


# -- what an attempt's end records ----------------------------------------------------------


def _with_output(command: ReportTaskFinished, output: str) -> ReportTaskFinished:
    return replace(command, output=output)


def test_a_success_records_exit_code_output_and_end_in_the_event_and_the_state() -> None:
    state = given(started(chain("a", "b")), dispatched("a"), running("a"))
    ack = _with_output(report_finished("a", exit_code=0), "rows: 42\n")

    then = decide(state, ack, later(4), W1)

    done = then[0]
    assert isinstance(done, TaskSucceeded)
    assert (done.exit_code, done.output, done.at) == (0, "rows: 42\n", later(4))
    run = applied(state, then).tasks["a"]
    assert (run.exit_code, run.ended_at, run.retry_at) == (0, later(4), None)


def test_a_failure_records_exit_code_output_reason_and_end_in_the_event_and_the_state() -> None:
    state = given(started(chain("a")), dispatched("a"), running("a"))
    ack = _with_output(report_finished("a", outcome=Outcome.FAILURE, exit_code=2), "boom")

    then = decide(state, ack, later(4), W1)

    fail = then[0]
    assert isinstance(fail, TaskFailed)
    assert (fail.exit_code, fail.output, fail.reason, fail.retry_at) == (
        2,
        "boom",
        "exit code 2",
        None,
    )
    after = applied(state, then)
    run = after.tasks["a"]
    assert (run.state, run.exit_code, run.ended_at) == (TaskState.FAILURE, 2, later(4))
    assert (after.state, after.ended_at) == (WorkflowState.FAILURE, later(4))
    assert after.failure_reason == "failed: a (FAILURE after 1 attempt)"


def test_a_kill_records_the_output_and_the_end() -> None:
    state = through(empty(), start(chain("a")), report_started("a"), stop())
    ack = _with_output(report_finished("a", outcome=Outcome.KILLED, exit_code=143), "killed")

    then = decide(state, ack, later(4), W1)

    kill = then[0]
    assert isinstance(kill, TaskKilled)
    assert (kill.output, kill.at) == ("killed", later(4))
    run = applied(state, then).tasks["a"]
    assert (run.state, run.ended_at, run.exit_code) == (TaskState.KILL, later(4), None)


def test_a_failure_names_every_task_that_failed_for_good_in_code_order() -> None:
    wf = dag(b=(), a=(), c=("a",))
    state = through(empty(), start(wf), report_failed("b"))

    then = decide(state, report_finished("a", outcome=Outcome.TIMEOUT), later(2), W1)

    assert types(then) == [TaskFailed, WorkflowFailed]
    assert then[-1].reason == "failed: a (FAILURE after 1 attempt), b (FAILURE after 1 attempt)"
    assert applied(state, then).failure_reason == then[-1].reason


def test_a_started_ack_records_attempt_worker_and_time() -> None:
    state = given(started(chain("a")), dispatched("a", 3, "w7"))

    then = decide(state, report_started("a", 3, worker_id="w7"), later(2), W1)

    [begun] = then
    assert isinstance(begun, TaskStarted)
    assert (begun.task_code, begun.attempt, begun.worker_id, begun.at) == ("a", 3, "w7", later(2))


def test_every_refused_ack_is_dated_at_the_decision() -> None:
    state = through(empty(), start(chain("a")), report_finished("a"))
    refused = [
        decide(empty(), report_finished("a"), later(7), W1),  # no instance
        decide(state, report_finished("a", 2), later(7), W1),  # not the current attempt
        decide(state, replace(report_finished("a"), command_id="again"), later(7), W1),  # ended
    ]

    assert [rejection(r).reason for r in refused] == [
        Reason.NOT_FOUND,
        Reason.STALE_ATTEMPT,
        Reason.INVALID_STATE,
    ]
    assert {rejection(r).at for r in refused} == {later(7)}
