"""Process plumbing every long-running role shares: the wall clock it is given by default, a
stop flag raised by SIGTERM/SIGINT, the offset-commit throttle, the end of a partition as a
fetch saw it, and ending the process without leaving the consumer group.

The run loops and the composition root use these; the pure core never does (its clock is an
argument).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime

from confluent_kafka import Consumer, TopicPartition

from streams.kafka.config import KafkaConfig


def utcnow() -> datetime:
    """The default clock of the roles (UTC, aware)."""
    return datetime.now(UTC)


def stop_on_signals() -> threading.Event:
    """An event set by the first SIGTERM or SIGINT: the role's loop ends at its next turn."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


class CommitThrottle:
    """Offsets are committed at most every `every_s`: a commit is a broker request, and a
    record handled again after a crash or a move changes nothing (consumers are idempotent)."""

    def __init__(self, every_s: float = 0.2) -> None:
        self._every_s = every_s
        self._next = 0.0
        self.pending = False  # something was consumed since the last commit

    def consumed(self, count: int) -> None:
        self.pending |= count > 0

    def due(self) -> bool:
        """True (and the throttle re-armed) when a commit should be sent now."""
        if not self.pending or time.monotonic() < self._next:
            return False
        self._next, self.pending = time.monotonic() + self._every_s, False
        return True


def watermarks(consumer: Consumer, tp: TopicPartition, timeout_s: float = 10.0) -> tuple[int, int]:
    """The low and high watermarks of `tp`. Tansu's ListOffsets answer can lag after a multi-record
    produce (it reports the first record's offset + 1), while the watermark carried by
    fetch responses is right: take the larger of the two."""
    low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s) or (0, 0)
    _, fetched = consumer.get_watermark_offsets(tp, cached=True) or (0, 0)
    return low, max(high, fetched)


def exit_keeping_membership(kafka: KafkaConfig) -> None:
    """End the process now (`os._exit`), unless the group should be left: a consumer's
    destructor would send LeaveGroup, which wedges Tansu's groups (see
    `KafkaConfig.leave_group_on_stop`). Output is flushed first; everything that matters was
    committed already."""
    if kafka.leave_group_on_stop:
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
