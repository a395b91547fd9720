"""Reading a partition to its end: the deadline is per wait for the broker, so a large
partition, or a slow caller, is read to the end."""

from __future__ import annotations

import time

import pytest

from infra.settings import Settings
from streams.kafka.producer import Producer
from streams.kafka.reader import read_to_end

pytestmark = pytest.mark.integration

RECORDS = 2_500  # three fetch batches of at most 1,000


def fill(settings: Settings) -> str:
    topic = settings.topics.dead_letter
    producer = Producer(settings.kafka)
    for n in range(RECORDS):
        producer.send_raw(topic, b"k", str(n).encode(), partition=0)
    producer.flush()
    return topic


def test_a_read_longer_than_its_timeout_ends_when_records_keep_coming(
    deployment: Settings,
) -> None:
    topic = fill(deployment)
    started = time.monotonic()

    values = []
    for msg in read_to_end(deployment.kafka, topic, [0], timeout_s=0.5):
        values.append(int(msg.value() or b"-1"))
        time.sleep(0.0005)  # the caller's work: ~1.25 s in all, more than the timeout

    assert time.monotonic() - started > 0.5  # the whole read outlasted one timeout
    assert values == list(range(RECORDS))
