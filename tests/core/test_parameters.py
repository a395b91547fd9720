"""Parameters: precedence, built-ins, chains, OUT values through the decisions, and the safe
rendering of values into each target."""

from __future__ import annotations

import ast
from datetime import UTC, datetime

import pytest

from streams.core import render
from streams.core.attempt_params import exported
from streams.core.commands import ReportTaskFinished, StartWorkflow
from streams.core.decide import decide
from streams.core.definition import TaskDef, WorkflowDef, parse_workflow
from streams.core.enums import Outcome
from streams.core.events import TaskDispatched, TaskSucceeded
from streams.core.evolve import fold
from streams.core.ids import ack_command_id
from streams.core.out_params import scan
from streams.core.resolve import builtins, resolve, upstream_pool
from streams.core.task_params import Direct, ParamDef, declared_name_problem
from tests.core.builders import IID, NOW, W1, later

FIRE = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
BUILTIN = builtins(FIRE, instance_id="i", workflow_code="w", task_code="t", task_instance="i/t/1")


def p(name: str, value: str, direct: Direct = Direct.IN) -> ParamDef:
    return ParamDef(name=name, value=value, direct=direct)


def test_builtins_derive_from_the_schedule_time() -> None:
    assert BUILTIN["system.datetime"] == "20261130020000"
    assert BUILTIN["system.biz.date"] == "20261129"
    assert BUILTIN["system.biz.curdate"] == "20261130"
    assert BUILTIN["system.task.instance.id"] == "i/t/1"


def test_precedence_is_builtin_global_upstream_local_startup() -> None:
    resolved = resolve(
        builtin=BUILTIN,
        global_params=[p("a", "global"), p("b", "global"), p("c", "global"), p("d", "global")],
        upstream={"b": "upstream", "c": "upstream", "d": "upstream"},
        local=[p("c", "local"), p("d", "local"), p("x", "out", Direct.OUT)],
        startup={"d": "startup"},
    )
    assert [resolved[k] for k in "abcd"] == ["global", "upstream", "local", "startup"]
    assert "x" not in resolved  # an OUT declaration is no input


def test_values_expand_references_chains_and_time_expressions() -> None:
    resolved = resolve(
        builtin=BUILTIN,
        global_params=[p("day", "$[yyyy-MM-dd-1]"), p("path", "/data/${day}/${missing}")],
        upstream={},
        local=[p("file", "${path}/part-${system.biz.curdate}")],
        startup={},
    )
    assert resolved["day"] == "2026-11-29"
    assert resolved["file"] == "/data/2026-11-29/${missing}/part-20261130"


def test_a_reference_cycle_stops_and_is_left_as_written() -> None:
    resolved = resolve(
        builtin=BUILTIN, global_params=[p("a", "${b}"), p("b", "${a}")], upstream={}, local=[],
        startup={},
    )  # fmt: skip
    assert "${" in resolved["a"]


def test_the_upstream_pool_is_merged_by_end_time_the_later_winning() -> None:
    pool = upstream_pool([(later(5), {"k": "late", "a": "1"}), (later(1), {"k": "early"})])
    assert pool == {"k": "late", "a": "1"}


@pytest.mark.parametrize(
    ("name", "ok"),
    [("day", True), ("my.value", True), ("PATH", False), ("BASH_ENV", False),
     ("system.datetime", False), ("1x", False), ("a b", False), ("LD_PRELOAD", False)],
)  # fmt: skip
def test_declared_names_follow_the_rule(name: str, ok: bool) -> None:
    assert (declared_name_problem(name) is None) is ok


def test_a_definition_with_a_reserved_parameter_name_is_refused() -> None:
    with pytest.raises(ValueError, match="BASH_ENV"):
        parse_workflow(
            {"code": "w", "params": {"BASH_ENV": "x"}, "tasks": [{"code": "a", "command": "x"}]}
        )


# -- OUT values: scanned, filtered to the declared OUT names, passed to direct downstream ---


def test_set_value_markers_are_read_from_output_even_across_lines() -> None:
    out = scan("noise\n${setValue(a=1)}\n#{setValue(b=x=y)} tail\n${setValue(c=line1\nline2)}\n")
    assert out == {"a": "1", "b": "x=y", "c": "line1\nline2"}


def test_only_declared_out_names_are_exported() -> None:
    spec = TaskDef(
        code="t",
        command="x",
        params=(p("a", "", Direct.OUT), p("d", "dflt", Direct.OUT), p("b", "in")),
    )
    assert exported(spec, {"a": "1", "b": "2", "zz": "3"}) == {"a": "1", "d": "dflt"}


def _flow() -> WorkflowDef:
    return parse_workflow(
        {
            "code": "w",
            "params": {"g": "global"},
            "tasks": [
                {"code": "a", "command": "x", "params": [{"name": "v", "direct": "OUT"}]},
                {"code": "other", "command": "x", "params": [{"name": "v", "direct": "OUT"}]},
                {"code": "b", "command": "echo ${v}", "depends": ["a"]},
            ],
        }
    )


def _finished(code: str, out: dict[str, str]) -> ReportTaskFinished:
    return ReportTaskFinished(
        command_id=ack_command_id(IID, code, 1, "finished"), instance_id=IID, task_code=code,
        attempt=1, worker_id="w1", outcome=Outcome.SUCCESS, exit_code=0, at=NOW,
        out_params=out,
    )  # fmt: skip


def test_out_values_reach_direct_downstream_tasks_only_and_are_recorded_in_the_dispatch() -> None:
    start = StartWorkflow(
        command_id="s", instance_id=IID, workflow=_flow(), at=NOW, params={"day": "d1"},
        schedule_time=FIRE,
    )  # fmt: skip
    events = decide(fold([], IID), start, NOW, W1)
    first = [e for e in events if isinstance(e, TaskDispatched)]
    assert first[0].params["system.biz.date"] == "20261129"
    assert first[0].params["g"] == "global" and first[0].params["day"] == "d1"
    events += decide(fold(events), _finished("other", {"v": "unrelated"}), later(1), W1)
    then = decide(fold(events), _finished("a", {"v": "from-a", "junk": "x"}), later(2), W1)
    succeeded = next(e for e in then if isinstance(e, TaskSucceeded))
    assert succeeded.out_params == {"v": "from-a"}
    dispatched_b = next(e for e in then if isinstance(e, TaskDispatched))
    assert dispatched_b.task_code == "b"
    assert dispatched_b.params["v"] == "from-a"  # never "unrelated": not an upstream of b


def test_a_manual_run_bases_its_builtins_on_its_start_time() -> None:
    start = StartWorkflow(command_id="s", instance_id=IID, workflow=_flow(), at=NOW)
    events = decide(fold([], IID), start, NOW, W1)
    first = next(e for e in events if isinstance(e, TaskDispatched))
    assert first.params["system.datetime"] == NOW.strftime("%Y%m%d%H%M%S")


# -- rendering: a value stays data ---------------------------------------------------------

ATTACKS = [
    "$(touch /tmp/pwned)",
    "`touch /tmp/pwned`",
    "x; touch /tmp/pwned",
    "a\ntouch /tmp/pwned",
    "' + __import__('os').system('id') + '",
    '"); import os; os.system("id"); ("',
    "\\",
]


@pytest.mark.parametrize("value", ATTACKS)
def test_a_python_value_becomes_an_expression_equal_to_it(value: str) -> None:
    script = render.python("x = ${v}\ny = '${v}'\n", {"v": value})
    tree = ast.parse(script)  # still valid Python whatever the value
    assert value not in script or value.isalnum()
    env: dict[str, object] = {}
    exec(compile(tree, "<t>", "exec"), {}, env)
    assert env["x"] == value


@pytest.mark.parametrize("value", ATTACKS)
def test_a_shell_reference_to_a_dotted_parameter_points_at_a_variable(value: str) -> None:
    script, extra = render.shell("echo ${my.v} ${day} ${HOME}", {"my.v": value, "day": value})
    assert script == "echo ${TIDEFLOW_PARAM_0} ${day} ${HOME}"
    assert extra == {"TIDEFLOW_PARAM_0": value}


def test_sql_values_are_bound_and_percent_signs_doubled() -> None:
    sql, values = render.sql(
        "select '%x', ${a} where d = ${b} -- $[yyyyMMdd]", {"a": "1; drop", "b": "'x'", **BUILTIN}
    )
    assert sql == "select '%%x', %s where d = %s -- 20261130"
    assert values == ["1; drop", "'x'"]


def test_url_values_are_percent_encoded() -> None:
    assert render.url("http://h/a/${v}?d=${v}", {"v": "../x?y=1&z#"}) == (
        "http://h/a/..%2Fx%3Fy%3D1%26z%23?d=..%2Fx%3Fy%3D1%26z%23"
    )


def test_a_response_of_a_task_with_a_dash_in_its_code_is_referenced() -> None:
    params = {"extract-inventory.response": "ok"}
    assert render.text("got ${extract-inventory.response} ${a-b}", params) == "got ok ${a-b}"
    script, extra = render.shell("echo ${extract-inventory.response} ${x-default}", params)
    assert (script, extra) == ("echo ${TIDEFLOW_PARAM_0} ${x-default}", {"TIDEFLOW_PARAM_0": "ok"})
