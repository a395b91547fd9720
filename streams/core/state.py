"""Folded state of one workflow instance (pure, immutable: `evolve` returns new values)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from streams.core.definition import TaskDef, WorkflowDef
from streams.core.states import TaskState, WorkflowState


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
    retry_at: datetime | None = None  # FAILURE awaiting another attempt
    kill_requested: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceState:
    instance_id: str
    workflow: WorkflowDef | None = None  # None: no such instance (yet)
    state: WorkflowState | None = None
    params: Mapping[str, str] = field(default_factory=_empty)
    defs: Mapping[str, TaskDef] = field(default_factory=_empty)  # by task code
    order: tuple[str, ...] = ()  # dispatch order: priority, then topological
    tasks: Mapping[str, TaskRun] = field(default_factory=_empty)
    applied: frozenset[str] = frozenset()  # command ids already decided
    started_at: datetime | None = None
    ended_at: datetime | None = None
    failure_reason: str = ""

    @property
    def exists(self) -> bool:
        return self.workflow is not None

    def task_def(self, code: str) -> TaskDef:
        return self.defs[code]

    def active(self) -> list[TaskRun]:
        return [t for t in self.tasks.values() if t.state.active]

    def awaiting_retry(self) -> list[TaskRun]:
        return [t for t in self.tasks.values() if t.retry_at is not None]
