"""One command record through the master's intake (streams/master/intake.py, forwarding.py):
decided, dead-lettered, forwarded, or recorded as poison; never raised. A hand-written fake
producer records what would be sent; records are real confluent-kafka `Message`s."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from confluent_kafka import Message

from schemas.serde import decode, encode
from streams.core.commands import Command
from streams.core.decide import decide as core_decide
from streams.core.events import CommandRejected, TaskDispatched, WorkflowStarted
from streams.core.instance import InstanceState
from streams.core.placement import Workers
from streams.core.rejections import Reason
from streams.kafka.config import KafkaConfig
from streams.kafka.partitioning import partition_for
from streams.master.appender import Appender
from streams.master.config import MasterConfig
from streams.master.forwarding import FROM_OFFSET, FROM_PARTITION
from streams.master.intake import Intake
from streams.master.partitions import PartitionState
from streams.master.slot_count import SlotCount
from streams.master.slot_waits import SlotWaits
from streams.master.snapshot_cadence import SnapshotCadence
from tests.core.builders import NOW, W1, chain, start

CONFIG = MasterConfig(kafka=KafkaConfig(bootstrap_servers="unused:9092"))
TOPICS = CONFIG.kafka.topics
PARTITIONS = 4
ACK = timedelta(seconds=60)


@dataclass
class Sent:
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None
    headers: dict[str, str]


@dataclass
class FakeProducer:
    """What `Producer.send` / `send_raw` were given, in order."""

    sent: list[Sent] = field(default_factory=list)

    def send(self, topic: str, key: str, record: Any, *, partition: int | None = None) -> None:
        self.sent.append(Sent(topic, key.encode(), encode(record), partition, {}))

    def send_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.sent.append(Sent(topic, key, value, partition, dict(headers or {})))

    def on(self, topic: str) -> list[Sent]:
        return [s for s in self.sent if s.topic == topic]


class Harness:
    def __init__(self, decide: Any = core_decide) -> None:
        self.producer = FakeProducer()
        self.parts = {p: PartitionState(p, epoch=3, ack_timeout=ACK) for p in range(PARTITIONS)}
        appender = Appender(
            self.producer,  # type: ignore[arg-type]
            TOPICS,
            SlotCount(),
            SlotWaits(),
            SnapshotCadence(None, CONFIG),
        )
        self.intake = Intake(
            producer=self.producer,  # type: ignore[arg-type]
            topics=TOPICS,
            partitions=PARTITIONS,
            owned=set(range(PARTITIONS)),
            partition=self.parts.__getitem__,
            live=lambda now: W1,
            decide=decide,
            appender=appender,
            ack_timeout=ACK,
        )

    def handle(
        self, command: Command, partition: int | None = None, offset: int = 7, **kw: Any
    ) -> None:
        p = partition_for(command.instance_id, PARTITIONS) if partition is None else partition
        value = kw.pop("value", None) or encode(command)
        msg = Message(
            topic=TOPICS.commands, partition=p, offset=offset,
            key=command.instance_id.encode(), value=value, **kw,
        )  # fmt: skip
        self.intake.handle(msg, NOW)

    def state(self, instance_id: str) -> InstanceState:
        return self.parts[partition_for(instance_id, PARTITIONS)].get(instance_id)

    def events(self) -> list[Any]:
        return [decode(s.value) for s in self.producer.on(TOPICS.events)]


def raising(command_id: str) -> Any:
    def decide(state: InstanceState, command: Command, now: Any, workers: Workers) -> Any:
        if command.command_id == command_id:
            raise ZeroDivisionError("injected")
        return core_decide(state, command, now, workers)

    return decide


WF = chain("a", "b")


def test_a_command_is_decided_and_its_events_carry_the_owner_epoch() -> None:
    h = Harness()
    h.handle(start(WF, instance_id="i-ok"))

    assert [type(e) for e in h.events()] == [WorkflowStarted, TaskDispatched]
    assert {e.epoch for e in h.events()} == {3}
    assert len(h.producer.on(TOPICS.dispatch)) == 1
    assert h.producer.on(TOPICS.dead_letter) == []


def test_a_command_whose_decision_raises_is_dead_lettered_and_rejected_as_internal_error() -> None:
    h = Harness(raising("start-1"))
    command = start(WF, instance_id="i-poison")
    p = partition_for("i-poison", PARTITIONS)

    h.handle(command, offset=41)

    [dead] = h.producer.on(TOPICS.dead_letter)
    assert (dead.key, dead.value) == (b"i-poison", encode(command))
    assert dead.headers == {
        "tideflow.reason": "deciding StartWorkflow raised ZeroDivisionError: injected",
        "tideflow.topic": TOPICS.commands,
        "tideflow.partition": str(p),
        "tideflow.offset": "41",
        "tideflow.exception": "ZeroDivisionError",
        "tideflow.error": "injected",
        "tideflow.instance_id": "i-poison",
    }
    [rejected] = h.events()
    assert isinstance(rejected, CommandRejected)
    assert (rejected.command_id, rejected.command_type) == ("start-1", "StartWorkflow")
    assert rejected.reason is Reason.INTERNAL_ERROR
    assert rejected.message == (
        "expected a decision, found ZeroDivisionError: injected "
        f"(dead-lettered from {TOPICS.commands}[{p}]@41)"
    )
    assert (rejected.epoch, rejected.at) == (3, NOW)
    assert h.producer.on(TOPICS.events)[0].partition == p
    assert "start-1" in h.state("i-poison").applied


def test_a_poison_command_redelivered_is_skipped_without_a_second_record() -> None:
    h = Harness(raising("start-1"))
    command = start(WF, instance_id="i-poison")
    h.handle(command)
    before = list(h.producer.sent)

    h.handle(command, offset=8)  # a crash before the commit, or the same bytes sent twice

    assert h.producer.sent == before


def test_a_decision_that_cannot_be_followed_leaves_nothing_half_applied() -> None:
    def broken(state: InstanceState, command: Command, now: Any, workers: Workers) -> Any:
        good = core_decide(state, command, now, workers)  # started, a dispatched
        ghost = TaskDispatched(
            instance_id=command.instance_id, task_code="nope", attempt=1, worker_id="w1",
            worker_group="default", cause=command.command_id, at=now,
        )  # fmt: skip
        return [*good, ghost]

    h = Harness(broken)
    h.handle(start(WF, instance_id="i-half"))

    assert [type(e) for e in h.events()] == [CommandRejected]  # nothing of the decision
    assert h.producer.on(TOPICS.dispatch) == []
    assert h.state("i-half").state is None
    assert len(h.producer.on(TOPICS.dead_letter)) == 1


def test_a_command_on_the_wrong_partition_is_forwarded_to_its_own_with_its_origin() -> None:
    h = Harness()
    command = start(WF, instance_id="i-far")
    own = partition_for("i-far", PARTITIONS)
    wrong = (own + 1) % PARTITIONS

    h.handle(command, partition=wrong, offset=12, headers=[("traceparent", b"00-abc-01")])

    [forwarded] = h.producer.sent
    assert (forwarded.topic, forwarded.partition) == (TOPICS.commands, own)
    assert (forwarded.key, forwarded.value) == (b"i-far", encode(command))
    assert forwarded.headers == {
        "traceparent": "00-abc-01",
        FROM_PARTITION: str(wrong),
        FROM_OFFSET: "12",
    }
    assert h.state("i-far").state is None  # decided by its own partition's owner


def test_a_record_forwarded_once_and_still_on_a_wrong_partition_is_dead_lettered() -> None:
    h = Harness()
    command = start(WF, instance_id="i-far")
    wrong = (partition_for("i-far", PARTITIONS) + 2) % PARTITIONS

    h.handle(command, partition=wrong, headers=[(FROM_PARTITION, b"1"), (FROM_OFFSET, b"5")])

    [dead] = h.producer.sent
    assert dead.topic == TOPICS.dead_letter
    assert "masters disagree on the partition count" in dead.headers["tideflow.reason"]


@pytest.mark.parametrize("value", [b"\x00not avro", b"\xc3\x01" + b"\x01" * 8 + b"body"])
def test_an_undecodable_record_is_dead_lettered(value: bytes) -> None:
    h = Harness()

    h.handle(start(WF, instance_id="i-x"), value=value)

    [dead] = h.producer.sent
    assert (dead.topic, dead.value) == (TOPICS.dead_letter, value)
    assert h.events() == []
