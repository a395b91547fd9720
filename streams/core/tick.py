"""`tick(state, now, workers, ack_timeout) -> events`: time-driven decisions (pure).

Dispatches a worker never acknowledged within `ack_timeout` are failed over; retries that
are due, and ready tasks that waited for a live worker, are dispatched. Deadlines live in
the state; the runtime asks `next_deadline` when to tick again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from streams.core.decide.common import advance, waiting
from streams.core.decide.failover import fail_over
from streams.core.events import InstanceEvent
from streams.core.ids import tick_id
from streams.core.placement import NO_WORKERS, Workers
from streams.core.state import InstanceState, TaskRun
from streams.core.states import TaskState, WorkflowState


def _unacknowledged(state: InstanceState, now: datetime, ack_timeout: timedelta) -> list[TaskRun]:
    return [
        t
        for t in state.active()
        if t.state is TaskState.DISPATCH
        and t.dispatched_at is not None
        and t.dispatched_at + ack_timeout <= now
    ]


def tick(
    state: InstanceState,
    now: datetime,
    workers: Workers = NO_WORKERS,
    ack_timeout: timedelta | None = None,
) -> list[InstanceEvent]:
    if state.state is None or state.state.finished:
        return []
    cause = tick_id(state.instance_id, now.isoformat())
    if ack_timeout is not None:
        stale = _unacknowledged(state, now, ack_timeout)
        if stale:
            reason = f"dispatch not acknowledged within {ack_timeout.total_seconds():g}s"
            return fail_over(state, stale, reason, cause, now, workers)
    if state.state is not WorkflowState.RUNNING_EXECUTION or not waiting(state, now):
        return []
    return advance(state, cause, now, workers)


def next_deadline(state: InstanceState, ack_timeout: timedelta | None = None) -> datetime | None:
    """When `tick` may next have something to do: the earliest retry or acknowledgement
    deadline, or at once (the start time stands for "now") when a ready task waits for a
    worker; None when nothing waits."""
    if state.state is None or state.state.finished:
        return None
    due: list[datetime] = []
    if ack_timeout is not None:
        due += [
            t.dispatched_at + ack_timeout
            for t in state.active()
            if t.state is TaskState.DISPATCH and t.dispatched_at is not None
        ]
    if state.state is WorkflowState.RUNNING_EXECUTION:
        due += [t.retry_at for t in state.awaiting_retry() if t.retry_at is not None]
        if any(t.code not in state.tasks for t in waiting(state, None)):
            due.append(state.started_at or datetime.min)
    return min(due, default=None)
