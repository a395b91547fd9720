"""What a scheduler is configured with (typed; the composition root reads the environment)."""

from __future__ import annotations

from dataclasses import dataclass

from streams.kafka.config import KafkaConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerConfig:
    kafka: KafkaConfig
    fire_check_s: float = 0.1  # how often due fire times are looked for (bounds lateness)
    batch_size: int = 500
