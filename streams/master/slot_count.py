"""How many free slots a master may count on, per worker (no I/O; the registry feeds it).

What this master knows for sure is its own attempts active on a worker: counted as it
dispatches and as attempts end. What it cannot see is other masters' attempts: those are
the worker's busy slots beyond ours at its last heartbeat. So one master never offers a
worker more than its slots, however late heartbeats are (a heartbeat that already shows an
attempt ended, whose ack this master has not decided yet, counts it as ours, still busy).
Another master's new dispatches show only in the next heartbeat; until then a worker may be
offered a little more than it has, which it queues and reports as negative free slots.
"""

from __future__ import annotations

from collections.abc import Mapping

from streams.core.worker_messages import WorkerHeartbeat


class SlotCount:
    def __init__(self) -> None:
        self._mine: dict[str, int] = {}  # this master's attempts active per worker
        self._others: dict[str, int] = {}  # the rest of each worker's load at its heartbeat
        self._sequence = 0  # dispatches this master made (round robin's clock)
        self._last: dict[str, int] = {}  # the sequence number of each worker's last dispatch

    def heartbeat(self, hb: WorkerHeartbeat) -> None:
        busy = hb.slots_total - hb.slots_free
        self._others[hb.worker_id] = max(0, busy - self._mine.get(hb.worker_id, 0))

    def dispatched(self, worker_id: str) -> None:
        self._mine[worker_id] = self._mine.get(worker_id, 0) + 1
        self._sequence += 1
        self._last[worker_id] = self._sequence

    def last_dispatch(self, worker_id: str) -> int:
        """The sequence number of this master's last dispatch to `worker_id`; 0: none."""
        return self._last.get(worker_id, 0)

    def ended(self, worker_id: str) -> None:
        """An attempt on `worker_id` ended (or was failed over, or its partition moved)."""
        self._mine[worker_id] = max(0, self._mine.get(worker_id, 0) - 1)

    def holding(self) -> list[str]:
        """The workers this master has active attempts on."""
        return [w for w, n in self._mine.items() if n > 0]

    def recount(self, mine: Mapping[str, int]) -> None:
        """This master's active attempts per worker, counted afresh from its state."""
        self._mine = dict(mine)

    def free(self, hb: WorkerHeartbeat) -> int:
        """Free slots of the worker `hb` is the latest heartbeat of; <= 0 when full."""
        w = hb.worker_id
        return hb.slots_total - self._mine.get(w, 0) - self._others.get(w, 0)
