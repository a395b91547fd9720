"""The instance state's indexes: `with_task` keeps them step by step exactly as `reindexed`
rebuilds them from scratch, whatever attempt replaces whatever attempt."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.enums import TaskState
from streams.core.evolve import evolve
from streams.core.instance import InstanceState, TaskRun, reindexed, with_task
from tests.core.builders import IID, NOW, dag, started

WF = dag(a=(), b=("a",), c=("a",), d=("b", "c"), e=())
CODES = [t.code for t in WF.tasks]

runs = st.builds(
    TaskRun,
    code=st.sampled_from(CODES),
    attempt=st.integers(1, 3),
    tries=st.integers(0, 3),
    state=st.sampled_from(TaskState),
    retry_at=st.none() | st.just(NOW),
    kill_requested=st.booleans(),
)


def _base() -> InstanceState:
    return evolve(InstanceState(instance_id=IID), started(WF))


@settings(max_examples=300, deadline=None)
@given(st.lists(runs, max_size=6), runs)
def test_with_task_keeps_every_index_as_a_rebuild_finds_it(
    history: list[TaskRun], task: TaskRun
) -> None:
    state = _base()
    for run in history:
        state = with_task(state, run, "given")
    assert state == reindexed(state)

    after = with_task(state, task, "cause-x")

    assert after == reindexed(replace(state, tasks={**state.tasks, task.code: task},
                                      applied=state.applied | {"cause-x"}))  # fmt: skip


def test_a_success_that_is_replaced_no_longer_counts_and_its_downstream_waits_again() -> None:
    state = with_task(_base(), TaskRun(code="a", attempt=1, tries=1, state=TaskState.SUCCESS), "s")
    assert (state.succeeded, state.ready) == (1, frozenset({"b", "c", "e"}))

    after = with_task(state, TaskRun(code="a", attempt=2, tries=1, state=TaskState.DISPATCH), "r")

    assert (after.succeeded, after.ready, after.running) == (0, frozenset({"e"}), {"a"})
    assert dict(after.unmet) == {"a": 0, "b": 1, "c": 1, "d": 2, "e": 0}


def test_reindexed_rebuilds_running_failed_and_succeeded_from_the_tasks() -> None:
    tasks = {
        "a": TaskRun(code="a", attempt=1, tries=1, state=TaskState.SUCCESS),
        "b": TaskRun(code="b", attempt=1, tries=1, state=TaskState.RUNNING_EXECUTION),
        "c": TaskRun(code="c", attempt=1, tries=1, state=TaskState.KILL),
        "e": TaskRun(code="e", attempt=1, tries=1, state=TaskState.FAILURE, retry_at=NOW),
    }

    state = reindexed(replace(_base(), tasks=tasks))

    assert (state.running, state.failed, state.retrying) == ({"b"}, {"c"}, {"e"})
    assert (state.succeeded, state.ready) == (1, frozenset())
