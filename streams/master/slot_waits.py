"""Instances with a ready task that found no free slot in its worker group, oldest first.

The master keeps ready tasks (not workers) waiting when a group is full: a worker only ever
holds what it can start, so an acknowledgement deadline never runs out in a worker's queue,
and the next free slot goes to the instance that has waited longest, whichever partition
it is on. Instances already running place their next tasks as their own acks free slots.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

Key = tuple[int, str]  # (partition, instance id)


class SlotWaits:
    def __init__(self) -> None:
        self._by_group: dict[str, dict[Key, None]] = {}  # insertion order = waiting order
        self._groups: dict[Key, frozenset[str]] = {}

    def __len__(self) -> int:
        return len(self._groups)

    def update(self, key: Key, groups: frozenset[str]) -> None:
        """Record the groups `key` now waits on (none: it waits no more). An instance that
        keeps waiting on a group keeps its place in that group's line."""
        before = self._groups.get(key, frozenset())
        if groups == before:
            return
        for group in before - groups:
            line = self._by_group[group]
            del line[key]
            if not line:
                del self._by_group[group]
        for group in groups - before:
            self._by_group.setdefault(group, {})[key] = None
        if groups:
            self._groups[key] = groups
        else:
            del self._groups[key]

    def drop_partition(self, partition: int) -> None:
        for key in [k for k in self._groups if k[0] == partition]:
            self.update(key, frozenset())

    def ready(self, has_free_slot: Callable[[str], bool]) -> Iterator[Key]:
        """Waiting instances in order, per group while it has a free slot. The caller places
        what it can and calls `update` as it goes: the check is made before every yield."""
        for group in list(self._by_group):
            for key in list(self._by_group.get(group, ())):
                if not has_free_slot(group):
                    break
                if key in self._by_group.get(group, ()):
                    yield key
