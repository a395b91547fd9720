"""The broker's own ceiling, with tideflow's client settings (`Settings.producer_config`,
`Settings.kafka.consumer_config("master", ...)`) and no tideflow code in the path.

* round trip: produce + flush on `ping`; an echo thread consumes it and produces + flushes
  it on `pong`; the main thread consumes that. Two hops, as a task step is (ack -> master,
  dispatch -> worker). Timed one after the other.
* pipe: one thread produces N records of 200 bytes as fast as it can, the main thread
  consumes them in batches: records/s from the first produce to the last record read.
* processor: the master's shape on those N records: consume a batch, produce 2 records per
  record read, flush, commit synchronously; input records/s.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from infra.bench.stats import summary
from infra.settings import Settings

PAYLOAD = 200  # bytes: the size of a typical tideflow event or command
WARMUP = 20


def ceiling_topics(settings: Settings) -> dict[str, str]:
    p = settings.tideflow_topic_prefix
    return {k: f"{p}bench-{k}" for k in ("ping", "pong", "pipe", "out")}


def create_topics(settings: Settings, names: list[str], timeout_s: float = 30.0) -> None:
    admin = AdminClient(settings.kafka.client_config())
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=1, replication_factor=-1) for n in names],
        request_timeout=timeout_s,
    )
    for future in futures.values():
        try:
            future.result(timeout=timeout_s + 5)
        except KafkaException as exc:
            if "already exists" not in str(exc).lower():
                raise


def delete_topics(settings: Settings, names: list[str], timeout_s: float = 30.0) -> None:
    admin = AdminClient(settings.kafka.client_config())
    for future in admin.delete_topics(names, request_timeout=timeout_s).values():
        with contextlib.suppress(KafkaException):  # best effort: a missing topic is fine
            future.result(timeout=timeout_s + 5)


def _consumer(settings: Settings, topic: str, **extra: Any) -> Consumer:
    consumer = Consumer(
        settings.kafka.consumer_config("master", f"bench-ceiling-{uuid.uuid4().hex[:8]}", **extra)
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    return consumer


def _produce(producer: Producer, topic: str, value: bytes) -> None:
    while True:
        try:
            producer.produce(topic, value)
            return
        except BufferError:
            producer.poll(0.01)


def round_trips(settings: Settings, topics: dict[str, str], n: int) -> list[float]:
    """`n` two-hop round trips (ms), after a short warm-up."""
    stop = threading.Event()
    ready = threading.Event()

    def echo() -> None:
        consumer = _consumer(settings, topics["ping"])
        producer = Producer(settings.kafka.producer_config())
        ready.set()
        try:
            while not stop.is_set():
                msg = consumer.poll(0.05)
                if msg is None or msg.error():
                    continue
                _produce(producer, topics["pong"], msg.value() or b"")
                producer.flush()
        finally:
            consumer.close()

    thread = threading.Thread(target=echo, name="bench-echo", daemon=True)
    thread.start()
    ready.wait(30)
    producer = Producer(settings.kafka.producer_config())
    consumer = _consumer(settings, topics["pong"])
    samples: list[float] = []
    try:
        for i in range(WARMUP + n):
            value = f"{i:010d}".encode().ljust(PAYLOAD, b".")
            started = time.perf_counter()
            _produce(producer, topics["ping"], value)
            producer.flush()
            deadline = started + 10.0
            while True:
                msg = consumer.poll(0.05)
                if msg is not None and not msg.error() and msg.value() == value:
                    break
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"round trip {i} not back within 10 s")
            if i >= WARMUP:
                samples.append((time.perf_counter() - started) * 1000)
    finally:
        stop.set()
        thread.join(5)
        consumer.close()
    return samples


def pipe(settings: Settings, topic: str, n: int) -> float:
    """Records/s of a producer thread and a batch consumer running at once."""
    value = b"x" * PAYLOAD
    started = time.perf_counter()

    def produce_all() -> None:
        producer = Producer(settings.kafka.producer_config())
        for _ in range(n):
            _produce(producer, topic, value)
            producer.poll(0)
        producer.flush()

    thread = threading.Thread(target=produce_all, name="bench-pipe", daemon=True)
    consumer = _consumer(settings, topic)
    thread.start()
    got = 0
    deadline = started + 120.0
    try:
        while got < n:
            got += sum(1 for m in consumer.consume(1000, 0.2) if not m.error())
            if time.perf_counter() > deadline:
                raise TimeoutError(f"pipe: {got} of {n} records read in 120 s")
        elapsed = time.perf_counter() - started
    finally:
        consumer.close()
        thread.join(30)
    return n / elapsed


def processor(settings: Settings, source: str, sink: str, n: int) -> float:
    """Input records/s of consume -> produce 2 each -> flush -> commit, per batch."""
    consumer = _consumer(settings, source)
    producer = Producer(settings.kafka.producer_config())
    got = 0
    started = time.perf_counter()
    deadline = started + 120.0
    try:
        while got < n:
            first = consumer.poll(0.2)
            if first is None:
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"processor: {got} of {n} records read in 120 s")
                continue
            batch = [first, *consumer.consume(499, 0)]
            for msg in batch:
                if msg.error():
                    continue
                value = msg.value() or b""
                _produce(producer, sink, value)
                _produce(producer, sink, value)
                got += 1
            producer.flush()
            consumer.commit(asynchronous=False)
        return n / (time.perf_counter() - started)
    finally:
        consumer.close()


def measure_ceiling(
    settings: Settings,
    round_trip_count: int,
    records: int,
    note: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    topics = ceiling_topics(settings)
    create_topics(settings, list(topics.values()))
    note("round trips")
    rtt = round_trips(settings, topics, round_trip_count)
    note("pipe (produce + consume)")
    pipe_rate = pipe(settings, topics["pipe"], records)
    note("processor (consume, produce 2, commit)")
    processor_rate = processor(settings, topics["pipe"], topics["out"], records)
    return {
        "round_trip_ms": summary(rtt, 3),
        "pipe_records_per_s": round(pipe_rate),
        "processor_records_per_s": round(processor_rate),
        "payload_bytes": PAYLOAD,
        "records": records,
    }
