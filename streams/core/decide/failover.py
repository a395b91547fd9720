"""Deciding what happens to attempts whose worker is gone (pure).

An attempt on a lost worker, or one the worker never acknowledged in time, is failed over:
NEED_FAULT_TOLERANCE, and a new attempt is dispatched at once to a live worker of the same
group, outside the retry budget (DolphinScheduler re-runs fault-tolerance tasks regardless
of max retries). An attempt that was being killed is recorded as killed instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from streams.core.decide.scheduling import advance, apply_all
from streams.core.events import InstanceEvent, TaskFailedOver, TaskKilled
from streams.core.instance import InstanceState, TaskRun
from streams.core.placement import Workers


def fail_over(
    s: InstanceState,
    attempts: Sequence[TaskRun],
    reason: str,
    cause: str,
    now: datetime,
    workers: Workers,
) -> list[InstanceEvent]:
    if not attempts:
        return []
    events: list[InstanceEvent] = []
    for t in attempts:
        common = {
            "instance_id": s.instance_id,
            "task_code": t.code,
            "attempt": t.attempt,
            "cause": cause,
            "at": now,
        }
        if t.kill_requested:
            events.append(TaskKilled(output=f"[tideflow] {reason}", **common))  # type: ignore[arg-type]
        else:
            events.append(TaskFailedOver(worker_id=t.worker_id, reason=reason, **common))  # type: ignore[arg-type]
    return [*events, *advance(apply_all(s, events), cause, now, workers)]


def on_lost_worker(
    s: InstanceState,
    worker_id: str,
    dispatched_before: datetime | None,
    reason: str,
    cause: str,
    now: datetime,
    workers: Workers,
) -> list[InstanceEvent]:
    """Fail over every active attempt on `worker_id` (dispatched before `dispatched_before`,
    when the worker came back as a new process under the same id)."""
    lost = [
        t
        for t in s.active()
        if t.worker_id == worker_id
        and (dispatched_before is None or (t.dispatched_at or now) < dispatched_before)
    ]
    return fail_over(s, lost, reason, cause, now, workers)
