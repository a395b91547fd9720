"""Folded state of one workflow instance (pure, immutable: `evolve` returns new values)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from streams.core.definition import TaskDef, WorkflowDef
from streams.core.enums import Priority, TaskState, WorkflowState


def _empty() -> Mapping[str, Any]:
    # A fresh read-only mapping per instance: before Python 3.12 a mappingproxy is unhashable,
    # which dataclasses take for a mutable default and refuse at import.
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRun:
    """The current (valid) attempt of one task; older attempts live in the log only."""

    code: str
    attempt: int  # 1-based, counts every attempt of this task in this instance
    tries: int  # attempts since the last resume: retries left = def.retries - (tries - 1)
    state: TaskState
    worker_id: str = ""
    dispatched_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    retry_at: datetime | None = None  # FAILURE awaiting another attempt, or the end of a delay
    kill_requested: bool = False
    timeout_warned: bool = False  # `TaskTimedOut` recorded for this attempt
    params: Mapping[str, str] = field(default_factory=_empty)  # resolved, while active
    out_params: Mapping[str, str] = field(default_factory=_empty)  # exported on success


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceState:
    instance_id: str
    workflow: WorkflowDef | None = None  # None: no such instance (yet)
    state: WorkflowState | None = None
    params: Mapping[str, str] = field(default_factory=_empty)
    schedule_time: datetime | None = None  # the built-ins' base; None: `started_at`
    dry_run: bool = False  # workers report SUCCESS without running anything
    priority: Priority = Priority.MEDIUM  # its place among instances waiting for slots
    defs: Mapping[str, TaskDef] = field(default_factory=_empty)  # by task code
    order: tuple[str, ...] = ()  # dispatch order: priority, then topological
    tasks: Mapping[str, TaskRun] = field(default_factory=_empty)
    applied: frozenset[str] = frozenset()  # command ids already decided
    started_at: datetime | None = None
    ended_at: datetime | None = None
    failure_reason: str = ""
    timeout_warned: bool = False  # `WorkflowTimedOut` recorded for this run
    # The last attempt number of each task before the latest rerun (REPEAT_RUNNING clears
    # `tasks`; attempt numbers keep counting so that no attempt id is used twice).
    earlier_attempts: Mapping[str, int] = field(default_factory=_empty)
    # EXECUTE_TASK: the only tasks this run may dispatch (empty: every task); the run is over
    # when none of them is running or waiting (`decide/scheduling.py`).
    rerunning: frozenset[str] = frozenset()
    # Indexes `evolve` keeps, so that no decision scans every task (a 1 -> 1,000 -> 1 DAG
    # would otherwise cost O(tasks) per event). `reindexed` rebuilds them from the above.
    rank: Mapping[str, int] = field(default_factory=_empty)  # position in `order`
    downstream: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)
    unmet: Mapping[str, int] = field(default_factory=_empty)  # upstreams not succeeded
    ready: frozenset[str] = frozenset()  # never dispatched, every upstream succeeded
    running: frozenset[str] = frozenset()  # attempts handed to a worker, not finished
    retrying: frozenset[str] = frozenset()  # awaiting another attempt (`retry_at` set)
    failed: frozenset[str] = frozenset()  # failed for good: FAILURE with no retry, or KILL
    succeeded: int = 0  # tasks whose latest attempt succeeded

    @property
    def exists(self) -> bool:
        return self.workflow is not None

    def task_def(self, code: str) -> TaskDef:
        return self.defs[code]

    def in_order(self, codes: Iterable[str]) -> list[str]:
        return sorted(codes, key=self.rank.__getitem__)

    def active(self) -> list[TaskRun]:
        return [self.tasks[c] for c in self.in_order(self.running)]

    def awaiting_retry(self) -> list[TaskRun]:
        return [self.tasks[c] for c in self.in_order(self.retrying)]

    def final_failures(self) -> list[TaskRun]:
        """Attempts that failed for good: no retry will follow."""
        return [self.tasks[c] for c in self.in_order(self.failed)]


def _flag(codes: frozenset[str], code: str, on: bool) -> frozenset[str]:
    if on:
        return codes if code in codes else codes | {code}
    return codes - {code} if code in codes else codes


def finally_failed(t: TaskRun) -> bool:
    return (t.state is TaskState.FAILURE and t.retry_at is None) or t.state is TaskState.KILL


def with_task(s: InstanceState, task: TaskRun, cause: str) -> InstanceState:
    """`s` with `task` as the current attempt of its task (indexes kept), `cause` applied."""
    code = task.code
    before = s.tasks.get(code)
    succeeded, unmet, ready = s.succeeded, s.unmet, _flag(s.ready, code, False)
    was_succeeded = before is not None and before.state.succeeded
    if task.state.succeeded != was_succeeded:
        succeeded += 1 if task.state.succeeded else -1
        step = -1 if task.state.succeeded else 1
        counts = dict(unmet)
        for d in s.downstream.get(code, ()):
            counts[d] += step
            ready = _flag(ready, d, counts[d] == 0 and d not in s.tasks)
        unmet = MappingProxyType(counts)
    return replace(
        s,
        tasks={**s.tasks, code: task},
        unmet=unmet,
        ready=ready,
        running=_flag(s.running, code, task.state.active),
        retrying=_flag(s.retrying, code, task.retry_at is not None),
        failed=_flag(s.failed, code, finally_failed(task)),
        succeeded=succeeded,
        applied=s.applied | {cause},
    )


def reindexed(s: InstanceState) -> InstanceState:
    """`s` with every index rebuilt from its definitions and tasks."""
    rank = {code: i for i, code in enumerate(s.order)}
    downstream: dict[str, list[str]] = {code: [] for code in s.defs}
    for t in s.defs.values():
        for d in t.depends:
            downstream[d].append(t.code)

    def ok(code: str) -> bool:
        return code in s.tasks and s.tasks[code].state.succeeded

    unmet = {t.code: sum(not ok(d) for d in t.depends) for t in s.defs.values()}
    runs = s.tasks.values()
    return replace(
        s,
        rank=MappingProxyType(rank),
        downstream=MappingProxyType({c: tuple(ds) for c, ds in downstream.items()}),
        unmet=MappingProxyType(unmet),
        ready=frozenset(c for c, n in unmet.items() if n == 0 and c not in s.tasks),
        running=frozenset(t.code for t in runs if t.state.active),
        retrying=frozenset(t.code for t in runs if t.retry_at is not None),
        failed=frozenset(t.code for t in runs if finally_failed(t)),
        succeeded=sum(t.state.succeeded for t in runs),
    )
