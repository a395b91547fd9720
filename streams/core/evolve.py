"""`evolve(state, event) -> state`: one small function per event (pure).

Evolvers never validate or raise: `decide` already did, and the log must always fold. The
runtime applies each event with this same function as it appends it, so a replayed
partition and a live one cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from functools import lru_cache
from typing import Any, Final

from streams.core.dag import topological_order
from streams.core.definition import WorkflowDef, chosen, runnable
from streams.core.enums import TaskState
from streams.core.events import (
    CommandRejected,
    InstanceEvent,
    TaskDelayed,
    TaskDispatched,
    TaskFailed,
    TaskFailedOver,
    TaskKilled,
    TaskKillRequested,
    TasksRerun,
    TaskStarted,
    TaskSucceeded,
    TaskSuccessForced,
    TaskTimedOut,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowPauseRequested,
    WorkflowRerun,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowStopped,
    WorkflowStopRequested,
    WorkflowSucceeded,
    WorkflowTimedOut,
)
from streams.core.instance import InstanceState, TaskRun, reindexed, with_task
from streams.core.transitions import TASK_STATE_AFTER, WORKFLOW_STATE_AFTER


@lru_cache(maxsize=1024)  # one sort per definition, not per instance
def _dispatch_order(workflow: WorkflowDef) -> tuple[str, ...]:
    tasks = workflow.tasks
    topo = topological_order(
        (t.code for t in tasks), ((d, t.code) for t in tasks for d in t.depends)
    )
    rank = {code: i for i, code in enumerate(topo)}
    return tuple(t.code for t in sorted(tasks, key=lambda t: (t.priority, rank[t.code])))


def _workflow_started(s: InstanceState, e: WorkflowStarted) -> InstanceState:
    # Tasks outside the chosen scope are left out, as if they did not exist; then disabled
    # tasks are left out and seen through. A rerun keeps `defs`: the same tasks run again.
    tasks = runnable(chosen(e.workflow, e.start_nodes, e.scope))
    started = replace(
        s,
        workflow=e.workflow,
        params=e.params,
        schedule_time=e.schedule_time,
        dry_run=e.dry_run,
        priority=e.priority,
        defs={t.code: t for t in tasks.tasks},
        order=_dispatch_order(tasks),
        state=WORKFLOW_STATE_AFTER[WorkflowStarted],
        started_at=e.at,
        applied=s.applied | {e.cause},
    )
    return reindexed(started)


def _task_dispatched(s: InstanceState, e: TaskDispatched) -> InstanceState:
    previous = s.tasks.get(e.task_code)
    if previous is None or previous.retry_at is None:
        tries = 1
    elif previous.state is TaskState.NEED_FAULT_TOLERANCE:
        tries = previous.tries  # a failover is not a retry: the budget is unchanged
    else:
        tries = previous.tries + 1
    task = TaskRun(
        code=e.task_code,
        attempt=e.attempt,
        tries=tries,
        state=TASK_STATE_AFTER[TaskDispatched],
        worker_id=e.worker_id,
        dispatched_at=e.at,
        params=e.params,
    )
    return with_task(s, task, e.cause)


def _task_delayed(s: InstanceState, e: TaskDelayed) -> InstanceState:
    # Waits like a retry (`retry_at`), with no attempt spent yet: dispatched as `e.attempt`.
    task = TaskRun(
        code=e.task_code,
        attempt=e.attempt,
        tries=0,
        state=TASK_STATE_AFTER[TaskDelayed],
        retry_at=e.until,
    )
    return with_task(s, task, e.cause)


def _task_timed_out(s: InstanceState, e: TaskTimedOut) -> InstanceState:
    return with_task(s, replace(s.tasks[e.task_code], timeout_warned=True), e.cause)


def _workflow_timed_out(s: InstanceState, e: WorkflowTimedOut) -> InstanceState:
    return replace(s, timeout_warned=True, applied=s.applied | {e.cause})


def _task_started(s: InstanceState, e: TaskStarted) -> InstanceState:
    task = replace(s.tasks[e.task_code], state=TASK_STATE_AFTER[TaskStarted], started_at=e.at)
    return with_task(s, task, e.cause)


def _task_succeeded(s: InstanceState, e: TaskSucceeded) -> InstanceState:
    task = replace(
        s.tasks[e.task_code],
        state=TASK_STATE_AFTER[TaskSucceeded],
        ended_at=e.at,
        exit_code=e.exit_code,
        params={},
        out_params=e.out_params,
    )
    return with_task(s, task, e.cause)


def _task_failed(s: InstanceState, e: TaskFailed) -> InstanceState:
    task = replace(
        s.tasks[e.task_code],
        state=TASK_STATE_AFTER[TaskFailed],
        ended_at=e.at,
        exit_code=e.exit_code,
        retry_at=e.retry_at,
        params={},
    )
    return with_task(s, task, e.cause)


def _task_failed_over(s: InstanceState, e: TaskFailedOver) -> InstanceState:
    task = replace(
        s.tasks[e.task_code], state=TASK_STATE_AFTER[TaskFailedOver], ended_at=e.at, retry_at=e.at
    )
    return with_task(s, task, e.cause)


def _task_kill_requested(s: InstanceState, e: TaskKillRequested) -> InstanceState:
    return with_task(s, replace(s.tasks[e.task_code], kill_requested=True), e.cause)


def _task_killed(s: InstanceState, e: TaskKilled) -> InstanceState:
    task = replace(
        s.tasks[e.task_code], state=TASK_STATE_AFTER[TaskKilled], ended_at=e.at, retry_at=None
    )
    return with_task(s, task, e.cause)


def _task_success_forced(s: InstanceState, e: TaskSuccessForced) -> InstanceState:
    # Counts as a success from now on (its dependants may run after a resume); no retry.
    task = replace(s.tasks[e.task_code], state=TASK_STATE_AFTER[TaskSuccessForced], retry_at=None)
    return with_task(s, task, e.cause)


def _workflow_to(s: InstanceState, e: Any) -> InstanceState:
    """An instance-level transition to the state the table names, ended when it is final."""
    state = WORKFLOW_STATE_AFTER[type(e)]
    return replace(
        s,
        state=state,
        ended_at=e.at if state.finished else None,
        rerunning=frozenset() if state.finished else s.rerunning,  # an EXECUTE_TASK run ends
        applied=s.applied | {e.cause},
    )


def _workflow_failed(s: InstanceState, e: WorkflowFailed) -> InstanceState:
    return replace(_workflow_to(s, e), failure_reason=e.reason)


def _workflow_resumed(s: InstanceState, e: WorkflowResumed) -> InstanceState:
    # Successes are kept; everything else is forgotten so it is dispatched again as a new
    # attempt (the attempt number keeps counting, `tries` restarts with the retry budget).
    # A task still waiting out its delay keeps waiting until the same time.
    kept = {
        c: t
        for c, t in s.tasks.items()
        if t.state.succeeded or t.state is TaskState.DELAY_EXECUTION
    }
    resumed = {
        c: replace(
            t, state=TaskState.SUBMITTED_SUCCESS, retry_at=e.at, tries=0, kill_requested=False
        )
        for c, t in s.tasks.items()
        if c not in kept
    }
    return reindexed(
        replace(
            s,
            state=WORKFLOW_STATE_AFTER[WorkflowResumed],
            tasks={**kept, **resumed},
            rerunning=frozenset(),  # a resume is about every task left, whatever ran last
            ended_at=None,
            failure_reason="",
            applied=s.applied | {e.cause},
        )
    )


def _workflow_rerun(s: InstanceState, e: WorkflowRerun) -> InstanceState:
    # Every task is forgotten, so the whole DAG runs again from its roots with a fresh retry
    # budget; the last attempt number of each is kept so the next attempt continues it.
    earlier = {**s.earlier_attempts, **{c: t.attempt for c, t in s.tasks.items()}}
    return reindexed(
        replace(
            s,
            state=WORKFLOW_STATE_AFTER[WorkflowRerun],
            tasks={},
            earlier_attempts=earlier,
            rerunning=frozenset(),
            started_at=e.at,
            ended_at=None,
            failure_reason="",
            timeout_warned=False,  # a new run, timed from its new start
            applied=s.applied | {e.cause},
        )
    )


def _tasks_rerun(s: InstanceState, e: TasksRerun) -> InstanceState:
    # The chosen tasks are forgotten, so they run again as new attempts (numbers keep
    # counting, fresh retry budget); the others keep their results. The instance was SUCCESS
    # or FAILURE, so no retry is pending; one left by failure strategy END is dropped.
    chosen = frozenset(e.task_codes)
    earlier = {**s.earlier_attempts, **{c: s.tasks[c].attempt for c in chosen if c in s.tasks}}
    kept = {
        c: t if t.retry_at is None else replace(t, retry_at=None)
        for c, t in s.tasks.items()
        if c not in chosen
    }
    return reindexed(
        replace(
            s,
            state=WORKFLOW_STATE_AFTER[TasksRerun],
            tasks=kept,
            earlier_attempts=earlier,
            rerunning=chosen,
            ended_at=None,
            failure_reason="",
            applied=s.applied | {e.cause},
        )
    )


def _command_rejected(s: InstanceState, e: CommandRejected) -> InstanceState:
    return replace(s, applied=s.applied | {e.command_id})


Evolver = Callable[[InstanceState, Any], InstanceState]

EVOLVERS: Final[Mapping[type, Evolver]] = {
    WorkflowStarted: _workflow_started,
    TaskDispatched: _task_dispatched,
    TaskStarted: _task_started,
    TaskSucceeded: _task_succeeded,
    TaskFailed: _task_failed,
    TaskFailedOver: _task_failed_over,
    TaskKillRequested: _task_kill_requested,
    TaskKilled: _task_killed,
    TaskSuccessForced: _task_success_forced,
    WorkflowPauseRequested: _workflow_to,
    WorkflowStopRequested: _workflow_to,
    WorkflowResumed: _workflow_resumed,
    WorkflowRerun: _workflow_rerun,
    TasksRerun: _tasks_rerun,
    WorkflowPaused: _workflow_to,
    WorkflowStopped: _workflow_to,
    WorkflowSucceeded: _workflow_to,
    WorkflowFailed: _workflow_failed,
    CommandRejected: _command_rejected,
    TaskTimedOut: _task_timed_out,
    WorkflowTimedOut: _workflow_timed_out,
    TaskDelayed: _task_delayed,
}


def evolve(state: InstanceState, event: InstanceEvent) -> InstanceState:
    return EVOLVERS[type(event)](state, event)


def fold(events: Iterable[InstanceEvent], instance_id: str | None = None) -> InstanceState:
    """The state after every event, in order (all events must belong to one instance)."""
    state: InstanceState | None = (
        None if instance_id is None else InstanceState(instance_id=instance_id)
    )
    for event in events:
        if state is None:
            state = InstanceState(instance_id=event.instance_id)
        state = evolve(state, event)
    if state is None:
        raise ValueError("fold of no events needs an instance_id")
    return state
