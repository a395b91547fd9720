"""Which state each event leaves its task attempt or its instance in (pure): one table, read
by `evolve`, by the projector's handlers (the rows' `state_code`) and by the chaos checker.

An event missing from `TASK_STATE_AFTER` changes no attempt's state (`TaskKillRequested`
waits for the worker's `TaskKilled`); one missing from `WORKFLOW_STATE_AFTER` changes no
instance's state. An instance's `ended_at` is set exactly when its new state is finished.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from streams.core.enums import TaskState, WorkflowState
from streams.core.events import (
    TaskDelayed,
    TaskDispatched,
    TaskFailed,
    TaskFailedOver,
    TaskKilled,
    TasksRerun,
    TaskStarted,
    TaskSucceeded,
    TaskSuccessForced,
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

TASK_STATE_AFTER: Final[Mapping[type, TaskState]] = MappingProxyType(
    {
        TaskDelayed: TaskState.DELAY_EXECUTION,
        TaskDispatched: TaskState.DISPATCH,
        TaskStarted: TaskState.RUNNING_EXECUTION,
        TaskSucceeded: TaskState.SUCCESS,
        TaskFailed: TaskState.FAILURE,
        TaskFailedOver: TaskState.NEED_FAULT_TOLERANCE,
        TaskKilled: TaskState.KILL,
        TaskSuccessForced: TaskState.FORCED_SUCCESS,
    }
)

WORKFLOW_STATE_AFTER: Final[Mapping[type, WorkflowState]] = MappingProxyType(
    {
        WorkflowStarted: WorkflowState.RUNNING_EXECUTION,
        WorkflowPauseRequested: WorkflowState.READY_PAUSE,
        WorkflowStopRequested: WorkflowState.READY_STOP,
        WorkflowResumed: WorkflowState.RUNNING_EXECUTION,
        WorkflowRerun: WorkflowState.RUNNING_EXECUTION,
        TasksRerun: WorkflowState.RUNNING_EXECUTION,
        WorkflowPaused: WorkflowState.PAUSE,
        WorkflowStopped: WorkflowState.STOP,
        WorkflowSucceeded: WorkflowState.SUCCESS,
        WorkflowFailed: WorkflowState.FAILURE,
    }
)

# The events that end an instance (until a resume): for `isinstance`.
WORKFLOW_ENDS: Final[tuple[type, ...]] = tuple(
    kind for kind, state in WORKFLOW_STATE_AFTER.items() if state.finished
)
