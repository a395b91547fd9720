"""DolphinScheduler's state, priority and command enums, with their codes (pure)."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class WorkflowState(IntEnum):
    """`WorkflowExecutionStatus`: codes are the ones DolphinScheduler's users see."""

    SUBMITTED_SUCCESS = 0
    RUNNING_EXECUTION = 1
    READY_PAUSE = 2
    PAUSE = 3
    READY_STOP = 4
    STOP = 5
    FAILURE = 6
    SUCCESS = 7

    @property
    def finished(self) -> bool:
        return self in _FINISHED_WORKFLOW


_FINISHED_WORKFLOW = frozenset(
    {WorkflowState.PAUSE, WorkflowState.STOP, WorkflowState.FAILURE, WorkflowState.SUCCESS}
)


class TaskState(IntEnum):
    """`TaskExecutionStatus`: codes are the ones DolphinScheduler's users see."""

    SUBMITTED_SUCCESS = 0
    RUNNING_EXECUTION = 1
    PAUSE = 3
    FAILURE = 6
    SUCCESS = 7
    NEED_FAULT_TOLERANCE = 8
    KILL = 9
    DELAY_EXECUTION = 12
    FORCED_SUCCESS = 13
    DISPATCH = 17

    @property
    def active(self) -> bool:
        """Handed to a worker and not yet finished."""
        return self in (TaskState.DISPATCH, TaskState.RUNNING_EXECUTION)

    @property
    def succeeded(self) -> bool:
        return self in (TaskState.SUCCESS, TaskState.FORCED_SUCCESS)


class Priority(IntEnum):
    """Smaller is earlier."""

    HIGHEST = 0
    HIGH = 1
    MEDIUM = 2
    LOW = 3
    LOWEST = 4


class FailureStrategy(IntEnum):
    """END kills running tasks at the first failure; CONTINUE lets unrelated branches finish."""

    END = 0
    CONTINUE = 1


class TimeoutStrategy(IntEnum):
    """What a task past its timeout does (DolphinScheduler's `TaskTimeoutStrategy`): WARN
    records a warning (`TaskTimedOut`) and lets the attempt run on; FAILED has the worker kill
    it and it ends FAILURE (then the retry rules); WARNFAILED does both."""

    WARN = 0
    FAILED = 1
    WARNFAILED = 2

    @property
    def warns(self) -> bool:
        return self is not TimeoutStrategy.FAILED

    @property
    def kills(self) -> bool:
        return self is not TimeoutStrategy.WARN


class TaskDependType(IntEnum):
    """Which tasks a start with chosen start nodes runs (DolphinScheduler's `taskDependType`):
    the start nodes only, with every task upstream of them, or with every task downstream.
    No start nodes: the whole DAG (TASK_POST is DolphinScheduler's default)."""

    TASK_ONLY = 0
    TASK_PRE = 1
    TASK_POST = 2


class TaskType(StrEnum):
    SHELL = "SHELL"
    NOOP = "NOOP"  # succeeds at once on the worker: measures the scheduler, not process start-up
    PYTHON = "PYTHON"  # a script run by the interpreter of a worker's named environment
    HTTP = "HTTP"  # a request and a check (`task_specs.HttpSpec`)
    SQL = "SQL"  # statements on a data source the worker has by name (`task_specs.SqlSpec`)


class Outcome(StrEnum):
    """How a worker says an attempt ended."""

    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    TIMEOUT = "TIMEOUT"
    KILLED = "KILLED"
