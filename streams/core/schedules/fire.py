"""The fire rule (pure): which fire times of a schedule are due now, and what firing one
records and sends.

Due fire times lie in (after, until], oldest first, where
* `after` is the latest of: the last fire time in the log, the moment the schedule was last
  brought online (nothing before it is back-filled; DolphinScheduler clamps a re-armed
  schedule's start to now the same way), and just before its start time (inclusive);
* `until` is the earlier of now and the end time (inclusive);
* a missed time older than the catch-up window (`now - catch_up_window_s`) is not fired:
  after long downtime only the window is caught up, as Quartz drops misfires past its
  threshold;
* with `Misfire.LATEST` only the newest due time fires; with `Misfire.ALL` every one, oldest
  first (at most `limit` per call; the next call goes on from the last one fired).

A fire time's instance id and command id derive from (schedule, fire time), so firing the
same time twice (a restart, two schedulers in a takeover, a zombie) starts one instance.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from streams.core.commands import StartWorkflow
from streams.core.definition import WorkflowDef
from streams.core.ids import scheduled_instance_id
from streams.core.schedules.messages import ScheduleFired
from streams.core.schedules.spec import Misfire, run_settings
from streams.core.schedules.state import ScheduleState

FIRE_LIMIT: Final = 1000  # fire times one call returns
_JUST_BEFORE: Final = timedelta(microseconds=1)


def due_fire_times(s: ScheduleState, now: datetime, limit: int = FIRE_LIMIT) -> list[datetime]:
    """The fire times of `s` due at `now`, oldest first (see the module docstring)."""
    if s.spec is None or not s.online or s.deleted or s.armed_at is None:
        return []
    spec = s.spec
    after = s.armed_at
    if s.last_fire_time is not None:
        after = max(after, s.last_fire_time)
    if spec.start_time is not None:
        after = max(after, spec.start_time - _JUST_BEFORE)
    after = max(after, now - timedelta(seconds=spec.catch_up_window_s) - _JUST_BEFORE)
    until = now if spec.end_time is None else min(now, spec.end_time)
    if until <= after:
        return []
    cron = spec.parsed_cron()
    if spec.misfire is Misfire.LATEST:
        times = list(cron.fire_times(after, until=until))
        return times[-1:]
    return list(cron.fire_times(after, until=until, limit=limit))


def first_pending(s: ScheduleState) -> datetime | None:
    """The first fire time not fired yet, however old (None: nothing will fire): nothing is
    due before it, so a runtime need not look at the schedule until then."""
    if s.spec is None or not s.online or s.deleted or s.armed_at is None:
        return None
    after = s.armed_at
    if s.last_fire_time is not None:
        after = max(after, s.last_fire_time)
    if s.spec.start_time is not None:
        after = max(after, s.spec.start_time - _JUST_BEFORE)
    for at in s.spec.parsed_cron().fire_times(after, until=s.spec.end_time, limit=1):
        return at
    return None


def next_fire_time(s: ScheduleState, now: datetime) -> datetime | None:
    """The first fire time after `now` (None when offline, deleted or past its end)."""
    if s.spec is None or not s.online or s.deleted:
        return None
    after = now
    if s.last_fire_time is not None:
        after = max(after, s.last_fire_time)
    if s.spec.start_time is not None:
        after = max(after, s.spec.start_time - _JUST_BEFORE)
    for at in s.spec.parsed_cron().fire_times(after, until=s.spec.end_time, limit=1):
        return at.astimezone(UTC)
    return None


def fire_id(schedule_id: str, fire_time: datetime) -> str:
    """The command id of a fire time's start (and the cause of its `ScheduleFired`)."""
    return f"schedule/{schedule_id}@{fire_time.astimezone(UTC).isoformat()}"


def fire(
    s: ScheduleState, fire_time: datetime, workflow: WorkflowDef, now: datetime
) -> tuple[StartWorkflow, ScheduleFired]:
    """The start a fire time sends (the schedule's run settings applied to the definition,
    `schedule_time` = the fire time) and the fact recorded after it was sent."""
    assert s.spec is not None
    instance_id = scheduled_instance_id(s.schedule_id, fire_time)
    command_id = fire_id(s.schedule_id, fire_time)
    at_utc = fire_time.astimezone(UTC)
    start = StartWorkflow(
        command_id=command_id,
        instance_id=instance_id,
        workflow=run_settings(workflow, s.spec),
        params=dict(s.spec.params),
        requested_by=f"schedule/{s.schedule_id}",
        at=now,
        schedule_time=at_utc,
        priority=s.spec.workflow_priority,
    )
    following = s.spec.parsed_cron().fire_times(fire_time, until=s.spec.end_time, limit=1)
    fired = ScheduleFired(
        schedule_id=s.schedule_id,
        workflow_code=s.spec.workflow_code,
        fire_time=at_utc,
        instance_id=instance_id,
        command_id=command_id,
        next_fire_time=next((t.astimezone(UTC) for t in following), None),
        cause=command_id,
        at=now,
    )
    return start, fired
