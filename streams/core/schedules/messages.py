"""Schedule commands (on the schedule-commands topic) and events (on the schedules topic),
both keyed by schedule id; commands in the imperative, events in the past tense, listed in
the same order. Every command carries a `command_id` (idempotency); every event names its
cause. Pure records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from streams.core.schedules.spec import ScheduleSpec


class ScheduleReason(StrEnum):
    """Why a schedule command was refused."""

    NOT_FOUND = "NOT_FOUND"  # no such schedule, or the workflow it names is not registered
    ALREADY_EXISTS = "ALREADY_EXISTS"  # a create for a schedule id that is taken
    INVALID_STATE = "INVALID_STATE"  # online / offline / deleted does not allow it
    INVALID_SCHEDULE = "INVALID_SCHEDULE"  # a bad cron, timezone, time range or value


# -- commands -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateSchedule:
    """A new schedule, OFFLINE unless `online` (then it fires from `at` on)."""

    command_id: str
    schedule_id: str
    spec: ScheduleSpec
    online: bool = False
    requested_by: str = ""
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateSchedule:
    """A new definition for an OFFLINE schedule (DolphinScheduler refuses to edit an online one)."""

    command_id: str
    schedule_id: str
    spec: ScheduleSpec
    requested_by: str = ""
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class BringScheduleOnline:
    """ONLINE: fire times after `at` fire; nothing in the past is back-filled."""

    command_id: str
    schedule_id: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class TakeScheduleOffline:
    command_id: str
    schedule_id: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteSchedule:
    """An OFFLINE schedule ends for good; its id is not reused."""

    command_id: str
    schedule_id: str
    at: datetime


ScheduleCommand = (
    CreateSchedule | UpdateSchedule | BringScheduleOnline | TakeScheduleOffline | DeleteSchedule
)
SCHEDULE_COMMAND_TYPES: tuple[type[ScheduleCommand], ...] = (
    CreateSchedule,
    UpdateSchedule,
    BringScheduleOnline,
    TakeScheduleOffline,
    DeleteSchedule,
)

# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleCreated:
    schedule_id: str
    spec: ScheduleSpec
    requested_by: str = ""
    cause: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleUpdated:
    schedule_id: str
    spec: ScheduleSpec
    requested_by: str = ""
    cause: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleBroughtOnline:
    """Fire times after `at` fire (the schedule is armed from now); `next_fire_time` is the
    first of them (None: none is left before the end time)."""

    schedule_id: str
    next_fire_time: datetime | None = None
    cause: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleTakenOffline:
    schedule_id: str
    cause: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleDeleted:
    schedule_id: str
    cause: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleFired:
    """A fire time was fired: `StartWorkflow` for `instance_id` (derived from the schedule
    and the fire time, so firing the same time again starts nothing new) was sent before
    this was appended. `at` is when it fired; `at - fire_time` is its lateness."""

    schedule_id: str
    workflow_code: str
    fire_time: datetime
    instance_id: str
    command_id: str
    next_fire_time: datetime | None = None  # the cron's next time after this one, if any
    cause: str  # the fire id: schedule and fire time
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleCommandRejected:
    """A refused schedule command: what was expected and what was found."""

    schedule_id: str
    command_id: str
    command_type: str
    reason: ScheduleReason
    message: str
    at: datetime


ScheduleEvent = (
    ScheduleCreated
    | ScheduleUpdated
    | ScheduleBroughtOnline
    | ScheduleTakenOffline
    | ScheduleDeleted
    | ScheduleFired
    | ScheduleCommandRejected
)
SCHEDULE_EVENT_TYPES: tuple[type[ScheduleEvent], ...] = (
    ScheduleCreated,
    ScheduleUpdated,
    ScheduleBroughtOnline,
    ScheduleTakenOffline,
    ScheduleDeleted,
    ScheduleFired,
    ScheduleCommandRejected,
)
