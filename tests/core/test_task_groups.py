"""The task group ledger (`streams/core/task_groups.py`): given/when/then for each decision,
and a property over interleavings of requests and releases, delivered twice or out of
order, with owner failovers and a zombie owner writing after its partition moved: never
more holders than slots, each holder granted at most once and in priority order, a
released holder never granted, and every holder still waiting is granted once slots free."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.enums import Priority
from streams.core.task_groups import (
    GroupResized,
    Ledger,
    LedgerEvent,
    SlotGranted,
    SlotQueued,
    SlotReleased,
    acquire,
    evolve,
    release,
    resize,
)


def ledger(size: int = 2, *events: LedgerEvent) -> Ledger:
    led = evolve(Ledger(group="g"), GroupResized(size=size, cause="size"))
    for e in events:
        led = evolve(led, e)
    return led


def through(led: Ledger, events: list[LedgerEvent]) -> Ledger:
    for e in events:
        led = evolve(led, e)
    return led


def test_a_request_with_a_free_slot_is_granted_at_once() -> None:
    then = acquire(ledger(1), "i/a/1", Priority.MEDIUM, "c1")

    assert then == [
        SlotQueued(holder="i/a/1", priority=Priority.MEDIUM, cause="c1"),
        SlotGranted(holder="i/a/1", cause="c1"),
    ]


def test_a_full_group_queues_and_grants_the_highest_priority_first_on_release() -> None:
    led = ledger(1)
    for holder, prio, cause in [("a", Priority.MEDIUM, "c1"), ("b", Priority.LOW, "c2"),
                                ("c", Priority.HIGH, "c3")]:  # fmt: skip
        led = through(led, acquire(led, holder, prio, cause))
    assert led.holders == {"a"} and [w.holder for w in led.line] == ["c", "b"]

    then = release(led, "a", "r1")

    assert then == [SlotReleased(holder="a", cause="r1"), SlotGranted(holder="c", cause="r1")]


def test_a_request_delivered_twice_asks_once() -> None:
    led = through(ledger(1), acquire(ledger(1), "a", Priority.MEDIUM, "c1"))

    assert acquire(led, "a", Priority.MEDIUM, "c1") == []
    assert acquire(led, "a", Priority.MEDIUM, "c1-again") == []


def test_a_release_before_its_request_leaves_a_tombstone() -> None:
    led = through(ledger(1), release(ledger(1), "a", "r1"))

    assert acquire(led, "a", Priority.MEDIUM, "c1") == []
    assert led.free == 1


def test_a_waiting_holder_that_releases_leaves_the_line() -> None:
    led = ledger(0)
    led = through(led, acquire(led, "a", Priority.MEDIUM, "c1"))

    led = through(led, release(led, "a", "r1"))

    assert led.line == () and led.holders == frozenset()


def test_growing_a_group_grants_at_once_and_shrinking_takes_no_slot_away() -> None:
    led = ledger(1)
    for holder, cause in [("a", "c1"), ("b", "c2"), ("c", "c3")]:
        led = through(led, acquire(led, holder, Priority.MEDIUM, cause))

    grown = resize(led, 3, "s1")
    assert [type(e) for e in grown] == [GroupResized, SlotGranted, SlotGranted]
    led = through(led, grown)
    led = through(led, resize(led, 1, "s2"))
    assert led.holders == {"a", "b", "c"}
    assert [type(e) for e in release(led, "a", "r1")] == [SlotReleased]  # still 2 > 1


# -- the property ---------------------------------------------------------------------------

HOLDERS = [f"i{n}/t/1" for n in range(6)]


@dataclass
class World:
    """A log of the group's partition, an owner deciding on its folded ledger, failovers
    (a new owner with a higher epoch rebuilds from the log) and a zombie (the previous
    owner, still deciding on its stale ledger and appending with its old epoch)."""

    size: int
    log: list[tuple[int, LedgerEvent | None]] = field(default_factory=list)  # None: takeover
    epoch: int = 1
    live: Ledger = field(default_factory=lambda: Ledger(group="g"))
    zombie: tuple[int, Ledger] | None = None
    sent: list[tuple[str, str, Priority]] = field(default_factory=list)  # (op, holder, prio)

    def append(self, epoch: int, events: list[LedgerEvent]) -> None:
        self.log += [(epoch, e) for e in events]

    def folded(self) -> Ledger:
        """The ledger from the log, fenced events skipped; asserts grants go to the head."""
        led, fence = Ledger(group="g"), 0
        for epoch, e in self.log:
            if e is None:
                fence = epoch
                continue
            if epoch < fence:
                continue
            if isinstance(e, SlotGranted):
                assert led.line and led.line[0].holder == e.holder, (e, led.line)
            led = evolve(led, e)
        return led

    def decide(
        self, led: Ledger, op: str, holder: str, prio: Priority, n: int
    ) -> list[LedgerEvent]:
        if op == "acquire":
            return acquire(led, holder, prio, f"acq-{holder}")
        return release(led, holder, f"rel-{holder}-{n}")

    def step(self, action: tuple[str, int, int], n: int) -> None:
        kind, a, b = action
        if kind == "failover":
            self.zombie = (self.epoch, self.live)
            self.epoch += 1
            self.log.append((self.epoch, None))
            self.live = self.folded()
            return
        if kind == "zombie":
            if self.zombie is not None and self.sent:
                epoch, stale = self.zombie
                op, holder, prio = self.sent[a % len(self.sent)]
                events = self.decide(stale, op, holder, prio, n)
                self.zombie = (epoch, through(stale, events))
                self.append(epoch, events)
            return
        if kind == "redeliver":
            if not self.sent:
                return
            op, holder, prio = self.sent[a % len(self.sent)]
        else:
            op, holder, prio = kind, HOLDERS[a % len(HOLDERS)], Priority(b % 5)
            self.sent.append((op, holder, prio))
        events = self.decide(self.live, op, holder, prio, n)
        self.live = through(self.live, events)
        self.append(self.epoch, events)


ACTIONS = st.tuples(
    st.sampled_from(["acquire", "acquire", "release", "redeliver", "failover", "zombie"]),
    st.integers(0, 50),
    st.integers(0, 4),
)


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 3), actions=st.lists(ACTIONS, max_size=40))
def test_never_more_holders_than_slots_across_failovers_and_zombies(
    size: int, actions: list[tuple[str, int, int]]
) -> None:
    w = World(size=size)
    w.append(w.epoch, resize(w.live, size, "size"))
    w.live = w.folded()
    for n, action in enumerate(actions):
        w.step(action, n)
        led = w.folded()
        assert led == w.live  # the owner's ledger is a fold of the log
        assert len(led.holders) <= size
        assert not led.holders & {x.holder for x in led.line}
        assert not led.done & (led.holders | {x.holder for x in led.line})
    # each holder granted at most once, never after its release, in the unfenced log
    fence, granted, released = 0, [], set()
    for epoch, e in w.log:
        if e is None:
            fence = epoch
        elif epoch >= fence and isinstance(e, SlotGranted):
            assert e.holder not in granted and e.holder not in released
            granted.append(e.holder)
        elif epoch >= fence and isinstance(e, SlotReleased):
            released.add(e.holder)
    # liveness: as holders finish, everyone still waiting gets a slot
    led = w.live
    for n in range(len(HOLDERS) + 1):
        for holder in sorted(led.holders):
            led = through(led, release(led, holder, f"end-{holder}-{n}"))
    assert led.line == () and led.holders == frozenset()
