"""Poison on the real broker: a command whose decision raises, and a tick that raises, are
recorded (dead-letter record, and a CommandRejected INTERNAL_ERROR for a command) while the
master, and after it a successor on the same partition, go on deciding everything else.

The fault is injected: masters run in this process, built by the composition root with a
`decide` (or `tick`) that raises for one command (instance) and is the core's otherwise, so
the test does not depend on any bug the core still has.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import pytest

from infra import compose
from infra.prepare import prepare
from infra.settings import Settings
from schemas.catalog import COMMANDS, EVENTS
from schemas.serde import expect
from streams.core.commands import Command, StartWorkflow
from streams.core.decide import decide as core_decide
from streams.core.events import (
    CommandRejected,
    PartitionTakenOver,
    TaskDispatched,
    TaskFailedOver,
    WorkflowStarted,
)
from streams.core.instance import InstanceState
from streams.core.placement import Workers
from streams.core.rejections import Reason
from streams.core.tick import tick as core_tick
from streams.core.worker_messages import WorkerHeartbeat
from streams.kafka.partitioning import partition_for
from streams.kafka.producer import Producer
from streams.kafka.reader import read_to_end
from streams.master.runtime import Master
from tests.integration.conftest import fresh_settings
from tests.integration.helpers import wait_until, workflow

pytestmark = pytest.mark.integration

PARTITION = 0
FLOW = workflow("poison", [{"code": "only", "type": "noop"}])


class RunningMaster:
    """A master built by `compose.master(settings, **parts)`, stepping in a thread until the
    block ends; then closed, leaving the group so its partitions move at once."""

    def __init__(self, settings: Settings, **parts: Any) -> None:
        self.master: Master = compose.master(settings, snapshots=None, **parts)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="master", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.master.step()
        except BaseException as exc:  # the test asserts it stayed None
            self.error = exc
            raise

    def alive(self) -> bool:
        return self._thread.is_alive() and self.error is None

    def __enter__(self) -> RunningMaster:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(30)
        self.master.close(leave_group=True)


def instance_ids(
    settings: Settings, prefix: str, count: int, partition: int = PARTITION
) -> list[str]:
    """`count` instance ids whose commands belong to `partition`."""
    out: list[str] = []
    n = 0
    while len(out) < count:
        candidate = f"{prefix}-{n}"
        if partition_for(candidate, settings.tideflow_partitions) == partition:
            out.append(candidate)
        n += 1
    return out


def start_command(instance_id: str, command_id: str | None = None) -> StartWorkflow:
    return StartWorkflow(
        command_id=command_id or f"start/{instance_id}",
        instance_id=instance_id,
        workflow=FLOW,
        at=datetime.now(UTC),
    )


def send(settings: Settings, *commands: Command) -> None:
    producer = Producer(settings.kafka)
    for c in commands:
        producer.send(settings.topics.commands, c.instance_id, c)
    producer.flush()


def raising_decide(poison: Iterable[str]) -> Callable[..., Any]:
    """The core's `decide`, except that it raises for the commands in `poison`, before any
    idempotency check, as a bug in a decider would."""
    ids = frozenset(poison)

    def decide(state: InstanceState, command: Command, now: datetime, workers: Workers) -> Any:
        if command.command_id in ids:
            raise RuntimeError(f"injected fault deciding {command.command_id}")
        return core_decide(state, command, now, workers)

    return decide


def events_log(settings: Settings) -> list[Any]:
    return [expect(m.value(), EVENTS) for m in read_to_end(settings.kafka, settings.topics.events)]


def started_ids(settings: Settings) -> set[str]:
    return {e.instance_id for e in events_log(settings) if isinstance(e, WorkflowStarted)}


def rejections(settings: Settings) -> list[CommandRejected]:
    return [e for e in events_log(settings) if isinstance(e, CommandRejected)]


def dead_letters(settings: Settings) -> list[tuple[bytes | None, dict[str, str]]]:
    out = []
    for m in read_to_end(settings.kafka, settings.topics.dead_letter):
        headers = {str(k): bytes(v or b"").decode() for k, v in m.headers() or []}
        out.append((m.value(), headers))
    return out


def test_a_command_whose_decision_raises_is_recorded_and_the_partition_keeps_being_served(
    deployment: Settings,
) -> None:
    settings = deployment
    poisoned, after, ghost, later, last = instance_ids(settings, "poison", 5)
    first_poison = start_command(poisoned, "poison-1")
    decide = raising_decide({"poison-1", "poison-2"})

    with RunningMaster(settings, decide=decide) as first:
        # the same record twice: what a redelivery after a crash before the commit looks like
        send(settings, first_poison, first_poison, start_command(after))
        wait_until(lambda: after in started_ids(settings), what="the command after the poison")
        wait_until(lambda: rejections(settings), what="the poison's rejection")
        assert first.alive()

    assert poisoned not in started_ids(settings)
    [rejected] = rejections(settings)  # one, though the command came twice
    assert (rejected.instance_id, rejected.command_id) == (poisoned, "poison-1")
    assert rejected.reason is Reason.INTERNAL_ERROR
    assert "RuntimeError: injected fault deciding poison-1" in rejected.message
    [(value, headers)] = dead_letters(settings)
    assert value == _encoded_once(settings, "poison-1")
    assert headers["tideflow.exception"] == "RuntimeError"
    assert headers["tideflow.error"] == "injected fault deciding poison-1"
    assert headers["tideflow.instance_id"] == poisoned
    assert headers["tideflow.topic"] == settings.topics.commands
    assert headers["tideflow.partition"] == str(PARTITION)
    assert headers["tideflow.offset"] == "0"
    assert "deciding StartWorkflow raised RuntimeError" in headers["tideflow.reason"]

    with RunningMaster(settings, decide=decide) as successor:
        # the first poison again (its successor folded the rejection), a new one, then more
        send(settings, first_poison, start_command(ghost, "poison-2"), start_command(later))
        wait_until(lambda: later in started_ids(settings), what="the successor's next command")
        wait_until(lambda: len(rejections(settings)) == 2, what="the second poison's rejection")
        send(settings, start_command(last))
        wait_until(lambda: last in started_ids(settings), what="a command after both poisons")
        assert successor.alive()

    log = events_log(settings)
    takeovers = [e for e in log if isinstance(e, PartitionTakenOver) and e.partition == PARTITION]
    assert [t.epoch for t in takeovers] == [1, 2]
    assert takeovers[1].owner == successor.master.owner_id != first.master.owner_id
    assert [(r.command_id, r.epoch) for r in rejections(settings)] == [
        ("poison-1", 1),
        ("poison-2", 2),
    ]
    assert sorted(h["tideflow.instance_id"] for _, h in dead_letters(settings)) == sorted(
        [poisoned, ghost]
    )
    assert {poisoned, ghost}.isdisjoint(started_ids(settings))


def _encoded_once(settings: Settings, command_id: str) -> bytes:
    """The bytes of the first commands record carrying `command_id`."""
    for m in read_to_end(settings.kafka, settings.topics.commands, [PARTITION]):
        value = m.value()
        assert value is not None
        if expect(value, COMMANDS).command_id == command_id:
            return value
    raise AssertionError(f"{command_id} not on the commands topic")


@pytest.fixture
def impatient(stack: Settings) -> Settings:
    """A deployment whose dispatches time out after 1 s, and whose workers stay live 60 s
    after a heartbeat: the one heartbeat the test writes is a worker nobody runs."""
    settings = fresh_settings(
        stack, tideflow_dispatch_ack_timeout_s=1.0, tideflow_worker_timeout_s=60.0
    )
    prepare(settings)
    return settings


def heartbeat(settings: Settings, worker_id: str) -> None:
    now = datetime.now(UTC)
    record = WorkerHeartbeat(
        worker_id=worker_id, worker_group="default", host="nowhere", pid=1, slots_total=8,
        slots_free=8, cpu_percent=0.0, memory_percent=0.0, load_average=0.0, version="test",
        started_at=now - timedelta(minutes=1), at=now,
    )  # fmt: skip
    producer = Producer(settings.kafka)
    producer.send(settings.topics.heartbeats, worker_id, record)
    producer.flush()


def test_a_tick_that_raises_is_recorded_held_back_and_other_instances_keep_ticking(
    impatient: Settings,
) -> None:
    settings = impatient
    heartbeat(settings, "silent-worker")  # takes dispatches, never acknowledges them
    stuck, healthy = instance_ids(settings, "tick", 2)
    calls: Counter[str] = Counter()

    def tick(state: InstanceState, now: datetime, workers: Workers, ack: Any) -> Any:
        calls[state.instance_id] += 1
        if state.instance_id == stuck:
            raise ValueError(f"injected fault ticking {stuck}")
        return core_tick(state, now, workers, ack)

    with RunningMaster(settings, tick=tick) as running:
        send(settings, start_command(stuck), start_command(healthy))
        wait_until(lambda: calls[stuck] >= 1, what="the first tick of the stuck instance")
        # the healthy one's unacknowledged dispatch is failed over, again and again
        wait_until(
            lambda: (
                sum(
                    isinstance(e, TaskFailedOver) and e.instance_id == healthy
                    for e in events_log(settings)
                )
                >= 3
            ),
            timeout_s=30,
            what="three failovers of the healthy instance",
        )
        stuck_ticks = calls[stuck]
        assert running.alive()

    # Within the ~3 s of three failovers a tick every step would be hundreds of calls; the
    # back-off allows the first one and retries after 1 s and 2 s more.
    assert 1 <= stuck_ticks <= 4
    log = events_log(settings)
    assert [e for e in log if isinstance(e, TaskDispatched) and e.instance_id == stuck]
    assert not [e for e in log if isinstance(e, TaskFailedOver) and e.instance_id == stuck]
    [(value, headers)] = dead_letters(settings)  # the first failure of the run only
    assert value is None
    assert headers["tideflow.source"] == "tick"
    assert headers["tideflow.instance_id"] == stuck
    assert headers["tideflow.exception"] == "ValueError"
    assert headers["tideflow.topic"] == settings.topics.events
    assert headers["tideflow.partition"] == str(PARTITION)
