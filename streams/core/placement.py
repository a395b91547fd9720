"""Host selection within a worker group (pure): favour the idlest live worker with a free slot.

DolphinScheduler 3.3+'s intent (3.2's lower-weight selector favours busy hosts by mistake).
A task is never placed on a full worker: it waits in the master until a slot frees, so a
burst queues in one place (the master, in order) instead of behind busy slots, where its
acknowledgement deadline would run out. Ties break on a stable digest of (task key, worker
id), never the salted builtin `hash()`.
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
    slots_free: int  # estimated now; <= 0 when full (negative: attempts queued beyond slots)


Workers = Mapping[str, Sequence[WorkerView]]  # worker group -> live workers
NO_WORKERS: Workers = {}


def _digest(key: str, worker_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{key}|{worker_id}".encode(), digest_size=8).digest())


def choose_worker(
    workers: Workers, group: str, key: str, assigned: Mapping[str, int]
) -> WorkerView | None:
    """The worker with the largest share of free slots, counting `assigned` (dispatches
    decided since `workers` was read) as taken; None when no live worker of the group has a
    free slot."""
    candidates = [(w.slots_free - assigned.get(w.worker_id, 0), w) for w in workers.get(group, ())]
    free = [(n, w) for n, w in candidates if n > 0]
    if not free:
        return None
    return max(free, key=lambda f: (f[0] / max(1, f[1].slots_total), _digest(key, f[1].worker_id)))[
        1
    ]


def has_free_slot(workers: Workers, group: str) -> bool:
    return any(w.slots_free > 0 for w in workers.get(group, ()))
