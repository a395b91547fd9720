"""Backfill operations shared by the HTTP API and the CLI: `RequestBackfill` and
`StopBackfill` sent to the schedule-commands topic (keyed by backfill id), and reads of the
backfill read models.

What can be checked here is checked before anything is sent, and every problem is named
(`InvalidBackfill`: end before start, a list over 100 dates, parallelism below 1...); an
unregistered workflow or an unknown backfill is `NotFound`. The crons the dates are expanded
by are the workflow's ONLINE schedules as the read model shows them now, put in the command
(`streams.core.schedules.backfill`); the scheduler decides the rest (an id taken, stopping a
finished backfill) and a refusal ends as a `BackfillCommandRejected`; `outcome` reads it back.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from api.service import NotFound, Service
from projections import backfill_queries
from streams.core.schedules.backfill import (
    BackfillCron,
    InvalidBackfill,
    backfill_id_problem,
    backfill_problems,
    parse_backfill,
)
from streams.core.schedules.backfill_messages import BackfillCommand, RequestBackfill, StopBackfill


class BackfillOps:
    def __init__(self, service: Service) -> None:
        self.service = service

    def create(
        self, raw: Mapping[str, Any], backfill_id: str | None = None, by: str = ""
    ) -> dict[str, str]:
        """Send `RequestBackfill`. Raises `InvalidBackfill` (every problem named, the id's
        too) or `NotFound` (the workflow is not registered); nothing is sent then."""
        backfill_id = backfill_id or str(uuid.uuid4())
        problem = backfill_id_problem(backfill_id)
        try:
            spec = parse_backfill(raw)
        except InvalidBackfill as exc:
            raise InvalidBackfill(([problem] if problem else []) + exc.problems) from exc
        if problem:
            raise InvalidBackfill([problem])
        self.service.definition(spec.workflow_code)  # NotFound: not registered
        if not spec.crons:
            with self.service.db() as conn:
                rows = backfill_queries.online_crons(conn, spec.workflow_code)
            crons = tuple(BackfillCron(cron=r["cron"], timezone=r["timezone"]) for r in rows)
            spec = replace(spec, crons=crons)
            problems = backfill_problems(spec)
            if problems:
                raise InvalidBackfill(problems)
        command = RequestBackfill(
            command_id=f"backfill/{backfill_id}/{uuid.uuid4()}", backfill_id=backfill_id,
            spec=spec, requested_by=by, at=datetime.now(UTC),
        )  # fmt: skip
        return self.send(command)

    def stop(self, backfill_id: str) -> dict[str, str]:
        """Send `StopBackfill`; `NotFound` for a backfill the read models do not show."""
        self.backfill(backfill_id)
        command = StopBackfill(
            command_id=f"stop/{backfill_id}/{uuid.uuid4()}", backfill_id=backfill_id,
            at=datetime.now(UTC),
        )  # fmt: skip
        return self.send(command)

    def send(self, command: BackfillCommand) -> dict[str, str]:
        """Send `command` as it is (a producer resending one sends the same command id)."""
        topics = self.service.topics
        self.service.producer.send(topics.schedule_commands, command.backfill_id, command)
        self.service.producer.flush()
        return {"backfill_id": command.backfill_id, "command_id": command.command_id}

    def outcome(self, command_id: str, wait_s: float = 0.0) -> dict[str, Any] | None:
        """The decision on `command_id` (accepted, or refused with its message), waiting up
        to `wait_s` for a scheduler to decide and the projector to show it."""
        deadline = time.monotonic() + wait_s
        while True:
            with self.service.db() as conn:
                found = backfill_queries.outcome(conn, command_id)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(0.1)

    def backfill(self, backfill_id: str) -> dict[str, Any]:
        """The backfill, its progress and its dates in run order."""
        with self.service.db() as conn:
            found = backfill_queries.get_backfill(conn, backfill_id)
        if found is None:
            raise NotFound(f"no backfill {backfill_id}")
        return found
