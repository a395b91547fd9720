"""Commands: requests to a master, in the imperative, listed in the same order as their events.

Every command carries a `command_id` (idempotency: a command already applied is not
re-decided) and is keyed on the commands topic by `instance_id`. Pure records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from streams.core.definition import WorkflowDef
from streams.core.enums import Outcome, Priority, TaskDependType


@dataclass(frozen=True, slots=True, kw_only=True)
class StartWorkflow:
    """START_PROCESS (code 0): a new instance of a definition (embedded, as registered)."""

    command_id: str
    instance_id: str
    workflow: WorkflowDef
    params: dict[str, str] = field(default_factory=dict)
    requested_by: str = ""
    at: datetime
    # The scheduled fire time of a cron-fired run; None for a manual run (schema v2).
    schedule_time: datetime | None = None
    # DolphinScheduler's dryRun: full orchestration, workers report SUCCESS without running
    # anything (schema v4).
    dry_run: bool = False
    # DolphinScheduler's startNodeList and taskDependType (schema v5): the start nodes only,
    # with their upstream or their downstream tasks (`definition.chosen`); none, the whole DAG.
    start_nodes: tuple[str, ...] = ()
    scope: TaskDependType = TaskDependType.TASK_POST
    # DolphinScheduler's processInstancePriority (schema v6): orders the instances waiting
    # for a worker slot (`streams/master/slot_waits.py`); task priority orders within one.
    priority: Priority = Priority.MEDIUM


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportTaskStarted:
    """A worker's "running" ack for one attempt."""

    command_id: str
    instance_id: str
    task_code: str
    attempt: int
    worker_id: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportTaskFinished:
    """A worker's "finished" ack for one attempt, with its exit code and output tail."""

    command_id: str
    instance_id: str
    task_code: str
    attempt: int
    worker_id: str
    outcome: Outcome
    exit_code: int
    output: str = ""
    at: datetime
    # What the attempt set for its downstream tasks (schema v2): `setValue` markers, a SQL
    # result, an HTTP response; the master keeps the task's declared OUT names.
    out_params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseWorkflow:
    """PAUSE (code 8): nothing new starts; running tasks finish."""

    command_id: str
    instance_id: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class StopWorkflow:
    """STOP (code 9): running tasks are killed."""

    command_id: str
    instance_id: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumeWorkflow:
    """RECOVER_SUSPENDED_PROCESS (3) from PAUSE/STOP, START_FAILURE_TASK_PROCESS (4) from
    FAILURE: successes are kept, failed, paused and killed tasks run again."""

    command_id: str
    instance_id: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RerunWorkflow:
    """REPEAT_RUNNING (code 7): a finished instance runs its whole DAG again, under the same
    instance id; every earlier attempt stays in the log and becomes not valid."""

    command_id: str
    instance_id: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RerunTasks:
    """EXECUTE_TASK (code 12): chosen tasks of a SUCCESS or FAILURE instance run again inside
    it, with their upstream (TASK_PRE) or downstream (TASK_POST) tasks or alone (TASK_ONLY);
    the other tasks keep their results (see `decide/rerun_tasks.py`)."""

    command_id: str
    instance_id: str
    start_nodes: tuple[str, ...]
    scope: TaskDependType = TaskDependType.TASK_POST
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ForceTaskSuccess:
    """Force success (a task instance's "force-success"): a FAILURE or KILL task of a finished
    instance becomes FORCED_SUCCESS; the instance succeeds if no other task is left unsucceeded."""

    command_id: str
    instance_id: str
    task_code: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class StopTask:
    """Stop one task (a task instance's "stop"): its active attempt is killed; the instance
    goes on as after any KILL (see `decide/task_control.py`)."""

    command_id: str
    instance_id: str
    task_code: str
    at: datetime


Command = (
    StartWorkflow
    | ReportTaskStarted
    | ReportTaskFinished
    | PauseWorkflow
    | StopWorkflow
    | ResumeWorkflow
    | RerunWorkflow
    | RerunTasks
    | ForceTaskSuccess
    | StopTask
)
COMMAND_TYPES: tuple[type[Command], ...] = (
    StartWorkflow,
    ReportTaskStarted,
    ReportTaskFinished,
    PauseWorkflow,
    StopWorkflow,
    ResumeWorkflow,
    RerunWorkflow,
    RerunTasks,
    ForceTaskSuccess,
    StopTask,
)
