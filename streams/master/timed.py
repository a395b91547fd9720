"""Time-driven decisions over the partitions a master holds: due ticks, instances given a
worker slot that freed up, attempts failed over from lost workers, and arming the timers
of a partition just taken over.

Each is decided per instance with the core (`tick`, `lost_workers`, `on_worker_lost`),
staged in full (`decisions.stage`) and applied (`appender`). One that raises (a bug in the
core) is recorded, never fatal: an ERROR log with the traceback and, on the first of a run
of failures, a dead-letter record with an empty value and headers naming the instance,
the partition and the exception (no event: there is no command to reject, and an invented
id would sit in the instance's applied set forever). The instance is then held back by
`TickBackoff` (1 s, doubling up to 5 min) rather than tried again on every step, and is
offered no slot until a tick of it succeeds.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import partial

from streams.core.decide.failover import lost_workers, on_worker_lost
from streams.core.instance import TaskRun
from streams.kafka.deadletter import dead_letter_failure, exception_headers
from streams.kafka.producer import Producer
from streams.kafka.topics import Topics
from streams.master.appender import Appender
from streams.master.decisions import Ticker, stage
from streams.master.partitions import PartitionState
from streams.master.registry import WorkerRegistry
from streams.master.slot_waits import SlotWaits
from streams.master.tick_backoff import TickBackoff

log = logging.getLogger("tideflow.master")

# An instance is not ticked again sooner than this (slot waits are not ticks: see place).
TICK_GAP = timedelta(milliseconds=500)


class TimeDriven:
    def __init__(
        self,
        *,
        parts: dict[int, PartitionState],
        registry: WorkerRegistry,
        appender: Appender,
        slot_waits: SlotWaits,
        tick: Ticker,
        ack_timeout: timedelta,
        producer: Producer,
        topics: Topics,
    ) -> None:
        self._parts = parts  # the master's dict: partitions held now
        self._registry = registry
        self._appender = appender
        self._slot_waits = slot_waits
        self._tick = tick
        self._ack_timeout = ack_timeout
        self._producer = producer
        self._topics = topics
        self.backoff = TickBackoff()

    def tick_due(self, now: datetime) -> None:
        """Tick every instance whose deadline has come, and those whose back-off ended."""
        for part in list(self._parts.values()):
            for instance_id in part.due(now):
                self._tick_one(part, instance_id, now, not_before=now + TICK_GAP)
        if self.backoff:
            for p, instance_id in self.backoff.due(now):
                held = self._parts.get(p)
                if held is None:  # revoked meanwhile
                    self.backoff.succeeded((p, instance_id))
                    continue
                self._tick_one(held, instance_id, now, not_before=now + TICK_GAP)

    def place(self, now: datetime) -> None:
        """Give free slots to the instances that have waited for one longest."""
        has_free_slot = partial(self._registry.has_free_slot, now=now)
        for p, instance_id in self._slot_waits.ready(has_free_slot):
            part = self._parts.get(p)
            if part is None:  # revoked: its new owner places it
                self._slot_waits.update((p, instance_id), frozenset())
                continue
            self._tick_one(part, instance_id, now, not_before=None)

    def _tick_one(
        self, part: PartitionState, instance_id: str, now: datetime, not_before: datetime | None
    ) -> None:
        key = (part.partition, instance_id)
        if self.backoff.holds(key, now):
            return  # its back-off ticks it (tick_due)
        state = part.get(instance_id)
        workers = self._registry.live(now)
        try:
            events = self._tick(state, now, workers, self._ack_timeout)
            decision = stage(state, events, part.epoch, now, self._ack_timeout)
        except Exception as exc:  # a bug in the core: recorded, never fatal (see above)
            self._failed(part, instance_id, "tick", exc, now)
            return
        self.backoff.succeeded(key)
        self._appender.apply(part, decision, not_before)

    def arm(self, part: PartitionState, now: datetime) -> None:
        """Arm the timers and slot waits of every instance of a partition just rebuilt."""
        for instance_id, state in list(part.instances.items()):
            try:
                decision = stage(state, [], part.epoch, now, self._ack_timeout)
            except Exception as exc:
                self._failed(part, instance_id, "arming after takeover", exc, now)
                continue
            self._appender.apply(part, decision)

    # -- worker failover --------------------------------------------------------------------

    def check_workers(self, now: datetime) -> None:
        """Fail over every active attempt whose worker is lost (silent past the timeout,
        unknown, or restarted since the dispatch); recount the attempts on each worker."""
        self._registry.slots.recount(Counter(t.worker_id for t in active(*self._parts.values())))
        verdict_of = partial(self._registry.lost, now=now)
        for part in list(self._parts.values()):
            for instance_id, state in list(part.instances.items()):
                if self.backoff.holds((part.partition, instance_id), now):
                    continue
                try:
                    verdicts = lost_workers(state, verdict_of, now)
                except Exception as exc:
                    self._failed(part, instance_id, "worker check", exc, now)
                    continue
                for verdict in verdicts:
                    if self._appender.worker_lost(part, verdict, now):
                        log.warning("partition %s: %s", part.partition, verdict.reason)
                    current = part.get(instance_id)
                    live = self._registry.live(now)
                    try:
                        events = on_worker_lost(current, verdict, now, live)
                        decision = stage(current, events, part.epoch, now, self._ack_timeout)
                    except Exception as exc:
                        self._failed(part, instance_id, "worker failover", exc, now)
                        break
                    self._appender.apply(part, decision)

    # -- failures ---------------------------------------------------------------------------

    def _failed(
        self, part: PartitionState, instance_id: str, what: str, exc: Exception, now: datetime
    ) -> None:
        p = part.partition
        failing = self.backoff.failed((p, instance_id), now)
        self._slot_waits.update((p, instance_id), frozenset())  # no slot until a tick succeeds
        retry = failing.retry_at.isoformat(timespec="seconds")
        if failing.failures > 1:
            log.warning(
                "%s of %s (partition %s) raised again, %s times in a row: %s: %s; next try %s",
                what, instance_id, p, failing.failures, type(exc).__name__, exc, retry,
            )  # fmt: skip
            return
        log.error(
            "%s of %s (partition %s) raised; dead-lettered, held back until %s",
            what, instance_id, p, retry, exc_info=exc,
        )  # fmt: skip
        headers = {
            **exception_headers(exc, instance_id),
            "tideflow.source": what,
            "tideflow.topic": self._topics.events,
            "tideflow.partition": str(p),
        }
        reason = f"{what} raised {type(exc).__name__}: {exc}"[:1000]
        dead_letter_failure(self._producer, self._topics.dead_letter, instance_id, reason, headers)


def active(*parts: PartitionState | None) -> Iterator[TaskRun]:
    """The active attempts of every instance in `parts`."""
    for part in parts:
        if part is not None:
            for state in part.instances.values():
                yield from state.active()
