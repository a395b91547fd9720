"""The SQL task: statements on a data source this worker has by name.

The dispatch names the data source; the connection string (and its credentials) comes from
the worker's configuration alone (`TaskResources.datasources`), so no credential is ever in
the event log. PostgreSQL through psycopg (a `postgresql://` or `postgres://` URL, or a
libpq conninfo); another kind of data source is refused by name, which is where the next
driver plugs in. Pre statements, the statement, then post statements run in one transaction
on one connection, committed at the end; any error rolls it all back and fails the attempt.

Every `${name}` in a statement is a bound parameter (`%s`, `streams.core.render.sql`), never
text pasted into SQL. A query's result fills OUT values: one row gives each column's value
under the column's name; more rows give each column a JSON list of its values (a LIST
parameter); no row sets nothing (declared defaults apply). A task timeout becomes the
session's `statement_timeout`; a kill takes effect when the statement returns.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from streams.core import render
from streams.core.enums import Outcome
from streams.core.worker_messages import TaskAssignment
from streams.worker.config import TaskResources
from streams.worker.result import NOT_STARTED, Result

MAX_ROWS = 10_000  # rows of a query result read; more is a task for a real export
SHOWN_ROWS = 50  # rows written to the attempt's output
CONNECT_TIMEOUT_S = 10


def out_values(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, str]:
    """OUT values of a query result (see the module docstring)."""
    if not rows:
        return {}
    if len(rows) == 1:
        return {c: _text(v) for c, v in zip(columns, rows[0], strict=True)}
    return {
        c: json.dumps([r[i] for r in rows], default=str, ensure_ascii=False)
        for i, c in enumerate(columns)
    }


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _supported(conninfo: str) -> bool:
    scheme = conninfo.split("://", 1)[0].lower() if "://" in conninfo else ""
    return scheme in ("postgresql", "postgres") or "://" not in conninfo


def run(a: TaskAssignment, resources: TaskResources, killed: Callable[[], bool]) -> Result:
    spec = a.spec.sql if a.spec else None
    if spec is None:
        return Result(Outcome.FAILURE, NOT_STARTED, "[tideflow] no sql settings dispatched\n")
    conninfo = resources.datasources.get(spec.datasource)
    if conninfo is None:
        return Result(
            Outcome.FAILURE,
            NOT_STARTED,
            f"[tideflow] no data source {spec.datasource!r} configured on this worker\n",
        )
    if not _supported(conninfo):
        return Result(
            Outcome.FAILURE,
            NOT_STARTED,
            f"[tideflow] data source {spec.datasource!r}: only PostgreSQL is supported\n",
        )
    lines: list[str] = []
    out: dict[str, str] = {}
    try:
        with psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            with conn.cursor() as cur:
                if a.timeout_s:
                    cur.execute(
                        "SELECT set_config('statement_timeout', %s, true)",
                        (str(int(a.timeout_s * 1000)),),
                    )
                for stmt in spec.pre:
                    _execute(cur, stmt, a.env, lines, "pre")
                _execute(cur, a.command, a.env, lines, "sql")
                if spec.query and cur.description is not None:
                    columns = [d.name for d in cur.description]
                    rows = cur.fetchmany(MAX_ROWS)
                    out = out_values(columns, rows)
                    lines.append(" | ".join(columns))
                    lines.extend(" | ".join(_text(v) for v in r) for r in rows[:SHOWN_ROWS])
                    lines.append(f"({len(rows)} row{'s' * (len(rows) != 1)})")
                for stmt in spec.post:
                    _execute(cur, stmt, a.env, lines, "post")
            conn.commit()
    except psycopg.Error as exc:
        lines.append(f"[tideflow] {type(exc).__name__}: {str(exc).strip()}")
        return Result(Outcome.FAILURE, 1, "\n".join(lines) + "\n")
    return Result(Outcome.SUCCESS, 0, "\n".join(lines) + "\n", out)


def _execute(
    cur: psycopg.Cursor[Any], stmt: str, params: dict[str, str], lines: list[str], what: str
) -> None:
    sql, values = render.sql(stmt, params)
    cur.execute(sql.encode(), values or None)
    if cur.description is None:
        lines.append(f"{what}: {cur.statusmessage or 'done'} ({cur.rowcount} rows)")
