"""A schedule's state, folded from its events: one small evolver per event (pure).

Evolvers never validate: `decide` already did, and the log must always fold. A fire folded
twice (two schedulers during a takeover) changes nothing: the last fire time only grows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from streams.core.schedules.messages import (
    ScheduleBroughtOnline,
    ScheduleCommandRejected,
    ScheduleCreated,
    ScheduleDeleted,
    ScheduleEvent,
    ScheduleFired,
    ScheduleTakenOffline,
    ScheduleUpdated,
)
from streams.core.schedules.spec import ScheduleSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleState:
    schedule_id: str
    spec: ScheduleSpec | None = None  # None: never created
    online: bool = False
    armed_at: datetime | None = None  # when it was last brought online: fires after it
    deleted: bool = False
    last_fire_time: datetime | None = None
    fires: int = 0
    applied: frozenset[str] = frozenset()  # command ids decided (events or a refusal)

    @property
    def exists(self) -> bool:
        return self.spec is not None

    @property
    def status(self) -> str:
        """ONLINE, OFFLINE or DELETED (NONE when it was never created), for messages."""
        if not self.exists:
            return "NONE"
        if self.deleted:
            return "DELETED"
        return "ONLINE" if self.online else "OFFLINE"


def _applied(s: ScheduleState, cause: str) -> frozenset[str]:
    return s.applied | {cause}


def _created(s: ScheduleState, e: ScheduleCreated) -> ScheduleState:
    return replace(s, spec=e.spec, applied=_applied(s, e.cause))


def _updated(s: ScheduleState, e: ScheduleUpdated) -> ScheduleState:
    return replace(s, spec=e.spec, applied=_applied(s, e.cause))


def _online(s: ScheduleState, e: ScheduleBroughtOnline) -> ScheduleState:
    return replace(s, online=True, armed_at=e.at, applied=_applied(s, e.cause))


def _offline(s: ScheduleState, e: ScheduleTakenOffline) -> ScheduleState:
    return replace(s, online=False, applied=_applied(s, e.cause))


def _deleted(s: ScheduleState, e: ScheduleDeleted) -> ScheduleState:
    return replace(s, online=False, deleted=True, applied=_applied(s, e.cause))


def _fired(s: ScheduleState, e: ScheduleFired) -> ScheduleState:
    if s.last_fire_time is not None and e.fire_time <= s.last_fire_time:
        return s  # fired again (restart, takeover, zombie): already counted
    return replace(s, last_fire_time=e.fire_time, fires=s.fires + 1)


def _rejected(s: ScheduleState, e: ScheduleCommandRejected) -> ScheduleState:
    return replace(s, applied=_applied(s, e.command_id))


Evolver = Callable[[ScheduleState, Any], ScheduleState]
EVOLVERS: Final[Mapping[type, Evolver]] = {
    ScheduleCreated: _created,
    ScheduleUpdated: _updated,
    ScheduleBroughtOnline: _online,
    ScheduleTakenOffline: _offline,
    ScheduleDeleted: _deleted,
    ScheduleFired: _fired,
    ScheduleCommandRejected: _rejected,
}


def evolve(state: ScheduleState, event: ScheduleEvent) -> ScheduleState:
    return EVOLVERS[type(event)](state, event)


def fold(schedule_id: str, events: Iterable[ScheduleEvent]) -> ScheduleState:
    state = ScheduleState(schedule_id=schedule_id)
    for event in events:
        state = evolve(state, event)
    return state
