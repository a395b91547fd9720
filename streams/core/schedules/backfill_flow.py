"""A backfill's state, folded from its facts, and its decisions (pure; no I/O, no clock).

Decisions, each idempotent (a command or an end decided once yields nothing again):
* `RequestBackfill`: refused when the id is taken, the spec has problems (all named) or the
  workflow is not registered; otherwise `BackfillRequested` (the expanded dates) and the
  first starts.
* an instance's end (`instance_ended`): `BackfillDateEnded`, then the next starts. PARALLEL
  keeps up to `parallelism` instances running, a failure does not stop the others, and the
  backfill finishes FAILURE if any date did not succeed. SERIAL starts the next date only
  after SUCCESS; any other end (FAILURE, STOP) ends the chain: `BackfillFinished` FAILURE.
* `StopBackfill`: `BackfillStopped`; no date starts any more, instances already running run
  to their end (their ends are still recorded). Only a RUNNING backfill can be stopped.

How the scheduler learns that an instance ended (decided here, wired in the runtime): it
reads the events topic (a group-less reader, as it reads the definitions) and hands each
`WorkflowSucceeded` / `WorkflowFailed` / `WorkflowStopped` of an instance that a RUNNING
backfill it owns started to `instance_ended`. It stays event driven (nothing is polled from
the read models) and survives a restart without a cursor of its own: a rebuilt partition
folds the backfill facts, then the events topic is read again from the beginning, and an end
already recorded as `BackfillDateEnded` decides nothing (`top_up` also restarts any start a
crash lost between the fact of an end and the start it caused). Only the first end of an
instance counts: a later rerun of that instance does not move the backfill.

A date's start is sent (flushed) before its `BackfillDateStarted` is appended, as a fire is:
its ids derive from (request, date), so a start sent twice makes one instance.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from streams.core.commands import StartWorkflow
from streams.core.definition import WorkflowDef
from streams.core.schedules.backfill import (
    BackfillSpec,
    RunMode,
    backfill_dates,
    backfill_id_problem,
    backfill_problems,
    date_command_id,
    date_instance_id,
)
from streams.core.schedules.backfill_messages import (
    BackfillCommand,
    BackfillCommandRejected,
    BackfillDateEnded,
    BackfillDateStarted,
    BackfillEvent,
    BackfillFinished,
    BackfillRequested,
    BackfillStopped,
    RequestBackfill,
    StopBackfill,
)
from streams.core.schedules.messages import ScheduleReason
from streams.core.schedules.spec import run_settings

ENDED_STATES: Final = frozenset({"SUCCESS", "FAILURE", "STOP"})


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillState:
    backfill_id: str
    spec: BackfillSpec | None = None  # None: never requested
    request_id: str = ""  # the request's command id (each date's ids derive from it)
    dates: tuple[datetime, ...] = ()  # in run order
    started: Mapping[datetime, str] = field(default_factory=dict)  # date -> instance id
    ended: Mapping[str, str] = field(default_factory=dict)  # instance id -> end state
    status: str = "NONE"  # RUNNING, SUCCESS, FAILURE, STOP
    applied: frozenset[str] = frozenset()

    @property
    def running(self) -> int:
        return sum(1 for i in self.started.values() if i not in self.ended)

    def date_of(self, instance_id: str) -> datetime | None:
        return next((d for d, i in self.started.items() if i == instance_id), None)


# -- evolve ---------------------------------------------------------------------------------


def _requested(s: BackfillState, e: BackfillRequested) -> BackfillState:
    return replace(
        s,
        spec=e.spec,
        request_id=e.cause,
        dates=e.dates,
        status="RUNNING",
        applied=s.applied | {e.cause},
    )


def _date_started(s: BackfillState, e: BackfillDateStarted) -> BackfillState:
    if e.date in s.started:
        return s
    return replace(s, started={**s.started, e.date: e.instance_id})


def _date_ended(s: BackfillState, e: BackfillDateEnded) -> BackfillState:
    if e.instance_id in s.ended:
        return s
    return replace(s, ended={**s.ended, e.instance_id: e.state})


def _stopped(s: BackfillState, e: BackfillStopped) -> BackfillState:
    return replace(s, status="STOP", applied=s.applied | {e.cause})


def _finished(s: BackfillState, e: BackfillFinished) -> BackfillState:
    return replace(s, status=e.state)


def _rejected(s: BackfillState, e: BackfillCommandRejected) -> BackfillState:
    return replace(s, applied=s.applied | {e.command_id})


EVOLVERS: Final[Mapping[type, Callable[[BackfillState, Any], BackfillState]]] = {
    BackfillRequested: _requested,
    BackfillDateStarted: _date_started,
    BackfillDateEnded: _date_ended,
    BackfillStopped: _stopped,
    BackfillFinished: _finished,
    BackfillCommandRejected: _rejected,
}


def evolve(state: BackfillState, event: BackfillEvent) -> BackfillState:
    return EVOLVERS[type(event)](state, event)


def fold(backfill_id: str, events: Iterable[BackfillEvent]) -> BackfillState:
    state = BackfillState(backfill_id=backfill_id)
    for event in events:
        state = evolve(state, event)
    return state


# -- decide ---------------------------------------------------------------------------------


def _reject(c: BackfillCommand, reason: ScheduleReason, now: datetime, message: str) -> Any:
    return BackfillCommandRejected(
        backfill_id=c.backfill_id,
        command_id=c.command_id,
        command_type=type(c).__name__,
        reason=reason,
        message=message,
        at=now,
    )


def top_up(s: BackfillState, now: datetime, cause: str = "") -> list[BackfillEvent]:
    """The starts a RUNNING backfill is owed: dates not started yet, in order, while fewer
    than its parallelism (1 when SERIAL) run; `BackfillFinished` once every date ended."""
    if s.status != "RUNNING" or s.spec is None:
        return []
    width = s.spec.parallelism if s.spec.run_mode is RunMode.PARALLEL else 1
    free = width - s.running
    out: list[BackfillEvent] = []
    for date in s.dates:
        if free <= 0:
            break
        if date in s.started:
            continue
        cid = date_command_id(s.request_id, date)
        out.append(
            BackfillDateStarted(
                backfill_id=s.backfill_id,
                date=date,
                instance_id=date_instance_id(s.request_id, date),
                command_id=cid,
                cause=cid,
                at=now,
            )
        )
        free -= 1
    if not out and s.running == 0 and len(s.started) == len(s.dates):
        ok = all(state == "SUCCESS" for state in s.ended.values())
        out.append(
            BackfillFinished(
                backfill_id=s.backfill_id,
                state="SUCCESS" if ok else "FAILURE",
                cause=cause or f"backfill/{s.backfill_id}",
                at=now,
            )
        )
    return out


def request_backfill(
    s: BackfillState, c: RequestBackfill, now: datetime, workflows: Collection[str]
) -> list[BackfillEvent]:
    if c.command_id in s.applied:
        return []
    if s.spec is not None:
        return [
            _reject(
                c,
                ScheduleReason.ALREADY_EXISTS,
                now,
                f"expected no backfill {c.backfill_id}, found one {s.status}",
            )
        ]
    problems = backfill_problems(c.spec)
    id_problem = backfill_id_problem(c.backfill_id)
    if id_problem:
        problems.insert(0, id_problem)
    unknown = c.spec.workflow_code not in workflows
    if unknown:
        problems.append(
            f"workflow_code: expected workflow {c.spec.workflow_code} registered, found none"
        )
    if problems:
        reason = (
            ScheduleReason.NOT_FOUND
            if unknown and len(problems) == 1
            else (ScheduleReason.INVALID_SCHEDULE)
        )
        return [_reject(c, reason, now, "; ".join(problems))]
    requested = BackfillRequested(
        backfill_id=c.backfill_id,
        spec=c.spec,
        dates=backfill_dates(c.spec),
        requested_by=c.requested_by,
        cause=c.command_id,
        at=now,
    )
    return [requested, *top_up(evolve(s, requested), now)]


def stop_backfill(
    s: BackfillState, c: StopBackfill, now: datetime, _workflows: Collection[str]
) -> list[BackfillEvent]:
    if c.command_id in s.applied:
        return []
    if s.spec is None:
        return [
            _reject(
                c, ScheduleReason.NOT_FOUND, now, f"expected backfill {c.backfill_id}, found none"
            )
        ]
    if s.status != "RUNNING":
        return [
            _reject(
                c,
                ScheduleReason.INVALID_STATE,
                now,
                f"expected backfill {c.backfill_id} RUNNING, found {s.status}",
            )
        ]
    return [BackfillStopped(backfill_id=c.backfill_id, cause=c.command_id, at=now)]


DECIDERS: Final[Mapping[type, Callable[..., list[BackfillEvent]]]] = {
    RequestBackfill: request_backfill,
    StopBackfill: stop_backfill,
}


def decide(
    state: BackfillState, command: BackfillCommand, now: datetime, workflows: Collection[str]
) -> list[BackfillEvent]:
    """The events `command` causes on the backfill folded as `state`.

    Args:
        state: the backfill as folded from its facts (empty when it does not exist).
        command: the command; one already decided yields no events.
        now: the time of the decision, recorded in the events.
        workflows: the codes of the registered workflows.
    """
    return DECIDERS[type(command)](state, command, now, workflows)


def instance_ended(
    s: BackfillState, instance_id: str, end_state: str, now: datetime
) -> list[BackfillEvent]:
    """What the end of `instance_id` (SUCCESS, FAILURE or STOP) causes: nothing when it is
    not one of this backfill's instances or its end is recorded already."""
    date = s.date_of(instance_id)
    if date is None or instance_id in s.ended or end_state not in ENDED_STATES:
        return []
    ended = BackfillDateEnded(
        backfill_id=s.backfill_id,
        date=date,
        instance_id=instance_id,
        state=end_state,
        cause=f"{instance_id}/{end_state}",
        at=now,
    )
    after = evolve(s, ended)
    assert s.spec is not None
    if s.status == "RUNNING" and s.spec.run_mode is RunMode.SERIAL and end_state != "SUCCESS":
        return [
            ended,
            BackfillFinished(backfill_id=s.backfill_id, state="FAILURE", cause=ended.cause, at=now),
        ]
    return [ended, *top_up(after, now, ended.cause)]


def start_for(
    s: BackfillState, started: BackfillDateStarted, workflow: WorkflowDef
) -> StartWorkflow:
    """The start a `BackfillDateStarted` stands for: the backfill's run settings applied to
    the workflow's latest definition, `schedule_time` = the date."""
    assert s.spec is not None
    return StartWorkflow(
        command_id=started.command_id,
        instance_id=started.instance_id,
        workflow=run_settings(workflow, s.spec.run_settings()),
        params=dict(s.spec.params),
        requested_by=f"backfill/{s.backfill_id}",
        at=started.at,
        schedule_time=started.date,
        priority=s.spec.workflow_priority,
    )
