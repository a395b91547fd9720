"""Records that are neither commands nor events: dispatches to workers and worker heartbeats.

Dispatch records are derived from `TaskDispatched` / `TaskKillRequested` events (re-sendable
after a takeover); heartbeats are the workers' liveness and load. Pure records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from streams.core.enums import TaskType
from streams.core.task_specs import TaskSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskAssignment:
    """Run one attempt of a task (topic dispatch, key = worker id)."""

    instance_id: str
    task_code: str
    attempt: int
    worker_id: str
    type: TaskType
    command: str
    timeout_s: float | None = None
    env: dict[str, str] = field(default_factory=dict)
    epoch: int = 0
    at: datetime
    dry_run: bool = False  # report SUCCESS without running anything (schema v2)
    # The settings of the task's type (schema v3): environment name, HTTP request, data
    # source name. `env` holds the attempt's resolved parameters (`TaskDispatched.params`).
    spec: TaskSpec | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class KillTask:
    """Kill one attempt if it is running, or never start it (topic dispatch, key = worker id)."""

    instance_id: str
    task_code: str
    attempt: int
    worker_id: str
    epoch: int = 0
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerHeartbeat:
    """A worker's liveness and load (topic heartbeats, compacted, key = worker id)."""

    worker_id: str
    worker_group: str
    host: str
    pid: int
    slots_total: int
    slots_free: int  # slots - attempts queued/running; < 0: queued beyond slots; <= 0 stopping
    cpu_percent: float
    memory_percent: float
    load_average: float
    version: str
    started_at: datetime
    at: datetime
    # DolphinScheduler's host weight: a worker's share under the WEIGHTED selector (schema v2)
    weight: int = 100
