"""Host selection strategies per worker group (idle-first, random, round robin, weighted)
and the BUSY thresholds: pure choices, the same for the same inputs."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from streams.core.decide import decide
from streams.core.events import TaskDispatched
from streams.core.placement import (
    BusyThresholds,
    HostSelector,
    WorkerView,
    choose_worker,
    has_free_slot,
)
from tests.core.builders import NOW, dag, empty, only, start

S = HostSelector


def view(worker_id: str, selector: S = S.IDLE_FIRST, **kw: object) -> WorkerView:
    return replace(WorkerView(worker_id, "default", 4, 4, selector=selector), **kw)  # type: ignore[arg-type]


def pick(*ws: WorkerView, key: str = "i/a/1", assigned: dict[str, int] | None = None) -> str:
    chosen = choose_worker({"default": list(ws)}, "default", key, assigned or {})
    assert chosen is not None
    return chosen.worker_id


def test_idle_first_counts_cpu_and_memory_load_not_only_free_slots() -> None:
    hot = view("hot", cpu=0.95, memory=0.9)
    cool = view("cool", cpu=0.05, memory=0.2)

    assert pick(hot, cool) == "cool"
    # one slot less free is outweighed by a much lighter machine
    assert pick(hot, replace(cool, slots_free=3)) == "cool"
    # with equal load, the larger share of free slots wins as before
    assert pick(view("a", slots_free=1), view("b", slots_free=3)) == "b"


@pytest.mark.parametrize("selector", list(S))
def test_no_strategy_places_on_a_full_or_busy_worker(selector: S) -> None:
    full = view("full", selector, slots_free=0)
    busy = view("busy", selector, busy=True)
    ok = view("ok", selector, cpu=0.99, memory=0.99)

    for i in range(20):
        assert pick(full, busy, ok, key=f"i/t{i}/1") == "ok"
    assert choose_worker({"default": [full, busy]}, "default", "k", {}) is None
    assert not has_free_slot({"default": [full, busy]}, "default")
    assert has_free_slot({"default": [full, busy, ok]}, "default")


def test_random_spreads_over_every_candidate_and_is_stable_per_attempt() -> None:
    ws = [view(f"w{i}", S.RANDOM) for i in range(4)]

    counts = Counter(pick(*ws, key=f"i/t{n}/1") for n in range(400))

    assert set(counts) == {"w0", "w1", "w2", "w3"}
    assert min(counts.values()) > 60  # ~100 each
    assert pick(*ws, key="i/x/1") == pick(*reversed(ws), key="i/x/1")


def test_round_robin_takes_the_worker_given_an_attempt_least_recently() -> None:
    ws = [view("a", S.ROUND_ROBIN, last_assigned=3), view("b", S.ROUND_ROBIN, last_assigned=1),
          view("c", S.ROUND_ROBIN, last_assigned=2)]  # fmt: skip

    assert pick(*ws) == "b"
    assert pick(*ws, assigned={"b": 1}) == "c"
    assert pick(*ws, assigned={"b": 1, "c": 1}) == "a"


def test_round_robin_cycles_the_dispatches_of_one_decision() -> None:
    live = {"default": [view(w, S.ROUND_ROBIN) for w in ("w1", "w2", "w3")]}
    wf = dag(**{f"t{i}": () for i in range(6)})

    then = decide(empty(), start(wf), NOW, live)

    counts = Counter(e.worker_id for e in only(then, TaskDispatched))
    assert counts == {"w1": 2, "w2": 2, "w3": 2}


def test_weighted_shares_follow_the_host_weights() -> None:
    heavy = view("heavy", S.WEIGHTED, weight=300, slots_free=10_000)
    light = view("light", S.WEIGHTED, weight=100, slots_free=10_000)

    counts = Counter(pick(heavy, light, key=f"i/t{n}/1") for n in range(2000))

    assert 0.70 < counts["heavy"] / 2000 < 0.80  # 3 in 4


def test_the_busy_thresholds_are_dolphinschedulers_rule_and_off_when_unset() -> None:
    limits = BusyThresholds(cpu=0.7, memory=0.7)

    assert limits.busy(0.71, 0.1) and limits.busy(0.1, 0.71)
    assert not limits.busy(0.7, 0.7)
    assert not BusyThresholds().busy(1.0, 1.0)
    assert BusyThresholds(memory=0.9).busy(1.0, 0.95) and not BusyThresholds(memory=0.9).busy(
        1.0, 0.5
    )
