"""Configuration of every tideflow process, read from the environment (prefix-free names).

One place for every knob, including the Kafka client settings that make the local broker fast:
roles get their own `fetch.wait.max.ms` (low for masters and workers, higher for the projector)
and a short consumer-group session timeout, because Tansu's default group join takes ~23 s.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# librdkafka's own messages go through logging (not straight to stderr), quiet by default.
_CLIENT_LOG = logging.getLogger("tideflow.kafka.client")

Role = Literal["master", "registry", "worker", "projector", "api", "admin"]

# Per-role fetch wait (ms): latency of a hop on Tansu is set by it; idle polling costs broker CPU.
_FETCH_WAIT_MS: dict[str, int] = {
    "master": 2,
    "registry": 100,  # a master's heartbeat reader: seconds matter there, not milliseconds
    "worker": 2,
    "projector": 20,
    "api": 20,
    "admin": 20,
}


class Settings(BaseSettings):
    """Settings; each field maps to an environment variable of the same name in upper case."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    kafka_bootstrap_servers: str | None = Field(default=None)
    database_url: str | None = Field(default=None)
    tideflow_topic_prefix: str = "tideflow."
    tideflow_db_schema: str = "tideflow"
    tideflow_partitions: int = 4
    tideflow_session_timeout_ms: int = 3000
    tideflow_assignment_strategy: str = "cooperative-sticky"
    tideflow_max_poll_interval_ms: int = 10000
    # Tansu 0.6 wedges a consumer group for good when a member leaves (LeaveGroup) while
    # members are joining: measured 2 of 2 seeded runs of SIGTERM + restart, 0 of 2 with
    # SIGKILL only. So by default a stopping master or projector commits and exits without
    # leaving; its partitions move after the session timeout. On Apache Kafka set it true
    # for an immediate hand-over.
    tideflow_leave_group_on_stop: bool = False
    tideflow_kafka_debug: str = ""  # librdkafka `debug` contexts, e.g. "cgrp" (logged at DEBUG)
    tideflow_worker_id: str | None = None
    tideflow_worker_group: str = "default"
    tideflow_worker_slots: int = 4
    tideflow_heartbeat_interval_s: float = 2.0
    tideflow_worker_timeout_s: float = 10.0
    tideflow_dispatch_ack_timeout_s: float = 60.0
    tideflow_snapshot_every_events: int = 5000
    tideflow_snapshot_interval_s: float = 30.0
    tideflow_api_host: str = "127.0.0.1"
    tideflow_api_port: int = 8080

    def to_env(self) -> dict[str, str]:
        """These settings as environment variables, for child processes."""
        return {k.upper(): str(v) for k, v in self.model_dump().items() if v is not None}

    @property
    def bootstrap(self) -> str:
        if not self.kafka_bootstrap_servers:
            raise RuntimeError("KAFKA_BOOTSTRAP_SERVERS is not set and no local stack is running")
        return self.kafka_bootstrap_servers

    @property
    def dsn(self) -> str:
        if not self.database_url:
            raise RuntimeError("DATABASE_URL is not set and no local stack is running")
        return self.database_url

    @property
    def topics(self) -> Topics:  # not cached: model_copy() must not keep another prefix's names
        return Topics(self.tideflow_topic_prefix)

    def producer_config(self, **extra: Any) -> dict[str, Any]:
        """Idempotent, low-latency producer. murmur2 matches the Java client's partitioner,
        so producers in any language put an instance's records in the same partition."""
        return {
            "bootstrap.servers": self.bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 1,
            "partitioner": "murmur2_random",
            "logger": _CLIENT_LOG,
            **extra,
        }

    def consumer_config(self, role: Role, group_id: str, **extra: Any) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.bootstrap,
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": _FETCH_WAIT_MS[role],
            "session.timeout.ms": self.tideflow_session_timeout_ms,
            "heartbeat.interval.ms": max(100, self.tideflow_session_timeout_ms // 3),
            "max.poll.interval.ms": self.tideflow_max_poll_interval_ms,
            "partition.assignment.strategy": self.tideflow_assignment_strategy,
            "topic.metadata.refresh.interval.ms": 5000,
            "logger": _CLIENT_LOG,
            **({"debug": self.tideflow_kafka_debug} if self.tideflow_kafka_debug else {}),
            **extra,
        }


STACK_FILE = Path(".tideflow") / "stack.env"


def load_settings() -> Settings:
    """Settings from the environment; when no broker or database is configured there, the
    endpoints of a stack started by `tideflow up` in this directory (its `.tideflow/stack.env`)."""
    settings = Settings()
    if STACK_FILE.exists() and not (settings.kafka_bootstrap_servers and settings.database_url):
        found = dict(
            line.split("=", 1) for line in STACK_FILE.read_text().splitlines() if "=" in line
        )
        settings = settings.model_copy(
            update={
                "kafka_bootstrap_servers": settings.kafka_bootstrap_servers
                or found.get("KAFKA_BOOTSTRAP_SERVERS"),
                "database_url": settings.database_url or found.get("DATABASE_URL"),
            }
        )
    return settings


class Topics:
    """Topic names under the configured prefix, so several deployments can share a cluster."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.commands = f"{prefix}commands"
        self.events = f"{prefix}events"
        self.dispatch = f"{prefix}dispatch"
        self.heartbeats = f"{prefix}heartbeats"
        self.definitions = f"{prefix}definitions"
        self.task_logs = f"{prefix}task-logs"
        self.dead_letter = f"{prefix}dead-letter"

    def all(self) -> dict[str, str]:
        """Topic name -> cleanup policy."""
        return {
            self.commands: "delete",
            self.events: "delete",  # retained forever via retention.ms=-1 (source of truth)
            self.dispatch: "delete",
            self.heartbeats: "compact",
            self.definitions: "compact",
            self.task_logs: "delete",
            self.dead_letter: "delete",
        }
