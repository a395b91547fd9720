"""Golden logs of the scheduler role: a schedule's story (created online, fires, a catch-up
after downtime, a fire time fired twice, offline and online again with nothing back-filled)
and a serial backfill's story (a refused request, three dates started one after another as
their instances end, an end seen twice).

Each step is one input of the scheduler's decisions with everything it reads: a command (its
Avro bytes), a tick (the time), or an instance's end (instance id and state, as the scheduler
reads it from the events topic). What the step wrote is recorded as Avro bytes: the facts on
the schedules topic and the `StartWorkflow` commands sent. The workflow definition the fires
read is recorded too (`WorkflowDefinitionRegistered`, as on the definitions topic).

`python -m tests.golden.record` writes them with the other golden logs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from projections.handlers import jsonable
from schemas import serde
from streams.core.commands import StartWorkflow
from streams.core.events import WorkflowDefinitionRegistered
from streams.core.schedules import backfill_flow
from streams.core.schedules.backfill import BackfillSpec, RunMode, date_instance_id
from streams.core.schedules.backfill_flow import BackfillState
from streams.core.schedules.backfill_messages import (
    BackfillDateStarted,
    RequestBackfill,
    StopBackfill,
)
from streams.core.schedules.decide import decide as decide_schedule
from streams.core.schedules.fire import due_fire_times, fire
from streams.core.schedules.messages import (
    BringScheduleOnline,
    CreateSchedule,
    TakeScheduleOffline,
)
from streams.core.schedules.spec import ScheduleSpec
from streams.core.schedules.state import ScheduleState
from streams.core.schedules.state import evolve as evolve_schedule
from tests.core.builders import chain

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SID = "every-10s"
BID = "bf-nov"
WORKFLOW = replace(chain("extract", "load"), code="etl")
DEFINITION = WorkflowDefinitionRegistered(
    workflow=WORKFLOW, content_hash="golden", registered_by="golden", at=T0
)
WORKFLOWS = frozenset({WORKFLOW.code})


@dataclass(frozen=True, slots=True)
class Input:
    """One input of a scheduler decision: a command, a tick at `at`, or an instance's end."""

    at: datetime
    command: Any = None
    ended: tuple[str, str] | None = None  # (instance id, end state)


def _s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def schedule_inputs() -> list[Input]:
    spec = ScheduleSpec(workflow_code="etl", cron="*/10 * * * * ? *", catch_up_window_s=60)
    create = CreateSchedule(command_id="c1", schedule_id=SID, spec=spec, online=True, at=_s(1))
    return [
        Input(_s(1), command=create),
        Input(_s(1), command=replace(create, command_id="c2")),  # refused: exists
        Input(_s(10)),  # fires 12:00:10
        Input(_s(10.5)),  # nothing due
        Input(_s(45)),  # down from 10 s to 45 s: 20, 30, 40 fire, oldest first
        Input(_s(45)),  # a restarted scheduler fires nothing twice
        Input(_s(46), command=TakeScheduleOffline(command_id="off", schedule_id=SID, at=_s(46))),
        Input(_s(46), command=TakeScheduleOffline(command_id="off2", schedule_id=SID, at=_s(46))),
        Input(_s(95), command=BringScheduleOnline(command_id="on", schedule_id=SID, at=_s(95))),
        Input(_s(101)),  # online from 95 s: 100 fires, nothing of 50..90 is back-filled
    ]


def backfill_inputs() -> list[Input]:
    dates = tuple(datetime(2026, 11, d, tzinfo=UTC) for d in (1, 2, 3))
    spec = BackfillSpec(workflow_code="etl", dates=dates, run_mode=RunMode.SERIAL)
    request = RequestBackfill(command_id="req", backfill_id=BID, spec=spec, at=_s(0))
    bad = RequestBackfill(
        command_id="bad", backfill_id=BID, spec=replace(spec, workflow_code="nope"), at=_s(0)
    )
    first = date_instance_id("req", dates[2])  # DESC: the latest date first
    second = date_instance_id("req", dates[1])
    third = date_instance_id("req", dates[0])
    return [
        Input(_s(0), command=request),
        Input(_s(0), command=request),  # redelivered: nothing
        Input(_s(0), command=bad),  # refused: the backfill exists
        Input(_s(30), ended=(first, "SUCCESS")),
        Input(_s(30), ended=(first, "SUCCESS")),  # the same end read twice
        Input(_s(60), ended=(second, "SUCCESS")),
        Input(_s(61), command=StopBackfill(command_id="stop", backfill_id=BID, at=_s(61))),
        Input(_s(90), ended=(third, "FAILURE")),
        Input(_s(91), command=StopBackfill(command_id="stop2", backfill_id=BID, at=_s(91))),
    ]


def decide_schedule_input(state: ScheduleState, step: Input) -> list[Any]:
    """The facts and starts the schedule's input writes (starts first, as the role sends)."""
    if step.command is not None:
        return list(decide_schedule(state, step.command, step.at, WORKFLOWS))
    out: list[Any] = []
    fired = []
    for fire_time in due_fire_times(state, step.at):
        start, event = fire(state, fire_time, WORKFLOW, step.at)
        out.append(start)
        fired.append(event)
    return out + fired


def decide_backfill_input(state: BackfillState, step: Input) -> list[Any]:
    if step.command is not None:
        facts = backfill_flow.decide(state, step.command, step.at, WORKFLOWS)
    else:
        assert step.ended is not None
        facts = backfill_flow.instance_ended(state, *step.ended, step.at)
    out: list[Any] = []
    for fact in facts:
        out.append(fact)
        state = backfill_flow.evolve(state, fact)
        if isinstance(fact, BackfillDateStarted):
            out.append(backfill_flow.start_for(state, fact, WORKFLOW))
    return out


def _fold_schedule(state: ScheduleState, written: list[Any]) -> ScheduleState:
    for record in written:
        if not isinstance(record, StartWorkflow):
            state = evolve_schedule(state, record)
    return state


def _fold_backfill(state: BackfillState, written: list[Any]) -> BackfillState:
    for record in written:
        if not isinstance(record, StartWorkflow):
            state = backfill_flow.evolve(state, record)
    return state


@dataclass(frozen=True, slots=True)
class Story:
    name: str
    inputs: Callable[[], list[Input]]
    empty: Callable[[], Any]
    decide: Callable[[Any, Input], list[Any]]
    fold: Callable[[Any, list[Any]], Any]
    summary: Callable[[Any], dict[str, Any]]


def _schedule_summary(s: ScheduleState) -> dict[str, Any]:
    last = s.last_fire_time.isoformat() if s.last_fire_time else None
    return {"status": s.status, "fires": s.fires, "last_fire_time": last}


def _backfill_summary(s: BackfillState) -> dict[str, Any]:
    return {
        "status": s.status,
        "started": len(s.started),
        "ended": dict(sorted(s.ended.items())),
    }


STORIES = {
    story.name: story
    for story in (
        Story(
            "schedule_fires",
            schedule_inputs,
            lambda: ScheduleState(schedule_id=SID),
            decide_schedule_input,
            _fold_schedule,
            _schedule_summary,
        ),
        Story(
            "backfill_serial",
            backfill_inputs,
            lambda: BackfillState(backfill_id=BID),
            decide_backfill_input,
            _fold_backfill,
            _backfill_summary,
        ),
    )
}


def rendered(record: Any) -> dict[str, Any]:
    """A record as a golden log holds it: its Avro bytes beside a readable rendering."""
    return {
        "type": type(record).__name__,
        "avro": serde.encode(record).hex(),
        "record": jsonable(record),
    }


def document(story: Story) -> dict[str, Any]:
    state = story.empty()
    steps = []
    for step in story.inputs():
        written = story.decide(state, step)
        entry: dict[str, Any] = {"at": step.at.isoformat()}
        if step.command is not None:
            entry["command"] = rendered(step.command)
        elif step.ended is not None:
            entry["ended"] = list(step.ended)
        else:
            entry["tick"] = True
        entry["written"] = [rendered(r) for r in written]
        steps.append(entry)
        state = story.fold(state, written)
    return {
        "scenario": story.name,
        "definition": rendered(DEFINITION),
        "steps": steps,
        "folds_to": story.summary(state),
    }
