"""Reads of the schedule read models (sql/005_schedules.sql) for the HTTP API and the CLI,
through the contract views; plain JSON-able dicts, as `queries` returns them."""

from __future__ import annotations

from typing import Any

from projections.pages import Key, Ordering, Page
from projections.queries import Conn, fetch_one, page

_SCHEDULE = "SELECT * FROM v1_schedules"


_SCHEDULES = Ordering((Key("schedule_id", "text"),), False)
_FIRES = Ordering((Key("fire_time", "timestamptz"),), True)


def schedule_page(
    conn: Conn, workflow_code: str | None = None, limit: int = 100, cursor: str | None = None
) -> Page:
    """Schedules by id, of one workflow when given."""
    where, params = (["workflow_code = %s"], [workflow_code]) if workflow_code else ([], [])
    return page(conn, _SCHEDULE, _SCHEDULES, where, params, limit, cursor)


def get_schedule(conn: Conn, schedule_id: str) -> dict[str, Any] | None:
    return fetch_one(conn, f"{_SCHEDULE} WHERE schedule_id = %s", (schedule_id,))


def fire_page(conn: Conn, schedule_id: str, limit: int = 100, cursor: str | None = None) -> Page:
    """The schedule's fire history, newest fire time first."""
    return page(
        conn,
        "SELECT * FROM v1_schedule_fires",
        _FIRES,
        ["schedule_id = %s"],
        [schedule_id],
        limit,
        cursor,
    )


def outcome(conn: Conn, command_id: str) -> dict[str, Any] | None:
    """How a schedule command was decided: its refusal, or the first event it caused; None
    while no scheduler has decided it (or the projector has not shown it yet)."""
    refused = fetch_one(
        conn,
        "SELECT command_type, reason, message, at FROM schedule_rejections WHERE command_id = %s",
        (command_id,),
    )
    if refused is not None:
        return {"accepted": False, **refused}
    event = fetch_one(
        conn,
        "SELECT event_type, at FROM event_archive WHERE topic = 'schedules'"
        " AND payload->>'cause' = %s ORDER BY partition, \"offset\" LIMIT 1",
        (command_id,),
    )
    return None if event is None else {"accepted": True, **event}
