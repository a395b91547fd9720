"""Instances with a ready task that found no free slot in its worker group, in order: higher
workflow priority first (DolphinScheduler's processInstancePriority, HIGHEST 0 .. LOWEST 4),
then oldest first.

The master keeps ready tasks (not workers) waiting when a group is full: a worker only ever
holds what it can start, so an acknowledgement deadline never runs out in a worker's queue,
and the next free slot goes to the waiting instance of the highest priority that has waited
longest, whichever partition it is on. Instances already running place their next tasks as
their own acks free slots. Task priority orders the tasks within an instance (the core's
dispatch order). A line per group and priority level keeps every update O(1) and the order
a walk over at most five lines, whatever the number of instances.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

Key = tuple[int, str]  # (partition, instance id)
MEDIUM = 2  # `streams.core.enums.Priority.MEDIUM`: DolphinScheduler's default


class SlotWaits:
    def __init__(self) -> None:
        # group -> priority -> line (insertion order = waiting order)
        self._by_group: dict[str, dict[int, dict[Key, None]]] = {}
        self._groups: dict[Key, frozenset[str]] = {}
        self._priority: dict[Key, int] = {}

    def __len__(self) -> int:
        return len(self._groups)

    def update(self, key: Key, groups: frozenset[str], priority: int = MEDIUM) -> None:
        """Record the groups `key` now waits on (none: it waits no more), at `priority`
        (smaller is earlier). An instance that keeps waiting on a group at the same priority
        keeps its place in that group's line."""
        before = self._groups.get(key, frozenset())
        was = self._priority.get(key, priority)
        if groups == before and priority == was:
            return
        for group in before - groups if priority == was else before:
            self._leave(group, was, key)
        for group in groups - before if priority == was else groups:
            self._by_group.setdefault(group, {}).setdefault(priority, {})[key] = None
        if groups:
            self._groups[key] = groups
            self._priority[key] = priority
        else:
            del self._groups[key]
            self._priority.pop(key, None)

    def _leave(self, group: str, priority: int, key: Key) -> None:
        levels = self._by_group[group]
        line = levels[priority]
        del line[key]
        if not line:
            del levels[priority]
            if not levels:
                del self._by_group[group]

    def drop_partition(self, partition: int) -> None:
        for key in [k for k in self._groups if k[0] == partition]:
            self.update(key, frozenset())

    def ready(self, has_free_slot: Callable[[str], bool]) -> Iterator[Key]:
        """Waiting instances in order, per group while it has a free slot. The caller places
        what it can and calls `update` as it goes: the check is made before every yield."""
        for group in list(self._by_group):
            yield from self._ready_in(group, has_free_slot)

    def _ready_in(self, group: str, has_free_slot: Callable[[str], bool]) -> Iterator[Key]:
        for priority in sorted(self._by_group.get(group, {})):
            for key in list(self._by_group.get(group, {}).get(priority, ())):
                if not has_free_slot(group):
                    return
                if key in self._by_group.get(group, {}).get(priority, ()):
                    yield key
