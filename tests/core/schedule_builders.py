"""Builders for schedule tests: a spec, commands and a fold (given / when / then)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from streams.core.schedules.messages import (
    BringScheduleOnline,
    CreateSchedule,
    DeleteSchedule,
    ScheduleEvent,
    TakeScheduleOffline,
    UpdateSchedule,
)
from streams.core.schedules.spec import ScheduleSpec
from streams.core.schedules.state import ScheduleState, fold

SID = "nightly"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WORKFLOWS = frozenset({"etl"})


def spec(**kw: Any) -> ScheduleSpec:
    return replace(ScheduleSpec(workflow_code="etl", cron="*/2 * * * * ? *"), **kw)


def create(cid: str = "c1", online: bool = False, at: datetime = T0, **kw: Any) -> CreateSchedule:
    return CreateSchedule(command_id=cid, schedule_id=SID, spec=spec(**kw), online=online, at=at)


def update(cid: str = "u1", at: datetime = T0, **kw: Any) -> UpdateSchedule:
    return UpdateSchedule(command_id=cid, schedule_id=SID, spec=spec(**kw), at=at)


def online(cid: str = "on1", at: datetime = T0) -> BringScheduleOnline:
    return BringScheduleOnline(command_id=cid, schedule_id=SID, at=at)


def offline(cid: str = "off1", at: datetime = T0) -> TakeScheduleOffline:
    return TakeScheduleOffline(command_id=cid, schedule_id=SID, at=at)


def delete(cid: str = "d1", at: datetime = T0) -> DeleteSchedule:
    return DeleteSchedule(command_id=cid, schedule_id=SID, at=at)


def state(events: list[ScheduleEvent]) -> ScheduleState:
    return fold(SID, events)
