"""When a master checks its active attempts against worker liveness (no I/O; the clock is
given).

A full check walks every active attempt of every partition it holds, so it runs only every
`every_s` as a sweep (it also recounts the attempts per worker). A dead worker must not
wait for the sweep: failing over its attempts is the whole of a worker failover's delay
after the heartbeat timeout. So between sweeps the master asks the registry, every step,
about the few workers that hold its attempts, and a check runs at once when one of them is
newly lost (a verdict not seen before: its process and the dispatches it covers).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable


class WorkerChecks:
    def __init__(self, every_s: float = 1.0) -> None:
        self._every_s = every_s
        self._next = 0.0
        self._known: frozenset[Hashable] = frozenset()

    def due(self, now_s: float, lost: Iterable[Hashable]) -> bool:
        """True (and the sweep re-armed) when a check should run now: the sweep is due, or
        `lost` (keys of the verdicts on workers holding our attempts) has one not seen yet."""
        current = frozenset(lost)
        fresh = bool(current - self._known)
        self._known = current
        if not fresh and now_s < self._next:
            return False
        self._next = now_s + self._every_s
        return True
