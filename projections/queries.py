"""Reads of the read models for the HTTP API and the CLI: plain dicts and lists, JSON-able
(datetimes as ISO strings in UTC, jsonb as dicts). Read-only; the caller owns the connection and
its transaction (search_path must point at the deployment's schema, as `db.connect` does).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from projections.errors import InvalidFilter
from projections.pages import Key, Ordering, Page
from streams.core.enums import WorkflowState

Conn = psycopg.Connection[Any]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v for k, v in row.items()
    }


def fetch_all(conn: Conn, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    if any(isinstance(p, str) and "\x00" in p for p in params):
        return []  # PostgreSQL refuses NUL in text; no stored text holds one (`handlers.text`)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query.encode(), params)  # bytes: the SQL is built from literals only
        return [_plain(r) for r in cur.fetchall()]


def page(
    conn: Conn,
    select: str,
    ordering: Ordering,
    where: list[str],
    params: list[Any],
    limit: int,
    cursor: str | None,
) -> Page:
    """Up to `limit` rows of `select` filtered by `where`, after `cursor`, in `ordering`."""
    where, params = list(where), list(params)
    if cursor:
        condition, values = ordering.after(cursor)
        where.append(condition)
        params.extend(values)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = fetch_all(
        conn, f"{select}{clause} ORDER BY {ordering.order_by()} LIMIT %s", (*params, limit + 1)
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, ordering.cursor_of(rows[-1]) if more else None)


def fetch_one(conn: Conn, query: str, params: tuple[Any, ...] = ()) -> dict[str, Any] | None:
    rows = fetch_all(conn, query, params)
    return rows[0] if rows else None


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
    found = fetch_one(
        conn, "SELECT * FROM workflow_instances WHERE instance_id = %s", (instance_id,)
    )
    if found is None:
        return None
    attempts = fetch_all(
        conn, f"SELECT * FROM task_instances WHERE instance_id = %s {_TASK_ORDER}", (instance_id,)
    )
    found["tasks"] = [a for a in attempts if a["valid"]]
    found["attempts"] = attempts
    found["rejections"] = fetch_all(
        conn,
        "SELECT command_id, command_type, reason, message, at FROM command_rejections"
        " WHERE instance_id = %s ORDER BY at, command_id",
        (instance_id,),
    )
    return found


_INSTANCES = Ordering((Key("started_at", "timestamptz"), Key("instance_id", "text")), True)


def instance_page(
    conn: Conn,
    workflow_code: str | None = None,
    state: str | int | None = None,
    requested_by: str | None = None,
    worker_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page:
    """Instances, newest first (ties by id), filtered by workflow, state (name or code), who
    started them, a worker that ran one of their attempts, and a start-time range
    [since, until)."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("workflow_code", workflow_code), ("requested_by", requested_by)):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if state is not None:
        where.append("state_code = %s")
        params.append(workflow_state(state).value)
    if worker_id is not None:
        where.append("instance_id IN (SELECT instance_id FROM task_instances WHERE worker_id = %s)")
        params.append(worker_id)
    if since is not None:
        where.append("started_at >= %s")
        params.append(since)
    if until is not None:
        where.append("started_at < %s")
        params.append(until)
    return page(conn, "SELECT * FROM workflow_instances", _INSTANCES, where, params, limit, cursor)


def list_instances(
    conn: Conn, workflow_code: str | None = None, state: str | int | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The first page of `instance_page`."""
    return instance_page(conn, workflow_code=workflow_code, state=state, limit=limit).rows


_EVENTS = Ordering((Key("partition", "integer"), Key('"offset"', "bigint")), False)
_REJECTIONS = Ordering((Key("at", "timestamptz"), Key("command_id", "text")), True)


def history_page(
    conn: Conn, instance_id: str, limit: int = 10_000, cursor: str | None = None
) -> Page:
    """Archived events of an instance in log order (partition, offset)."""
    return page(
        conn,
        'SELECT topic, partition, "offset", key, event_type, instance_id, epoch, at, payload'
        " FROM event_archive",
        _EVENTS,
        ["instance_id = %s"],
        [instance_id],
        limit,
        cursor,
    )


def history(conn: Conn, instance_id: str) -> list[dict[str, Any]]:
    """Every archived event of an instance in log order (partition, offset)."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = history_page(conn, instance_id, cursor=cursor)
        rows.extend(page.rows)
        if (cursor := page.next_cursor) is None:
            return rows


def rejection_page(
    conn: Conn, instance_id: str | None = None, limit: int = 100, cursor: str | None = None
) -> Page:
    """Refused commands, newest first (of one instance when given)."""
    where, params = (["instance_id = %s"], [instance_id]) if instance_id else ([], [])
    return page(conn, "SELECT * FROM command_rejections", _REJECTIONS, where, params, limit, cursor)


# -- definitions and workers --------------------------------------------------------------------

_DEFINITION = (
    "SELECT code, version, description, definition, content_hash, registered_at,"
    " registered_by FROM workflow_definitions"
)


def latest_definition(conn: Conn, code: str) -> dict[str, Any] | None:
    return fetch_one(conn, f"{_DEFINITION} WHERE code = %s ORDER BY version DESC LIMIT 1", (code,))


def get_definition(conn: Conn, code: str, version: int) -> dict[str, Any] | None:
    return fetch_one(conn, f"{_DEFINITION} WHERE code = %s AND version = %s", (code, version))


_DEFINITIONS = Ordering((Key("code", "text"),), False)


def definition_page(conn: Conn, limit: int = 100, cursor: str | None = None) -> Page:
    """The latest version of each workflow (without the definition body), by code, with
    "versions" (how many are registered) and "tasks" (task count of the latest)."""
    return page(
        conn,
        "SELECT * FROM (SELECT DISTINCT ON (code) code, version, description, content_hash,"
        " registered_at, registered_by, count(*) OVER (PARTITION BY code) AS versions,"
        " jsonb_array_length(definition -> 'tasks') AS tasks"
        " FROM workflow_definitions ORDER BY code, version DESC) latest",
        _DEFINITIONS,
        [],
        [],
        limit,
        cursor,
    )


def definition_version_for_hash(conn: Conn, code: str, content_hash: str) -> int | None:
    """The newest version of `code` registered with this content, if any."""
    found = fetch_one(
        conn,
        "SELECT max(version) AS version FROM workflow_definitions"
        " WHERE code = %s AND content_hash = %s",
        (code, content_hash),
    )
    return None if found is None or found["version"] is None else int(found["version"])


_WORKERS = Ordering((Key("worker_group", "text"), Key("worker_id", "text")), False)


def worker_page(conn: Conn, limit: int = 100, cursor: str | None = None) -> Page:
    """Workers by group and id, with their latest heartbeat (liveness is the caller's call:
    compare last_heartbeat_at with its timeout)."""
    return page(conn, "SELECT * FROM workers", _WORKERS, [], [], limit, cursor)
