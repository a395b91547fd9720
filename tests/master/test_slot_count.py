"""SlotCount: the free slots a master counts on, from its own attempts and heartbeats."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.core.worker_messages import WorkerHeartbeat
from streams.master.slot_count import SlotCount

AT = datetime(2026, 1, 1, tzinfo=UTC)


def beat(slots_total: int, slots_free: int) -> WorkerHeartbeat:
    return WorkerHeartbeat(
        worker_id="w1", worker_group="default", host="h", pid=1, slots_total=slots_total,
        slots_free=slots_free, cpu_percent=0.0, memory_percent=0.0, load_average=0.0,
        version="dev", started_at=AT, at=AT,
    )  # fmt: skip


def test_own_dispatches_fill_the_worker_and_own_ends_free_it() -> None:
    count, hb = SlotCount(), beat(2, 2)
    count.heartbeat(hb)

    count.dispatched("w1")
    count.dispatched("w1")
    assert count.free(hb) == 0
    count.ended("w1")
    assert count.free(hb) == 1


def test_a_heartbeat_that_already_shows_our_attempts_ended_does_not_count_them_twice() -> None:
    count = SlotCount()
    count.heartbeat(beat(2, 2))
    count.dispatched("w1")
    count.dispatched("w1")
    after = beat(2, 2)  # both ran; their finished acks are not decided yet
    count.heartbeat(after)

    assert count.free(after) == 0  # still ours, still busy
    count.ended("w1")
    count.ended("w1")
    assert count.free(after) == 2


def test_other_masters_attempts_come_from_the_heartbeat() -> None:
    count = SlotCount()
    count.dispatched("w1")
    hb = beat(4, 1)  # 3 busy: 1 ours, 2 another master's
    count.heartbeat(hb)

    assert count.free(hb) == 1
    count.ended("w1")
    assert count.free(hb) == 2


def test_a_draining_worker_is_never_offered_a_slot_as_our_attempts_end() -> None:
    count = SlotCount()
    count.dispatched("w1")
    count.dispatched("w1")
    draining = beat(0, -2)  # stopping: offers nothing; two attempts still running
    count.heartbeat(draining)

    count.ended("w1")
    count.ended("w1")
    assert count.free(draining) <= 0


def test_a_recount_replaces_the_running_tally() -> None:
    count, hb = SlotCount(), beat(3, 3)
    count.heartbeat(hb)
    for _ in range(5):
        count.dispatched("w1")

    count.recount({"w1": 1})

    assert count.free(hb) == 2
