"""The SQL task against the test PostgreSQL: query vs non-query, pre and post statements in
one transaction, values bound (an injection attempt is data), results as OUT values, and the
data source resolved by name on the worker only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from infra.settings import Settings
from streams.core.definition import parse_workflow
from streams.core.enums import Outcome, TaskType
from streams.core.worker_messages import TaskAssignment
from streams.worker.config import TaskResources
from streams.worker.runner import run_attempt

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def table(stack: Settings) -> Iterator[tuple[TaskResources, str]]:
    """A data source named `wh` and a fresh table `<schema>.t(id, day, name)` with 3 rows."""
    schema = f"sql_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(stack.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.t (id int, day text, name text)")
        conn.execute(
            f"INSERT INTO {schema}.t VALUES (1, '2026-11-29', 'a'), (2, '2026-11-30', 'b'), "
            "(3, '2026-11-30', 'c')"
        )
    yield TaskResources(datasources={"wh": stack.dsn}), f"{schema}.t"
    with psycopg.connect(stack.dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def sql_task(
    command: str, sql: dict[str, Any], env: dict[str, str] | None = None
) -> TaskAssignment:
    wf = parse_workflow(
        {"code": "w", "tasks": [{"code": "q", "type": "sql", "command": command, "sql": sql}]}
    )
    return TaskAssignment(
        instance_id="i",
        task_code="q",
        attempt=1,
        worker_id="w",
        type=TaskType.SQL,
        command=command,
        at=datetime(2024, 1, 1, tzinfo=UTC),
        spec=wf.tasks[0].spec,
        env=env or {},
    )


def count(stack: Settings, table: str) -> int:
    with psycopg.connect(stack.dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])


def test_one_row_fills_column_named_values(table: tuple[TaskResources, str]) -> None:
    resources, t = table
    a = sql_task(
        f"SELECT count(*) AS n, max(name) AS last FROM {t} WHERE day = ${{day}}",
        {"datasource": "wh"},
        {"day": "2026-11-30"},
    )
    result = run_attempt(a, resources)
    assert result.outcome is Outcome.SUCCESS, result.output
    assert result.out_params == {"n": "2", "last": "c"}


def test_many_rows_fill_json_lists(table: tuple[TaskResources, str]) -> None:
    resources, t = table
    result = run_attempt(
        sql_task(f"SELECT id, name FROM {t} ORDER BY id", {"datasource": "wh"}), resources
    )
    assert result.out_params == {"id": "[1, 2, 3]", "name": '["a", "b", "c"]'}


def test_a_value_is_bound_never_pasted(stack: Settings, table: tuple[TaskResources, str]) -> None:
    resources, t = table
    attack = f"x'; DELETE FROM {t}; --"
    result = run_attempt(
        sql_task(
            f"SELECT count(*) AS n FROM {t} WHERE name = ${{v}} OR name LIKE '%'",
            {"datasource": "wh"},
            {"v": attack},
        ),
        resources,
    )
    assert result.outcome is Outcome.SUCCESS, result.output
    assert result.out_params == {"n": "3"}  # '%' in the statement's own text still works
    assert count(stack, t) == 3


def test_pre_and_post_statements_and_a_non_query_share_one_transaction(
    stack: Settings, table: tuple[TaskResources, str]
) -> None:
    resources, t = table
    spec = {
        "datasource": "wh",
        "query": False,
        "pre": [f"INSERT INTO {t} VALUES (9, ${{day}}, 'pre')"],
        "post": [f"DELETE FROM {t} WHERE id = 9"],
    }
    result = run_attempt(
        sql_task(f"UPDATE {t} SET name = name WHERE id = 9", spec, {"day": "d"}), resources
    )
    assert result.outcome is Outcome.SUCCESS, result.output
    assert "UPDATE 1" in result.output
    assert result.out_params == {}
    assert count(stack, t) == 3


def test_an_error_rolls_everything_back(stack: Settings, table: tuple[TaskResources, str]) -> None:
    resources, t = table
    spec = {"datasource": "wh", "pre": [f"INSERT INTO {t} VALUES (8, 'd', 'x')"]}
    result = run_attempt(sql_task("SELECT * FROM no_such_table", spec), resources)
    assert result.outcome is Outcome.FAILURE
    assert "no_such_table" in result.output
    assert count(stack, t) == 3


def test_an_unknown_data_source_fails_without_connecting(table: tuple[TaskResources, str]) -> None:
    result = run_attempt(sql_task("SELECT 1", {"datasource": "elsewhere"}), table[0])
    assert result.outcome is Outcome.FAILURE
    assert "no data source 'elsewhere'" in result.output
