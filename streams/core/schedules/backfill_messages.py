"""Backfill commands (on the schedule-commands topic) and facts (on the schedules topic),
both keyed by backfill id, so one scheduler partition owns a backfill as it owns a schedule.
Commands in the imperative, events in the past tense, listed in the same order; every event
names its cause. Pure records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from streams.core.schedules.backfill import BackfillSpec
from streams.core.schedules.messages import ScheduleReason

# -- commands -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestBackfill:
    """COMPLEMENT_DATA (5): run `spec.workflow_code` once per date of `spec`."""

    command_id: str
    backfill_id: str
    spec: BackfillSpec
    requested_by: str = ""
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class StopBackfill:
    """No date starts any more; instances already running run to their end."""

    command_id: str
    backfill_id: str
    at: datetime


BackfillCommand = RequestBackfill | StopBackfill
BACKFILL_COMMAND_TYPES: tuple[type[BackfillCommand], ...] = (RequestBackfill, StopBackfill)

# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillRequested:
    """The request, accepted: `dates` is its expansion, in run order (never expanded again)."""

    backfill_id: str
    spec: BackfillSpec
    dates: tuple[datetime, ...]
    requested_by: str = ""
    cause: str  # the request's command id: each date's ids derive from it
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillDateStarted:
    """`StartWorkflow` for `instance_id` (schedule_time = `date`) was sent before this was
    appended; both ids derive from (request command id, date)."""

    backfill_id: str
    date: datetime
    instance_id: str
    command_id: str
    cause: str  # the start's command id
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillDateEnded:
    """A date's instance ended: `state` is SUCCESS, FAILURE or STOP (its first end counts)."""

    backfill_id: str
    date: datetime
    instance_id: str
    state: str
    cause: str  # the instance's end event: "<instance id>/<state>"
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillStopped:
    backfill_id: str
    cause: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillFinished:
    """Every date ended (SUCCESS when every one succeeded), or a SERIAL chain ended at a
    date that did not succeed (FAILURE)."""

    backfill_id: str
    state: str
    cause: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillCommandRejected:
    """A refused backfill command: what was expected and what was found."""

    backfill_id: str
    command_id: str
    command_type: str
    reason: ScheduleReason
    message: str
    at: datetime


BackfillEvent = (
    BackfillRequested
    | BackfillDateStarted
    | BackfillDateEnded
    | BackfillStopped
    | BackfillFinished
    | BackfillCommandRejected
)
BACKFILL_EVENT_TYPES: tuple[type[BackfillEvent], ...] = (
    BackfillRequested,
    BackfillDateStarted,
    BackfillDateEnded,
    BackfillStopped,
    BackfillFinished,
    BackfillCommandRejected,
)
