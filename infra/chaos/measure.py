"""Failover times measured from the event log against the faults injected (pure).

Kill times are the UTC clock at the moment the signal was sent; event times are the `at`
the masters wrote (same machine, same clock).

* master kill -> `PartitionTakenOver`: for each partition the killed master owned (the
  latest takeover at or before the kill names its process), the first later takeover of it;
* master kill -> next progress event of an affected instance: for each instance of those
  partitions that was running at the kill, its first later fact (CommandRejected aside);
* worker kill -> `TaskFailedOver`: for each attempt active on that worker at the kill (and
  dispatched after any earlier fault of the same worker) that was failed over, its time;
* worker kill -> next progress event of an affected instance (one with such an attempt).

* stalls: per instance, the longest gap between two consecutive facts while it ran (task
  run times included), which also shows waits no single kill explains (a partition revoked
  for a member that died right after joining has no owner until that member's session ends).

SIGTERM stops are measured apart (a graceful hand-over, not a failover). Kills that overlap
(another master fault during the rebalance) take longer: a rebalance in progress waits for
every member's session to expire; isolated kills are shown apart too.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from infra.chaos.faults import FaultRecord
from infra.chaos.records import WORKFLOW_ENDS, EventLog, LogRecord
from streams.core.events import (
    CommandRejected,
    TaskFailedOver,
    WorkflowResumed,
    WorkflowStarted,
)


@dataclass
class Timing:
    label: str
    samples: list[float] = field(default_factory=list)
    missing: int = 0  # affected partitions / instances with no later event at all

    @property
    def p50(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def max(self) -> float | None:
        return max(self.samples) if self.samples else None


ISOLATION_S = 15.0


def owner_pid(owner: str) -> int | None:
    """The process id in a master's owner id (`host-pid-suffix`)."""
    parts = owner.rsplit("-", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def _owned_at(log: EventLog, pid: int, at: datetime) -> list[int]:
    latest: dict[int, LogRecord] = {}
    for r in log.takeovers:
        if r.event.at <= at:
            latest[r.partition] = r
    return sorted(p for p, r in latest.items() if owner_pid(r.event.owner) == pid)


def _running_at(history: Sequence[LogRecord], at: datetime) -> bool:
    running = False
    for r in history:
        e = r.event
        if e.at > at:
            break
        if isinstance(e, WorkflowStarted | WorkflowResumed):
            running = True
        elif isinstance(e, WORKFLOW_ENDS):
            running = False
    return running


def _next_progress(history: Sequence[LogRecord], at: datetime) -> datetime | None:
    for r in history:
        if r.event.at > at and not isinstance(r.event, CommandRejected):
            return r.event.at  # type: ignore[no-any-return]
    return None


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


def _isolated(f: FaultRecord, faults: Sequence[FaultRecord]) -> bool:
    """No other master fault close enough to interfere with this one's rebalance."""
    return not any(
        g is not f and g.role == "master" and abs(_seconds(g.at, f.at)) < ISOLATION_S
        for g in faults
    )


def failover_times(log: EventLog, faults: Sequence[FaultRecord]) -> list[Timing]:
    signals = ("SIGKILL", "SIGTERM", "SIGSTOP")
    takeover = {s: Timing(f"master {s} -> PartitionTakenOver") for s in signals}
    isolated = Timing(
        f"  isolated kills (no other master fault within {ISOLATION_S:.0f}s) -> PartitionTakenOver"
    )
    master_progress = Timing("master SIGKILL -> next progress of an affected instance")
    failed_over = Timing("worker SIGKILL -> TaskFailedOver of its attempts")
    worker_progress = Timing("worker SIGKILL -> next progress of an affected instance")
    for f in faults:
        if f.role == "master" and f.pid is not None:
            for p in _owned_at(log, f.pid, f.at):
                later = [
                    r.event.at for r in log.takeovers if r.partition == p and r.event.at > f.at
                ]
                timing = takeover[f.signal]
                if later:
                    timing.samples.append(_seconds(min(later), f.at))
                else:
                    timing.missing += 1
                if f.signal != "SIGKILL":
                    continue
                if later and _isolated(f, faults):
                    isolated.samples.append(_seconds(min(later), f.at))
                for history in log.by_instance.values():
                    if history[0].partition != p or not _running_at(history, f.at):
                        continue
                    nxt = _next_progress(history, f.at)
                    if nxt is None:
                        master_progress.missing += 1
                    else:
                        master_progress.samples.append(_seconds(nxt, f.at))
        elif f.role == "worker" and f.signal == "SIGKILL":
            worker_id = f.name
            # Attempts sent to an earlier process of this worker are that fault's to count.
            since = max((g.at for g in faults if g.name == f.name and g.at < f.at), default=None)
            affected: set[str] = set()
            for (iid, _code, _n), a in log.attempts.items():
                if not a.dispatched or a.dispatched[0].event.worker_id != worker_id:
                    continue
                sent = a.dispatched[0].event.at
                if sent > f.at or (since is not None and sent <= since):
                    continue
                if any(r.event.at <= f.at for r in a.ends):
                    continue
                affected.add(iid)
                overs = [r.event.at for r in a.ends if isinstance(r.event, TaskFailedOver)]
                if overs:
                    failed_over.samples.append(_seconds(overs[0], f.at))
            for iid in sorted(affected):
                nxt = _next_progress(log.by_instance[iid], f.at)
                if nxt is None:
                    worker_progress.missing += 1
                else:
                    worker_progress.samples.append(_seconds(nxt, f.at))
    stall = Timing("longest gap between two facts of a running instance (per instance)")
    for history in log.by_instance.values():
        gaps, running, last = [], False, None
        for r in history:
            e = r.event
            if isinstance(e, CommandRejected):
                continue
            if running and last is not None:
                gaps.append(_seconds(e.at, last))
            last = e.at
            if isinstance(e, WorkflowStarted | WorkflowResumed):
                running = True
            elif isinstance(e, WORKFLOW_ENDS):
                running = False
        if gaps:
            stall.samples.append(max(gaps))
    return [
        stall,
        takeover["SIGKILL"],
        isolated,
        master_progress,
        takeover["SIGTERM"],
        *([takeover["SIGSTOP"]] if any(f.signal == "SIGSTOP" for f in faults) else []),
        failed_over,
        worker_progress,
    ]
