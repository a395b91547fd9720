"""Batched consumption without the batching delay.

`Consumer.consume(n, timeout)` waits until it has `n` records *or* the timeout passed, so a
lone record waits the whole timeout: on the task path that is added to every hop. Block
for the first record only, then take whatever else is already fetched.
"""

from __future__ import annotations

from confluent_kafka import Consumer, Message


def consume_batch(consumer: Consumer, max_records: int, timeout: float) -> list[Message]:
    first = consumer.poll(timeout)
    if first is None:
        return []
    return [first, *consumer.consume(max_records - 1, timeout=0)] if max_records > 1 else [first]
