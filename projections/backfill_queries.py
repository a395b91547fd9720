"""Reads of the backfill read models (sql/008_backfills.sql) for the HTTP API and the CLI,
through the contract views; plain JSON-able dicts, as `queries` returns them."""

from __future__ import annotations

from typing import Any

from projections.queries import Conn, fetch_all, fetch_one


def get_backfill(conn: Conn, backfill_id: str) -> dict[str, Any] | None:
    """The backfill with its dates in run order (None: not projected)."""
    found = fetch_one(conn, "SELECT * FROM v1_backfills WHERE backfill_id = %s", (backfill_id,))
    if found is None:
        return None
    found["dates"] = fetch_all(
        conn,
        "SELECT date, state, instance_id, instance_state, started_at, ended_at"
        " FROM v1_backfill_dates WHERE backfill_id = %s ORDER BY position",
        (backfill_id,),
    )
    return found


def online_crons(conn: Conn, workflow_code: str) -> list[dict[str, Any]]:
    """The cron and timezone of each ONLINE schedule of the workflow (a backfill's dates)."""
    return fetch_all(
        conn,
        "SELECT cron, timezone FROM schedules WHERE workflow_code = %s"
        " AND release_state = 'ONLINE' ORDER BY schedule_id",
        (workflow_code,),
    )


def outcome(conn: Conn, command_id: str) -> dict[str, Any] | None:
    """How a backfill command was decided: its refusal, or the first fact it caused; None
    while no scheduler has decided it (or the projector has not shown it yet)."""
    refused = fetch_one(
        conn,
        "SELECT command_type, reason, message, at FROM backfill_rejections WHERE command_id = %s",
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
