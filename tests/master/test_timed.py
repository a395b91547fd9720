"""Time-driven decisions that raise (streams/master/timed.py): recorded once per run of
failures, the instance held back (no tick on every step, no slot offered), the others
ticked as usual, and the instance released by its first tick that succeeds."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from schemas.serde import decode
from streams.core.events import TaskDispatched
from streams.core.instance import InstanceState
from streams.core.placement import Workers, has_free_slot
from streams.core.tick import tick as core_tick
from streams.master.appender import Appender
from streams.master.partitions import PartitionState
from streams.master.slot_count import SlotCount
from streams.master.slot_waits import SlotWaits
from streams.master.snapshot_cadence import SnapshotCadence
from streams.master.timed import TimeDriven
from tests.core.builders import NOW, W1, chain, start, through
from tests.master.test_intake import CONFIG, TOPICS, FakeProducer

ACK = timedelta(seconds=10)


class FakeRegistry:
    """The parts of `WorkerRegistry` the timed decisions ask: live workers, nobody lost."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.slots = SlotCount()

    def live(self, now: datetime) -> Workers:
        return self.workers

    def has_free_slot(self, group: str, now: datetime) -> bool:
        return has_free_slot(self.workers, group)

    def lost(self, worker_id: str, now: datetime) -> None:
        return None


class Harness:
    def __init__(self, stuck: str) -> None:
        self.stuck = stuck
        self.failing = True
        self.calls: list[str] = []
        self.producer = FakeProducer()
        self.part = PartitionState(0, epoch=1, ack_timeout=ACK)
        self.slot_waits = SlotWaits()
        appender = Appender(
            self.producer,  # type: ignore[arg-type]
            TOPICS,
            SlotCount(),
            self.slot_waits,
            SnapshotCadence(None, CONFIG),
        )
        self.timed = TimeDriven(
            parts={0: self.part},
            registry=FakeRegistry(W1),  # type: ignore[arg-type]
            appender=appender,
            slot_waits=self.slot_waits,
            tick=self.tick,
            ack_timeout=ACK,
            producer=self.producer,  # type: ignore[arg-type]
            topics=TOPICS,
        )
        for iid in (stuck, "healthy"):  # each with an attempt dispatched at NOW, never acked
            self.part.instances[iid] = through(
                InstanceState(instance_id=iid), start(chain("a"), f"start-{iid}", iid)
            )
        self.timed.arm(self.part, NOW)

    def tick(self, state: InstanceState, now: datetime, workers: Workers, ack: Any) -> Any:
        self.calls.append(state.instance_id)
        if state.instance_id == self.stuck and self.failing:
            raise LookupError("injected")
        return core_tick(state, now, workers, ack)

    def dead(self) -> list[Any]:
        return self.producer.on(TOPICS.dead_letter)


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def test_a_tick_that_raises_is_recorded_once_and_the_instance_held_back() -> None:
    h = Harness("stuck")

    h.timed.tick_due(at(10))  # both ack deadlines come

    assert sorted(h.calls) == ["healthy", "stuck"]
    [dead] = h.dead()
    assert dead.key == b"stuck" and dead.value is None
    assert dead.headers["tideflow.source"] == "tick"
    assert dead.headers["tideflow.exception"] == "LookupError"
    assert dead.headers["tideflow.partition"] == "0"
    assert h.part.get("healthy").tasks["a"].attempt == 2  # failed over, re-dispatched

    for step in range(1, 10):  # steps within the first second: the stuck one waits
        h.timed.tick_due(at(10 + step / 10))
        h.timed.place(at(10 + step / 10))
    assert h.calls.count("stuck") == 1

    h.timed.tick_due(at(11))  # its retry: fails again, recorded in the log only
    assert h.calls.count("stuck") == 2
    assert len(h.dead()) == 1


def test_the_first_tick_that_succeeds_releases_the_instance() -> None:
    h = Harness("stuck")
    h.timed.tick_due(at(10))
    h.failing = False

    h.timed.tick_due(at(11))

    assert h.part.get("stuck").tasks["a"].attempt == 2
    assert len(h.timed.backoff) == 0
    dispatched = [s for s in h.producer.on(TOPICS.events) if s.key == b"stuck"]
    assert dispatched  # its failover appended at last
    assert any(isinstance(decode(s.value), TaskDispatched) for s in dispatched)
