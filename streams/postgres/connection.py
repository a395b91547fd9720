"""PostgreSQL connections, shared by the roles that use the database (projector, master
snapshots, API): `connect` (search_path set to the deployment's schema, autocommit off) and a
small retry-with-backoff for (re)connecting.

Owns connection set-up only; the SQL lives with the role that owns the tables.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from streams.postgres.errors import DatabaseUnavailable

log = logging.getLogger("tideflow.postgres")

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class DbConfig:
    dsn: str
    schema: str = "tideflow"  # the deployment's schema: read models, checkpoints, snapshots


def set_search_path(conn: psycopg.Connection[Any], schema: str) -> None:
    """Point unqualified names at `schema` for the rest of the session (committed)."""
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    conn.commit()


def connect(
    db: DbConfig,
    schema: str | None = None,
    *,
    application_name: str = "tideflow",
    connect_timeout: int = 10,
) -> psycopg.Connection[Any]:
    """A connection to `db.dsn` with search_path = `schema` (default: the deployment's
    `db.schema`) and autocommit off. The schema need not exist yet (see migrate).
    `application_name` names the session in pg_stat_activity."""
    conn = psycopg.connect(
        db.dsn,
        autocommit=False,
        connect_timeout=connect_timeout,
        application_name=application_name[:63],
    )
    try:
        set_search_path(conn, schema or db.schema)
    except BaseException:
        conn.close()
        raise
    return conn


def with_backoff(
    attempt: Callable[[], T],
    *,
    what: str = "PostgreSQL",
    timeout_s: float = 60.0,
    first_delay_s: float = 0.1,
    max_delay_s: float = 5.0,
    retry_on: tuple[type[BaseException], ...] = (psycopg.OperationalError,),
    stop: threading.Event | None = None,
) -> T:
    """`attempt()` until it returns, sleeping 0.1, 0.2, 0.4 ... (at most `max_delay_s`) s
    between tries; raises `DatabaseUnavailable` after `timeout_s` or when `stop` is set."""
    deadline = time.monotonic() + timeout_s
    delay = first_delay_s
    while True:
        try:
            return attempt()
        except retry_on as exc:
            left = deadline - time.monotonic()
            if left <= 0 or (stop is not None and stop.is_set()):
                raise DatabaseUnavailable(f"{what} unavailable: {exc}") from exc
            log.warning("%s unavailable (%s); retrying in %.1fs", what, exc, delay)
            if stop is not None:
                stop.wait(min(delay, left))
            else:
                time.sleep(min(delay, left))
            delay = min(delay * 2, max_delay_s)


def connect_with_retry(
    db: DbConfig,
    schema: str | None = None,
    *,
    application_name: str = "tideflow",
    timeout_s: float = 60.0,
    stop: threading.Event | None = None,
) -> psycopg.Connection[Any]:
    """`connect`, retried with exponential backoff while the server does not answer."""
    return with_backoff(
        lambda: connect(db, schema, application_name=application_name),
        timeout_s=timeout_s,
        stop=stop,
    )
