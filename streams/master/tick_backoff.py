"""Instances whose time-driven decision raised, and when to try them again (pure; no I/O).

A tick or a worker failover that raises for an instance is a bug in the core, and it will
most likely raise again for the same state. The master records it and goes on; this rule
keeps it from retrying the instance on every step (a hot loop that would also flood the
dead-letter topic): the instance's ticks and worker checks are held back for 1 s after the
first failure, doubling up to `MAX_DELAY_S`, and released by the first success. Commands
for the instance are still decided meanwhile; their own failures are the intake's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

FIRST_DELAY_S = 1.0
MAX_DELAY_S = 300.0

Key = tuple[int, str]  # (partition, instance id)


@dataclass(frozen=True, slots=True)
class Failing:
    failures: int  # consecutive failures
    retry_at: datetime


class TickBackoff:
    def __init__(self) -> None:
        self._failing: dict[Key, Failing] = {}

    def failed(self, key: Key, now: datetime) -> Failing:
        """Count a failure at `now`; returns when the instance may be tried again."""
        failures = self._failing[key].failures + 1 if key in self._failing else 1
        delay = min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** min(failures - 1, 32))
        self._failing[key] = Failing(failures, now + timedelta(seconds=delay))
        return self._failing[key]

    def succeeded(self, key: Key) -> None:
        if self._failing:  # the common case is nothing failing: one truth test
            self._failing.pop(key, None)

    def holds(self, key: Key, now: datetime) -> bool:
        """True while `key` failed and its retry time has not come."""
        if not self._failing:
            return False
        failing = self._failing.get(key)
        return failing is not None and now < failing.retry_at

    def due(self, now: datetime) -> list[Key]:
        """Failing instances whose retry time has come, oldest retry first."""
        return [
            k for k, f in sorted(self._failing.items(), key=lambda kf: kf[1].retry_at)
            if f.retry_at <= now
        ]  # fmt: skip

    def drop_partition(self, partition: int) -> None:
        """Forget a revoked partition's instances (their new owner tries them)."""
        for key in [k for k in self._failing if k[0] == partition]:
            del self._failing[key]

    def __len__(self) -> int:
        return len(self._failing)
