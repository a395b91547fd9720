"""When a master writes a partition's snapshot, and whether its state may be written at all.

A partition is snapshotted after a flush (so a snapshot never covers an event the broker
has not acknowledged) once `snapshot_every_events` events were appended since the
last one, or `snapshot_interval_s` passed with at least one. It is written only
while every events offset since this master's takeover is its own (its delivery reports are
contiguous): otherwise someone else wrote to the partition, we may be the fenced owner, and
our state does not cover the log (the store's contract, snapshots.py).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Protocol

from streams.kafka.producer import Producer
from streams.master.config import MasterConfig
from streams.master.partitions import PartitionState


class Snapshots(Protocol):
    """Where partition snapshots live (streams.master.snapshots.SnapshotStore)."""

    def load(self, partition: int) -> Any: ...
    def save(self, snapshot: Any) -> None: ...
    def close(self) -> None: ...


class SnapshotCadence:
    def __init__(self, store: Snapshots | None, config: MasterConfig) -> None:
        self._store = store
        self._every = config.snapshot_every_events
        self._interval = config.snapshot_interval_s
        self._events = config.kafka.topics.events
        self._new: dict[int, int] = {}  # partition -> events appended since the last snapshot
        self._last: dict[int, float] = {}  # partition -> monotonic time of the last snapshot
        # partition -> (events offset our takeover was appended after, our delivered count then)
        self._base: dict[int, tuple[int, int]] = {}

    def load(self, partition: int) -> Any:
        return self._store.load(partition) if self._store is not None else None

    def taken_over(self, partition: int, end: int, producer: Producer, replayed: int) -> None:
        """Our takeover is about to be appended after `end` (earlier records of ours flushed);
        `replayed` events were folded beyond the snapshot we started from."""
        self._base[partition] = (end, producer.delivered.get((self._events, partition), 0))
        self._new[partition] = replayed
        self._last[partition] = time.monotonic()

    def appended(self, partition: int) -> None:
        self._new[partition] = self._new.get(partition, 0) + 1

    def save_due(self, parts: dict[int, PartitionState], producer: Producer, now: datetime) -> None:
        if self._store is None:
            return
        for p, part in list(parts.items()):
            new = self._new.get(p, 0)
            waited = time.monotonic() - self._last.get(p, 0.0)
            if new == 0 or (new < self._every and waited < self._interval):
                continue
            self.save(part, producer, now)

    def save(self, part: PartitionState, producer: Producer, now: datetime) -> Any:
        """Snapshot `part` now (its events flushed); returns the `PartitionSnapshot` saved,
        or None: no store, or someone else wrote to the partition since our takeover."""
        if self._store is None:
            return None
        from streams.master.snapshots import PartitionSnapshot

        p = part.partition
        key = (self._events, p)
        offset = producer.next_offsets.get(key)
        base, delivered_before = self._base.get(p, (0, 0))
        if offset is None or offset - base != producer.delivered.get(key, 0) - delivered_before:
            return None  # someone else wrote to the partition since our takeover
        snapshot = PartitionSnapshot(
            partition=p,
            events_offset=offset,
            epoch=part.epoch,
            instances=dict(part.instances),
            written_at=now,
            owner=part.owner,
            lost=frozenset(part.lost),
        )
        self._store.save(snapshot)
        self._new[p] = 0
        self._last[p] = time.monotonic()
        return snapshot

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
