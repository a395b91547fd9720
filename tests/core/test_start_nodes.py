"""Deciding a start with chosen start nodes and a scope (DolphinScheduler's `startNodeList`
and `taskDependType`): which tasks run, what their dependants see, and the refusals."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streams.core.decide import decide
from streams.core.definition import TaskDef, WorkflowDef, chosen
from streams.core.enums import TaskDependType, WorkflowState
from streams.core.events import TaskDispatched, WorkflowStarted, WorkflowSucceeded
from streams.core.evolve import fold
from streams.core.instance import InstanceState
from streams.core.rejections import Reason
from tests.core.builders import (
    NOW,
    W1,
    applied,
    empty,
    force_success,
    only,
    rejection,
    report_failed,
    report_finished,
    rerun,
    start,
    task,
    through,
    types,
    workflow,
)

ONLY, PRE, POST = TaskDependType.TASK_ONLY, TaskDependType.TASK_PRE, TaskDependType.TASK_POST


def diamond_and_x() -> WorkflowDef:
    """a -> b -> d, a -> c -> d, d -> e; x apart."""
    return workflow(
        task("a"), task("b", "a"), task("c", "a"), task("d", "b", "c"), task("e", "d"), task("x")
    )


def started(*nodes: str, scope: TaskDependType, wf: WorkflowDef | None = None) -> InstanceState:
    command = replace(start(wf or diamond_and_x()), start_nodes=nodes, scope=scope)
    return applied(empty(), decide(empty(), command, NOW, W1))


def dispatched(state: InstanceState) -> list[str]:
    return sorted(state.tasks)


def test_task_only_runs_the_start_nodes_alone_as_roots() -> None:
    state = started("b", "d", scope=ONLY)

    assert sorted(state.defs) == ["b", "d"]
    assert state.defs["d"].depends == ("b",)  # c is left out: d waits for b only
    assert dispatched(state) == ["b"]
    done = through(state, report_finished("b"), report_finished("d"))
    assert done.state is WorkflowState.SUCCESS
    assert sorted(done.tasks) == ["b", "d"]  # a, c, e, x never have an attempt


def test_task_pre_runs_the_start_nodes_with_everything_upstream() -> None:
    state = started("d", scope=PRE)

    assert sorted(state.defs) == ["a", "b", "c", "d"]
    assert dispatched(state) == ["a"]
    done = through(
        state, report_finished("a"), report_finished("b"), report_finished("c"),
        report_finished("d"),
    )  # fmt: skip
    assert done.state is WorkflowState.SUCCESS
    assert "e" not in done.tasks and "x" not in done.tasks


def test_task_post_runs_the_start_nodes_and_their_downstream_as_if_the_rest_did_not_exist() -> None:
    state = started("b", scope=POST)

    assert sorted(state.defs) == ["b", "d", "e"]
    assert state.defs["b"].depends == () and state.defs["d"].depends == ("b",)
    assert dispatched(state) == ["b"]  # no wait for a, nor for c
    then = decide(state, report_finished("b"), NOW, W1)
    assert [e.task_code for e in only(then, TaskDispatched)] == ["d"]
    done = through(applied(state, then), report_finished("d"), report_finished("e"))
    assert done.state is WorkflowState.SUCCESS


def test_no_start_nodes_runs_the_whole_dag_as_older_starts_do() -> None:
    wf = diamond_and_x()

    assert chosen(wf, (), POST) is wf
    state = through(empty(), start(wf))
    assert sorted(state.defs) == ["a", "b", "c", "d", "e", "x"]
    assert dispatched(state) == ["a", "x"]


def test_the_scope_is_recorded_and_a_replay_of_the_log_chooses_the_same_tasks() -> None:
    command = replace(start(diamond_and_x()), start_nodes=("c",), scope=POST)

    then = decide(empty(), command, NOW, W1)

    assert types(then)[0] is WorkflowStarted
    assert (then[0].start_nodes, then[0].scope) == (("c",), POST)
    assert fold(then) == applied(empty(), then)
    assert sorted(fold(then).defs) == ["c", "d", "e"]


def test_a_failure_under_a_scope_fails_the_instance_and_force_success_finishes_it() -> None:
    state = through(empty(), replace(start(diamond_and_x()), start_nodes=("e",), scope=ONLY))
    failed = through(state, report_failed("e"))
    assert failed.state is WorkflowState.FAILURE

    assert through(failed, force_success("e")).state is WorkflowState.SUCCESS


def test_a_rerun_runs_the_same_chosen_tasks_again() -> None:
    state = through(started("c", scope=POST), report_finished("c"), report_finished("d"),
                    report_finished("e"))  # fmt: skip

    again = through(state, rerun())

    assert dispatched(again) == ["c"]
    assert sorted(again.defs) == ["c", "d", "e"]


def test_the_run_flag_sees_through_disabled_tasks_inside_the_chosen_ones() -> None:
    off: TaskDef = replace(task("b", "a"), run=False)
    wf = workflow(task("a"), off, task("c", "b"), task("z"))

    state = started("a", scope=POST, wf=wf)

    assert sorted(state.defs) == ["a", "c"]
    assert state.defs["c"].depends == ("a",)
    done = through(state, report_finished("a"), report_finished("c"))
    assert done.state is WorkflowState.SUCCESS


def test_only_disabled_start_nodes_succeed_at_once() -> None:
    wf = workflow(replace(task("a"), run=False), task("b"))
    command = replace(start(wf), start_nodes=("a",), scope=ONLY)

    assert types(decide(empty(), command, NOW, W1)) == [WorkflowStarted, WorkflowSucceeded]


@pytest.mark.parametrize("scope", [ONLY, PRE, POST])
def test_an_unknown_start_node_is_rejected_invalid_dag(scope: TaskDependType) -> None:
    command = replace(start(diamond_and_x()), start_nodes=("b", "nope"), scope=scope)

    refused = rejection(decide(empty(), command, NOW, W1))

    assert refused.reason is Reason.INVALID_DAG
    assert refused.message == "start node: expected a task of the workflow, found 'nope'"
    assert not through(empty(), command).exists


@pytest.mark.parametrize("scope", [ONLY, PRE])
def test_task_only_and_task_pre_without_start_nodes_are_rejected_invalid_dag(
    scope: TaskDependType,
) -> None:
    command = replace(start(diamond_and_x()), scope=scope)

    refused = rejection(decide(empty(), command, NOW, W1))

    assert refused.reason is Reason.INVALID_DAG
    expected = f"start nodes: expected at least one with scope {scope.name}, found none"
    assert refused.message == expected


def test_a_task_outside_the_scope_cannot_be_forced_it_has_no_attempt() -> None:
    state = through(started("e", scope=ONLY), report_failed("e"))

    refused = rejection(decide(state, force_success("a"), NOW, W1))

    assert (refused.reason, refused.message) == (
        Reason.INVALID_STATE, "expected task a in the instance's scope, found it outside"
    )  # fmt: skip
