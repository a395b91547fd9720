"""`tick(state, now, workers) -> events`: time-driven decisions (pure).

Retries that are due, and ready tasks that waited for a live worker, are dispatched.
Deadlines live in the state; the runtime asks `next_deadline` when to tick again.
"""

from __future__ import annotations

from datetime import datetime

from streams.core.decide.common import advance, waiting
from streams.core.events import InstanceEvent
from streams.core.ids import tick_id
from streams.core.placement import NO_WORKERS, Workers
from streams.core.state import InstanceState
from streams.core.states import WorkflowState


def tick(state: InstanceState, now: datetime, workers: Workers = NO_WORKERS) -> list[InstanceEvent]:
    if state.state is not WorkflowState.RUNNING_EXECUTION or not waiting(state, now):
        return []
    return advance(state, tick_id(state.instance_id, now.isoformat()), now, workers)


def next_deadline(state: InstanceState) -> datetime | None:
    """When `tick` may next have something to do: the earliest retry, or at once (the start
    time stands for "now") when a ready task waits for a worker; None when nothing waits."""
    if state.state is not WorkflowState.RUNNING_EXECUTION:
        return None
    due = [t.retry_at for t in state.awaiting_retry() if t.retry_at is not None]
    if any(t.code not in state.tasks for t in waiting(state, None)):
        due.append(state.started_at or min(due, default=None) or datetime.min)
    return min(due, default=None)
