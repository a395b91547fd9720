"""Deciding schedule commands (pure): idempotency first, then guard clauses, then events.

A refusal is a `ScheduleCommandRejected` saying what was expected and what was found
("expected OFFLINE, found ONLINE"). The registered workflows are data handed in (codes the
scheduler has read from the definitions topic), as a master is handed the live workers.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from streams.core.schedules.messages import (
    BringScheduleOnline,
    CreateSchedule,
    DeleteSchedule,
    ScheduleBroughtOnline,
    ScheduleCommand,
    ScheduleCommandRejected,
    ScheduleCreated,
    ScheduleDeleted,
    ScheduleEvent,
    ScheduleReason,
    ScheduleTakenOffline,
    ScheduleUpdated,
    TakeScheduleOffline,
    UpdateSchedule,
)
from streams.core.schedules.spec import ScheduleSpec, schedule_id_problem, schedule_problems
from streams.core.schedules.state import ScheduleState

_JUST_BEFORE: Final = timedelta(microseconds=1)  # a fire at the start time itself fires


def reject(
    c: ScheduleCommand, reason: ScheduleReason, now: datetime, message: str
) -> ScheduleCommandRejected:
    return ScheduleCommandRejected(
        schedule_id=c.schedule_id,
        command_id=c.command_id,
        command_type=type(c).__name__,
        reason=reason,
        message=message,
        at=now,
    )


def _spec_refusal(
    c: CreateSchedule | UpdateSchedule,
    spec: ScheduleSpec,
    now: datetime,
    workflows: Collection[str],
) -> ScheduleCommandRejected | None:
    problems = schedule_problems(spec)
    id_problem = schedule_id_problem(c.schedule_id)
    if id_problem:
        problems.insert(0, id_problem)
    if problems:
        return reject(c, ScheduleReason.INVALID_SCHEDULE, now, "; ".join(problems))
    if spec.workflow_code not in workflows:
        return _unknown_workflow(c, spec.workflow_code, now)
    return None


def _unknown_workflow(c: ScheduleCommand, code: str, now: datetime) -> ScheduleCommandRejected:
    return reject(
        c, ScheduleReason.NOT_FOUND, now, f"expected workflow {code} registered, found none"
    )


def _ended(c: ScheduleCommand, spec: ScheduleSpec, now: datetime) -> ScheduleCommandRejected | None:
    if spec.end_time is not None and spec.end_time <= now:
        return reject(
            c,
            ScheduleReason.INVALID_STATE,
            now,
            f"expected an end time after now ({now.isoformat()}), found "
            f"{spec.end_time.isoformat()}: the schedule would never fire",
        )
    return None


def create_schedule(
    s: ScheduleState, c: CreateSchedule, now: datetime, workflows: Collection[str]
) -> list[ScheduleEvent]:
    if c.command_id in s.applied:
        return []
    if s.exists:
        return [
            reject(
                c,
                ScheduleReason.ALREADY_EXISTS,
                now,
                f"expected no schedule {c.schedule_id}, found one {s.status}",
            )
        ]
    refusal = _spec_refusal(c, c.spec, now, workflows) or (
        _ended(c, c.spec, now) if c.online else None
    )
    if refusal:
        return [refusal]
    created = ScheduleCreated(
        schedule_id=c.schedule_id, spec=c.spec, requested_by=c.requested_by, cause=c.command_id,
        at=now,
    )  # fmt: skip
    if not c.online:
        return [created]
    return [created, _online(c.schedule_id, c.spec, c.command_id, now)]


def _online(schedule_id: str, spec: ScheduleSpec, cause: str, now: datetime) -> ScheduleEvent:
    after = now if spec.start_time is None else max(now, spec.start_time - _JUST_BEFORE)
    first = spec.parsed_cron().fire_times(after, until=spec.end_time, limit=1)
    return ScheduleBroughtOnline(
        schedule_id=schedule_id,
        next_fire_time=next((t.astimezone(UTC) for t in first), None),
        cause=cause,
        at=now,
    )


def _present(s: ScheduleState, c: ScheduleCommand, now: datetime, expected: str) -> Any:
    """A refusal when the schedule is missing, deleted, or not in `expected` state."""
    if not s.exists:
        return reject(
            c, ScheduleReason.NOT_FOUND, now, f"expected schedule {c.schedule_id}, found none"
        )
    if s.status != expected:
        return reject(
            c,
            ScheduleReason.INVALID_STATE,
            now,
            f"expected schedule {c.schedule_id} {expected}, found {s.status}",
        )
    return None


def update_schedule(
    s: ScheduleState, c: UpdateSchedule, now: datetime, workflows: Collection[str]
) -> list[ScheduleEvent]:
    if c.command_id in s.applied:
        return []
    refusal = _present(s, c, now, "OFFLINE") or _spec_refusal(c, c.spec, now, workflows)
    if refusal:
        return [refusal]
    updated = ScheduleUpdated(
        schedule_id=c.schedule_id, spec=c.spec, requested_by=c.requested_by, cause=c.command_id,
        at=now,
    )  # fmt: skip
    return [updated]


def bring_online(
    s: ScheduleState, c: BringScheduleOnline, now: datetime, workflows: Collection[str]
) -> list[ScheduleEvent]:
    if c.command_id in s.applied:
        return []
    refusal = _present(s, c, now, "OFFLINE")
    if refusal:
        return [refusal]
    assert s.spec is not None
    if s.spec.workflow_code not in workflows:
        return [_unknown_workflow(c, s.spec.workflow_code, now)]
    ended = _ended(c, s.spec, now)
    if ended:
        return [ended]
    return [_online(c.schedule_id, s.spec, c.command_id, now)]


def take_offline(
    s: ScheduleState, c: TakeScheduleOffline, now: datetime, _workflows: Collection[str]
) -> list[ScheduleEvent]:
    if c.command_id in s.applied:
        return []
    refusal = _present(s, c, now, "ONLINE")
    if refusal:
        return [refusal]
    return [ScheduleTakenOffline(schedule_id=c.schedule_id, cause=c.command_id, at=now)]


def delete_schedule(
    s: ScheduleState, c: DeleteSchedule, now: datetime, _workflows: Collection[str]
) -> list[ScheduleEvent]:
    if c.command_id in s.applied:
        return []
    refusal = _present(s, c, now, "OFFLINE")
    if refusal:
        return [refusal]
    return [ScheduleDeleted(schedule_id=c.schedule_id, cause=c.command_id, at=now)]


Decider = Callable[[ScheduleState, Any, datetime, Collection[str]], list[ScheduleEvent]]
DECIDERS: Final[Mapping[type, Decider]] = {
    CreateSchedule: create_schedule,
    UpdateSchedule: update_schedule,
    BringScheduleOnline: bring_online,
    TakeScheduleOffline: take_offline,
    DeleteSchedule: delete_schedule,
}


def decide(
    state: ScheduleState, command: ScheduleCommand, now: datetime, workflows: Collection[str]
) -> list[ScheduleEvent]:
    """The events `command` causes on the schedule folded as `state`.

    Args:
        state: the schedule as folded from its events (empty when it does not exist).
        command: the command; one already decided yields no events.
        now: the time of the decision, recorded in the events.
        workflows: the codes of the registered workflows.
    """
    return DECIDERS[type(command)](state, command, now, workflows)
