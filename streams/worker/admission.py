"""Which dispatch records a worker process acts on: the rules, with no I/O and no threads.

* Epoch fencing: a record whose owner epoch is below one already seen for its instance's
  partition comes from a master that has since lost that partition; it is dropped.
* Duplicates: an attempt seen by this process (assigned, killed or finished here) is acted
  on once; the last `limit` attempts are remembered (re-sends come soon after the original).
* Restarts: an assignment made before this process started is skipped; the master fails
  those over (they were addressed to the process that died), never re-run by this one.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from streams.core.worker_messages import KillTask, TaskAssignment
from streams.kafka.partitioning import partition_for

Key = tuple[str, str, int]  # (instance id, task code, attempt)

SEEN_LIMIT = 100_000


def key_of(record: TaskAssignment | KillTask) -> Key:
    return (record.instance_id, record.task_code, record.attempt)


class Admission:
    """Not thread-safe: the worker calls it under its own lock."""

    def __init__(self, started_at: datetime, instance_partitions: int, limit: int = SEEN_LIMIT):
        self._started_at = started_at
        self._partitions = instance_partitions
        self._limit = limit
        self._epochs: dict[int, int] = {}  # instance partition -> highest owner epoch seen
        self._seen: OrderedDict[Key, None] = OrderedDict()

    def fenced(self, record: TaskAssignment | KillTask) -> bool:
        """True when a newer owner epoch was already seen for the record's partition."""
        p = partition_for(record.instance_id, self._partitions)
        if record.epoch < self._epochs.get(p, 0):
            return True
        self._epochs[p] = record.epoch
        return False

    def seen(self, key: Key) -> bool:
        return key in self._seen

    def remember(self, key: Key) -> None:
        self._seen[key] = None
        if len(self._seen) > self._limit:
            self._seen.popitem(last=False)

    def before_start(self, a: TaskAssignment) -> bool:
        """True for an assignment made before this process started (not to be run here)."""
        return a.at < self._started_at
