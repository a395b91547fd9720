"""Deciding `StartWorkflow`: roots dispatched, idempotent, refusals as data."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streams.core.decide import decide
from streams.core.enums import Priority, TaskState, WorkflowState
from streams.core.events import (
    CommandRejected,
    TaskDispatched,
    WorkflowStarted,
    WorkflowSucceeded,
)
from streams.core.placement import NO_WORKERS
from streams.core.rejections import Reason
from streams.core.tick import next_deadline, tick, waiting_for_slots
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
    start,
    task,
    through,
    types,
    worker,
    workers,
    workflow,
)


def test_start_fresh_instance_starts_and_dispatches_every_root() -> None:
    wf = dag(a=(), b=(), c=(), d=("a", "b", "c"))

    then = decide(empty(), start(wf), NOW, workers("w1", "w2", "w3"))

    assert types(then) == [WorkflowStarted, TaskDispatched, TaskDispatched, TaskDispatched]
    first = then[0]
    assert isinstance(first, WorkflowStarted)
    assert (first.instance_id, first.workflow, first.cause, first.at) == (IID, wf, "start-1", NOW)
    sent = only(then, TaskDispatched)
    assert [(d.task_code, d.attempt) for d in sent] == [("a", 1), ("b", 1), ("c", 1)]
    assert all((d.cause, d.at, d.worker_group) == ("start-1", NOW, "default") for d in sent)


def test_start_places_each_root_on_a_live_worker_of_its_group() -> None:
    wf = workflow(task("train", group="gpu"), task("report", group="cpu"), task("log"))
    live = workers("g1", group="gpu") | workers("c1", "c2", group="cpu") | workers("d1")

    then = decide(empty(), start(wf), NOW, live)

    placed = {d.task_code: (d.worker_group, d.worker_id) for d in only(then, TaskDispatched)}
    assert placed["train"] == ("gpu", "g1")
    assert placed["report"][0] == "cpu"
    assert placed["report"][1] in {"c1", "c2"}
    assert placed["log"] == ("default", "d1")


def test_start_dispatches_higher_priority_roots_first() -> None:
    wf = workflow(
        task("low", priority=Priority.LOW),
        task("urgent", priority=Priority.HIGHEST),
        task("normal"),
    )

    then = decide(empty(), start(wf), NOW, W1)

    assert [d.task_code for d in only(then, TaskDispatched)] == ["urgent", "normal", "low"]


def test_start_folds_to_a_running_instance_with_dispatched_roots() -> None:
    wf = chain("extract", "load")

    state = through(empty(), start(wf))

    assert state.state is WorkflowState.RUNNING_EXECUTION
    assert state.started_at == NOW
    assert set(state.tasks) == {"extract"}
    run = state.tasks["extract"]
    assert (run.attempt, run.tries, run.state, run.worker_id) == (1, 1, TaskState.DISPATCH, "w1")
    assert "start-1" in state.applied


def test_start_same_command_twice_yields_nothing_the_second_time() -> None:
    when = start(chain("a", "b"))
    state = through(empty(), when)

    then = decide(state, when, later(5), W1)

    assert then == []


def test_start_other_command_for_existing_instance_is_rejected_already_exists() -> None:
    state = through(empty(), start(chain("a")))

    then = decide(state, start(chain("a"), command_id="start-2"), NOW, W1)

    refused = rejection(then)
    assert refused.reason is Reason.ALREADY_EXISTS
    assert refused.command_id == "start-2"
    assert refused.command_type == "StartWorkflow"
    assert refused.message == f"expected no instance {IID}, found one in RUNNING_EXECUTION"


def test_start_rejected_already_exists_leaves_the_instance_as_it_was() -> None:
    state = through(empty(), start(chain("a")))

    after = applied(state, decide(state, start(chain("b"), command_id="start-2"), NOW, W1))

    assert after.workflow == state.workflow
    assert after.tasks == state.tasks
    assert "start-2" in after.applied


def test_start_cyclic_workflow_is_rejected_invalid_dag_naming_the_cycle() -> None:
    wf = dag(a=("c",), b=("a",), c=("b",))

    then = decide(empty(), start(wf), NOW, W1)

    refused = rejection(then)
    assert refused.reason is Reason.INVALID_DAG
    assert "cycle: a -> b -> c -> a" in refused.message


def test_start_unknown_dependency_is_rejected_invalid_dag_naming_it() -> None:
    then = decide(empty(), start(dag(load=("extract",))), NOW, W1)

    refused = rejection(then)
    assert refused.reason is Reason.INVALID_DAG
    assert refused.message == "task 'load' depends on unknown task 'extract'"


def test_start_rejected_invalid_dag_leaves_no_instance_and_a_fixed_start_runs() -> None:
    state = applied(empty(), decide(empty(), start(dag(a=("a",))), NOW, W1))
    assert not state.exists

    then = decide(state, start(chain("a"), command_id="start-2"), NOW, W1)

    assert types(then) == [WorkflowStarted, TaskDispatched]


def test_start_without_live_worker_starts_but_dispatches_nothing() -> None:
    then = decide(empty(), start(chain("a", "b")), NOW, NO_WORKERS)

    assert types(then) == [WorkflowStarted]


def test_start_with_workers_only_in_other_groups_dispatches_nothing() -> None:
    wf = workflow(task("train", group="gpu"))

    then = decide(empty(), start(wf), NOW, workers("c1", group="cpu"))

    assert types(then) == [WorkflowStarted]


def test_start_without_worker_waits_and_tick_dispatches_once_a_worker_appears() -> None:
    state = through(empty(), start(chain("a", "b")), workers=NO_WORKERS)
    assert next_deadline(state) is None
    assert waiting_for_slots(state, NOW) == {"default"}
    assert tick(state, later(1), NO_WORKERS) == []

    then = tick(state, later(2), W1)

    assert types(then) == [TaskDispatched]
    assert (then[0].task_code, then[0].attempt, then[0].at) == ("a", 1, later(2))
    assert next_deadline(applied(state, then)) is None


def test_start_empty_workflow_succeeds_at_once() -> None:
    then = decide(empty(), start(workflow()), NOW, W1)

    assert types(then) == [WorkflowStarted, WorkflowSucceeded]


def test_start_rejection_names_its_command() -> None:
    then = decide(empty(), start(dag(a=("a",)), command_id="cmd-42"), NOW, W1)

    assert isinstance(then[0], CommandRejected)
    assert (then[0].instance_id, then[0].command_id, then[0].at) == (IID, "cmd-42", NOW)


@pytest.mark.parametrize(
    ("interval", "found"),
    [(float("nan"), "nan"), (float("inf"), "inf"), (1e12, "1000000000000.0"), (-1.0, "-1.0")],
)
def test_start_whose_retry_interval_no_clock_can_add_is_rejected_invalid_dag(
    interval: float, found: str
) -> None:
    wf = workflow(replace(task("a", retries=1), retry_interval_s=interval), task("b"))

    refused = rejection(decide(empty(), start(wf), NOW, W1))

    assert refused.reason is Reason.INVALID_DAG
    assert refused.message.startswith("task 'a'.retry_interval: ")
    assert refused.message.endswith(f"found {found}")


@pytest.mark.parametrize(("timeout", "found"), [(float("inf"), "inf"), (-5.0, "-5.0")])
def test_start_whose_timeout_no_worker_can_arm_is_rejected_invalid_dag(
    timeout: float, found: str
) -> None:
    wf = workflow(replace(task("a"), timeout_s=timeout))

    refused = rejection(decide(empty(), start(wf), NOW, W1))

    assert refused.reason is Reason.INVALID_DAG
    assert refused.message.startswith("task 'a'.timeout: ")
    assert refused.message.endswith(f"found {found}")


def test_start_with_a_retry_interval_of_366_days_runs_and_retries_then() -> None:
    wf = workflow(task("a", retries=1, retry_interval_s=366 * 24 * 3600.0))

    state = through(empty(), start(wf), report_failed("a"))

    assert state.tasks["a"].retry_at == later(366 * 24 * 3600.0)


def test_start_records_the_run_parameters_and_who_asked_in_the_event_and_the_state() -> None:
    command = replace(start(chain("a")), params={"day": "2026-11-22"}, requested_by="ops")

    then = decide(empty(), command, NOW, W1)

    first = then[0]
    assert isinstance(first, WorkflowStarted)
    assert (first.params, first.requested_by) == ({"day": "2026-11-22"}, "ops")
    state = applied(empty(), then)
    assert dict(state.params) == {"day": "2026-11-22"}
    assert (state.started_at, state.ended_at) == (NOW, None)


def test_start_with_one_group_full_still_dispatches_the_ready_tasks_of_other_groups() -> None:
    # "train" comes first in dispatch order, and its group has no free slot
    wf = workflow(task("train", group="gpu", priority=Priority.HIGHEST), task("a"), task("b"))
    full_gpu = {"gpu": [worker("g1", "gpu", slots_total=1, slots_free=0)]}

    then = decide(empty(), start(wf), NOW, full_gpu | workers("w1"))

    assert [e.task_code for e in only(then, TaskDispatched)] == ["a", "b"]
    assert waiting_for_slots(applied(empty(), then), NOW) == {"gpu"}


def test_start_refusals_are_dated_at_the_decision_and_name_every_problem() -> None:
    state = through(empty(), start(chain("a")))
    bad = dag(a=("a",), b=("x",))

    exists = rejection(decide(state, start(chain("a"), command_id="start-2"), later(3), W1))
    invalid = rejection(decide(empty(), start(bad), later(3), W1))

    assert (exists.reason, exists.at) == (Reason.ALREADY_EXISTS, later(3))
    assert (invalid.reason, invalid.at) == (Reason.INVALID_DAG, later(3))
    assert invalid.message == "task 'a' depends on itself; task 'b' depends on unknown task 'x'"


def test_the_start_carries_the_workflow_priority_into_the_instance() -> None:
    command = replace(start(chain("a")), priority=Priority.HIGHEST)

    then = decide(empty(), command, NOW, W1)

    started = then[0]
    assert isinstance(started, WorkflowStarted) and started.priority is Priority.HIGHEST
    assert applied(empty(), then).priority is Priority.HIGHEST
    assert applied(empty(), decide(empty(), start(chain("a")), NOW, W1)).priority is Priority.MEDIUM
