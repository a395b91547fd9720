"""The local stack for real: a Tansu broker and a private PostgreSQL cluster, no mocks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psutil
import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from infra.settings import Settings
from infra.stack import LocalStack, free_port, port_open
from infra.topics import delete_topics, partitions_for, provision
from streams.postgres.errors import DatabaseUnavailable

pytestmark = pytest.mark.integration


def _bare_settings(**overrides: object) -> Settings:
    """Settings that name no broker and no database, whatever the environment says."""
    prefix = f"test-{uuid.uuid4().hex[:8]}."
    fields = {"kafka_bootstrap_servers": None, "database_url": None}
    return Settings(**{**fields, "tideflow_topic_prefix": prefix, **overrides})  # type: ignore[arg-type]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture(scope="module")
def bare_stack() -> Iterator[Settings]:
    with LocalStack(_bare_settings()) as settings:
        yield settings


def test_stack_fills_settings(bare_stack: Settings) -> None:
    assert bare_stack.kafka_bootstrap_servers and bare_stack.kafka_bootstrap_servers.startswith(
        "127.0.0.1:"
    )
    assert bare_stack.database_url and bare_stack.database_url.endswith("/tideflow")
    assert ":5432/" not in bare_stack.database_url  # the private cluster, not the system one


def test_topic_round_trip(bare_stack: Settings) -> None:
    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
    producer = Producer(bare_stack.kafka.producer_config())
    producer.produce(topic, key=b"k", value=b"hello")
    assert producer.flush(10) == 0
    consumer = Consumer(bare_stack.kafka.consumer_config("admin", f"g-{topic}"))
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        msg = None
        for _ in range(50):
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                break
        assert msg is not None and msg.error() is None
        assert (msg.key(), msg.value()) == (b"k", b"hello")
    finally:
        consumer.close()


def test_postgres_answers(bare_stack: Settings) -> None:
    with psycopg.connect(bare_stack.dsn) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        assert conn.execute("select current_database()").fetchone() == ("tideflow",)


def test_provision_creates_topics_idempotently(bare_stack: Settings) -> None:
    settings = bare_stack.model_copy(update={"tideflow_partitions": 3})
    topics = settings.topics
    try:
        provision(settings)
        provision(settings)  # a second run finds every topic there and is fine
        for name in (topics.commands, topics.events, topics.dispatch, topics.task_logs):
            assert partitions_for(settings, name) == 3
        for name in (topics.heartbeats, topics.definitions, topics.dead_letter):
            assert partitions_for(settings, name) == 1
    finally:
        delete_topics(settings)
    with pytest.raises(KeyError):
        partitions_for(settings, topics.events)


def test_stop_leaves_no_process() -> None:
    stack = LocalStack(_bare_settings())
    settings = stack.start()
    pids = stack.pids
    assert set(pids) == {"broker", "postgres"}
    pg_port, kafka_port, tmpdir = stack.pg_port, stack.kafka_port, stack.tmpdir
    assert pg_port and kafka_port and tmpdir and settings.database_url
    assert port_open(pg_port) and port_open(kafka_port)
    stack.stop()
    assert all(_gone(pid) for pid in pids.values())
    assert not port_open(pg_port) and not port_open(kafka_port)
    assert not tmpdir.exists()
    stack.stop()  # a second stop is harmless


def test_given_services_are_used_as_they_are(bare_stack: Settings) -> None:
    inner = LocalStack(bare_stack)
    with inner as settings:
        assert settings.kafka_bootstrap_servers == bare_stack.kafka_bootstrap_servers
        assert settings.database_url == bare_stack.database_url
        assert inner.pids == {} and inner.tmpdir is None


def test_unreachable_database_fails_fast_and_cleans_up() -> None:
    port = free_port()  # nothing listens there
    stack = LocalStack(
        _bare_settings(database_url=f"postgresql://x@127.0.0.1:{port}/x"), timeout_s=1
    )
    with pytest.raises(DatabaseUnavailable) as caught:
        stack.start()
    assert caught.value.retryable
    assert stack.broker is None and stack.tmpdir is None  # the broker it had launched is stopped
