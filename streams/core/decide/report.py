"""Deciding the workers' acks: `ReportTaskStarted` and `ReportTaskFinished` (pure).

A finished ack is accepted while the attempt is DISPATCH too: the started ack may be late or
lost, and the finish says more. Acks for any attempt but the current one are refused.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from streams.core.attempt_params import exported
from streams.core.commands import ReportTaskFinished, ReportTaskStarted
from streams.core.decide.scheduling import advance, apply_all, reject
from streams.core.decide.timeouts import task_timed_out
from streams.core.enums import Outcome, TaskState, WorkflowState
from streams.core.events import (
    CommandRejected,
    InstanceEvent,
    TaskFailed,
    TaskKilled,
    TaskStarted,
    TaskSucceeded,
)
from streams.core.instance import InstanceState, TaskRun
from streams.core.placement import Workers
from streams.core.rejections import Reason


def _current_attempt(
    s: InstanceState, c: ReportTaskStarted | ReportTaskFinished, now: datetime
) -> TaskRun | CommandRejected:
    task = s.tasks.get(c.task_code) if s.exists else None
    if task is None:
        return reject(
            c, Reason.NOT_FOUND, now, f"expected a dispatched task {c.task_code} in {c.instance_id}"
        )
    if task.attempt != c.attempt:
        return reject(
            c,
            Reason.STALE_ATTEMPT,
            now,
            f"expected attempt {task.attempt} of {c.task_code}, found an ack for {c.attempt}",
        )
    return task


def _not_in(
    c: ReportTaskStarted | ReportTaskFinished, wanted: str, task: TaskRun, now: datetime
) -> CommandRejected:
    return reject(
        c,
        Reason.INVALID_STATE,
        now,
        f"expected attempt {c.attempt} of {c.task_code} {wanted}, found {task.state.name}",
    )


def report_task_started(
    s: InstanceState, c: ReportTaskStarted, now: datetime, workers: Workers
) -> list[InstanceEvent]:
    if c.command_id in s.applied:
        return []
    task = _current_attempt(s, c, now)
    if isinstance(task, CommandRejected):
        return [task]
    if task.state is not TaskState.DISPATCH:
        return [_not_in(c, "DISPATCH", task, now)]
    return [
        TaskStarted(
            instance_id=c.instance_id,
            task_code=c.task_code,
            attempt=c.attempt,
            worker_id=c.worker_id,
            cause=c.command_id,
            at=now,
        )
    ]


def _retry_at(s: InstanceState, task: TaskRun, now: datetime) -> datetime | None:
    spec = s.task_def(task.code)
    if task.tries > spec.retries or s.state is WorkflowState.READY_STOP:
        return None
    return now + timedelta(seconds=spec.retry_interval_s)


def report_task_finished(
    s: InstanceState, c: ReportTaskFinished, now: datetime, workers: Workers
) -> list[InstanceEvent]:
    if c.command_id in s.applied:
        return []
    task = _current_attempt(s, c, now)
    if isinstance(task, CommandRejected):
        return [task]
    if not task.state.active:
        return [_not_in(c, "active", task, now)]
    common = {
        "instance_id": c.instance_id,
        "task_code": c.task_code,
        "attempt": c.attempt,
        "cause": c.command_id,
        "at": now,
    }
    finished: InstanceEvent
    if c.outcome is Outcome.SUCCESS:
        finished = TaskSucceeded(
            exit_code=c.exit_code,
            output=c.output,
            out_params=exported(s.task_def(c.task_code), c.out_params),
            **common,  # type: ignore[arg-type]
        )
    elif c.outcome is Outcome.KILLED or task.kill_requested:
        finished = TaskKilled(output=c.output, **common)  # type: ignore[arg-type]
    else:
        reason = "timed out" if c.outcome is Outcome.TIMEOUT else f"exit code {c.exit_code}"
        finished = TaskFailed(
            exit_code=c.exit_code,
            reason=reason,
            output=c.output,
            retry_at=_retry_at(s, task, now),
            **common,  # type: ignore[arg-type]
        )
    warned: list[InstanceEvent] = []
    if c.outcome is Outcome.TIMEOUT and not task.timeout_warned:
        spec = s.task_def(task.code)
        if spec.timeout_s is not None and spec.timeout_strategy.warns:  # WARNFAILED
            warned = [task_timed_out(s, task, c.command_id, now)]
    after = apply_all(s, [*warned, finished])
    return [*warned, finished, *advance(after, c.command_id, now, workers)]
