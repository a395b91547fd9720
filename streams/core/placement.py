"""Host selection within a worker group (pure): favour the idlest live worker.

DolphinScheduler 3.3+'s intent (3.2's lower-weight selector favours busy hosts by mistake).
Ties break on a stable digest of (task key, worker id), never the salted builtin `hash()`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WorkerView:
    """What a master knows of a live worker, from its latest heartbeat."""

    worker_id: str
    group: str
    slots_total: int
    slots_free: int


Workers = Mapping[str, Sequence[WorkerView]]  # worker group -> live workers
NO_WORKERS: Workers = {}


def _digest(key: str, worker_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{key}|{worker_id}".encode(), digest_size=8).digest())


def choose_worker(
    workers: Workers, group: str, key: str, assigned: Mapping[str, int]
) -> WorkerView | None:
    """The worker with the largest share of free slots, counting `assigned` (dispatches
    decided since its heartbeat) as taken; None when the group has no live worker."""
    candidates = workers.get(group, ())
    if not candidates:
        return None

    def score(w: WorkerView) -> tuple[float, int]:
        free = w.slots_free - assigned.get(w.worker_id, 0)
        return (free / max(1, w.slots_total), _digest(key, w.worker_id))

    return max(candidates, key=score)
