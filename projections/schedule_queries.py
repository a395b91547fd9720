"""Reads of the schedule read models (sql/005_schedules.sql) for the HTTP API and the CLI,
through the contract views; plain JSON-able dicts, as `queries` returns them."""

from __future__ import annotations

from typing import Any

from projections.queries import Conn, fetch_all, fetch_one

_SCHEDULE = "SELECT * FROM v1_schedules"


def list_schedules(
    conn: Conn, workflow_code: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    if workflow_code:
        return fetch_all(
            conn,
            f"{_SCHEDULE} WHERE workflow_code = %s ORDER BY schedule_id LIMIT %s",
            (workflow_code, limit),
        )
    return fetch_all(conn, f"{_SCHEDULE} ORDER BY schedule_id LIMIT %s", (limit,))


def get_schedule(conn: Conn, schedule_id: str) -> dict[str, Any] | None:
    return fetch_one(conn, f"{_SCHEDULE} WHERE schedule_id = %s", (schedule_id,))


def fires(conn: Conn, schedule_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The schedule's fire history, newest fire time first."""
    return fetch_all(
        conn,
        "SELECT * FROM v1_schedule_fires WHERE schedule_id = %s ORDER BY fire_time DESC LIMIT %s",
        (schedule_id, limit),
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
