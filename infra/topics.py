"""Topic provisioning: every tideflow topic with an explicit partition count and cleanup policy.

Idempotent: a topic that already exists is left alone (a partition count that differs from the
wanted one is logged, never changed: repartitioning would move instances between partitions).
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from infra.settings import Settings
from streams.core.errors import TideflowError

log = logging.getLogger("tideflow.infra")

# Error codes meaning "the broker does not take this topic config"; retried without config.
_CONFIG_REJECTED = {
    KafkaError.INVALID_CONFIG,
    KafkaError.INVALID_REQUEST,
    KafkaError.POLICY_VIOLATION,
}


def _admin(settings: Settings) -> AdminClient:
    return AdminClient(settings.kafka.client_config())


def wanted_topics(settings: Settings) -> dict[str, tuple[int, dict[str, str]]]:
    """Topic name -> (partitions, config)."""
    t = settings.topics
    partitioned = {t.commands, t.events, t.dispatch, t.task_logs, t.schedule_commands, t.schedules}
    wanted: dict[str, tuple[int, dict[str, str]]] = {}
    for name, policy in t.all().items():
        config = {"cleanup.policy": policy}
        if name in (t.events, t.schedules):
            config["retention.ms"] = "-1"  # the event log is the source of truth: keep it forever
        wanted[name] = (settings.tideflow_partitions if name in partitioned else 1, config)
    return wanted


def _create(admin: AdminClient, topics: list[NewTopic], timeout_s: float) -> dict[str, KafkaError]:
    """Create topics; return the error of each topic that failed (existing topics are fine)."""
    if not topics:
        return {}
    futures = admin.create_topics(topics, request_timeout=timeout_s, operation_timeout=timeout_s)
    errors: dict[str, KafkaError] = {}
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s + 5)
            log.info("created topic %s", name)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                errors[name] = error
    return errors


def _new_topic(name: str, partitions: int, config: dict[str, str]) -> NewTopic:
    # replication_factor=-1: the broker's default.replication.factor (3 in production, 1 here)
    return NewTopic(name, num_partitions=partitions, replication_factor=-1, config=config)


def provision(settings: Settings, *, timeout_s: float = 30.0) -> None:
    """Create every topic of `settings.topics.all()`; existing topics are fine."""
    admin = _admin(settings)
    wanted = wanted_topics(settings)
    errors = _create(admin, [_new_topic(n, p, c) for n, (p, c) in wanted.items()], timeout_s)
    rejected = [name for name, error in errors.items() if error.code() in _CONFIG_REJECTED]
    for name in rejected:
        config, reason = wanted[name][1], errors.pop(name).str()
        log.warning(
            "broker rejected %s for topic %s (%s); creating it without", config, name, reason
        )
    errors |= _create(admin, [_new_topic(n, wanted[n][0], {}) for n in rejected], timeout_s)
    if errors:
        failed = ", ".join(f"{name}: {error.str()}" for name, error in errors.items())
        raise TideflowError(f"creating topics failed: {failed}")
    metadata = admin.list_topics(timeout=timeout_s)
    for name, (partitions, _) in wanted.items():
        actual = len(metadata.topics[name].partitions) if name in metadata.topics else 0
        if actual != partitions:
            log.warning("topic %s has %d partitions, wanted %d", name, actual, partitions)


def delete_topics(settings: Settings, *, timeout_s: float = 30.0) -> None:
    """Delete every tideflow topic (for tests); missing topics are fine."""
    admin = _admin(settings)  # keep a reference: the futures fail if the client is collected
    names = list(settings.topics.all())
    futures = admin.delete_topics(names, request_timeout=timeout_s, operation_timeout=timeout_s)
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s + 5)
            log.info("deleted topic %s", name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise


def partitions_for(settings: Settings, topic: str, *, timeout_s: float = 10.0) -> int:
    """Partition count of `topic` from the broker's metadata; KeyError when it does not exist."""
    # Ask for all topics: a metadata request naming one may auto-create it on some brokers.
    metadata = _admin(settings).list_topics(timeout=timeout_s)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        raise KeyError(topic)
    return len(found.partitions)
