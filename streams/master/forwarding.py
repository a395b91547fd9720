"""Commands that arrived on the wrong partition, forwarded to their own.

An instance's commands must all reach the one master that owns its partition, which
tideflow computes as the Java client does: murmur2 of the instance id (the record key),
modulo the partition count (`streams.kafka.partitioning`). A producer on librdkafka's
default partitioner (`consistent_random`: CRC32 of the key; confluent-kafka for Python, Go
and .NET, node-rdkafka) puts about three commands in four elsewhere. Deciding such a
command here would split the instance's events across two partitions and two owners, so
the master produces the same key and value to the commands partition the instance belongs
to, with the record's text headers and `tideflow.forwarded_from.partition` / `.offset`
naming where it came from, and commits the original like any decided command. The owner
decides the copy; a copy forwarded twice (a redelivery after a crash) is decided once,
since every decision is idempotent by `command_id`.

A forward is recorded in the master's log (a WARNING, at most one line per
`LOG_EVERY_S` with the count since the last) and in those headers, and by no event. An
event would have to go to an events partition: this one is not the instance's (its events
would be split again, the very thing forwarding prevents), and the instance's own is
written only by its owner under the owner's epoch (a write from here would be fenced, or
break the fence). Nothing about the instance has happened yet either; its history starts
when its owner decides the copy, whose events name the same `command_id` as their cause.

A record that was forwarded already and is still on a partition that is not its own means
the masters disagree on the partition count (partitions added while they run): it is
dead-lettered rather than forwarded again, so two masters never pass it back and forth.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Message

from streams.kafka.deadletter import dead_letter
from streams.kafka.producer import Producer
from streams.kafka.topics import Topics

log = logging.getLogger("tideflow.master")

FROM_PARTITION = "tideflow.forwarded_from.partition"
FROM_OFFSET = "tideflow.forwarded_from.offset"
LOG_EVERY_S = 10.0


class Forwarder:
    def __init__(self, producer: Producer, topics: Topics) -> None:
        self._producer = producer
        self._commands = topics.commands
        self._dead_letter = topics.dead_letter
        self.forwarded = 0  # records forwarded by this master
        self._unlogged = 0
        self._log_at = 0.0

    def forward(self, msg: Message, instance_id: str, expected: int) -> None:
        p, offset = msg.partition(), msg.offset()
        headers = _text_headers(msg)
        if FROM_PARTITION in headers:
            reason = (
                f"instance {instance_id} belongs to partition {expected}, not {p}, and the "
                f"record was forwarded already (from partition {headers[FROM_PARTITION]}): "
                "masters disagree on the partition count"
            )
            dead_letter(self._producer, self._dead_letter, msg, reason)
            return
        headers[FROM_PARTITION], headers[FROM_OFFSET] = str(p), str(offset)
        self._producer.send_raw(
            self._commands, msg.key(), msg.value(), partition=expected, headers=headers
        )
        self.forwarded += 1
        self._unlogged += 1
        if time.monotonic() >= self._log_at:
            self._log_at = time.monotonic() + LOG_EVERY_S
            log.warning(
                "forwarded %s command(s) to their own partition, the last %s[%s]@%s -> "
                "partition %s (instance %s): its producer does not partition by murmur2 "
                "(use partitioner=murmur2_random with librdkafka clients)",
                self._unlogged, msg.topic(), p, offset, expected, instance_id,
            )  # fmt: skip
            self._unlogged = 0


def _text_headers(msg: Message) -> dict[str, str]:
    """The record's headers whose values are text (tracing ids and the like); others are
    not carried over."""
    out: dict[str, str] = {}
    for header in msg.headers() or []:
        key, value = header[0], header[1]
        if isinstance(value, bytes):
            try:
                out[key] = value.decode()
            except UnicodeDecodeError:
                continue
        elif isinstance(value, str):
            out[key] = value
    return out
