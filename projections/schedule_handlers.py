"""Handlers of the schedules topic: idempotent writes into `schedules`, `schedule_fires` and
`schedule_rejections` (sql/005_schedules.sql). Like every handler they never read a clock
and converge when a record, or a log suffix, is applied again: a fire time fired twice (a
restarted scheduler, two during a takeover) is one row, the first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from psycopg.types.json import Jsonb

from projections.changes import Changes
from streams.core.schedules.messages import (
    ScheduleBroughtOnline,
    ScheduleCommandRejected,
    ScheduleCreated,
    ScheduleDeleted,
    ScheduleFired,
    ScheduleTakenOffline,
    ScheduleUpdated,
)
from streams.core.schedules.spec import ScheduleSpec


def _spec_columns(spec: ScheduleSpec) -> dict[str, Any]:
    return {
        "workflow_code": spec.workflow_code,
        "cron": spec.cron,
        "timezone": spec.timezone,
        "start_time": spec.start_time,
        "end_time": spec.end_time,
        "misfire": spec.misfire.value,
        "catch_up_window_s": spec.catch_up_window_s,
        "failure_strategy": spec.failure_strategy.name,
        "workflow_priority": spec.workflow_priority.name,
        "worker_group": spec.worker_group,
        "warning_type": spec.warning_type.name,
        "warning_group_id": spec.warning_group_id,
        "params": Jsonb(dict(spec.params)),
    }


def _created(w: Changes, e: ScheduleCreated, _meta: Any) -> None:
    row = {
        "schedule_id": e.schedule_id,
        **_spec_columns(e.spec),
        "release_state": "OFFLINE",
        "created_by": e.requested_by.replace("\x00", ""),
        "created_at": e.at,
        "updated_at": e.at,
    }
    cols = ", ".join(f'"{c}"' for c in row)
    values = ", ".join(f"%({c})s" for c in row)
    w.execute(
        f"INSERT INTO schedules ({cols}) VALUES ({values}) ON CONFLICT (schedule_id) DO NOTHING",
        row,
    )


def _updated(w: Changes, e: ScheduleUpdated, _meta: Any) -> None:
    row = {**_spec_columns(e.spec), "updated_at": e.at}
    sets = ", ".join(f'"{c}" = %({c})s' for c in row)
    params = {**row, "id": e.schedule_id}
    w.execute(f"UPDATE schedules SET {sets} WHERE schedule_id = %(id)s", params)


def _release(w: Changes, schedule_id: str, state: str, at: Any, **extra: Any) -> None:
    row = {"release_state": state, "updated_at": at, "next_fire_time": None, **extra}
    sets = ", ".join(f'"{c}" = %({c})s' for c in row)
    w.execute(f"UPDATE schedules SET {sets} WHERE schedule_id = %(id)s", {**row, "id": schedule_id})


def _online(w: Changes, e: ScheduleBroughtOnline, _meta: Any) -> None:
    _release(w, e.schedule_id, "ONLINE", e.at, online_since=e.at, next_fire_time=e.next_fire_time)


def _offline(w: Changes, e: ScheduleTakenOffline, _meta: Any) -> None:
    _release(w, e.schedule_id, "OFFLINE", e.at)


def _deleted(w: Changes, e: ScheduleDeleted, _meta: Any) -> None:
    _release(w, e.schedule_id, "DELETED", e.at)


def _fired(w: Changes, e: ScheduleFired, _meta: Any) -> None:
    row = {
        "schedule_id": e.schedule_id,
        "fire_time": e.fire_time,
        "fired_at": e.at,
        "instance_id": e.instance_id,
        "workflow_code": e.workflow_code,
    }
    w.execute(
        "INSERT INTO schedule_fires (schedule_id, fire_time, fired_at, instance_id, workflow_code)"
        " VALUES (%(schedule_id)s, %(fire_time)s, %(fired_at)s, %(instance_id)s,"
        " %(workflow_code)s) ON CONFLICT (schedule_id, fire_time) DO NOTHING",
        row,
    )
    # Only a fire newer than the last one moves the schedule on (a repeat changes nothing).
    w.execute(
        "UPDATE schedules SET last_fire_time = %(fire_time)s,"
        " next_fire_time = CASE WHEN release_state = 'ONLINE' THEN %(next)s END,"
        " fires = (SELECT count(*) FROM schedule_fires f WHERE f.schedule_id = %(id)s)"
        " WHERE schedule_id = %(id)s"
        " AND (last_fire_time IS NULL OR last_fire_time < %(fire_time)s)",
        {"fire_time": e.fire_time, "next": e.next_fire_time, "id": e.schedule_id},
    )


def _rejected(w: Changes, e: ScheduleCommandRejected, _meta: Any) -> None:
    w.execute(
        "INSERT INTO schedule_rejections (command_id, schedule_id, command_type, reason, message,"
        " at) VALUES (%(command_id)s, %(schedule_id)s, %(command_type)s, %(reason)s,"
        " %(message)s, %(at)s) ON CONFLICT (command_id) DO NOTHING",
        {
            "command_id": e.command_id,
            "schedule_id": e.schedule_id,
            "command_type": e.command_type,
            "reason": e.reason.value,
            "message": e.message.replace("\x00", ""),
            "at": e.at,
        },
    )


SCHEDULE_HANDLERS: Final[Mapping[type, Any]] = {
    ScheduleCreated: _created,
    ScheduleUpdated: _updated,
    ScheduleBroughtOnline: _online,
    ScheduleTakenOffline: _offline,
    ScheduleDeleted: _deleted,
    ScheduleFired: _fired,
    ScheduleCommandRejected: _rejected,
}
