"""Builders for the core's given/when/then tests: definitions, events, commands, workers.

Events are built as facts with `cause="given"`; commands carry the ids the real senders use
(acks: `ack_command_id`), so a redelivered builder command is recognised as the same one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.core.commands import (
    Command,
    ForceTaskSuccess,
    PauseWorkflow,
    ReportTaskFinished,
    ReportTaskStarted,
    RerunWorkflow,
    ResumeWorkflow,
    StartWorkflow,
    StopTask,
    StopWorkflow,
)
from streams.core.decide import decide
from streams.core.definition import DEFAULT_WORKER_GROUP, TaskDef, WorkflowDef
from streams.core.enums import FailureStrategy, Outcome, Priority, TaskType, TimeoutStrategy
from streams.core.events import (
    CommandRejected,
    InstanceEvent,
    TaskDelayed,
    TaskDispatched,
    TaskFailed,
    TaskFailedOver,
    TaskKilled,
    TaskKillRequested,
    TasksRerun,
    TaskStarted,
    TaskSucceeded,
    TaskSuccessForced,
    TaskTimedOut,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowPauseRequested,
    WorkflowRerun,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowStopped,
    WorkflowStopRequested,
    WorkflowSucceeded,
    WorkflowTimedOut,
)
from streams.core.evolve import evolve, fold
from streams.core.ids import ack_command_id
from streams.core.instance import InstanceState
from streams.core.placement import Workers, WorkerView
from streams.core.rejections import Reason

IID = "inst-1"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
GIVEN = "given"


def later(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


# -- definitions ---------------------------------------------------------------------------


def task(
    code: str,
    *depends: str,
    retries: int = 0,
    retry_interval_s: float = 0.0,
    group: str = DEFAULT_WORKER_GROUP,
    priority: Priority = Priority.MEDIUM,
    type: TaskType = TaskType.SHELL,
    timeout_s: float | None = None,
    timeout_strategy: TimeoutStrategy = TimeoutStrategy.FAILED,
    delay_s: float = 0.0,
) -> TaskDef:
    return TaskDef(
        code=code,
        type=type,
        command=f"echo {code}" if type is TaskType.SHELL else "",
        depends=depends,
        retries=retries,
        retry_interval_s=retry_interval_s,
        worker_group=group,
        priority=priority,
        timeout_s=timeout_s,
        timeout_strategy=timeout_strategy,
        delay_s=delay_s,
    )


def workflow(
    *tasks: TaskDef,
    code: str = "wf",
    failure_strategy: FailureStrategy = FailureStrategy.CONTINUE,
) -> WorkflowDef:
    return WorkflowDef(code=code, failure_strategy=failure_strategy, tasks=tasks)


def dag(
    failure_strategy: FailureStrategy = FailureStrategy.CONTINUE,
    **depends: Sequence[str],
) -> WorkflowDef:
    """`dag(a=(), b=("a",), c=("a",), d=("b", "c"))`: a diamond."""
    return workflow(
        *(task(code, *ups) for code, ups in depends.items()), failure_strategy=failure_strategy
    )


def chain(
    *codes: str,
    failure_strategy: FailureStrategy = FailureStrategy.CONTINUE,
    **task_options: Any,
) -> WorkflowDef:
    """`chain("a", "b", "c")`: a -> b -> c, every task with `task_options`."""
    tasks = [
        task(code, *(codes[i - 1 : i] if i else ()), **task_options) for i, code in enumerate(codes)
    ]
    return workflow(*tasks, failure_strategy=failure_strategy)


# -- workers -------------------------------------------------------------------------------


def worker(
    worker_id: str, group: str = DEFAULT_WORKER_GROUP, slots_total: int = 4, slots_free: int = 4
) -> WorkerView:
    return WorkerView(worker_id, group, slots_total, slots_free)


def workers(
    *ids: str, group: str = DEFAULT_WORKER_GROUP, slots: int = 4
) -> dict[str, list[WorkerView]]:
    """Idle live workers of one group; merge groups with `|`."""
    return {group: [worker(i, group, slots, slots) for i in ids]}


W1: Workers = workers("w1")


# -- events (facts for `given`) ------------------------------------------------------------


def started(wf: WorkflowDef, at: datetime = NOW) -> WorkflowStarted:
    return WorkflowStarted(instance_id=IID, workflow=wf, cause="start-1", at=at)


def dispatched(
    code: str, attempt: int = 1, worker_id: str = "w1", at: datetime = NOW
) -> TaskDispatched:
    return TaskDispatched(
        instance_id=IID,
        task_code=code,
        attempt=attempt,
        worker_id=worker_id,
        worker_group=DEFAULT_WORKER_GROUP,
        cause=GIVEN,
        at=at,
    )


def running(code: str, attempt: int = 1, at: datetime = NOW) -> TaskStarted:
    return TaskStarted(
        instance_id=IID, task_code=code, attempt=attempt, worker_id="w1", cause=GIVEN, at=at
    )


def succeeded(code: str, attempt: int = 1, at: datetime = NOW) -> TaskSucceeded:
    return TaskSucceeded(
        instance_id=IID, task_code=code, attempt=attempt, exit_code=0, cause=GIVEN, at=at
    )


def failed(
    code: str, attempt: int = 1, retry_at: datetime | None = None, at: datetime = NOW
) -> TaskFailed:
    return TaskFailed(
        instance_id=IID,
        task_code=code,
        attempt=attempt,
        exit_code=1,
        reason="exit code 1",
        retry_at=retry_at,
        cause=GIVEN,
        at=at,
    )


def kill_requested(code: str, attempt: int = 1, at: datetime = NOW) -> TaskKillRequested:
    return TaskKillRequested(
        instance_id=IID, task_code=code, attempt=attempt, worker_id="w1", cause=GIVEN, at=at
    )


def killed(code: str, attempt: int = 1, at: datetime = NOW) -> TaskKilled:
    return TaskKilled(instance_id=IID, task_code=code, attempt=attempt, cause=GIVEN, at=at)


def one_of_each() -> list[InstanceEvent]:
    """One event of every instance type, each with the cause "cause-x"."""
    at = {"instance_id": IID, "at": NOW}
    x = {**at, "cause": "cause-x"}
    task = {**x, "task_code": "a", "attempt": 1}
    return [
        WorkflowStarted(workflow=chain("a"), **x),
        TaskDispatched(worker_id="w1", worker_group="default", **task),
        TaskStarted(worker_id="w1", **task),
        TaskSucceeded(exit_code=0, **task),
        TaskFailed(exit_code=1, reason="exit code 1", **task),
        TaskKillRequested(worker_id="w1", **task),
        TaskFailedOver(worker_id="w1", reason="worker lost", **task),
        TaskKilled(**task),
        TaskSuccessForced(**task),
        WorkflowPauseRequested(**x),
        WorkflowStopRequested(**x),
        WorkflowResumed(**x),
        WorkflowRerun(**x),
        TasksRerun(task_codes=("a",), **x),
        WorkflowPaused(**x),
        WorkflowStopped(**x),
        WorkflowSucceeded(**x),
        WorkflowFailed(reason="failed: a", **x),
        CommandRejected(
            command_id="cause-x",
            command_type="StopWorkflow",
            reason=Reason.INVALID_STATE,
            message="expected READY_PAUSE or RUNNING_EXECUTION, found STOP",
            **at,
        ),
        TaskTimedOut(worker_id="w1", timeout_s=60.0, strategy=TimeoutStrategy.WARN, **task),
        WorkflowTimedOut(timeout_s=3600.0, **x),
        TaskDelayed(until=NOW + timedelta(seconds=30), **task),
    ]


# -- commands (for `when`) -----------------------------------------------------------------


def start(
    wf: WorkflowDef, command_id: str = "start-1", instance_id: str = IID, at: datetime = NOW
) -> StartWorkflow:
    return StartWorkflow(command_id=command_id, instance_id=instance_id, workflow=wf, at=at)


def report_started(
    code: str, attempt: int = 1, worker_id: str = "w1", instance_id: str = IID
) -> ReportTaskStarted:
    return ReportTaskStarted(
        command_id=ack_command_id(instance_id, code, attempt, "started"),
        instance_id=instance_id,
        task_code=code,
        attempt=attempt,
        worker_id=worker_id,
        at=NOW,
    )


def report_finished(
    code: str,
    attempt: int = 1,
    outcome: Outcome = Outcome.SUCCESS,
    exit_code: int | None = None,
    worker_id: str = "w1",
    instance_id: str = IID,
) -> ReportTaskFinished:
    if exit_code is None:
        exit_code = 0 if outcome is Outcome.SUCCESS else 1
    return ReportTaskFinished(
        command_id=ack_command_id(instance_id, code, attempt, "finished"),
        instance_id=instance_id,
        task_code=code,
        attempt=attempt,
        worker_id=worker_id,
        outcome=outcome,
        exit_code=exit_code,
        at=NOW,
    )


def report_failed(code: str, attempt: int = 1) -> ReportTaskFinished:
    return report_finished(code, attempt, Outcome.FAILURE)


def pause(command_id: str = "pause-1") -> PauseWorkflow:
    return PauseWorkflow(command_id=command_id, instance_id=IID, at=NOW)


def stop(command_id: str = "stop-1") -> StopWorkflow:
    return StopWorkflow(command_id=command_id, instance_id=IID, at=NOW)


def resume(command_id: str = "resume-1") -> ResumeWorkflow:
    return ResumeWorkflow(command_id=command_id, instance_id=IID, at=NOW)


def rerun(command_id: str = "rerun-1") -> RerunWorkflow:
    return RerunWorkflow(command_id=command_id, instance_id=IID, at=NOW)


def force_success(code: str, command_id: str = "force-1") -> ForceTaskSuccess:
    return ForceTaskSuccess(command_id=command_id, instance_id=IID, task_code=code, at=NOW)


def stop_task(code: str, command_id: str = "stop-task-1") -> StopTask:
    return StopTask(command_id=command_id, instance_id=IID, task_code=code, at=NOW)


# -- states --------------------------------------------------------------------------------


def empty() -> InstanceState:
    return InstanceState(instance_id=IID)


def given(*events: InstanceEvent) -> InstanceState:
    return fold(events, IID)


def applied(state: InstanceState, events: Iterable[InstanceEvent]) -> InstanceState:
    for e in events:
        state = evolve(state, e)
    return state


def through(
    state: InstanceState,
    *commands: Command,
    now: datetime = NOW,
    workers: Workers = W1,
) -> InstanceState:
    """The state after deciding and applying each command in turn (a given built by
    the real deciders, for histories too long to spell out as events)."""
    for c in commands:
        state = applied(state, decide(state, c, now, workers))
    return state


def types(events: Iterable[object]) -> list[type]:
    return [type(e) for e in events]


def only(events: Sequence[InstanceEvent], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def rejection(events: Sequence[InstanceEvent]) -> CommandRejected:
    assert types(events) == [CommandRejected], events
    e = events[0]
    assert isinstance(e, CommandRejected)
    return e
