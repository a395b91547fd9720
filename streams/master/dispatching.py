"""Dispatch records derived from state: what a worker needs to run or kill an attempt."""

from __future__ import annotations

from datetime import datetime

from streams.core.decide.timeouts import worker_timeout_s
from streams.core.instance import InstanceState, TaskRun
from streams.core.worker_messages import KillTask, TaskAssignment


def assignment(state: InstanceState, task: TaskRun, epoch: int, at: datetime) -> TaskAssignment:
    spec = state.task_def(task.code)
    return TaskAssignment(
        instance_id=state.instance_id,
        task_code=task.code,
        attempt=task.attempt,
        worker_id=task.worker_id,
        type=spec.type,
        command=spec.command,
        timeout_s=worker_timeout_s(spec),  # strategy WARN: the worker never kills it
        env=dict(task.params or state.params),  # a dispatch from before TaskDispatched v2
        epoch=epoch,
        at=at,
        dry_run=state.dry_run,
        spec=spec.spec,
    )


def kill(state: InstanceState, task: TaskRun, epoch: int, at: datetime) -> KillTask:
    return KillTask(
        instance_id=state.instance_id,
        task_code=task.code,
        attempt=task.attempt,
        worker_id=task.worker_id,
        epoch=epoch,
        at=at,
    )


def unacknowledged(
    state: InstanceState, epoch: int, at: datetime
) -> list[TaskAssignment | KillTask]:
    """Dispatch records to send again after a takeover: attempts never acknowledged as
    running, and kills not yet confirmed. Workers ignore an attempt they already have."""
    out: list[TaskAssignment | KillTask] = []
    for task in state.active():
        if task.kill_requested:
            out.append(kill(state, task, epoch, at))
        elif task.started_at is None:
            out.append(assignment(state, task, epoch, at))
    return out
