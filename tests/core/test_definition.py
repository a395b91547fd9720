"""Parsing and validating workflow definitions: every problem named, all of them collected."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.definition import (
    InvalidDefinition,
    TaskDef,
    WorkflowDef,
    dag_problems,
    parse_duration,
    parse_workflow,
    workflow_from_dict,
    workflow_to_dict,
)
from streams.core.enums import FailureStrategy, Priority, TaskType


def raw(*tasks: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"code": "etl", "tasks": list(tasks), **top}


def shell(code: str, *depends: str, **fields: Any) -> dict[str, Any]:
    return {"code": code, "command": f"echo {code}", "depends": list(depends), **fields}


def problems_of(definition: object) -> list[str]:
    with pytest.raises(InvalidDefinition) as caught:
        parse_workflow(definition)
    assert str(caught.value) == "; ".join(caught.value.problems)
    return caught.value.problems


def test_parse_valid_mapping_builds_the_definition() -> None:
    definition = raw(
        shell("extract", retries=2, retry_interval="30s", timeout="2m", priority="high"),
        shell("transform", "extract", worker_group="gpu"),
        {"name": "done", "type": "noop", "depends": "transform"},
        description="nightly",
        failure_strategy="end",
        worker_group="etl-hosts",
    )

    wf = parse_workflow(definition)

    assert wf == WorkflowDef(
        code="etl",
        description="nightly",
        failure_strategy=FailureStrategy.END,
        tasks=(
            TaskDef(
                code="extract",
                command="echo extract",
                retries=2,
                retry_interval_s=30.0,
                timeout_s=120.0,
                worker_group="etl-hosts",
                priority=Priority.HIGH,
            ),
            TaskDef(
                code="transform",
                command="echo transform",
                depends=("extract",),
                worker_group="gpu",
            ),
            TaskDef(
                code="done", type=TaskType.NOOP, depends=("transform",), worker_group="etl-hosts"
            ),
        ),
    )


def test_parse_without_optional_fields_uses_the_defaults() -> None:
    wf = parse_workflow(raw(shell("only")))

    assert wf.failure_strategy is FailureStrategy.CONTINUE
    assert wf.version == 0
    only = wf.task("only")
    assert (only.type, only.retries, only.retry_interval_s, only.timeout_s) == (
        TaskType.SHELL,
        0,
        0.0,
        None,
    )
    assert (only.worker_group, only.priority) == ("default", Priority.MEDIUM)


def test_parse_cycle_is_named_with_its_path() -> None:
    definition = raw(shell("a", "c"), shell("b", "a"), shell("c", "b"), shell("d", "a"))

    assert problems_of(definition) == ["cycle: a -> b -> c -> a"]


def test_parse_self_dependency_is_named() -> None:
    assert problems_of(raw(shell("a", "a"))) == ["task 'a' depends on itself"]


def test_parse_unknown_dependency_is_named() -> None:
    definition = raw(shell("load", "extract"))

    assert problems_of(definition) == ["task 'load' depends on unknown task 'extract'"]


def test_parse_duplicate_task_code_is_named() -> None:
    definition = raw(shell("a"), shell("b"), shell("a"))

    assert problems_of(definition) == ["duplicate task code 'a'"]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"retries": -1}, "task 'a'.retries: expected a whole number >= 0, found -1"),
        ({"retries": "3"}, "task 'a'.retries: expected a whole number >= 0, found '3'"),
        ({"retries": True}, "task 'a'.retries: expected a whole number >= 0, found True"),
        (
            {"retry_interval": "soon"},
            "task 'a'.retry_interval: expected a duration like 30s, 2m, 1h or 1d, found 'soon'",
        ),
        ({"timeout": -5}, "task 'a'.timeout: must not be negative, found -5"),
        ({"timeout": True}, "task 'a'.timeout: expected a duration, found True"),
        ({"colour": "red"}, "task 'a': unknown field 'colour'"),
        (
            {"type": "spark"},
            "task 'a'.type: expected one of shell, noop, python, http, sql, found 'spark'",
        ),
        (
            {"priority": "urgent"},
            "task 'a'.priority: expected one of highest, high, medium, low, lowest, found 'urgent'",
        ),
        ({"command": ""}, "task 'a'.command: a shell task needs a command"),
        ({"command": "   "}, "task 'a'.command: a shell task needs a command"),
        ({"command": ["ls"]}, "task 'a'.command: expected a string, found list"),
        ({"depends": [1]}, "task 'a'.depends: expected a list of task codes"),
    ],
)
def test_parse_bad_task_field_is_a_clear_problem(fields: dict[str, Any], problem: str) -> None:
    definition = raw(shell("a", **fields))

    assert problem in problems_of(definition)


@pytest.mark.parametrize(
    ("definition", "problem"),
    [
        ({"code": "etl", "tasks": []}, "tasks: expected a non-empty list of tasks"),
        ({"code": "etl"}, "tasks: expected a non-empty list of tasks"),
        ({"code": "etl", "tasks": "a"}, "tasks: expected a non-empty list of tasks"),
        ({"tasks": [shell("a")]}, "code: must be 1-128 letters, digits, '_', '-' or '.'"),
        (raw(shell("a"), owner="me"), "unknown field 'owner'"),
        (
            raw(shell("a"), failure_strategy="retry"),
            "failure_strategy: expected one of end, continue, found 'retry'",
        ),
        (raw(["a"]), "tasks[0]: expected a mapping, found list"),
        (raw({"command": "ls"}), "tasks[0]: code must be 1-128 letters, digits, '_', '-' or '.'"),
        (["a"], "expected a mapping at the top, found list"),
    ],
)
def test_parse_bad_workflow_field_is_a_clear_problem(definition: object, problem: str) -> None:
    assert problem in problems_of(definition)


def test_parse_malformed_task_code_is_a_clear_problem() -> None:
    definition = raw({"code": "a b", "command": "ls"})

    assert problems_of(definition) == [
        "task 'a b': code must be 1-128 letters, digits, '_', '-' or '.'"
    ]


def test_parse_invalid_definition_collects_every_problem() -> None:
    definition = raw(
        shell("a", "ghost", retries=-2),
        shell("b", "c", timeout="forever"),
        shell("c", "b", colour="red"),
        {"code": "d", "type": "shell"},
        shell("a"),
        failure_strategy="maybe",
    )

    problems = problems_of(definition)

    assert problems == [
        "task 'a'.retries: expected a whole number >= 0, found -2",
        "task 'b'.timeout: expected a duration like 30s, 2m, 1h or 1d, found 'forever'",
        "task 'c': unknown field 'colour'",
        "task 'd'.command: a shell task needs a command",
        "failure_strategy: expected one of end, continue, found 'maybe'",
        "duplicate task code 'a'",
        "task 'a' depends on unknown task 'ghost'",
        "cycle: b -> c -> b",
    ]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1.5h", 5400.0),
        ("1d", 86400.0),
        (" 3 s ", 3.0),
        ("45", 45.0),
        (30, 30.0),
        (2.5, 2.5),
        (0, 0.0),
    ],
)
def test_parse_duration_units_give_seconds(value: object, seconds: float) -> None:
    problems: list[str] = []

    assert parse_duration(value, "x", problems) == seconds
    assert problems == []


@pytest.mark.parametrize("value", ["10 minutes", "1w", "-5s", "s", "", "1e3s"])
def test_parse_duration_malformed_is_a_problem(value: str) -> None:
    problems: list[str] = []

    assert parse_duration(value, "t.timeout", problems) is None
    assert problems == [f"t.timeout: expected a duration like 30s, 2m, 1h or 1d, found {value!r}"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (float("nan"), "t.retry_interval: expected a finite duration, found nan"),
        (float("inf"), "t.retry_interval: expected a finite duration, found inf"),
        (1e20, "t.retry_interval: must be at most 366 days, found 1e+20"),
        ("9000h", "t.retry_interval: must be at most 366 days, found '9000h'"),
    ],
)
def test_parse_duration_that_no_clock_can_add_is_a_problem(value: object, problem: str) -> None:
    problems: list[str] = []

    assert parse_duration(value, "t.retry_interval", problems) is None
    assert problems == [problem]


def test_parse_duration_of_a_year_is_accepted() -> None:
    assert parse_duration("8760h", "x", []) == 365 * 24 * 3600.0


def test_parse_duration_missing_is_none_without_problem() -> None:
    problems: list[str] = []

    assert parse_duration(None, "x", problems) is None
    assert problems == []


def test_parse_retry_interval_in_minutes_gives_seconds() -> None:
    wf = parse_workflow(raw(shell("a", retries=1, retry_interval="2m")))

    assert wf.task("a").retry_interval_s == 120.0


def test_content_hash_ignores_the_version_and_sees_the_content() -> None:
    wf = parse_workflow(raw(shell("a"), shell("b", "a")))
    other = parse_workflow(raw(shell("a"), shell("b", "a", retries=1)))

    assert wf.content_hash() == WorkflowDef(**{**_fields(wf), "version": 7}).content_hash()
    assert wf.content_hash() != other.content_hash()


def test_run_false_disables_a_task_and_anything_but_a_boolean_is_refused() -> None:
    wf = parse_workflow(raw(shell("a"), shell("b", "a", run=False)))

    assert [(t.code, t.run) for t in wf.tasks] == [("a", True), ("b", False)]
    with pytest.raises(InvalidDefinition) as refused:
        parse_workflow(raw(shell("a", run="no")))
    assert refused.value.problems == ["task 'a'.run: expected true or false, found 'no'"]


def test_content_hash_of_an_enabled_task_is_what_it_was_before_the_run_flag() -> None:
    wf = parse_workflow(raw(shell("a"), shell("b", "a", retries=1)))
    before = json.loads(json.dumps(dataclasses.asdict(dataclasses.replace(wf, version=0)),
                                   default=str))  # fmt: skip
    del before["timeout_s"], before["params"]  # fields added later, at their defaults
    for t in before["tasks"]:
        for later in ("run", "timeout_strategy", "delay_s", "params", "spec"):
            del t[later]
    digest = hashlib.blake2b(
        json.dumps(before, sort_keys=True, default=str).encode(), digest_size=16
    ).hexdigest()

    assert wf.content_hash() == digest
    assert (
        parse_workflow(raw(shell("a"), shell("b", "a", retries=1, run=False))).content_hash()
        != digest
    )


def test_workflow_to_dict_names_enums_and_parses_back_unchanged() -> None:
    wf = parse_workflow(
        raw(
            shell("a", priority="low", retries=1, retry_interval="1m", timeout="10s"),
            shell("b", "a", worker_group="gpu"),
            failure_strategy="end",
        )
    )

    plain = workflow_to_dict(wf)

    assert json.loads(json.dumps(plain)) == plain
    assert plain["failure_strategy"] == "END"
    assert [t["priority"] for t in plain["tasks"]] == ["LOW", "MEDIUM"]
    assert [t["type"] for t in plain["tasks"]] == ["SHELL", "SHELL"]
    assert plain["tasks"][1]["depends"] == ["a"]
    renamed = {"retry_interval_s": "retry_interval", "timeout_s": "timeout", "delay_s": "delay"}
    again = {renamed.get(k, k): v for k, v in plain.items() if k != "version"}
    again["tasks"] = [{renamed.get(k, k): v for k, v in t.items()} for t in plain["tasks"]]
    assert parse_workflow(again) == wf


def _fields(wf: WorkflowDef) -> dict[str, Any]:
    return {name: getattr(wf, name) for name in WorkflowDef.__dataclass_fields__}


@st.composite
def cyclic_graphs(draw: st.DrawFn) -> tuple[dict[str, list[str]], tuple[str, str]]:
    """An acyclic graph (edges from lower to higher index) plus one back edge."""
    n = draw(st.integers(2, 10))
    codes = [f"t{i}" for i in range(n)]
    depends: dict[str, list[str]] = {
        c: [codes[j] for j in sorted(draw(st.sets(st.integers(0, i - 1), max_size=3)))] if i else []
        for i, c in enumerate(codes)
    }
    hi = draw(st.integers(1, n - 1))
    lo = draw(st.integers(0, hi - 1))
    # make lo reachable from hi's ancestors: a path lo -> ... -> hi, then hi -> lo closes it
    for i in range(lo + 1, hi + 1):
        if codes[i - 1] not in depends[codes[i]]:
            depends[codes[i]].append(codes[i - 1])
    depends[codes[lo]].append(codes[hi])
    return depends, (codes[hi], codes[lo])


@settings(max_examples=50, deadline=None)
@given(cyclic_graphs())
def test_dag_problems_cycle_path_follows_real_edges(
    graph: tuple[dict[str, list[str]], tuple[str, str]],
) -> None:
    depends, _ = graph
    wf = WorkflowDef(
        code="g",
        tasks=tuple(TaskDef(code=c, command="x", depends=tuple(ds)) for c, ds in depends.items()),
    )

    [problem] = dag_problems(wf)

    assert problem.startswith("cycle: ")
    path = problem.removeprefix("cycle: ").split(" -> ")
    assert path[0] == path[-1]
    assert len(set(path[:-1])) == len(path) - 1
    for upstream, downstream in pairwise(path):
        assert upstream in depends[downstream]


def test_parse_non_string_keys_are_unknown_fields_not_a_crash() -> None:
    definition = {"code": "etl", 1: "x", None: "y", "tasks": [{**shell("a"), 2: "z", None: 0}]}

    assert problems_of(definition) == [
        "unknown field 1",
        "unknown field None",
        "task 'a': unknown field 2",
        "task 'a': unknown field None",
    ]


@pytest.mark.parametrize(("timeout", "seconds"), [(0, None), ("0s", None), ("0ms", None),
                                                  ("1ms", 0.001), (90, 90.0)])  # fmt: skip
def test_parse_timeout_zero_means_no_timeout(timeout: object, seconds: float | None) -> None:
    wf = parse_workflow(raw(shell("a", timeout=timeout)))

    assert wf.task("a").timeout_s == seconds


def test_content_hash_of_a_content_never_changes() -> None:
    # Stored with every registered version: registering the same content again must find it.
    wf = WorkflowDef(
        code="etl", version=3, description="nightly", failure_strategy=FailureStrategy.END,
        tasks=(
            TaskDef(code="extract", command="./x.sh", retries=2, retry_interval_s=30.0,
                    timeout_s=600.0, priority=Priority.HIGH),
            TaskDef(code="load", type=TaskType.NOOP, depends=("extract",), worker_group="gpu"),
        ),
    )  # fmt: skip

    assert wf.content_hash() == "8d2c866cd2b39db3d6205da65dd3077a"


def test_parse_duration_of_exactly_366_days_is_accepted() -> None:
    problems: list[str] = []

    assert parse_duration("8784h", "x", problems) == 366 * 24 * 3600.0
    assert problems == []


def test_parse_descriptions_are_kept_and_default_to_empty() -> None:
    described = parse_workflow(raw(shell("a", description="loads"), description="nightly"))
    bare = parse_workflow(raw(shell("a")))

    assert (described.description, described.task("a").description) == ("nightly", "loads")
    assert (bare.description, bare.task("a").description) == ("", "")


def test_a_stored_definition_without_a_version_reads_as_unregistered() -> None:
    stored = workflow_to_dict(parse_workflow(raw(shell("a"))))
    del stored["version"]

    assert workflow_from_dict(stored).version == 0


def test_a_stored_task_that_is_not_a_mapping_is_a_problem_not_a_crash() -> None:
    stored = workflow_to_dict(parse_workflow(raw(shell("a"))))
    stored["tasks"] = [*stored["tasks"], "b"]

    with pytest.raises(InvalidDefinition, match=r"tasks\[1\]: expected a mapping, found str"):
        workflow_from_dict(stored)
