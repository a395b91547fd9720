"""The Kafka client configuration every role is built with, in one place.

Roles get their own `fetch.wait.max.ms` (the latency of a hop on Tansu is set by it, and idle
polling costs broker CPU: low for masters and workers, higher for the projector) and a short
consumer-group session timeout, because Tansu's default group join takes ~23 s and a dead
master's partitions move only once its session has ended (fencing by owner epoch keeps a
short one safe: a master wrongly thought dead is fenced, never doubled). Typed values
only: reading them from the environment is the composition root's job (`infra.settings`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from streams.kafka.topics import Topics

# librdkafka's own messages go through logging (not straight to stderr), quiet by default.
_CLIENT_LOG = logging.getLogger("tideflow.kafka.client")

Role = Literal["master", "registry", "worker", "projector", "api", "admin", "scheduler"]

# Per-role fetch wait (ms): latency of a hop on Tansu is set by it; idle polling costs broker CPU.
FETCH_WAIT_MS: dict[str, int] = {
    "master": 2,
    "registry": 100,  # a master's heartbeat reader: seconds matter there, not milliseconds
    "worker": 2,
    "projector": 20,
    "api": 20,
    "admin": 20,
    "scheduler": 20,  # schedule commands are rare; fire times are checked on a timer
}


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaConfig:
    bootstrap_servers: str
    topic_prefix: str = "tideflow."
    # Tansu's floor. A SIGKILLed master's partitions reach the survivor ~1.1 s after its
    # session ends (measured with heartbeats every 333 ms and every 100 ms, with cooperative
    # and eager assignment alike): 2.2 s at 1000 ms against 5.4 s at 3000 ms. Apache Kafka
    # brokers refuse sessions under group.min.session.timeout.ms (6 s by default).
    session_timeout_ms: int = 1000
    assignment_strategy: str = "cooperative-sticky"
    max_poll_interval_ms: int = 10000
    # Tansu 0.6 wedges a consumer group for good when a member leaves (LeaveGroup) while
    # members are joining: measured 2 of 2 seeded runs of SIGTERM + restart, 0 of 2 with
    # SIGKILL only. So by default a stopping master or projector commits and exits without
    # leaving; its partitions move after the session timeout. On Apache Kafka set it true
    # for an immediate hand-over.
    leave_group_on_stop: bool = False
    debug: str = ""  # librdkafka `debug` contexts, e.g. "cgrp" (logged at DEBUG)
    # TLS and SASL as librdkafka properties (security.protocol, sasl.*, ssl.*), validated by
    # the composition root; every client of every role gets them (`client_config`).
    security: tuple[tuple[str, str], ...] = ()

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    def client_config(self, **extra: Any) -> dict[str, Any]:
        """What every client (producer, consumer, admin) is built with: where the brokers
        are and how to reach them securely."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            **dict(self.security),
            "logger": _CLIENT_LOG,
            **extra,
        }

    def producer_config(self, **extra: Any) -> dict[str, Any]:
        """Idempotent, low-latency producer. murmur2 matches the Java client's partitioner,
        so producers in any language put an instance's records in the same partition."""
        return self.client_config(
            **{
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 1,
                "partitioner": "murmur2_random",
                **extra,
            }
        )

    def consumer_config(self, role: Role, group_id: str, **extra: Any) -> dict[str, Any]:
        return self.client_config(
            **{
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": FETCH_WAIT_MS[role],
                "session.timeout.ms": self.session_timeout_ms,
                "heartbeat.interval.ms": max(100, self.session_timeout_ms // 3),
                "max.poll.interval.ms": self.max_poll_interval_ms,
                "partition.assignment.strategy": self.assignment_strategy,
                "topic.metadata.refresh.interval.ms": 5000,
                **({"debug": self.debug} if self.debug else {}),
                **extra,
            }
        )
