"""Schedule operations shared by the HTTP API and the CLI: the five schedule commands sent to
the schedule-commands topic (keyed by schedule id), and reads of the schedule read models.

What can be checked here is checked before anything is sent, and every problem is named
(`InvalidSchedule`: a bad cron, an unknown timezone, end before start, a reserved
parameter...); a workflow or schedule that the read models do not know is `NotFound`. What
depends on the schedule's state in the log (online twice, updating an online schedule) is
decided by the scheduler and ends as a `ScheduleCommandRejected`; `outcome` reads it back.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from api.service import NotFound, Service
from projections import schedule_queries
from projections.pages import Page
from streams.core.errors import TideflowError
from streams.core.schedules.messages import (
    BringScheduleOnline,
    CreateSchedule,
    DeleteSchedule,
    ScheduleCommand,
    TakeScheduleOffline,
    UpdateSchedule,
)
from streams.core.schedules.spec import (
    InvalidSchedule,
    parse_schedule,
    schedule_id_problem,
)

# Schedule actions without a body, by name (DolphinScheduler's online / offline / delete).
ACTIONS: dict[str, type[BringScheduleOnline | TakeScheduleOffline | DeleteSchedule]] = {
    "online": BringScheduleOnline,
    "offline": TakeScheduleOffline,
    "delete": DeleteSchedule,
}
# Columns of the read model a partial update starts from (the spec's fields).
_SPEC_COLUMNS = (
    "workflow_code", "cron", "timezone", "start_time", "end_time", "misfire",
    "catch_up_window_s", "failure_strategy", "workflow_priority", "worker_group",
    "warning_type", "warning_group_id", "params",
)  # fmt: skip


class Refused(TideflowError):
    """The scheduler refused the command (a `ScheduleCommandRejected`)."""

    def __init__(self, outcome: Mapping[str, Any]) -> None:
        super().__init__(f"{outcome['reason']}: {outcome['message']}")
        self.outcome = dict(outcome)


class ScheduleOps:
    def __init__(self, service: Service) -> None:
        self.service = service

    # -- writes ------------------------------------------------------------------------------

    def create(
        self, raw: Mapping[str, Any], schedule_id: str | None = None, online: bool = False,
        by: str = "",
    ) -> dict[str, str]:  # fmt: skip
        """Send `CreateSchedule`. Raises `InvalidSchedule` (every problem named, the id's
        too) or `NotFound` (the workflow is not registered); nothing is sent then."""
        schedule_id = schedule_id or str(uuid.uuid4())
        spec = self._checked(raw, schedule_id)
        command = CreateSchedule(
            command_id=f"create/{schedule_id}/{uuid.uuid4()}", schedule_id=schedule_id,
            spec=spec, online=online, requested_by=by, at=datetime.now(UTC),
        )  # fmt: skip
        return self._send(command)

    def update(self, schedule_id: str, changes: Mapping[str, Any], by: str = "") -> dict[str, str]:
        """Send `UpdateSchedule` with the current definition changed by `changes` (only the
        fields given change). `NotFound` for an unknown schedule or workflow."""
        current = self.schedule(schedule_id)
        raw = {c: current[c] for c in _SPEC_COLUMNS if current.get(c) is not None}
        spec = self._checked({**raw, **changes}, schedule_id)
        command = UpdateSchedule(
            command_id=f"update/{schedule_id}/{uuid.uuid4()}", schedule_id=schedule_id,
            spec=spec, requested_by=by, at=datetime.now(UTC),
        )  # fmt: skip
        return self._send(command)

    def act(self, schedule_id: str, action: str) -> dict[str, str]:
        """online, offline or delete; `NotFound` for a schedule the read models do not show."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
        self.schedule(schedule_id)
        command = ACTIONS[action](
            command_id=f"{action}/{schedule_id}/{uuid.uuid4()}", schedule_id=schedule_id,
            at=datetime.now(UTC),
        )  # fmt: skip
        return self._send(command)

    def _checked(self, raw: Mapping[str, Any], schedule_id: str) -> Any:
        problem = schedule_id_problem(schedule_id)
        try:
            spec = parse_schedule(raw)
        except InvalidSchedule as exc:
            raise InvalidSchedule(([problem] if problem else []) + exc.problems) from exc
        if problem:
            raise InvalidSchedule([problem])
        self.service.definition(spec.workflow_code)  # NotFound: not registered
        return spec

    def _send(self, command: ScheduleCommand) -> dict[str, str]:
        topics = self.service.topics
        self.service.producer.send(topics.schedule_commands, command.schedule_id, command)
        self.service.producer.flush()
        return {"schedule_id": command.schedule_id, "command_id": command.command_id}

    def outcome(self, command_id: str, wait_s: float = 0.0) -> dict[str, Any] | None:
        """The decision on `command_id` (accepted, or refused with its message), waiting up
        to `wait_s` for a scheduler to decide and the projector to show it."""
        deadline = time.monotonic() + wait_s
        while True:
            with self.service.db() as conn:
                found = schedule_queries.outcome(conn, command_id)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(0.1)

    # -- reads -------------------------------------------------------------------------------

    def schedule(self, schedule_id: str) -> dict[str, Any]:
        with self.service.db() as conn:
            found = schedule_queries.get_schedule(conn, schedule_id)
        if found is None:
            raise NotFound(f"no schedule {schedule_id}")
        return found

    def schedules(
        self, workflow_code: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page:
        with self.service.db() as conn:
            return schedule_queries.schedule_page(conn, workflow_code, limit, cursor)

    def fires(self, schedule_id: str, limit: int = 100, cursor: str | None = None) -> Page:
        self.schedule(schedule_id)
        with self.service.db() as conn:
            return schedule_queries.fire_page(conn, schedule_id, limit, cursor)
