"""Deciding what happens to attempts whose worker is gone (pure).

An attempt on a lost worker, or one the worker never acknowledged in time, is failed over:
NEED_FAULT_TOLERANCE, and a new attempt is dispatched at once to a live worker of the same
group, outside the retry budget (DolphinScheduler re-runs fault-tolerance tasks regardless
of max retries). An attempt that was being killed is recorded as killed instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from streams.core.decide.scheduling import advance, apply_all
from streams.core.events import InstanceEvent, TaskFailedOver, TaskKilled
from streams.core.ids import worker_lost_id
from streams.core.instance import InstanceState, TaskRun
from streams.core.placement import Workers


class LostVerdict(Protocol):
    """Why a worker's attempts can no longer finish (the master's registry says it)."""

    @property
    def worker_id(self) -> str: ...
    @property
    def incarnation(self) -> datetime: ...  # start time of the lost process
    @property
    def reason(self) -> str: ...
    @property
    def dispatched_before(self) -> datetime | None: ...  # a restart: only older attempts


Verdict = TypeVar("Verdict", bound=LostVerdict)


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
    lost = [t for t in s.active() if t.worker_id == worker_id and _lost(t, dispatched_before, now)]
    return fail_over(s, lost, reason, cause, now, workers)


def _lost(t: TaskRun, dispatched_before: datetime | None, now: datetime) -> bool:
    """A worker that is gone loses every attempt; one restarted under the same id loses only
    the attempts sent to its previous process (an attempt with no dispatch time counts as
    sent now)."""
    return dispatched_before is None or (t.dispatched_at or now) < dispatched_before


def lost_workers(
    s: InstanceState, verdict_of: Callable[[str], Verdict | None], now: datetime
) -> list[Verdict]:
    """The workers that lost at least one of `s`'s active attempts, in attempt order, each
    with its verdict; `verdict_of(worker_id)` is None while the worker is alive."""
    verdicts: dict[str, Verdict | None] = {}
    lost: dict[str, Verdict] = {}
    for t in s.active():
        if t.worker_id not in verdicts:
            verdicts[t.worker_id] = verdict_of(t.worker_id)
        verdict = verdicts[t.worker_id]
        if verdict is not None and _lost(t, verdict.dispatched_before, now):
            lost.setdefault(t.worker_id, verdict)
    return list(lost.values())


def on_worker_lost(
    s: InstanceState, verdict: LostVerdict, now: datetime, workers: Workers
) -> list[InstanceEvent]:
    """`on_lost_worker` for a verdict: the cause names the lost process, the reason says why."""
    cause = worker_lost_id(verdict.worker_id, verdict.incarnation.isoformat())
    reason = f"worker {verdict.worker_id} lost: {verdict.reason}"
    return on_lost_worker(
        s, verdict.worker_id, verdict.dispatched_before, reason, cause, now, workers
    )
