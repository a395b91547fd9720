"""What every decision shares (pure): refusals, dispatching ready tasks, settling the instance."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from streams.core.attempt_params import attempt_params
from streams.core.commands import Command
from streams.core.definition import TaskDef
from streams.core.enums import FailureStrategy, TaskState, WorkflowState
from streams.core.events import (
    CommandRejected,
    InstanceEvent,
    TaskDelayed,
    TaskDispatched,
    TaskKilled,
    TaskKillRequested,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowStopped,
    WorkflowSucceeded,
)
from streams.core.evolve import evolve
from streams.core.ids import task_instance_id
from streams.core.instance import InstanceState, TaskRun
from streams.core.placement import Workers, choose_worker
from streams.core.rejections import Reason

# The end of a FAILURE a pause caused with a retry pending (`settle`): the instance is
# resumable like a paused one.
PAUSE_WITH_RETRY_PENDING = "awaiting a retry when the pause ended"


def reject(c: Command, reason: Reason, now: datetime, message: str) -> CommandRejected:
    return CommandRejected(
        instance_id=c.instance_id,
        command_id=c.command_id,
        command_type=type(c).__name__,
        reason=reason,
        message=message,
        at=now,
    )


def waiting(s: InstanceState, now: datetime | None) -> list[TaskDef]:
    """Tasks that may be dispatched now (or, with `now=None`, whenever a worker is free):
    never run and all upstreams succeeded, or due for another attempt."""
    due = [c for c in s.retrying if now is None or (at := s.tasks[c].retry_at) is None or at <= now]
    codes = [*s.ready, *due]
    if s.rerunning:  # EXECUTE_TASK: only the chosen tasks run
        codes = [c for c in codes if c in s.rerunning]
    return [s.defs[c] for c in s.in_order(codes)]


def _ends_at_first_failure(s: InstanceState) -> bool:
    assert s.workflow is not None
    failed = s.failed & s.rerunning if s.rerunning else s.failed  # EXECUTE_TASK: its own
    return s.workflow.failure_strategy is FailureStrategy.END and bool(failed)


def dispatchable(s: InstanceState, now: datetime) -> list[TaskDef]:
    """The tasks `advance` would dispatch now if their worker groups had free slots."""
    if s.state is not WorkflowState.RUNNING_EXECUTION or _ends_at_first_failure(s):
        return []
    return waiting(s, now)


def dispatch(s: InstanceState, cause: str, now: datetime, workers: Workers) -> list[InstanceEvent]:
    """`TaskDispatched` for every ready task that finds a free slot in its group; first
    `TaskDelayed` for a task with a delay time that was never attempted in this run (its
    first attempt waits in DELAY_EXECUTION until now + delay, then is dispatched as that
    attempt; retries, failovers and resumes are not delayed again: DolphinScheduler counts
    the delay from the task's first submission)."""
    events: list[InstanceEvent] = []
    assigned: dict[str, int] = {}
    for task in waiting(s, now):
        run = s.tasks.get(task.code)
        if run is None:
            attempt = s.earlier_attempts.get(task.code, 0) + 1
            if task.delay_s > 0:
                until = now + timedelta(seconds=task.delay_s)
                delayed = TaskDelayed(
                    instance_id=s.instance_id,
                    task_code=task.code,
                    attempt=attempt,
                    until=until,
                    cause=cause,
                    at=now,
                )
                events.append(delayed)
                continue
        elif run.state is TaskState.DELAY_EXECUTION:
            attempt = run.attempt  # the delayed attempt itself
        else:
            attempt = run.attempt + 1
        key = task_instance_id(s.instance_id, task.code, attempt)
        worker = choose_worker(workers, task.worker_group, key, assigned)
        if worker is None:
            continue  # stays waiting until a slot of its group frees (the master re-ticks it)
        assigned[worker.worker_id] = assigned.get(worker.worker_id, 0) + 1
        events.append(
            TaskDispatched(
                instance_id=s.instance_id,
                task_code=task.code,
                attempt=attempt,
                worker_id=worker.worker_id,
                worker_group=task.worker_group,
                cause=cause,
                at=now,
                params=attempt_params(s, task.code, attempt),
            )
        )
    return events


def kill_active(s: InstanceState, cause: str, now: datetime) -> list[InstanceEvent]:
    """Ask the workers to kill every active attempt; an attempt still waiting out its delay
    has no worker and is killed at once (a stop, or failure strategy END)."""
    kills: list[InstanceEvent] = [
        TaskKillRequested(
            instance_id=s.instance_id,
            task_code=t.code,
            attempt=t.attempt,
            worker_id=t.worker_id,
            cause=cause,
            at=now,
        )
        for t in s.active()
        if not t.kill_requested
    ]
    delayed = [t for t in s.awaiting_retry() if t.state is TaskState.DELAY_EXECUTION]
    kills += [
        TaskKilled(
            instance_id=s.instance_id,
            task_code=t.code,
            attempt=t.attempt,
            output="[tideflow] killed during its delay, never dispatched",
            cause=cause,
            at=now,
        )
        for t in delayed
    ]
    return kills


def settle(s: InstanceState, cause: str, now: datetime) -> list[InstanceEvent]:
    """The instance-level transition the task states now call for, if any."""
    iid = s.instance_id
    if s.running:
        return []
    if s.succeeded == len(s.defs):
        return [WorkflowSucceeded(instance_id=iid, cause=cause, at=now)]
    if s.state is WorkflowState.READY_PAUSE:
        # DolphinScheduler: a pause ends FAILURE, not PAUSE, when a failed task still has a
        # retry to come (DOLPHINSCHEDULER.md §1; `processReadyPause`); a resume (FAILURE is
        # resumable) runs it again with a fresh budget.
        owed = [t for t in s.awaiting_retry() if t.state is TaskState.FAILURE]
        if owed:
            reason = _failed(owed, PAUSE_WITH_RETRY_PENDING)
            return [WorkflowFailed(instance_id=iid, reason=reason, cause=cause, at=now)]
        return [WorkflowPaused(instance_id=iid, cause=cause, at=now)]
    if s.state is WorkflowState.READY_STOP:
        return [WorkflowStopped(instance_id=iid, cause=cause, at=now)]
    failed = s.final_failures()
    if s.state is WorkflowState.RUNNING_EXECUTION and s.rerunning:
        # EXECUTE_TASK: over once none of the chosen tasks can run (END: at their first
        # failure); not every task succeeded, so the instance is FAILURE again, naming the
        # failures and the tasks never run (a resume runs them, as after force success).
        if _ends_at_first_failure(s) or not waiting(s, None):
            return [WorkflowFailed(instance_id=iid, reason=_left(s, failed), cause=cause, at=now)]
        return []
    if s.state is WorkflowState.RUNNING_EXECUTION and failed:
        assert s.workflow is not None
        # END gives up at once (pending retries included); CONTINUE once nothing can run.
        if s.workflow.failure_strategy is FailureStrategy.END or not waiting(s, None):
            reason = _failed(failed)
            return [WorkflowFailed(instance_id=iid, reason=reason, cause=cause, at=now)]
    return []


def _failed(failed: Sequence[TaskRun], then: str = "") -> str:
    """ "failed: a (FAILURE after 2 attempts), b (KILL after 1 attempt)"."""
    names = ", ".join(
        f"{t.code} ({t.state.name} after {t.tries} attempt{'s' * (t.tries != 1)})"
        for t in sorted(failed, key=lambda t: t.code)
    )
    return f"failed: {names}" + (f"; {then}" if then else "")


def _left(s: InstanceState, failed: Sequence[TaskRun]) -> str:
    """Why an EXECUTE_TASK run leaves the instance FAILURE: its failures, and the tasks that
    never ran."""
    parts = [_failed(failed)] if failed else []
    never = sorted(c for c in s.defs if c not in s.tasks)
    if never:
        parts.append(f"not run: {', '.join(never)}")
    return "; ".join(parts)


def advance(s: InstanceState, cause: str, now: datetime, workers: Workers) -> list[InstanceEvent]:
    """Everything that follows from the state as it now is: dispatches (or, under failure
    strategy END after a final failure, kills), then the instance-level transition."""
    events: list[InstanceEvent] = []
    if s.state is WorkflowState.RUNNING_EXECUTION:
        if _ends_at_first_failure(s):
            events = kill_active(s, cause, now)
        else:
            events = dispatch(s, cause, now, workers)
    for e in events:
        s = evolve(s, e)
    return [*events, *settle(s, cause, now)]


def apply_all(s: InstanceState, events: Sequence[InstanceEvent]) -> InstanceState:
    for e in events:
        s = evolve(s, e)
    return s
