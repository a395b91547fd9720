"""Events: facts on the events topic (key = instance id), past tense, each naming its cause.

`cause` is the command id, or a tick id for time-driven decisions; `at` is the `now` handed
to decide/tick, never read from a clock; `epoch` is the writer's ownership epoch (fencing).
An event class never changes meaning once released: a new shape is a new Avro version.
Pure records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from streams.core.definition import WorkflowDef
from streams.core.enums import Priority, TaskDependType, TimeoutStrategy
from streams.core.rejections import Reason


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowStarted:
    instance_id: str
    workflow: WorkflowDef
    params: dict[str, str] = field(default_factory=dict)
    requested_by: str = ""
    cause: str
    at: datetime
    epoch: int = 0
    dry_run: bool = False  # every dispatch asks the worker not to run anything (schema v3)
    # The chosen tasks (schema v4): only they run (`definition.chosen`); none, the whole DAG.
    start_nodes: tuple[str, ...] = ()
    scope: TaskDependType = TaskDependType.TASK_POST
    # The fire time of a scheduled run (DolphinScheduler's scheduleTime), from the start
    # (schema v5); None for a manual run.
    schedule_time: datetime | None = None
    # The instance's priority among those waiting for worker slots (schema v5).
    priority: Priority = Priority.MEDIUM


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskDispatched:
    instance_id: str
    task_code: str
    attempt: int
    worker_id: str
    worker_group: str
    cause: str
    at: datetime
    epoch: int = 0
    # The parameters the attempt runs with, fully resolved (schema v2): what the audit shows
    # ran, and what the dispatch record carries (`streams.core.attempt_params`).
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskStarted:
    instance_id: str
    task_code: str
    attempt: int
    worker_id: str
    cause: str
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSucceeded:
    instance_id: str
    task_code: str
    attempt: int
    exit_code: int
    output: str = ""
    cause: str
    at: datetime
    epoch: int = 0
    # The values the task exports downstream (schema v2): its declared OUT parameters.
    out_params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFailed:
    """An attempt failed; `retry_at` is set when another attempt will follow."""

    instance_id: str
    task_code: str
    attempt: int
    exit_code: int
    reason: str
    output: str = ""
    retry_at: datetime | None = None
    cause: str
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFailedOver:
    """The attempt's worker was lost, or never acknowledged the dispatch: the attempt is
    NEED_FAULT_TOLERANCE and a new attempt follows at once, outside the retry budget."""

    instance_id: str
    task_code: str
    attempt: int
    worker_id: str
    reason: str
    cause: str
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskKillRequested:
    """Stop or failure strategy END asked the worker to kill an active attempt."""

    # A user's StopTask asks the same (its cause is that command's id).

    instance_id: str
    task_code: str
    attempt: int
    worker_id: str
    cause: str
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskKilled:
    instance_id: str
    task_code: str
    attempt: int
    output: str = ""
    cause: str
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSuccessForced:
    """A user forced the FAILURE or KILL attempt of a finished instance to FORCED_SUCCESS; a
    retry it was waiting for will not happen."""

    instance_id: str
    task_code: str
    attempt: int
    cause: str
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowPauseRequested:
    instance_id: str
    cause: str
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowStopRequested:
    instance_id: str
    cause: str
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowResumed:
    instance_id: str
    cause: str
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TasksRerun:
    """EXECUTE_TASK: the instance runs again, but only `task_codes` (the start nodes with
    their scope, as decided); each runs as a new attempt, the other tasks keep their results."""

    instance_id: str
    task_codes: tuple[str, ...]
    cause: str
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowRerun:
    """REPEAT_RUNNING: the instance starts over; every task runs again as a new attempt
    (attempt numbers keep counting, so no attempt id is reused)."""

    instance_id: str
    cause: str
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowPaused:
    instance_id: str
    cause: str
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowStopped:
    instance_id: str
    cause: str
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowSucceeded:
    instance_id: str
    cause: str
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowFailed:
    instance_id: str
    reason: str
    cause: str
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskTimedOut:
    """A warning (DolphinScheduler's TASK_TIMEOUT alert): the attempt has run `timeout_s`
    past its start. Strategy WARN lets it run on; WARNFAILED also has the worker kill it (its
    `TaskFailed` follows). Recorded once per attempt; changes no state."""

    instance_id: str
    task_code: str
    attempt: int
    worker_id: str
    timeout_s: float
    strategy: TimeoutStrategy
    cause: str
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowTimedOut:
    """A warning (DolphinScheduler's PROCESS_INSTANCE_TIMEOUT alert): the instance has not
    finished `timeout_s` after its start. Recorded once per run; changes no state."""

    instance_id: str
    timeout_s: float
    cause: str
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskDelayed:
    """The task's first attempt of this run waits in DELAY_EXECUTION until `until` (its delay
    time after it was first ready), then is dispatched as `attempt`."""

    instance_id: str
    task_code: str
    attempt: int
    until: datetime
    cause: str
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandRejected:
    """A refused command: what was expected and what was found."""

    instance_id: str
    command_id: str
    command_type: str
    reason: Reason
    message: str
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionTakenOver:
    """A master became the owner of a partition (key `partition/<p>`): the audit record of
    master failover, and the fence: events of this partition with a lower epoch are ignored."""

    partition: int
    owner: str
    previous_owner: str = ""
    epoch: int
    events_offset: int  # the events-partition end when the new owner had rebuilt its state
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerLost:
    """A worker's heartbeat is older than the timeout, or it restarted under the same id
    (key `worker/<id>`, appended on each partition of the master that noticed)."""

    worker_id: str
    worker_group: str
    incarnation: datetime  # the lost process's start time, from its heartbeats
    last_heartbeat_at: datetime
    partition: int
    at: datetime
    epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowDefinitionRegistered:
    """On the definitions topic (key = workflow code): a new version of a definition."""

    workflow: WorkflowDef
    content_hash: str
    registered_by: str = ""
    at: datetime


InstanceEvent = (
    WorkflowStarted
    | TaskDispatched
    | TaskStarted
    | TaskSucceeded
    | TaskFailed
    | TaskFailedOver
    | TaskKillRequested
    | TaskKilled
    | TaskSuccessForced
    | WorkflowPauseRequested
    | WorkflowStopRequested
    | WorkflowResumed
    | WorkflowRerun
    | TasksRerun
    | WorkflowPaused
    | WorkflowStopped
    | WorkflowSucceeded
    | WorkflowFailed
    | CommandRejected
    | TaskTimedOut
    | WorkflowTimedOut
    | TaskDelayed
)
INSTANCE_EVENT_TYPES: tuple[type[InstanceEvent], ...] = (
    WorkflowStarted,
    TaskDispatched,
    TaskStarted,
    TaskSucceeded,
    TaskFailed,
    TaskFailedOver,
    TaskKillRequested,
    TaskKilled,
    TaskSuccessForced,
    WorkflowPauseRequested,
    WorkflowStopRequested,
    WorkflowResumed,
    WorkflowRerun,
    TasksRerun,
    WorkflowPaused,
    WorkflowStopped,
    WorkflowSucceeded,
    WorkflowFailed,
    CommandRejected,
    TaskTimedOut,
    WorkflowTimedOut,
    TaskDelayed,
)

PartitionEvent = PartitionTakenOver | WorkerLost
PARTITION_EVENT_TYPES: tuple[type[PartitionEvent], ...] = (PartitionTakenOver, WorkerLost)
