"""Commands from a producer on librdkafka's default partitioner (`consistent_random`: CRC32
of the key), not tideflow's murmur2: the master that receives one on the wrong partition
forwards it to the instance's own, where it is decided; nothing is dead-lettered, and a
forward redelivered is decided once."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

import pytest
from confluent_kafka import KafkaError, Message
from confluent_kafka import Producer as RdKafkaProducer

from infra.settings import Settings
from schemas.catalog import COMMANDS, EVENTS
from schemas.serde import encode, expect
from streams.core.commands import StartWorkflow
from streams.core.events import WorkflowStarted
from streams.kafka.partitioning import partition_for
from streams.kafka.reader import read_to_end
from streams.master.forwarding import FROM_OFFSET, FROM_PARTITION
from tests.integration.helpers import wait_until, workflow
from tests.integration.test_master_poison import RunningMaster, dead_letters

pytestmark = pytest.mark.integration

FLOW = workflow("elsewhere", [{"code": "only", "type": "noop"}])


def misrouted_ids(partitions: int, count: int) -> list[str]:
    """Instance ids that CRC32 and murmur2 put in different partitions."""
    out: list[str] = []
    n = 0
    while len(out) < count:
        candidate = f"crc-{n}"
        if zlib.crc32(candidate.encode()) % partitions != partition_for(candidate, partitions):
            out.append(candidate)
        n += 1
    return out


def send_with_librdkafka_defaults(
    settings: Settings, commands: list[StartWorkflow]
) -> dict[str, tuple[int, int]]:
    """Produce as an outside confluent-kafka client would: key = instance id, no explicit
    partition, librdkafka's default partitioner. Returns (partition, offset) per command id."""
    producer = RdKafkaProducer(
        {"bootstrap.servers": settings.bootstrap, "partitioner": "consistent_random"}
    )
    where: dict[str, tuple[int, int]] = {}
    errors: list[KafkaError] = []

    def delivered(command_id: str, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
        else:
            where[command_id] = (int(msg.partition() or 0), int(msg.offset() or 0))

    for c in commands:
        producer.produce(
            settings.topics.commands,
            key=c.instance_id.encode(),
            value=encode(c),
            on_delivery=lambda err, msg, cid=c.command_id: delivered(cid, err, msg),
        )
    assert producer.flush(30) == 0
    assert errors == []
    return where


def start(instance_id: str, command_id: str | None = None) -> StartWorkflow:
    return StartWorkflow(
        command_id=command_id or f"start/{instance_id}",
        instance_id=instance_id,
        workflow=FLOW,
        at=datetime.now(UTC),
    )


def test_commands_on_the_wrong_partition_are_forwarded_and_every_instance_starts(
    deployment: Settings,
) -> None:
    settings = deployment
    n = settings.tideflow_partitions
    ids = misrouted_ids(n, 6)
    commands = [start(i) for i in ids]
    commands.append(start(ids[0]))  # the same command twice: forwarded twice, decided once

    where = send_with_librdkafka_defaults(settings, commands)

    for c in commands:  # the test is only worth something if they did land elsewhere
        assert where[c.command_id][0] == zlib.crc32(c.instance_id.encode()) % n
        assert where[c.command_id][0] != partition_for(c.instance_id, n)

    with RunningMaster(settings) as running:
        wait_until(
            lambda: set(ids) <= started_on_own_partition(settings), what="every instance started"
        )
        assert running.alive()
        assert running.master.partitions == frozenset(range(n))

    starts = [
        (m.partition(), e)
        for m in read_to_end(settings.kafka, settings.topics.events)
        if isinstance(e := expect(m.value(), EVENTS), WorkflowStarted)
    ]
    assert sorted(e.instance_id for _, e in starts) == sorted(ids)  # each once
    assert all(p == partition_for(e.instance_id, n) for p, e in starts)
    assert dead_letters(settings) == []
    forwarded = {}
    for m in read_to_end(settings.kafka, settings.topics.commands):
        headers = {str(k): bytes(v or b"").decode() for k, v in m.headers() or []}
        if FROM_PARTITION in headers:
            c = expect(m.value(), COMMANDS)
            assert m.partition() == partition_for(c.instance_id, n)
            forwarded.setdefault(c.command_id, []).append(
                (int(headers[FROM_PARTITION]), int(headers[FROM_OFFSET]))
            )
    assert sorted(forwarded) == sorted({c.command_id for c in commands})
    assert len(forwarded[f"start/{ids[0]}"]) == 2
    for c in commands[:-1]:
        assert where[c.command_id] in forwarded[c.command_id]


def started_on_own_partition(settings: Settings) -> set[str]:
    out = set()
    for m in read_to_end(settings.kafka, settings.topics.events):
        e = expect(m.value(), EVENTS)
        if isinstance(e, WorkflowStarted):
            assert m.partition() == partition_for(e.instance_id, settings.tideflow_partitions)
            out.add(e.instance_id)
    return out
