"""Host selection: the idlest live worker of the task's group wins; ties break stably."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.decide import decide
from streams.core.enums import TaskType
from streams.core.events import TaskDispatched
from streams.core.ids import task_instance_id
from streams.core.placement import NO_WORKERS, choose_worker, has_free_slot
from tests.core.builders import (
    IID,
    NOW,
    empty,
    only,
    start,
    task,
    worker,
    workers,
    workflow,
)

KEY = "inst-1/a/1"


def test_choose_worker_idlest_by_free_share_wins() -> None:
    live = {
        "default": [worker("busy", slots_total=4, slots_free=1), worker("idle", "default", 4, 3)]
    }

    assert choose_worker(live, "default", KEY, {}).worker_id == "idle"  # type: ignore[union-attr]


def test_choose_worker_compares_shares_not_absolute_free_slots() -> None:
    big = worker("big", slots_total=16, slots_free=4)  # 25% free
    small = worker("small", slots_total=2, slots_free=2)  # 100% free

    chosen = choose_worker({"default": [big, small]}, "default", KEY, {})

    assert chosen is small


def test_choose_worker_counts_dispatches_decided_since_the_heartbeat() -> None:
    live = {"default": [worker("w1"), worker("w2")]}

    chosen = choose_worker(live, "default", KEY, {"w1": 2})

    assert chosen is not None
    assert chosen.worker_id == "w2"


def test_choose_worker_tie_is_stable_for_the_same_inputs() -> None:
    live = workers("w1", "w2", "w3", "w4")
    reordered = {"default": list(reversed(live["default"]))}

    picks = {choose_worker(live, "default", KEY, {}) for _ in range(5)}
    picks.add(choose_worker(reordered, "default", KEY, {}))

    assert len(picks) == 1


def test_choose_worker_tie_breaks_differ_across_tasks() -> None:
    live = workers(*(f"w{i}" for i in range(8)))

    picks = {choose_worker(live, "default", f"inst-1/t{i}/1", {}) for i in range(40)}

    assert len(picks) > 1


def test_choose_worker_without_live_worker_in_the_group_is_none() -> None:
    assert choose_worker(NO_WORKERS, "default", KEY, {}) is None
    assert choose_worker(workers("g1", group="gpu"), "default", KEY, {}) is None
    assert choose_worker({"default": []}, "default", KEY, {}) is None


def test_dispatches_within_one_decision_spread_across_workers() -> None:
    wf = workflow(*(task(f"t{i}", type=TaskType.NOOP) for i in range(6)))

    then = decide(empty(), start(wf), NOW, workers("w1", "w2", "w3", slots=2))

    per_worker = Counter(d.worker_id for d in only(then, TaskDispatched))
    assert per_worker == {"w1": 2, "w2": 2, "w3": 2}


def test_choose_worker_never_picks_a_full_worker() -> None:
    live = {
        "default": [worker("full", slots_total=4, slots_free=0), worker("over", "default", 4, -2)]
    }

    assert choose_worker(live, "default", KEY, {}) is None
    assert choose_worker(workers("w1", slots=2), "default", KEY, {"w1": 2}) is None


def test_dispatches_within_one_decision_fill_the_idlest_worker_first() -> None:
    wf = workflow(*(task(f"t{i}") for i in range(4)))
    live = {
        "default": [worker("full", slots_total=4, slots_free=1), worker("idle", "default", 4, 4)]
    }

    then = decide(empty(), start(wf), NOW, live)

    placed = [d.worker_id for d in only(then, TaskDispatched)]
    assert placed[:3] == ["idle", "idle", "idle"]  # then both have 1 of 4 free: a tie


@settings(max_examples=40, deadline=None)
@given(tasks=st.integers(1, 20), n_workers=st.integers(1, 5), slots=st.integers(1, 8))
def test_dispatches_to_equal_workers_differ_by_at_most_one(
    tasks: int, n_workers: int, slots: int
) -> None:
    wf = workflow(*(task(f"t{i}") for i in range(tasks)))
    ids = [f"w{i}" for i in range(n_workers)]

    then = decide(empty(), start(wf), NOW, workers(*ids, slots=slots))

    per_worker = Counter(d.worker_id for d in only(then, TaskDispatched))
    assert sum(per_worker.values()) == min(tasks, n_workers * slots)  # never beyond free slots
    assert max(per_worker.values()) <= slots
    counts = [per_worker.get(w, 0) for w in ids]
    assert max(counts) - min(counts) <= 1


def test_a_worker_of_one_slot_that_is_free_counts_as_wholly_free() -> None:
    one = worker("one", slots_total=1, slots_free=1)  # 100% free
    four = worker("four", slots_total=4, slots_free=3)  # 75% free

    assert choose_worker({"default": [four, one]}, "default", KEY, {}) is one


def test_a_worker_announcing_no_slots_but_a_free_one_is_still_placeable() -> None:
    odd = worker("odd", slots_total=0, slots_free=1)

    assert choose_worker({"default": [odd]}, "default", KEY, {}) is odd


def test_has_free_slot_asks_only_the_group_named() -> None:
    live = {"default": [worker("w1", slots_free=0), worker("w2", slots_free=1)],
            "gpu": [worker("g1", "gpu", slots_free=0)]}  # fmt: skip

    assert has_free_slot(live, "default")
    assert not has_free_slot(live, "gpu")
    assert not has_free_slot(live, "cpu")
    assert not has_free_slot({"default": [worker("w1", slots_free=-2)]}, "default")


def test_a_dispatch_breaks_ties_by_its_task_instance_id() -> None:
    live = workers(*(f"w{i}" for i in range(8)))

    then = decide(empty(), start(workflow(*(task(f"t{i}") for i in range(4)))), NOW, live)

    assigned: Counter[str] = Counter()
    for d in only(then, TaskDispatched):
        expected = choose_worker(live, "default", task_instance_id(IID, d.task_code, 1), assigned)
        assert expected is not None
        assert d.worker_id == expected.worker_id
        assigned[d.worker_id] += 1
