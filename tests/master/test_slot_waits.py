"""SlotWaits: instances waiting for a free slot, served oldest first per worker group."""

from __future__ import annotations

from streams.master.slot_waits import SlotWaits

A, B, C = (0, "a"), (1, "b"), (0, "c")


def waits(*entries: tuple[tuple[int, str], set[str]]) -> SlotWaits:
    w = SlotWaits()
    for key, groups in entries:
        w.update(key, frozenset(groups))
    return w


def test_the_longest_waiting_instance_goes_first_across_partitions() -> None:
    w = waits((B, {"default"}), (A, {"default"}), (C, {"default"}))

    assert list(w.ready(lambda g: True)) == [B, A, C]


def test_nothing_is_offered_while_the_group_is_full() -> None:
    w = waits((A, {"gpu"}), (B, {"default"}))

    assert list(w.ready(lambda g: g == "default")) == [B]


def test_offering_stops_as_soon_as_the_group_fills() -> None:
    w = waits((A, {"default"}), (B, {"default"}), (C, {"default"}))
    free = [2]

    def has_free_slot(group: str) -> bool:
        return free[0] > 0

    offered = []
    for key in w.ready(has_free_slot):
        offered.append(key)
        free[0] -= 1
        w.update(key, frozenset())
    assert offered == [A, B]
    assert len(w) == 1


def test_an_instance_still_waiting_keeps_its_place() -> None:
    w = waits((A, {"default"}), (B, {"default"}))

    w.update(A, frozenset({"default"}))
    w.update(A, frozenset({"default", "gpu"}))

    assert list(w.ready(lambda g: g == "default")) == [A, B]


def test_an_instance_placed_or_revoked_waits_no_more() -> None:
    w = waits((A, {"default"}), (B, {"default", "gpu"}), (C, {"gpu"}))

    w.update(A, frozenset())
    w.drop_partition(0)

    assert list(w.ready(lambda g: True)) == [B, B]  # once per group it waits on
    assert len(w) == 1


def test_a_higher_workflow_priority_goes_first_whenever_it_came() -> None:
    w = SlotWaits()
    w.update(A, frozenset({"default"}))  # MEDIUM
    w.update(B, frozenset({"default"}), priority=3)  # LOW
    w.update(C, frozenset({"default"}), priority=0)  # HIGHEST, last to come
    d = (2, "d")
    w.update(d, frozenset({"default"}), priority=0)

    assert list(w.ready(lambda g: True)) == [C, d, A, B]


def test_a_full_group_stops_offering_across_priority_levels() -> None:
    w = SlotWaits()
    w.update(A, frozenset({"default"}), priority=0)
    w.update(B, frozenset({"default"}), priority=4)
    free = [1]

    offered = []
    for key in w.ready(lambda g: free[0] > 0):
        offered.append(key)
        free[0] -= 1
        w.update(key, frozenset())

    assert offered == [A]
    assert list(w.ready(lambda g: True)) == [B]


def test_an_instance_whose_priority_changes_moves_to_the_end_of_its_new_level() -> None:
    w = SlotWaits()
    w.update(A, frozenset({"default"}), priority=1)
    w.update(B, frozenset({"default"}), priority=1)

    w.update(A, frozenset({"default", "gpu"}), priority=1)  # same level: keeps its place
    assert list(w.ready(lambda g: g == "default")) == [A, B]
    w.update(A, frozenset({"default"}), priority=4)
    assert list(w.ready(lambda g: True)) == [B, A]
    w.update(A, frozenset())
    w.update(B, frozenset())
    assert len(w) == 0 and list(w.ready(lambda g: True)) == []
