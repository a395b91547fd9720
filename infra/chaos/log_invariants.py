"""Invariants checked on the event log alone (and the workers' run journal): every instance
ends, no attempt is lost or unexplained or started twice, no fact is applied twice, and an
attempt ran on the workers at most once and only when dispatched."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from infra.chaos.records import (
    MAX_EVIDENCE,
    TASK_EVENTS,
    WORKFLOW_ENDS,
    Attempt,
    AttemptKey,
    EventLog,
    LogRecord,
    Run,
    Violation,
    evidence_of,
)
from streams.core.events import (
    CommandRejected,
    TaskFailed,
    TaskFailedOver,
    TaskKilled,
    WorkflowResumed,
    WorkflowStarted,
)


def check_terminal(log: EventLog, started: Iterable[str]) -> list[Violation]:
    out = []
    for iid in started:
        history = log.by_instance.get(iid, [])
        state = log.state(iid)
        if not state.exists:
            fenced = [r for r in log.fenced if getattr(r.event, "instance_id", None) == iid]
            out.append(
                Violation(
                    "terminal",
                    iid,
                    "started, but no WorkflowStarted in the log",
                    evidence_of([*history, *fenced]),
                )
            )
            continue
        assert state.state is not None
        if not state.state.finished:
            active = ", ".join(f"{t.code}#{t.attempt} {t.state.name}" for t in state.active())
            message = f"not terminal: {state.state.name}" + (
                f" (active: {active})" if active else ""
            )
            out.append(Violation("terminal", iid, message, evidence_of(history[-MAX_EVIDENCE:])))
    return out


def _explains(prev: LogRecord, dispatch: LogRecord, history: Sequence[LogRecord]) -> bool:
    """Whether attempt n-1's end `prev` explains dispatching attempt n at `dispatch`."""
    e = prev.event
    if isinstance(e, TaskFailedOver):
        return True
    if isinstance(e, TaskFailed) and e.retry_at is not None:
        return True
    if isinstance(e, TaskFailed | TaskKilled):  # a resume runs failed and killed tasks again
        return any(
            isinstance(r.event, WorkflowResumed) and prev.offset < r.offset < dispatch.offset
            for r in history
        )
    return False


def check_attempts(log: EventLog) -> list[Violation]:
    """Lost attempts, attempts nothing explains, attempts started or ended twice."""
    out: list[Violation] = []
    tasks: dict[tuple[str, str], dict[int, Attempt]] = defaultdict(dict)
    for (iid, code, n), a in log.attempts.items():
        tasks[(iid, code)][n] = a
    for (iid, code), attempts in sorted(tasks.items()):
        subject = f"{iid} {code}"
        history = log.by_instance.get(iid, [])
        for n, a in sorted(attempts.items()):
            who = f"{subject}#{n}"
            if not a.dispatched:
                out.append(
                    Violation(
                        "unexplained-attempt",
                        who,
                        "facts about an attempt that was never dispatched",
                        evidence_of(a.all()),
                    )
                )
                continue
            if len(a.dispatched) > 1:
                out.append(
                    Violation("applied-twice", who, "dispatched twice", evidence_of(a.dispatched))
                )
            if len(a.started) > 1:
                out.append(
                    Violation(
                        "started-twice", who, "TaskStarted more than once", evidence_of(a.started)
                    )
                )
            if not a.ends:
                out.append(
                    Violation(
                        "lost-attempt",
                        who,
                        "dispatched but never succeeded, failed, was killed or failed over",
                        evidence_of(a.all()),
                    )
                )
            elif len({type(r.event) for r in a.ends}) > 1:  # identical ends: check_applied_once
                ends = "/".join(sorted({type(r.event).__name__ for r in a.ends}))
                out.append(
                    Violation("applied-twice", who, f"ended twice ({ends})", evidence_of(a.ends))
                )
            if n == 1:
                continue
            prev = attempts.get(n - 1)
            if prev is None or not prev.dispatched:
                out.append(
                    Violation(
                        "unexplained-attempt",
                        who,
                        f"attempt {n} dispatched, attempt {n - 1} never was",
                        evidence_of(a.dispatched),
                    )
                )
                continue
            dispatch = a.dispatched[0]
            ended_before = [r for r in prev.ends if r.offset < dispatch.offset]
            if not ended_before:
                out.append(
                    Violation(
                        "unexplained-attempt",
                        who,
                        f"dispatched while attempt {n - 1} was still active",
                        evidence_of([*prev.all(), dispatch]),
                    )
                )
            elif not _explains(ended_before[0], dispatch, history):
                out.append(
                    Violation(
                        "unexplained-attempt",
                        who,
                        f"attempt {n - 1} ended with no retry, failover or resume "
                        "to explain another attempt",
                        evidence_of([*prev.all(), dispatch]),
                    )
                )
    return out


def check_applied_once(log: EventLog) -> list[Violation]:
    """No fact twice: identical task-level facts, a second start, task facts after the end."""
    out: list[Violation] = []
    seen: dict[tuple[str, str, int, str], list[LogRecord]] = defaultdict(list)
    for r in log.events_of(TASK_EVENTS):
        e = r.event
        seen[(e.instance_id, e.task_code, e.attempt, type(e).__name__)].append(r)
    for (iid, code, n, name), found in sorted(seen.items()):
        if len(found) > 1 and name not in ("TaskDispatched", "TaskStarted"):  # reported above
            out.append(
                Violation(
                    "applied-twice",
                    f"{iid} {code}#{n}",
                    f"{name} appears {len(found)} times",
                    evidence_of(found),
                )
            )
    for iid, history in sorted(log.by_instance.items()):
        starts = [r for r in history if isinstance(r.event, WorkflowStarted)]
        if len(starts) > 1:
            out.append(
                Violation(
                    "applied-twice", iid, "WorkflowStarted more than once", evidence_of(starts)
                )
            )
        ended: LogRecord | None = None
        for r in history:
            e = r.event
            if isinstance(e, WorkflowResumed):
                ended = None
            elif ended is not None and not isinstance(e, CommandRejected):
                out.append(
                    Violation(
                        "applied-twice",
                        iid,
                        f"{type(e).__name__} after the instance ended",
                        evidence_of([ended, r]),
                    )
                )
                break
            elif isinstance(e, WORKFLOW_ENDS):
                ended = r
    return out


def check_runs(log: EventLog, runs: Iterable[Run]) -> list[Violation]:
    """Executions on the workers (run journal) against the dispatches in the log."""
    out: list[Violation] = []
    counts: dict[AttemptKey, list[Run]] = defaultdict(list)
    for run in runs:
        counts[(run.instance_id, run.task_code, run.attempt)].append(run)
    for key, found in sorted(counts.items()):
        iid, code, n = key
        a = log.attempts.get(key)
        if a is None or not a.dispatched:
            fenced = [
                r
                for r in log.fenced
                if isinstance(r.event, TASK_EVENTS)
                and (r.event.instance_id, r.event.task_code, r.event.attempt) == key
            ]
            out.append(
                Violation(
                    "ran-undispatched",
                    f"{iid} {code}#{n}",
                    "ran on a worker, but the log never dispatched it"
                    + (" (only a fenced dispatch)" if fenced else ""),
                    evidence_of(fenced),
                )
            )
        elif any(r.worker_id and r.worker_id != a.dispatched[0].event.worker_id for r in found):
            where = ", ".join(sorted({r.worker_id for r in found}))
            out.append(
                Violation(
                    "ran-undispatched",
                    f"{iid} {code}#{n}",
                    f"ran on {where}, the log dispatched it elsewhere",
                    evidence_of(a.all()),
                )
            )
        if len(found) > 1:
            pids = ", ".join(f"{r.worker_id}/{r.pid}" for r in found)
            out.append(
                Violation(
                    "ran-twice",
                    f"{iid} {code}#{n}",
                    f"the same attempt ran {len(found)} times (shell pids {pids})",
                    evidence_of(a.all() if a else []),
                )
            )
    return out
