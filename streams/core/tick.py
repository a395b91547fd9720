"""`tick(state, now, workers, ack_timeout) -> events`: time-driven decisions (pure).

Dispatches a worker never acknowledged within `ack_timeout` are failed over; timeout
warnings that are due are recorded (`decide/timeouts.py`); retries and delays that are due,
and ready tasks that waited for a free slot, are dispatched. Deadlines live in
the state; the runtime asks `next_deadline` when to tick again, and `waiting_for_slots`
which worker groups must free a slot first.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from streams.core.decide.failover import fail_over
from streams.core.decide.scheduling import advance, apply_all, dispatchable, waiting
from streams.core.decide.timeouts import timeout_warnings, warning_deadlines
from streams.core.enums import TaskState, WorkflowState
from streams.core.events import InstanceEvent
from streams.core.ids import tick_id
from streams.core.instance import InstanceState, TaskRun
from streams.core.placement import NO_WORKERS, Workers


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
    warnings = timeout_warnings(state, cause, now)
    if state.state is not WorkflowState.RUNNING_EXECUTION or not waiting(state, now):
        return warnings
    return [*warnings, *advance(apply_all(state, warnings), cause, now, workers)]


def next_deadline(
    state: InstanceState, ack_timeout: timedelta | None = None, after: datetime | None = None
) -> datetime | None:
    """When `tick` may next have something to do: the earliest retry, delay, timeout
    warning or acknowledgement deadline; None when nothing is due. Retries due at or before
    `after` are left out: they only wait for a free slot now (`waiting_for_slots`), not for
    the clock."""
    if state.state is None or state.state.finished:
        return None
    due: list[datetime] = list(warning_deadlines(state))
    if ack_timeout is not None:
        runs = (state.tasks[c] for c in state.running)  # unordered: only the minimum counts
        due += [
            t.dispatched_at + ack_timeout
            for t in runs
            if t.state is TaskState.DISPATCH and t.dispatched_at is not None
        ]
    if state.state is WorkflowState.RUNNING_EXECUTION:
        due += [
            t.retry_at
            for t in state.awaiting_retry()
            if t.retry_at is not None and (after is None or t.retry_at > after)
        ]
    return min(due, default=None)


def waiting_for_slots(state: InstanceState, now: datetime) -> frozenset[str]:
    """The worker groups where a task of this instance is ready now but was not placed: the
    master ticks the instance again when one of those groups has a free slot."""
    return frozenset(t.worker_group for t in dispatchable(state, now))
