"""The stored JSON form of a definition and its reader are one pair: `workflow_from_dict`
reads back exactly what `workflow_to_dict` wrote, for any valid definition, and the rows the
read model already holds."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.definition import (
    MAX_DURATION_S,
    InvalidDefinition,
    TaskDef,
    WorkflowDef,
    parse_workflow,
    workflow_from_dict,
    workflow_to_dict,
)
from streams.core.enums import FailureStrategy, Priority, TaskType

CODES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,30}", fullmatch=True)
SECONDS = st.floats(min_value=0, max_value=MAX_DURATION_S, allow_nan=False)


@st.composite
def definitions(draw: st.DrawFn) -> WorkflowDef:
    """Any definition `parse_workflow` accepts (a DAG: each task depends on earlier ones
    only), with any version."""
    codes = draw(st.lists(CODES, min_size=1, max_size=8, unique=True))
    tasks = []
    for i, code in enumerate(codes):
        # HTTP and SQL tasks need their settings (tests/core/test_task_specs.py)
        kind = draw(st.sampled_from((TaskType.SHELL, TaskType.NOOP, TaskType.PYTHON)))
        scripted = kind in (TaskType.SHELL, TaskType.PYTHON)
        command = st.text().filter(str.strip) if scripted else st.text()
        timeout = draw(st.none() | SECONDS.filter(bool))
        tasks.append(
            TaskDef(
                code=code,
                type=kind,
                command=draw(command),
                depends=tuple(draw(st.lists(st.sampled_from(codes[:i]), unique=True))) if i else (),
                retries=draw(st.integers(0, 1_000)),
                retry_interval_s=draw(SECONDS),
                timeout_s=timeout,
                worker_group=draw(st.text(min_size=1)),
                priority=draw(st.sampled_from(Priority)),
                description=draw(st.text()),
            )
        )
    return WorkflowDef(
        code=draw(CODES),
        version=draw(st.integers(0, 2**31 - 1)),
        description=draw(st.text()),
        failure_strategy=draw(st.sampled_from(FailureStrategy)),
        tasks=tuple(tasks),
    )


@settings(max_examples=300, deadline=None)
@given(definitions())
def test_workflow_from_dict_reads_back_exactly_what_workflow_to_dict_wrote(
    wf: WorkflowDef,
) -> None:
    stored = json.loads(json.dumps(workflow_to_dict(wf)))  # as a jsonb column returns it

    assert workflow_from_dict(stored) == wf
    assert workflow_to_dict(workflow_from_dict(stored)) == stored


# A row of `workflow_definitions.definition` as the projector has written it since the
# read model exists: these key names are what PostgreSQL holds (and what its SQL reads).
STORED_ROW = """{"code": "nightly-etl", "version": 3, "description": "Extract, clean, join",
 "failure_strategy": "CONTINUE", "tasks": [
  {"code": "extract", "type": "SHELL", "command": "./extract.sh", "depends": [], "retries": 2,
   "retry_interval_s": 30.0, "timeout_s": 600.0, "worker_group": "default",
   "priority": "HIGH", "description": ""},
  {"code": "report", "type": "NOOP", "command": "", "depends": ["extract"], "retries": 0,
   "retry_interval_s": 0.0, "timeout_s": null, "worker_group": "gpu", "priority": "MEDIUM",
   "description": "tell"}]}"""


def test_a_row_already_stored_reads_back_and_is_written_again_unchanged() -> None:
    stored = json.loads(STORED_ROW)

    wf = workflow_from_dict(stored)

    assert wf == WorkflowDef(
        code="nightly-etl",
        version=3,
        description="Extract, clean, join",
        failure_strategy=FailureStrategy.CONTINUE,
        tasks=(
            TaskDef(code="extract", command="./extract.sh", retries=2, retry_interval_s=30.0,
                    timeout_s=600.0, priority=Priority.HIGH),
            TaskDef(code="report", type=TaskType.NOOP, depends=("extract",), worker_group="gpu",
                    description="tell"),
        ),
    )  # fmt: skip
    # the run flag, timeout strategy, delay, workflow timeout, parameters and type settings
    # came later: a row stored before them reads back with their defaults
    later = {"run": True, "timeout_strategy": "FAILED", "delay_s": 0.0, "params": [], "spec": None}
    assert workflow_to_dict(wf) == {
        **stored, "timeout_s": None, "params": [],
        "tasks": [{**t, **later} for t in stored["tasks"]],
    }  # fmt: skip


def test_the_stored_form_names_every_field_as_the_record_does_and_enums_by_name() -> None:
    wf = parse_workflow(
        {"code": "w", "failure_strategy": "end",
         "tasks": [{"code": "a", "command": "x", "priority": "lowest", "timeout": "1m"}]}
    )  # fmt: skip

    stored = workflow_to_dict(wf)

    assert set(stored) == set(WorkflowDef.__dataclass_fields__)
    assert set(stored["tasks"][0]) == set(TaskDef.__dataclass_fields__)
    assert stored["failure_strategy"] == "END"
    assert stored["tasks"][0] == {
        "code": "a", "type": "SHELL", "command": "x", "depends": [], "retries": 0,
        "retry_interval_s": 0.0, "timeout_s": 60.0, "worker_group": "default",
        "priority": "LOWEST", "description": "", "run": True, "timeout_strategy": "FAILED",
        "delay_s": 0.0, "params": [], "spec": None,
    }  # fmt: skip


def _stored(**changes: Any) -> dict[str, Any]:
    return {**json.loads(STORED_ROW), **changes}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (["not", "a", "mapping"], "expected a mapping at the top, found list"),
        (_stored(version=-1), "version: expected a whole number >= 0, found -1"),
        (_stored(version="3"), "version: expected a whole number >= 0, found '3'"),
        (_stored(owner="x"), "unknown field 'owner'"),
        (_stored(failure_strategy="SOMETIMES"), "failure_strategy: expected one of"),
        (_stored(tasks=[{"code": "a", "command": "x", "timeout_s": -1}]), "timeout: must not"),
        (_stored(tasks=[{"code": "a", "command": "x", "depends": ["b"]}]), "unknown task 'b'"),
    ],
)
def test_a_stored_form_that_is_no_definition_is_refused_with_its_problem(
    data: object, problem: str
) -> None:
    with pytest.raises(InvalidDefinition) as refused:
        workflow_from_dict(data)

    assert any(problem in p for p in refused.value.problems)
