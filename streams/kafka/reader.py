"""Reading partitions from a start offset to their current end, without a consumer group.

Masters rebuild a partition's state this way; tests and the audit read the log with it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from streams.kafka.batching import consume_batch
from streams.kafka.config import KafkaConfig
from streams.kafka.errors import BrokerUnavailable


def read_to_end(
    kafka: KafkaConfig,
    topic: str,
    partitions: list[int] | None = None,
    start: dict[int, int] | None = None,
    timeout_s: float = 30.0,
) -> Iterator[Message]:
    """Every record of `partitions` (default: all) from `start` (default: the beginning) to
    their end, in offset order per partition.

    `timeout_s` bounds each wait for the broker, not the whole read: a partition of any size
    is read to its end as long as records keep coming, and the time the caller spends on
    the records it is given does not count; `BrokerUnavailable` when no record came for
    `timeout_s`.

    The end is the high watermark, refreshed from each fetch response: Tansu's ListOffsets
    answer can lag after a multi-record produce (it reports the first record's offset + 1),
    while the watermark carried by fetches is right."""
    consumer = Consumer(
        kafka.consumer_config("admin", f"reader-{uuid.uuid4()}", **{"enable.partition.eof": False})
    )
    try:
        if partitions is None:
            meta = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
            partitions = sorted(meta.partitions)
        ends: dict[int, int] = {}
        assignment = []
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
            first = (start or {}).get(p, OFFSET_BEGINNING)
            if high > max(low, first if first >= 0 else low):
                ends[p] = high
                assignment.append(TopicPartition(topic, p, first))
        if not assignment:
            return
        consumer.assign(assignment)
        deadline = time.monotonic() + timeout_s
        while ends:
            batch = consume_batch(consumer, 1000, 0.5)
            if not batch:
                if time.monotonic() > deadline:
                    raise BrokerUnavailable(
                        f"{topic}: partitions {sorted(ends)} not read to the end "
                        f"(no record for {timeout_s:g} s)"
                    )
                continue
            for msg in batch:
                part, offset = msg.partition(), msg.offset()
                if msg.error() or part is None or offset is None or part not in ends:
                    continue
                fetched_end = consumer.get_watermark_offsets(
                    TopicPartition(topic, part), cached=True
                )[1]
                ends[part] = max(ends[part], fetched_end)
                yield msg
                if offset >= ends[part] - 1:
                    del ends[part]
            deadline = time.monotonic() + timeout_s  # progress: the wait starts again
    finally:
        consumer.close()


def partition_count(kafka: KafkaConfig, topic: str, timeout_s: float = 30.0) -> int:
    """How many partitions `topic` has (its records' keys map to them by `partition_for`)."""
    consumer = Consumer(kafka.consumer_config("admin", f"reader-{uuid.uuid4()}"))
    try:
        found = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise BrokerUnavailable(f"topic {topic} has no partitions (does it exist?)")
        return len(found.partitions)
    finally:
        consumer.close()


def read_until_quiet(kafka: KafkaConfig, topic: str, quiet_s: float = 1.0) -> Iterator[Message]:
    """Every record of every partition of `topic`, read until no record came for `quiet_s`
    after each partition reached its high watermark.

    Slower than `read_to_end` (it ends only after a quiet spell), for readers that must not
    miss a record: on Tansu 0.6 a record can share its offset with the one before it (after a
    multi-record produce the broker hands the next batch an offset it already used, the same
    quirk that makes its ListOffsets answer lag), and a reader that stops at the watermark
    stops before the second one; seen on the commands topic, where workers' acks arrive in
    pairs."""
    consumer = Consumer(
        kafka.consumer_config("admin", f"reader-{uuid.uuid4()}", **{"enable.partition.eof": False})
    )
    try:
        meta = consumer.list_topics(topic, timeout=30).topics[topic]
        behind = {}  # partition -> its high watermark, until a record at or past it came
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            if high > low:
                behind[p] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
        last = time.monotonic()
        while behind or time.monotonic() - last < quiet_s:
            for msg in consume_batch(consumer, 1000, 0.2):
                if msg.error() is None:
                    last = time.monotonic()
                    if (msg.offset() or 0) >= behind.get(msg.partition() or 0, 0) - 1:
                        behind.pop(msg.partition() or 0, None)
                    yield msg
            if behind and time.monotonic() - last > 30:
                raise BrokerUnavailable(f"{topic}: partitions {sorted(behind)} not read")
    finally:
        consumer.close()
