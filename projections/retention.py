"""Retention: finished instances older than an age leave the read models.

The log keeps every event (the events topic is retained forever), so nothing is lost: time
travel (`tideflow history ID --at`) folds a retired instance from the log, and `tideflow
replay` brings every one back. What leaves: the instance row, its attempts, its refused
commands and its archived events; `retired_instances` remembers each (so the API can say where
it went). Only finished instances (PAUSE, STOP, FAILURE, SUCCESS) whose `ended_at` is older
than the cut-off go, oldest first, in batches (each its own transaction, so the live projector
is never blocked for long). A retired instance that is resumed or rerun later shows only its
new rows until a replay.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from streams.core.enums import WorkflowState

_FINISHED = tuple(s.value for s in WorkflowState if s.finished)
_OWNED = ("task_instances", "command_rejections", "event_archive")


def retire(
    conn: Any, older_than: timedelta, now: datetime, *, dry_run: bool = False, batch: int = 5_000
) -> int:
    """Retire the finished instances that ended before `now - older_than`; returns how many
    (with `dry_run`, how many would go, and nothing changes)."""
    cutoff = now - older_than
    if dry_run:
        row = conn.execute(
            b"SELECT count(*) FROM workflow_instances WHERE state_code = ANY(%s) AND ended_at < %s",
            (list(_FINISHED), cutoff),
        ).fetchone()
        return int(row[0])
    retired = 0
    while True:
        ids = [
            r[0]
            for r in conn.execute(
                b"SELECT instance_id FROM workflow_instances WHERE state_code = ANY(%s)"
                b" AND ended_at < %s ORDER BY ended_at LIMIT %s FOR UPDATE SKIP LOCKED",
                (list(_FINISHED), cutoff, batch),
            ).fetchall()
        ]
        if not ids:
            conn.commit()
            return retired
        conn.execute(
            b"INSERT INTO retired_instances (instance_id, workflow_code, state, ended_at,"
            b" retired_at) SELECT instance_id, workflow_code, state, ended_at, %s"
            b" FROM workflow_instances WHERE instance_id = ANY(%s)"
            b" ON CONFLICT (instance_id) DO UPDATE SET state = EXCLUDED.state,"
            b" ended_at = EXCLUDED.ended_at, retired_at = EXCLUDED.retired_at",
            (now, ids),
        )
        for table in _OWNED:
            conn.execute(f"DELETE FROM {table} WHERE instance_id = ANY(%s)".encode(), (ids,))
        conn.execute(b"DELETE FROM workflow_instances WHERE instance_id = ANY(%s)", (ids,))
        conn.commit()
        retired += len(ids)


def retired(conn: Any, instance_id: str) -> dict[str, Any] | None:
    """Where a retired instance went, or None."""
    row = conn.execute(
        b"SELECT state, ended_at, retired_at FROM retired_instances WHERE instance_id = %s",
        (instance_id,),
    ).fetchone()
    return None if row is None else {"state": row[0], "ended_at": row[1], "retired_at": row[2]}
