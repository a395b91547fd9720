"""Type-specific settings: parsed from a task's fields, every problem named, and the
README's example a valid definition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.core.definition import (
    InvalidDefinition,
    parse_workflow,
    workflow_from_dict,
    workflow_to_dict,
)
from streams.core.enums import TaskType
from streams.core.task_specs import HttpCheck, HttpMethod

README = Path(__file__).parents[2] / "README.md"


def problems(task: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidDefinition) as e:
        parse_workflow({"code": "w", "tasks": [{"code": "t", **task}]})
    return e.value.problems


def test_the_readme_example_parses_and_round_trips_its_stored_form() -> None:
    text = README.read_text()
    block = text[text.index("code: daily-values") :]
    wf = parse_workflow(yaml.safe_load(block[: block.index("```")]))
    assert [t.type for t in wf.tasks] == [
        TaskType.SHELL,
        TaskType.PYTHON,
        TaskType.SQL,
        TaskType.HTTP,
        TaskType.SHELL,
    ]
    call = wf.task("call").spec
    assert call is not None and call.http is not None
    assert (call.http.method, call.http.check, call.http.connect_timeout_s) == (
        HttpMethod.POST,
        HttpCheck.STATUS_CODE_CUSTOM,
        5.0,
    )
    assert workflow_from_dict(workflow_to_dict(wf)) == wf


@pytest.mark.parametrize(
    ("task", "problem"),
    [
        ({"type": "http"}, "an HTTP task needs http.url"),
        ({"type": "http", "http": {"url": "ftp://x"}}, "expected an http:// or https:// URL"),
        (
            {"type": "http", "http": {"url": "http://x", "check": "status_code_custom"}},
            "expected a status code",
        ),
        (
            {"type": "http", "http": {"url": "http://x", "read_timeout": "0s"}},
            "expected more than 0",
        ),
        ({"type": "http", "http": {"url": "http://x", "method": "PATCH"}}, "expected one of GET"),
        ({"type": "sql", "command": "select 1"}, "a SQL task needs sql.datasource"),
        (
            {"type": "sql", "command": "select 1", "sql": {"datasource": "postgresql://u:p@h/db"}},
            "expected a data source name",
        ),
        ({"type": "sql", "sql": {"datasource": "wh"}}, "a sql task needs a command"),
        ({"command": "x", "sql": {"datasource": "wh"}}, "only a SQL task takes it"),
        ({"type": "python", "command": "x", "environment": "/usr/bin/python"}, "expected a name"),
        ({"command": "x", "environment": "py"}, "only a PYTHON task takes it"),
        ({"command": "x", "params": [{"name": "LD_PRELOAD", "value": "x"}]}, "LD_PRELOAD"),
        (
            {"command": "x", "params": [{"name": "a", "direct": "SIDEWAYS"}]},
            "expected one of IN, OUT",
        ),
    ],
)
def test_bad_settings_are_named(task: dict[str, Any], problem: str) -> None:
    assert any(problem in p for p in problems(task)), problems(task)


@pytest.mark.parametrize(
    ("ptype", "value", "ok"),
    [
        ("INTEGER", "42", True),
        ("INTEGER", "4.2", False),
        ("LONG", "-9000000000", True),
        ("DOUBLE", "1e-3", True),
        ("FLOAT", "abc", False),
        ("BOOLEAN", True, True),
        ("BOOLEAN", "yes", False),
        ("LIST", "[1, 2]", True),
        ("LIST", "1,2", False),
        ("INTEGER", "${n}", True),  # checked once resolved, not declared
        ("DATE", "$[yyyy-MM-dd]", True),
    ],
)
def test_declared_values_fit_their_types(ptype: str, value: object, ok: bool) -> None:
    task = {"command": "x", "params": [{"name": "p", "value": value, "type": ptype}]}
    if ok:
        parse_workflow({"code": "w", "tasks": [{"code": "t", **task}]})
    else:
        assert any(f"expected a {ptype}" in p for p in problems(task))
