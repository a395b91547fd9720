"""Handlers of the backfill facts on the schedules topic: idempotent writes into `backfills`,
`backfill_dates` and `backfill_rejections` (sql/008_backfills.sql). They never read a clock
and converge when a record, or a log suffix, is applied again: a date started twice is one
row, and only the first end of a date's instance is kept."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from psycopg.types.json import Jsonb

from projections.changes import Changes
from streams.core.schedules.backfill import backfill_to_dict
from streams.core.schedules.backfill_messages import (
    BackfillCommandRejected,
    BackfillDateEnded,
    BackfillDateStarted,
    BackfillFinished,
    BackfillRequested,
    BackfillStopped,
)


def _requested(w: Changes, e: BackfillRequested, _meta: Any) -> None:
    row = {
        "backfill_id": e.backfill_id,
        "workflow_code": e.spec.workflow_code,
        "run_mode": e.spec.run_mode.value,
        "execution_order": e.spec.order.value,
        "parallelism": e.spec.parallelism,
        "spec": Jsonb(backfill_to_dict(e.spec)),
        "dates_total": len(e.dates),
        "state": "RUNNING",
        "requested_by": e.requested_by.replace("\x00", ""),
        "command_id": e.cause,
        "requested_at": e.at,
        "updated_at": e.at,
    }
    cols = ", ".join(f'"{c}"' for c in row)
    values = ", ".join(f"%({c})s" for c in row)
    w.execute(
        f"INSERT INTO backfills ({cols}) VALUES ({values}) ON CONFLICT (backfill_id) DO NOTHING",
        row,
    )
    for position, date in enumerate(e.dates):
        w.execute(
            "INSERT INTO backfill_dates (backfill_id, date, position, state)"
            " VALUES (%(id)s, %(date)s, %(position)s, 'WAITING')"
            " ON CONFLICT (backfill_id, date) DO NOTHING",
            {"id": e.backfill_id, "date": date, "position": position},
        )


def _date_started(w: Changes, e: BackfillDateStarted, _meta: Any) -> None:
    w.execute(
        "UPDATE backfill_dates SET state = 'RUNNING', instance_id = %(instance)s,"
        " started_at = %(at)s WHERE backfill_id = %(id)s AND date = %(date)s"
        " AND state = 'WAITING'",
        {"instance": e.instance_id, "at": e.at, "id": e.backfill_id, "date": e.date},
    )
    w.execute(
        "UPDATE backfills SET updated_at = greatest(updated_at, %(at)s) WHERE backfill_id = %(id)s",
        {"at": e.at, "id": e.backfill_id},
    )


def _date_ended(w: Changes, e: BackfillDateEnded, _meta: Any) -> None:
    w.execute(
        "UPDATE backfill_dates SET state = %(state)s, instance_id = %(instance)s,"
        " ended_at = %(at)s WHERE backfill_id = %(id)s AND date = %(date)s"
        " AND state IN ('WAITING', 'RUNNING')",
        {
            "state": e.state,
            "instance": e.instance_id,
            "at": e.at,
            "id": e.backfill_id,
            "date": e.date,
        },
    )


def _ended(w: Changes, backfill_id: str, state: str, at: datetime) -> None:
    w.execute(
        "UPDATE backfills SET state = %(state)s, updated_at = %(at)s, finished_at = %(at)s"
        " WHERE backfill_id = %(id)s AND state = 'RUNNING'",
        {"state": state, "at": at, "id": backfill_id},
    )


def _stopped(w: Changes, e: BackfillStopped, _meta: Any) -> None:
    _ended(w, e.backfill_id, "STOP", e.at)


def _finished(w: Changes, e: BackfillFinished, _meta: Any) -> None:
    _ended(w, e.backfill_id, e.state, e.at)


def _rejected(w: Changes, e: BackfillCommandRejected, _meta: Any) -> None:
    w.execute(
        "INSERT INTO backfill_rejections (command_id, backfill_id, command_type, reason, message,"
        " at) VALUES (%(command_id)s, %(id)s, %(type)s, %(reason)s, %(message)s, %(at)s)"
        " ON CONFLICT (command_id) DO NOTHING",
        {
            "command_id": e.command_id,
            "id": e.backfill_id,
            "type": e.command_type,
            "reason": e.reason.value,
            "message": e.message.replace("\x00", ""),
            "at": e.at,
        },
    )


BACKFILL_HANDLERS: Final[Mapping[type, Any]] = {
    BackfillRequested: _requested,
    BackfillDateStarted: _date_started,
    BackfillDateEnded: _date_ended,
    BackfillStopped: _stopped,
    BackfillFinished: _finished,
    BackfillCommandRejected: _rejected,
}
