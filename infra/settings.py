"""Configuration of every tideflow process, read from the environment (prefix-free names).

The only place that reads the environment: it turns it into the typed configuration each
layer takes (`KafkaConfig`, `DbConfig`, `MasterConfig`, `WorkerConfig`), which the
composition root (`infra.compose`) hands to the roles.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.errors import NotConfigured
from streams.core.placement import BusyThresholds, HostSelector
from streams.kafka.config import KafkaConfig
from streams.kafka.topics import Topics
from streams.master.config import MasterConfig
from streams.postgres.connection import DbConfig
from streams.scheduler.config import SchedulerConfig
from streams.worker.config import TaskResources, WorkerConfig


class Settings(BaseSettings):
    """Settings; each field maps to an environment variable of the same name in upper case."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    kafka_bootstrap_servers: str | None = Field(default=None)
    database_url: str | None = Field(default=None)
    tideflow_topic_prefix: str = "tideflow."
    tideflow_db_schema: str = "tideflow"
    tideflow_partitions: int = 4
    tideflow_session_timeout_ms: int = 1000  # master failover; Apache Kafka needs >= 6000
    tideflow_assignment_strategy: str = "cooperative-sticky"
    tideflow_max_poll_interval_ms: int = 10000
    # see KafkaConfig.leave_group_on_stop: Tansu wedges a group when a member leaves
    tideflow_leave_group_on_stop: bool = False
    tideflow_kafka_debug: str = ""  # librdkafka `debug` contexts, e.g. "cgrp" (logged at DEBUG)
    # TLS / SASL to the brokers, for every client of every role (`kafka_security`).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: Path | None = None  # CA bundle; unset: the system's
    kafka_ssl_certificate_location: Path | None = None  # client certificate (mutual TLS)
    kafka_ssl_key_location: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    tideflow_worker_id: str | None = None
    tideflow_worker_group: str = "default"
    tideflow_worker_slots: int = 4
    # JSON objects: {"py3": "/opt/py3/bin/python"}, {"warehouse": "postgresql://..."}
    tideflow_python_envs: dict[str, str] = Field(default_factory=dict)
    tideflow_datasources: dict[str, str] = Field(default_factory=dict)
    tideflow_heartbeat_interval_s: float = 0.5
    tideflow_worker_timeout_s: float = 1.5  # 3 heartbeats; worker failover p50 ~1.3 s
    tideflow_dispatch_ack_timeout_s: float = 60.0
    tideflow_snapshot_every_events: int = 5000
    tideflow_snapshot_interval_s: float = 30.0
    # Host selection: idle_first | random | round_robin | weighted, for every worker group
    # but those named in TIDEFLOW_HOST_SELECTOR_GROUPS ("gpu=round_robin,etl=weighted").
    tideflow_host_selector: HostSelector = HostSelector.IDLE_FIRST
    tideflow_host_selector_groups: str = ""
    # DolphinScheduler's BUSY thresholds (percent; unset: not checked): a worker whose last
    # heartbeat shows more CPU or memory in use gets no new work.
    tideflow_worker_busy_cpu_percent: float | None = None
    tideflow_worker_busy_memory_percent: float | None = None
    tideflow_worker_weight: int = Field(default=100, ge=1)  # host weight (weighted selector)
    tideflow_api_host: str = "127.0.0.1"
    tideflow_api_port: int = 8080

    @field_validator("tideflow_host_selector_groups")
    @classmethod
    def _selector_groups(cls, value: str) -> str:
        _parse_selector_groups(value)  # refuses a bad one at start-up, naming it
        return value

    @model_validator(mode="after")
    def _kafka_security(self) -> Settings:
        problems = kafka_security_problems(self)
        if problems:
            raise ValueError("Kafka security settings: " + "; ".join(problems))
        return self

    def to_env(self) -> dict[str, str]:
        """These settings as environment variables, for child processes."""
        return {k.upper(): _env_value(v) for k, v in self.model_dump().items() if v is not None}

    @property
    def kafka_security(self) -> tuple[tuple[str, str], ...]:
        """The librdkafka properties of the TLS / SASL settings that are set."""
        values: dict[str, SecretStr | Path | str | None] = {
            "security.protocol": self.kafka_security_protocol,
            "sasl.mechanism": self.kafka_sasl_mechanism,
            "sasl.username": self.kafka_sasl_username,
            "sasl.password": self.kafka_sasl_password,
            "ssl.ca.location": self.kafka_ssl_ca_location,
            "ssl.certificate.location": self.kafka_ssl_certificate_location,
            "ssl.key.location": self.kafka_ssl_key_location,
            "ssl.key.password": self.kafka_ssl_key_password,
        }
        return tuple((k, _env_value(v)) for k, v in values.items() if v is not None)

    @property
    def bootstrap(self) -> str:
        if not self.kafka_bootstrap_servers:
            raise NotConfigured("KAFKA_BOOTSTRAP_SERVERS is not set and no local stack is running")
        return self.kafka_bootstrap_servers

    @property
    def dsn(self) -> str:
        if not self.database_url:
            raise NotConfigured("DATABASE_URL is not set and no local stack is running")
        return self.database_url

    @property
    def topics(self) -> Topics:  # no broker needed to name them
        return Topics(self.tideflow_topic_prefix)

    @property
    def kafka(self) -> KafkaConfig:
        return KafkaConfig(
            bootstrap_servers=self.bootstrap,
            topic_prefix=self.tideflow_topic_prefix,
            session_timeout_ms=self.tideflow_session_timeout_ms,
            assignment_strategy=self.tideflow_assignment_strategy,
            max_poll_interval_ms=self.tideflow_max_poll_interval_ms,
            leave_group_on_stop=self.tideflow_leave_group_on_stop,
            debug=self.tideflow_kafka_debug,
            security=self.kafka_security,
        )

    @property
    def db(self) -> DbConfig:
        return DbConfig(dsn=self.dsn, schema=self.tideflow_db_schema)

    @property
    def master(self) -> MasterConfig:
        return MasterConfig(
            kafka=self.kafka,
            worker_timeout_s=self.tideflow_worker_timeout_s,
            dispatch_ack_timeout_s=self.tideflow_dispatch_ack_timeout_s,
            snapshot_every_events=self.tideflow_snapshot_every_events,
            snapshot_interval_s=self.tideflow_snapshot_interval_s,
            host_selector=self.tideflow_host_selector,
            selector_by_group=MappingProxyType(
                _parse_selector_groups(self.tideflow_host_selector_groups)
            ),
            busy=BusyThresholds(
                cpu=_share(self.tideflow_worker_busy_cpu_percent),
                memory=_share(self.tideflow_worker_busy_memory_percent),
            ),
        )

    @property
    def scheduler(self) -> SchedulerConfig:
        return SchedulerConfig(kafka=self.kafka)

    @property
    def worker(self) -> WorkerConfig:
        return WorkerConfig(
            kafka=self.kafka,
            worker_id=self.tideflow_worker_id,
            group=self.tideflow_worker_group,
            slots=self.tideflow_worker_slots,
            heartbeat_interval_s=self.tideflow_heartbeat_interval_s,
            weight=self.tideflow_worker_weight,
            resources=TaskResources(
                python=self.tideflow_python_envs, datasources=self.tideflow_datasources
            ),
        )


def _parse_selector_groups(value: str) -> dict[str, HostSelector]:
    """ "gpu=round_robin, etl=weighted" -> {"gpu": ROUND_ROBIN, "etl": WEIGHTED}."""
    out: dict[str, HostSelector] = {}
    for item in (i.strip() for i in value.split(",")):
        if not item:
            continue
        group, _, name = item.partition("=")
        choices = ", ".join(s.value for s in HostSelector)
        if not group.strip() or name.strip().lower() not in {s.value for s in HostSelector}:
            raise ValueError(
                f"expected group=selector with a selector of {choices}, found {item!r}"
            )
        out[group.strip()] = HostSelector(name.strip().lower())
    return out


def _share(percent: float | None) -> float | None:
    return None if percent is None else percent / 100.0


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


def _env_value(value: Any) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return json.dumps(value) if isinstance(value, dict) else str(value)


def kafka_security_problems(s: Settings) -> list[str]:
    """Every contradiction or missing piece of the TLS / SASL settings, named (checked at
    start-up, so a role never connects half-configured)."""
    problems: list[str] = []
    protocol = s.kafka_security_protocol
    sasl = protocol.startswith("SASL")
    tls = protocol.endswith("SSL")
    if sasl:
        for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password"):
            if getattr(s, name) is None:
                problems.append(f"{name.upper()} is required with {protocol}")
    else:
        for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password"):
            if getattr(s, name) is not None:
                problems.append(f"{name.upper()} is set but KAFKA_SECURITY_PROTOCOL is {protocol}")
    ssl_files = (
        "kafka_ssl_ca_location", "kafka_ssl_certificate_location", "kafka_ssl_key_location",
    )  # fmt: skip
    for name in (*ssl_files, "kafka_ssl_key_password"):
        if getattr(s, name) is not None and not tls:
            problems.append(f"{name.upper()} is set but KAFKA_SECURITY_PROTOCOL is {protocol}")
    for name in ssl_files:
        path = getattr(s, name)
        if path is not None and not path.is_file():
            problems.append(f"{name.upper()}: no readable file at {path}")
    if (s.kafka_ssl_certificate_location is None) != (s.kafka_ssl_key_location is None):
        problems.append(
            "KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together (mutual TLS)"
        )
    return problems
