"""What a worker is configured with (typed; the composition root reads the environment)."""

from __future__ import annotations

from dataclasses import dataclass

from streams.kafka.config import KafkaConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerConfig:
    kafka: KafkaConfig
    worker_id: str | None = None  # default: hostname-pid
    group: str = "default"  # DolphinScheduler's worker group
    slots: int = 4  # attempts run at once (DolphinScheduler's exec-threads)
    heartbeat_interval_s: float = 0.5  # masters declare a worker lost after 3 missed
