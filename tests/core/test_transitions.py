"""The event -> state table, and `evolve` leaving each task and instance in the state it names."""

from __future__ import annotations

import pytest

from streams.core.enums import TaskState, WorkflowState
from streams.core.events import (
    INSTANCE_EVENT_TYPES,
    TaskKillRequested,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowPauseRequested,
    WorkflowRerun,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowStopped,
    WorkflowStopRequested,
    WorkflowSucceeded,
)
from streams.core.evolve import evolve
from streams.core.transitions import TASK_STATE_AFTER, WORKFLOW_ENDS, WORKFLOW_STATE_AFTER
from tests.core.builders import (
    IID,
    NOW,
    chain,
    dispatched,
    failed,
    given,
    later,
    one_of_each,
    started,
)

SAMPLES = {type(e): e for e in one_of_each()}


def test_the_table_gives_dolphinschedulers_attempt_states() -> None:
    assert {k.__name__: v for k, v in TASK_STATE_AFTER.items()} == {
        "TaskDelayed": TaskState.DELAY_EXECUTION,
        "TaskDispatched": TaskState.DISPATCH,
        "TaskStarted": TaskState.RUNNING_EXECUTION,
        "TaskSucceeded": TaskState.SUCCESS,
        "TaskFailed": TaskState.FAILURE,
        "TaskFailedOver": TaskState.NEED_FAULT_TOLERANCE,
        "TaskKilled": TaskState.KILL,
        "TaskSuccessForced": TaskState.FORCED_SUCCESS,
    }


def test_the_table_gives_dolphinschedulers_instance_states() -> None:
    assert {k.__name__: v for k, v in WORKFLOW_STATE_AFTER.items()} == {
        "WorkflowStarted": WorkflowState.RUNNING_EXECUTION,
        "WorkflowPauseRequested": WorkflowState.READY_PAUSE,
        "WorkflowStopRequested": WorkflowState.READY_STOP,
        "WorkflowResumed": WorkflowState.RUNNING_EXECUTION,
        "WorkflowRerun": WorkflowState.RUNNING_EXECUTION,
        "TasksRerun": WorkflowState.RUNNING_EXECUTION,
        "WorkflowPaused": WorkflowState.PAUSE,
        "WorkflowStopped": WorkflowState.STOP,
        "WorkflowSucceeded": WorkflowState.SUCCESS,
        "WorkflowFailed": WorkflowState.FAILURE,
    }


def test_only_instance_events_are_in_the_table_and_a_kill_request_changes_no_state() -> None:
    assert set(TASK_STATE_AFTER) | set(WORKFLOW_STATE_AFTER) <= set(INSTANCE_EVENT_TYPES)
    assert TaskKillRequested not in TASK_STATE_AFTER


def test_the_events_that_end_an_instance() -> None:
    ends = {WorkflowPaused, WorkflowStopped, WorkflowSucceeded, WorkflowFailed}

    assert set(WORKFLOW_ENDS) == ends


@pytest.mark.parametrize("kind", list(TASK_STATE_AFTER), ids=lambda k: k.__name__)
def test_evolve_leaves_the_attempt_in_the_state_the_table_names(kind: type) -> None:
    state = given(started(chain("a")), dispatched("a"))

    after = evolve(state, SAMPLES[kind])

    assert after.tasks["a"].state is TASK_STATE_AFTER[kind]


@pytest.mark.parametrize(
    "kind", [k for k in WORKFLOW_STATE_AFTER if k is not WorkflowStarted], ids=lambda k: k.__name__
)
def test_evolve_leaves_the_instance_in_the_state_the_table_names_ended_when_final(
    kind: type,
) -> None:
    state = given(started(chain("a"), at=later(-5)), dispatched("a"))

    after = evolve(state, SAMPLES[kind])

    assert after.state is WORKFLOW_STATE_AFTER[kind]
    assert after.ended_at == (NOW if WORKFLOW_STATE_AFTER[kind].finished else None)
    # a rerun (REPEAT_RUNNING) starts the instance over: DolphinScheduler resets its start time
    assert after.started_at == (NOW if kind is WorkflowRerun else later(-5))


def test_a_started_instance_is_running_since_then() -> None:
    after = given(started(chain("a"), at=later(3)))

    assert (after.state, after.started_at, after.ended_at) == (
        WorkflowState.RUNNING_EXECUTION,
        later(3),
        None,
    )


def test_a_resumed_instance_is_no_longer_ended_nor_failed() -> None:
    state = given(
        started(chain("a")),
        dispatched("a"),
        failed("a"),
        WorkflowFailed(instance_id=IID, reason="failed: a", cause="given", at=later(1)),
    )
    assert (state.ended_at, state.failure_reason) == (later(1), "failed: a")

    after = evolve(state, WorkflowResumed(instance_id=IID, cause="resume-1", at=later(2)))

    assert (after.state, after.ended_at, after.failure_reason) == (
        WorkflowState.RUNNING_EXECUTION,
        None,
        "",
    )


def test_a_pause_request_keeps_the_instance_open() -> None:
    after = evolve(
        given(started(chain("a"))), WorkflowPauseRequested(instance_id=IID, cause="p", at=NOW)
    )
    stopping = evolve(after, WorkflowStopRequested(instance_id=IID, cause="s", at=NOW))

    assert (after.state, after.ended_at) == (WorkflowState.READY_PAUSE, None)
    assert (stopping.state, stopping.ended_at) == (WorkflowState.READY_STOP, None)
