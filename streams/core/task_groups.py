"""Task group slot ledger (pure): the design core of DolphinScheduler's task groups
(DOLPHINSCHEDULER.md §3.8), not yet wired into the master (see docs/TASK_GROUPS.md).

One ledger per task group, owned by the master that owns the commands/events partition of
the key `taskgroup/<name>`, exactly as an instance is owned by the partition of its id. The
instances' masters (any partition, any master) ask for and give back slots with commands on
that key; the owner decides them against the ledger folded from the group's own events and
appends the facts below. Because one owner at a time decides, in log order, and a folded
ledger ignores events fenced by a later takeover (the same epoch rule as instances), the
number of holders never exceeds the group's size, across masters and across failover: a
new owner rebuilds the ledger from the log and goes on from exactly what was decided.

Every decision is idempotent: a holder (`instance/task/attempt`, never reused) asks once
however often its request is delivered; a release of a holder that never asked, or asks
late, leaves a tombstone, so a request that arrives after its release (reordered) is never
granted. Waiting holders are served by priority (HIGHEST first), then in order of arrival.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from streams.core.enums import Priority


@dataclass(frozen=True, slots=True, kw_only=True)
class SlotQueued:
    holder: str
    priority: Priority
    cause: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SlotGranted:
    holder: str
    cause: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SlotReleased:
    """The holder gave its slot back, or left the line, or never asked (a tombstone)."""

    holder: str
    cause: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupResized:
    size: int
    cause: str


LedgerEvent = SlotQueued | SlotGranted | SlotReleased | GroupResized


@dataclass(frozen=True, slots=True, kw_only=True)
class Waiting:
    holder: str
    priority: Priority
    seq: int  # arrival order

    @property
    def rank(self) -> tuple[int, int]:
        return (self.priority, self.seq)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ledger:
    group: str
    size: int = 0
    holders: frozenset[str] = frozenset()
    line: tuple[Waiting, ...] = ()  # sorted by rank
    done: frozenset[str] = frozenset()  # released: never granted (again)
    seq: int = 0
    applied: frozenset[str] = frozenset()

    @property
    def free(self) -> int:
        return self.size - len(self.holders)

    def waiting(self, holder: str) -> bool:
        return any(w.holder == holder for w in self.line)


def acquire(led: Ledger, holder: str, priority: Priority, cause: str) -> list[LedgerEvent]:
    """A holder asks for a slot: it joins the line (once) and is granted if it is first."""
    if cause in led.applied or holder in led.holders or holder in led.done:
        return []
    if led.waiting(holder):
        return []
    queued = SlotQueued(holder=holder, priority=priority, cause=cause)
    return [queued, *grants(evolve(led, queued), cause)]


def release(led: Ledger, holder: str, cause: str) -> list[LedgerEvent]:
    """A holder's task ended (or its instance did): its slot, or its place in the line, is
    given back and the next in line is granted. Unknown: a tombstone (no slot moves)."""
    if cause in led.applied or holder in led.done:
        return []
    released = SlotReleased(holder=holder, cause=cause)
    return [released, *grants(evolve(led, released), cause)]


def resize(led: Ledger, size: int, cause: str) -> list[LedgerEvent]:
    """The group's size changes; holders beyond a smaller size keep their slots until they
    release them (no running task is taken away), a larger size grants at once."""
    if cause in led.applied or size == led.size:
        return []
    resized = GroupResized(size=max(0, size), cause=cause)
    return [resized, *grants(evolve(led, resized), cause)]


def grants(led: Ledger, cause: str) -> list[LedgerEvent]:
    """Grant the head of the line while slots are free."""
    return [SlotGranted(holder=w.holder, cause=cause) for w in led.line[: max(0, led.free)]]


def _queued(led: Ledger, e: SlotQueued) -> Ledger:
    waiting = Waiting(holder=e.holder, priority=e.priority, seq=led.seq)
    line = tuple(sorted((*led.line, waiting), key=lambda w: w.rank))
    return replace(led, line=line, seq=led.seq + 1, applied=led.applied | {e.cause})


def _granted(led: Ledger, e: SlotGranted) -> Ledger:
    line = tuple(w for w in led.line if w.holder != e.holder)
    return replace(
        led, line=line, holders=led.holders | {e.holder}, applied=led.applied | {e.cause}
    )


def _released(led: Ledger, e: SlotReleased) -> Ledger:
    return replace(
        led,
        holders=led.holders - {e.holder},
        line=tuple(w for w in led.line if w.holder != e.holder),
        done=led.done | {e.holder},
        applied=led.applied | {e.cause},
    )


def _resized(led: Ledger, e: GroupResized) -> Ledger:
    return replace(led, size=e.size, applied=led.applied | {e.cause})


def evolve(led: Ledger, e: LedgerEvent) -> Ledger:
    if isinstance(e, SlotQueued):
        return _queued(led, e)
    if isinstance(e, SlotGranted):
        return _granted(led, e)
    if isinstance(e, SlotReleased):
        return _released(led, e)
    return _resized(led, e)
