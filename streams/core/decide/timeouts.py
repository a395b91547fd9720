"""Timeout warnings, task and workflow (pure).

DolphinScheduler's task timeout strategies (DOLPHINSCHEDULER.md §3.5): WARN records a
warning and lets the attempt run on; FAILED has the worker kill the attempt past its timeout
(it ends FAILURE, then the retry rules); WARNFAILED does both. The kill stays the worker's
(it arms a timer from the process start, so a slow master cannot let a task overrun); the
warning is the master's: `TaskTimedOut`, once per attempt, when a tick finds a RUNNING
attempt `timeout_s` past its start (the started ack), or when the worker reports a TIMEOUT
under WARNFAILED first. A workflow timeout only warns (`WorkflowTimedOut`, once per run, at
start + timeout while the instance is not finished; a rerun starts a new run, a resume does
not). Both are facts for alerts and change no state.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from streams.core.definition import TaskDef
from streams.core.enums import TaskState
from streams.core.events import InstanceEvent, TaskTimedOut, WorkflowTimedOut
from streams.core.instance import InstanceState, TaskRun


def worker_timeout_s(spec: TaskDef) -> float | None:
    """The timeout a worker enforces by killing the attempt: none under strategy WARN."""
    return spec.timeout_s if spec.timeout_strategy.kills else None


def _task_deadline(s: InstanceState, t: TaskRun) -> datetime | None:
    """When the attempt `t` is owed a warning, if it is and has not had it."""
    if t.timeout_warned or t.state is not TaskState.RUNNING_EXECUTION or t.started_at is None:
        return None
    spec = s.defs[t.code]
    if spec.timeout_s is None or not spec.timeout_strategy.warns:
        return None
    return t.started_at + timedelta(seconds=spec.timeout_s)


def _workflow_deadline(s: InstanceState) -> datetime | None:
    wf = s.workflow
    if wf is None or wf.timeout_s is None or s.timeout_warned or s.started_at is None:
        return None
    if s.state is None or s.state.finished:
        return None
    return s.started_at + timedelta(seconds=wf.timeout_s)


def warning_deadlines(s: InstanceState) -> Iterator[datetime]:
    """Every time a warning is owed (unordered; the caller takes the minimum)."""
    wf_due = _workflow_deadline(s)
    if wf_due is not None:
        yield wf_due
    for code in s.running:  # only active attempts: O(running), not O(tasks)
        due = _task_deadline(s, s.tasks[code])
        if due is not None:
            yield due


def timeout_warnings(s: InstanceState, cause: str, now: datetime) -> list[InstanceEvent]:
    """The warnings due at `now`: the workflow's, then each attempt's in dispatch order."""
    events: list[InstanceEvent] = []
    wf_due = _workflow_deadline(s)
    if wf_due is not None and wf_due <= now:
        assert s.workflow is not None and s.workflow.timeout_s is not None
        events.append(
            WorkflowTimedOut(
                instance_id=s.instance_id, timeout_s=s.workflow.timeout_s, cause=cause, at=now
            )
        )
    for t in s.active():
        due = _task_deadline(s, t)
        if due is not None and due <= now:
            events.append(task_timed_out(s, t, cause, now))
    return events


def task_timed_out(s: InstanceState, t: TaskRun, cause: str, now: datetime) -> TaskTimedOut:
    spec = s.defs[t.code]
    assert spec.timeout_s is not None
    return TaskTimedOut(
        instance_id=s.instance_id,
        task_code=t.code,
        attempt=t.attempt,
        worker_id=t.worker_id,
        timeout_s=spec.timeout_s,
        strategy=spec.timeout_strategy,
        cause=cause,
        at=now,
    )
