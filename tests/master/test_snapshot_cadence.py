"""When a master saves a partition's snapshot (streams/master/snapshot_cadence.py): after N
events appended and flushed, or once the interval passed with at least one; never while
another writer's records are interleaved with the master's own since its takeover. A fake
store and a hand-written fake producer (the delivery bookkeeping a real one keeps)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from streams.kafka.config import KafkaConfig
from streams.master.config import MasterConfig
from streams.master.partitions import PartitionState
from streams.master.snapshot_cadence import SnapshotCadence
from streams.master.snapshots import PartitionSnapshot
from tests.core.builders import IID, chain, given, started

NOW = datetime(2024, 6, 1, tzinfo=UTC)
KAFKA = KafkaConfig(bootstrap_servers="unused:9092")
EVENTS = KAFKA.topics.events
P = 1


class FakeStore:
    def __init__(self) -> None:
        self.saved: list[PartitionSnapshot] = []
        self.closed = False

    def load(self, partition: int) -> Any:
        return None

    def save(self, snapshot: Any) -> None:
        self.saved.append(snapshot)

    def close(self) -> None:
        self.closed = True


class FakeProducer:
    """The delivery reports of `streams.kafka.producer.Producer`: records acknowledged per
    partition, and the offset after the last one."""

    def __init__(self) -> None:
        self.delivered: dict[tuple[str, int], int] = {}
        self.next_offsets: dict[tuple[str, int], int] = {}

    def deliver(self, count: int, partition: int = P) -> None:
        """Our `count` records are acknowledged, right after whatever the log holds."""
        key = (EVENTS, partition)
        self.delivered[key] = self.delivered.get(key, 0) + count
        self.next_offsets[key] = self.next_offsets.get(key, 0) + count

    def someone_else_wrote(self, count: int, partition: int = P) -> None:
        """Another writer's records land in the log: our next offset moves past them."""
        key = (EVENTS, partition)
        self.next_offsets[key] = self.next_offsets.get(key, 0) + count


def cadence(store: FakeStore | None, every: int = 3, interval_s: float = 3600.0) -> SnapshotCadence:
    config = MasterConfig(kafka=KAFKA, snapshot_every_events=every, snapshot_interval_s=interval_s)
    return SnapshotCadence(store, config)


def taken_over(c: SnapshotCadence, producer: FakeProducer, end: int = 10) -> PartitionState:
    """The master rebuilt the partition up to `end` and appends its takeover right after."""
    producer.next_offsets[(EVENTS, P)] = end
    c.taken_over(P, end, producer, replayed=0)
    producer.deliver(1)  # the PartitionTakenOver record
    part = PartitionState(P, epoch=4, owner="me")
    part.instances[IID] = given(started(chain("a")))
    return part


def append(c: SnapshotCadence, producer: FakeProducer, n: int) -> None:
    for _ in range(n):
        c.appended(P)
    producer.deliver(n)


def test_a_snapshot_is_saved_once_n_events_were_appended_and_flushed() -> None:
    store, producer = FakeStore(), FakeProducer()
    c = cadence(store, every=3)
    part = taken_over(c, producer, end=10)

    append(c, producer, 2)
    c.save_due({P: part}, producer, NOW)
    assert store.saved == []

    append(c, producer, 1)
    c.save_due({P: part}, producer, NOW)

    assert [(s.partition, s.events_offset, s.epoch, s.owner) for s in store.saved] == [
        (P, 14, 4, "me")  # 10 rebuilt + our takeover + 3 events
    ]
    assert store.saved[0].instances == part.instances
    assert store.saved[0].written_at == NOW


def test_the_count_starts_again_after_a_save() -> None:
    store, producer = FakeStore(), FakeProducer()
    c = cadence(store, every=3)
    part = taken_over(c, producer)
    append(c, producer, 3)
    c.save_due({P: part}, producer, NOW)

    c.save_due({P: part}, producer, NOW)
    append(c, producer, 2)
    c.save_due({P: part}, producer, NOW)
    assert len(store.saved) == 1

    append(c, producer, 1)
    c.save_due({P: part}, producer, NOW)
    assert [s.events_offset for s in store.saved] == [14, 17]


def test_no_snapshot_while_another_writers_records_are_interleaved_with_ours() -> None:
    store, producer = FakeStore(), FakeProducer()
    c = cadence(store, every=3)
    part = taken_over(c, producer)
    append(c, producer, 1)
    producer.someone_else_wrote(1)  # e.g. our successor, while we were paused
    append(c, producer, 5)

    c.save_due({P: part}, producer, NOW)

    assert store.saved == []  # our state does not cover the other writer's record


def test_records_of_ours_on_other_partitions_do_not_count_as_interleaved() -> None:
    store, producer = FakeStore(), FakeProducer()
    c = cadence(store, every=3)
    part = taken_over(c, producer)
    producer.deliver(7, partition=P + 1)
    append(c, producer, 3)

    c.save_due({P: part}, producer, NOW)

    assert [s.events_offset for s in store.saved] == [14]


def test_after_the_interval_one_new_event_is_enough() -> None:
    store, producer = FakeStore(), FakeProducer()
    c = cadence(store, every=1000, interval_s=0.0)
    part = taken_over(c, producer)

    c.save_due({P: part}, producer, NOW)
    assert store.saved == []  # nothing new since the takeover

    append(c, producer, 1)
    c.save_due({P: part}, producer, NOW)
    assert [s.events_offset for s in store.saved] == [12]


def test_events_replayed_beyond_the_loaded_snapshot_count_towards_the_next_one() -> None:
    store, producer = FakeStore(), FakeProducer()
    c = cadence(store, every=3)
    producer.next_offsets[(EVENTS, P)] = 10
    c.taken_over(P, 10, producer, replayed=3)
    producer.deliver(1)
    part = PartitionState(P, epoch=4, owner="me")

    c.save_due({P: part}, producer, NOW)

    assert [s.events_offset for s in store.saved] == [11]


def test_without_a_store_nothing_is_saved_or_loaded() -> None:
    producer = FakeProducer()
    c = cadence(None, every=1)
    part = taken_over(c, producer)
    append(c, producer, 5)

    c.save_due({P: part}, producer, NOW)

    assert c.load(P) is None
    c.close()


def test_close_closes_the_store() -> None:
    store = FakeStore()
    cadence(store).close()
    assert store.closed
