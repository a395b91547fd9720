"""The worker on the real broker: dispatch records in, acks, heartbeats and dead letters out."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Message
from confluent_kafka import Producer as RawProducer

from infra.settings import Settings
from infra.topics import provision
from streams.core.commands import ReportTaskFinished, ReportTaskStarted
from streams.core.enums import Outcome, TaskType
from streams.core.worker_messages import KillTask, TaskAssignment, WorkerHeartbeat
from streams.kafka.partitioning import partition_for
from streams.kafka.producer import Producer
from streams.kafka.reader import read_to_end
from streams.worker.outbox import Outbox
from tests.integration.worker_harness import Running, Tail

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(stack: Settings) -> Settings:
    tag = uuid.uuid4().hex[:10]
    fresh = stack.model_copy(
        update={
            "tideflow_topic_prefix": f"w{tag}.",
            "tideflow_worker_id": f"worker-{tag}",
            "tideflow_worker_slots": 2,
            "tideflow_heartbeat_interval_s": 0.5,
        }
    )
    provision(fresh)
    return fresh


def assign(settings: Settings, command: str, attempt: int = 1, **extra: Any) -> TaskAssignment:
    fields: dict[str, Any] = {
        "instance_id": f"i-{uuid.uuid4().hex[:8]}",
        "task_code": "t",
        "attempt": attempt,
        "worker_id": settings.tideflow_worker_id,
        "type": TaskType.SHELL,
        "command": command,
        "at": datetime.now(UTC),
        **extra,
    }
    return TaskAssignment(**fields)


def dispatch(settings: Settings, *records: TaskAssignment | KillTask) -> None:
    producer = Producer(settings.kafka)
    for record in records:
        producer.send(settings.topics.dispatch, record.worker_id, record)
    producer.flush()


def kill_of(a: TaskAssignment) -> KillTask:
    fields = {k: getattr(a, k) for k in ("instance_id", "task_code", "attempt", "worker_id")}
    return KillTask(**fields, at=datetime.now(UTC))


def acks(seen: list[Any], instance_id: str) -> list[Any]:
    return [r for key, r in seen if key == instance_id and r.instance_id == instance_id]


def finished(instance_id: str) -> Callable[[list[Any]], bool]:
    return lambda seen: any(isinstance(r, ReportTaskFinished) for r in acks(seen, instance_id))


def test_assignments_are_acked_started_then_finished_with_their_outcome(
    settings: Settings, worker: Running, commands: Tail
) -> None:
    failing = assign(settings, "echo $TIDEFLOW_TASK_CODE; exit 3")
    noop = assign(settings, "", type=TaskType.NOOP)
    dispatch(settings, failing, noop)

    seen = commands.until(
        lambda s: finished(failing.instance_id)(s) and finished(noop.instance_id)(s)
    )

    started, done = acks(seen, failing.instance_id)
    assert isinstance(started, ReportTaskStarted)
    assert started.command_id == f"{failing.instance_id}/t/1/started"
    assert isinstance(done, ReportTaskFinished)
    assert (done.outcome, done.exit_code, done.output) == (Outcome.FAILURE, 3, "t\n")
    assert done.worker_id == settings.tideflow_worker_id
    assert [type(r) for r in acks(seen, noop.instance_id)] == [
        ReportTaskStarted,
        ReportTaskFinished,
    ]
    assert acks(seen, noop.instance_id)[1].outcome is Outcome.SUCCESS


def test_garbage_on_dispatch_is_dead_lettered_and_the_next_assignment_still_runs(
    settings: Settings, worker: Running, commands: Tail
) -> None:
    key = settings.tideflow_worker_id
    assert key is not None
    mine = partition_for(key, settings.tideflow_partitions)
    # Another worker's id on the same dispatch partition, so the record reaches this worker.
    neighbour = next(
        n
        for i in range(1000)
        if partition_for(n := f"someone-else-{i}", settings.tideflow_partitions) == mine
    )
    producer = Producer(settings.kafka)
    producer.send_raw(settings.topics.dispatch, key.encode(), b"\x00not avro at all")
    producer.send_raw(settings.topics.dispatch, neighbour.encode(), b"\x00not ours to judge")
    producer.flush()
    after = assign(settings, "true")  # behind both on the same partition
    dispatch(settings, after)

    # Having run `after`, the worker has read past both records; its dead letter went out
    # before `after`'s acks (one FIFO outbox), so it is on the topic by now.
    assert acks(commands.until(finished(after.instance_id)), after.instance_id)[-1].outcome is (
        Outcome.SUCCESS
    )
    assert worker.worker.partition == mine
    dead = list(read_to_end(settings.kafka, settings.topics.dead_letter))
    assert len(dead) == 1  # the record keyed for another worker is that worker's to judge
    raw: list[tuple[str, bytes]] = dead[0].headers() or []  # type: ignore[assignment]
    headers = {k: v.decode() for k, v in raw}
    assert "marker" in headers["tideflow.reason"]
    assert headers["tideflow.topic"] == settings.topics.dispatch


def test_heartbeat_is_published_at_start_and_offers_no_slots_after_stop(
    settings: Settings,
) -> None:
    running = Running(settings)
    beats = Tail(settings, settings.topics.heartbeats)
    first: WorkerHeartbeat = beats.until(lambda s: len(s) >= 1, timeout_s=5)[0][1]
    assert first.worker_id == settings.tideflow_worker_id
    assert (first.slots_total, first.slots_free, first.worker_group) == (2, 2, "default")
    assert first.pid > 0 and first.version

    running.halt()

    last: WorkerHeartbeat = beats.until(lambda s: s[-1][1].slots_total == 0)[-1][1]
    assert (last.slots_free, last.started_at) == (0, first.started_at)
    beats.close()


def test_heartbeat_counts_attempts_queued_beyond_the_slots_as_negative_free_slots(
    settings: Settings, worker: Running, commands: Tail
) -> None:
    attempts = [assign(settings, "sleep 30") for _ in range(3)]  # 2 slots: one waits
    beats = Tail(settings, settings.topics.heartbeats)
    dispatch(settings, *attempts)

    beats.until(lambda s: any(hb.slots_free == -1 for _, hb in s))

    beats.close()
    dispatch(settings, *[kill_of(a) for a in attempts])
    commands.until(lambda s: all(finished(a.instance_id)(s) for a in attempts))


def test_kill_stops_a_running_attempt_and_cancels_a_queued_one(
    settings: Settings, worker: Running, commands: Tail
) -> None:
    running = [assign(settings, "sleep 30") for _ in range(2)]  # fill both slots
    queued = assign(settings, "sleep 30")
    dispatch(settings, *running, queued)
    commands.until(lambda s: all(acks(s, a.instance_id) for a in running))

    dispatch(settings, kill_of(queued), *[kill_of(a) for a in running])

    seen = commands.until(lambda s: all(finished(a.instance_id)(s) for a in [*running, queued]))
    assert [type(r) for r in acks(seen, queued.instance_id)] == [ReportTaskFinished]
    for a in [*running, queued]:
        assert acks(seen, a.instance_id)[-1].outcome is Outcome.KILLED


def test_duplicate_assignment_runs_once(
    settings: Settings, worker: Running, commands: Tail
) -> None:
    a = assign(settings, "true")
    sentinel = assign(settings, "true")
    dispatch(settings, a, a, sentinel)

    seen = commands.until(
        lambda s: finished(a.instance_id)(s) and finished(sentinel.instance_id)(s)
    )

    assert [type(r) for r in acks(seen, a.instance_id)] == [ReportTaskStarted, ReportTaskFinished]


def test_stop_kills_attempts_past_the_grace_and_reports_them_failed(
    settings: Settings, commands: Tail
) -> None:
    running = Running(settings, grace_s=0.3)
    a = assign(settings, "sleep 30")
    dispatch(settings, a)
    commands.until(lambda s: bool(acks(s, a.instance_id)))

    running.halt()

    done = acks(commands.until(finished(a.instance_id)), a.instance_id)[-1]
    assert (done.outcome, done.exit_code) == (Outcome.FAILURE, 143)
    assert "worker" in done.output and "stopped" in done.output


def test_restart_with_the_same_id_resumes_after_the_committed_offset_and_skips_older_assignments(
    settings: Settings, commands: Tail
) -> None:
    running = Running(settings)
    first = assign(settings, "true")
    dispatch(settings, first)
    commands.until(finished(first.instance_id))
    running.halt()

    # made for the process that stopped: the master fails it over when the new one shows up
    meant_for_the_old_process = assign(settings, "true")
    running = Running(settings)
    second = assign(settings, "true")
    dispatch(settings, meant_for_the_old_process)
    dispatch(settings, second)
    seen = commands.until(finished(second.instance_id))
    running.halt()

    assert len(acks(seen, first.instance_id)) == 2  # not run again
    assert acks(seen, meant_for_the_old_process.instance_id) == []


def test_partition_for_agrees_with_librdkafka_murmur2_random(settings: Settings) -> None:
    topic = settings.topics.dispatch
    producer = RawProducer(settings.kafka.producer_config())
    landed: dict[str, int | None] = {}
    keys = [f"host-{i}-{uuid.uuid4().hex[: i % 13]}" for i in range(200)]
    for key in keys:
        producer.produce(
            topic, key=key.encode(), value=b"", on_delivery=lambda _e, m: landed.update(
                {bytes(m.key() or b"").decode(): m.partition()}
            )
        )  # fmt: skip
    assert producer.flush(10) == 0
    partitions = settings.tideflow_partitions
    assert {k: partition_for(k, partitions) for k in keys} == landed


class GatedProducer(Producer):
    """A real producer that counts its flushes; a flush waits while `gate` is clear."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.kafka, **{"linger.ms": 0})
        self.flushes = 0
        self.gate = threading.Event()
        self.gate.set()
        self.flushing = threading.Event()

    def flush(self, timeout: float = 30.0) -> None:
        self.flushes += 1
        self.flushing.set()
        self.gate.wait()
        super().flush(timeout)


def test_outbox_delivers_sends_of_several_threads_in_order_per_key_with_few_flushes(
    settings: Settings,
) -> None:
    topic = settings.topics.commands
    producer = GatedProducer(settings)
    outbox = Outbox(producer)
    producer.gate.clear()  # hold the first flush: everything else queues behind it
    outbox.send_raw(topic, b"first", b"0")
    assert producer.flushing.wait(10)

    def sender(key: bytes) -> None:
        for i in range(500):
            outbox.send_raw(topic, key, str(i).encode())

    keys = [f"k{n}".encode() for n in range(4)]
    threads = [threading.Thread(target=sender, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    producer.gate.set()
    assert outbox.wait(30)
    outbox.close()

    tail = Tail(settings, topic, raw=True)
    seen: list[Message] = tail.until(lambda s: len(s) >= 1 + 4 * 500)
    tail.close()
    for key in keys:
        assert [m.value() for m in seen if m.key() == key] == [str(i).encode() for i in range(500)]
    assert producer.flushes == 2  # 2,001 records: the held flush, then all the rest


def test_outbox_close_delivers_everything_enqueued(settings: Settings) -> None:
    topic = settings.topics.commands
    outbox = Outbox(Producer(settings.kafka))
    for i in range(200):
        outbox.send_raw(topic, b"k", str(i).encode())

    outbox.close()

    assert outbox.pending() == 0
    tail = Tail(settings, topic, raw=True)
    seen: list[Message] = tail.until(lambda s: len(s) >= 200)
    tail.close()
    assert [m.value() for m in seen] == [str(i).encode() for i in range(200)]
