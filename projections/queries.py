"""Reads of the read models for the HTTP API and the CLI: plain dicts and lists, JSON-able
(datetimes as ISO strings in UTC, jsonb as dicts). Read-only; the caller owns the connection and
its transaction (search_path must point at the deployment's schema, as `db.connect` does).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from streams.core.enums import WorkflowState
from streams.core.errors import TideflowError

Conn = psycopg.Connection[Any]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v for k, v in row.items()
    }


def _all(conn: Conn, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query.encode(), params)  # bytes: the SQL is built from literals only
        return [_plain(r) for r in cur.fetchall()]


def _one(conn: Conn, query: str, params: tuple[Any, ...] = ()) -> dict[str, Any] | None:
    rows = _all(conn, query, params)
    return rows[0] if rows else None


class InvalidFilter(TideflowError, ValueError):
    """A list filter that names nothing (an unknown state): the caller's input, not a bug."""


def workflow_state(state: str | int) -> WorkflowState:
    """A state given as a name ("success", "RUNNING_EXECUTION") or a code (7, "7");
    `InvalidFilter` names the choices otherwise."""
    try:
        if isinstance(state, int) or state.strip().isdigit():
            return WorkflowState(int(state))
        return WorkflowState[state.strip().upper()]
    except (KeyError, ValueError):
        choices = ", ".join(f"{s.name}({s.value})" for s in WorkflowState)
        raise InvalidFilter(
            f"unknown workflow state {state!r}; expected one of {choices}"
        ) from None


# -- instances ----------------------------------------------------------------------------------

_TASK_ORDER = "ORDER BY dispatched_at NULLS LAST, started_at NULLS LAST, task_code, attempt"


def get_instance(conn: Conn, instance_id: str) -> dict[str, Any] | None:
    """The instance row with "tasks" (latest attempt of each task) and "attempts" (every
    attempt), both in dispatch order, and "rejections" (refused commands); None if unknown."""
    found = _one(conn, "SELECT * FROM workflow_instances WHERE instance_id = %s", (instance_id,))
    if found is None:
        return None
    attempts = _all(
        conn, f"SELECT * FROM task_instances WHERE instance_id = %s {_TASK_ORDER}", (instance_id,)
    )
    found["tasks"] = [a for a in attempts if a["valid"]]
    found["attempts"] = attempts
    found["rejections"] = _all(
        conn,
        "SELECT command_id, command_type, reason, message, at FROM command_rejections"
        " WHERE instance_id = %s ORDER BY at, command_id",
        (instance_id,),
    )
    return found


def list_instances(
    conn: Conn,
    workflow_code: str | None = None,
    state: str | int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Instances, newest first, optionally of one workflow and in one state (name or code)."""
    where: list[str] = []
    params: list[Any] = []
    if workflow_code is not None:
        where.append("workflow_code = %s")
        params.append(workflow_code)
    if state is not None:
        where.append("state_code = %s")
        params.append(workflow_state(state).value)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return _all(
        conn,
        f"SELECT * FROM workflow_instances {clause}"
        " ORDER BY started_at DESC NULLS LAST, instance_id LIMIT %s OFFSET %s",
        (*params, limit, offset),
    )


def history(conn: Conn, instance_id: str) -> list[dict[str, Any]]:
    """Every archived event of an instance in log order (partition, offset)."""
    return _all(
        conn,
        'SELECT topic, partition, "offset", key, event_type, instance_id, epoch, at, payload'
        ' FROM event_archive WHERE instance_id = %s ORDER BY partition, "offset"',
        (instance_id,),
    )


def rejections(
    conn: Conn, instance_id: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Refused commands, newest first (of one instance when given)."""
    clause, params = ("WHERE instance_id = %s", (instance_id,)) if instance_id else ("", ())
    return _all(
        conn,
        f"SELECT * FROM command_rejections {clause} ORDER BY at DESC, command_id LIMIT %s",
        (*params, limit),
    )


# -- definitions and workers --------------------------------------------------------------------

_DEFINITION = (
    "SELECT code, version, description, definition, content_hash, registered_at,"
    " registered_by FROM workflow_definitions"
)


def latest_definition(conn: Conn, code: str) -> dict[str, Any] | None:
    return _one(conn, f"{_DEFINITION} WHERE code = %s ORDER BY version DESC LIMIT 1", (code,))


def get_definition(conn: Conn, code: str, version: int) -> dict[str, Any] | None:
    return _one(conn, f"{_DEFINITION} WHERE code = %s AND version = %s", (code, version))


def list_definitions(conn: Conn) -> list[dict[str, Any]]:
    """The latest version of each workflow (without the definition body), by code, with
    "versions" (how many are registered) and "tasks" (task count of the latest)."""
    return _all(
        conn,
        "SELECT DISTINCT ON (code) code, version, description, content_hash, registered_at,"
        " registered_by, count(*) OVER (PARTITION BY code) AS versions,"
        " jsonb_array_length(definition -> 'tasks') AS tasks"
        " FROM workflow_definitions ORDER BY code, version DESC",
    )


def definition_version_for_hash(conn: Conn, code: str, content_hash: str) -> int | None:
    """The newest version of `code` registered with this content, if any."""
    found = _one(
        conn,
        "SELECT max(version) AS version FROM workflow_definitions"
        " WHERE code = %s AND content_hash = %s",
        (code, content_hash),
    )
    return None if found is None or found["version"] is None else int(found["version"])


def list_workers(conn: Conn) -> list[dict[str, Any]]:
    """Workers by group and id, with their latest heartbeat (liveness is the caller's call:
    compare last_heartbeat_at with its timeout)."""
    return _all(conn, "SELECT * FROM workers ORDER BY worker_group, worker_id")
