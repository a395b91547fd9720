"""What a worker is configured with (typed; the composition root reads the environment)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from streams.kafka.config import KafkaConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskResources:
    """What task types find on this worker by name; a dispatch names them, never a path or
    a credential (those stay in the worker's configuration, out of the event log)."""

    # PYTHON: environment name -> interpreter. "" (no environment named) is the worker's own
    # interpreter unless configured.
    python: Mapping[str, str] = field(default_factory=dict)
    # SQL: data source name -> PostgreSQL connection string (libpq conninfo or URL).
    datasources: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerConfig:
    kafka: KafkaConfig
    worker_id: str | None = None  # default: hostname-pid
    group: str = "default"  # DolphinScheduler's worker group
    slots: int = 4  # attempts run at once (DolphinScheduler's exec-threads)
    heartbeat_interval_s: float = 0.5  # masters declare a worker lost after 3 missed
    weight: int = 100  # host weight, for the masters' WEIGHTED selector
    resources: TaskResources = field(default_factory=TaskResources)
