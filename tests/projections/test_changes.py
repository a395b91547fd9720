"""A batch's writes are coalesced per row: a few statements per batch, not one per event.
(That the coalesced rows equal applying the events one by one is checked against
PostgreSQL in tests/integration/test_projections.py.)"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from projections.changes import Changes
from projections.handlers import Meta, project
from streams.core.definition import parse_workflow
from streams.core.events import (
    TaskDispatched,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    WorkflowRerun,
    WorkflowStarted,
    WorkflowSucceeded,
)

T0 = datetime(2024, 5, 1, tzinfo=UTC)
FLOW = dataclasses.replace(
    parse_workflow(
        {"code": "f", "tasks": [{"code": f"t{i}", "command": "true"} for i in range(10)]}
    ),
    version=1,
)


class RecordingCursor:
    """Hand-written fake: records statements instead of sending them."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any]] = []

    def execute(self, query: str, params: Any = None) -> None:
        self.statements.append((query, params))

    def rows(self, starts: str) -> list[dict[str, Any]]:
        """The JSON rows of every statement starting with `starts`."""
        return [row for q, p in self.statements if q.startswith(starts) for row in json.loads(p[0])]


def flushed(events: list[Any]) -> RecordingCursor:
    cur = RecordingCursor()
    changes = Changes(cur)  # type: ignore[arg-type]
    for offset, event in enumerate(events):
        project(changes, event, Meta("events", 0, offset, event.instance_id))
    changes.flush()
    return cur


def event(cls: type, n: int, **fields: Any) -> Any:
    return cls(instance_id="i", cause=f"c{n}", at=T0 + timedelta(seconds=n), **fields)


def test_a_whole_instance_in_one_batch_is_one_row_per_table_row_and_few_statements() -> None:
    events = [event(WorkflowStarted, 0, workflow=FLOW)]
    for task in FLOW.tasks:
        n = len(events)
        events += [
            event(TaskDispatched, n, task_code=task.code, attempt=1, worker_id="w",
                  worker_group="default"),
            event(TaskStarted, n + 1, task_code=task.code, attempt=1, worker_id="w"),
            event(TaskSucceeded, n + 2, task_code=task.code, attempt=1, exit_code=0),
        ]  # fmt: skip
    events.append(event(WorkflowSucceeded, len(events)))

    cur = flushed(events)

    assert len(cur.statements) == 6  # archive, 2 checks, supersede, 1 upsert per table
    assert len(cur.rows("INSERT INTO event_archive")) == len(events)
    [instance] = cur.rows("INSERT INTO workflow_instances")
    assert (instance["state"], instance["last_offset"]) == ("SUCCESS", len(events) - 1)
    assert instance["ended_at"] == events[-1].at.isoformat()
    tasks = cur.rows("INSERT INTO task_instances")
    assert [(t["task_code"], t["state"], t["valid"]) for t in tasks] == [
        (task.code, "SUCCESS", True) for task in FLOW.tasks
    ]
    assert all(t["started_at"] and t["ended_at"] and t["exit_code"] == 0 for t in tasks)


def test_a_retry_in_the_same_batch_leaves_only_the_latest_attempt_valid() -> None:
    cur = flushed([
        event(TaskDispatched, 0, task_code="t", attempt=1, worker_id="w", worker_group="g"),
        event(TaskFailed, 1, task_code="t", attempt=1, exit_code=1, reason="exit 1"),
        event(TaskDispatched, 2, task_code="t", attempt=2, worker_id="w", worker_group="g"),
        event(TaskStarted, 3, task_code="t", attempt=1, worker_id="w"),  # late ack of attempt 1
    ])  # fmt: skip

    tasks = {t["attempt"]: t for t in cur.rows("INSERT INTO task_instances")}
    assert (tasks[1]["state"], tasks[1]["valid"], tasks[1]["reason"]) == (
        "RUNNING_EXECUTION", False, "exit 1"
    )  # fmt: skip
    assert (tasks[2]["state"], tasks[2]["valid"]) == ("DISPATCH", True)
    assert cur.rows("UPDATE task_instances t SET valid = false") == [
        {"instance_id": "i", "task_code": "t", "attempt": 2}
    ]


def test_a_rerun_in_the_same_batch_invalidates_every_earlier_attempt_before_new_ones() -> None:
    cur = flushed([
        event(TaskDispatched, 0, task_code="t", attempt=1, worker_id="w", worker_group="g"),
        event(TaskDispatched, 1, task_code="u", attempt=1, worker_id="w", worker_group="g"),
        event(TaskSucceeded, 2, task_code="t", attempt=1, exit_code=0),
        event(TaskFailed, 3, task_code="u", attempt=1, exit_code=1, reason="exit 1"),
        event(WorkflowRerun, 4),
        event(TaskDispatched, 5, task_code="t", attempt=2, worker_id="w", worker_group="g"),
    ])  # fmt: skip

    tasks = {(t["task_code"], t["attempt"]): t["valid"]
             for t in cur.rows("INSERT INTO task_instances")}  # fmt: skip
    assert tasks == {("t", 1): False, ("u", 1): False, ("t", 2): True}
    queries = [q for q, _ in cur.statements]
    invalidate = next(i for i, q in enumerate(queries) if q.startswith("UPDATE task_instances SET"))
    assert cur.statements[invalidate][1] == (["i"],)  # stored attempts of the instance too
    assert invalidate < next(i for i, q in enumerate(queries) if "INTO task_instances" in q)
    [instance] = cur.rows("UPDATE workflow_instances")
    assert (instance["state"], instance["started_at"]) == (
        "RUNNING_EXECUTION", (T0 + timedelta(seconds=4)).isoformat()
    )  # fmt: skip


def test_every_change_is_type_checked_even_when_a_later_one_overwrites_it() -> None:
    cur = flushed([
        event(TaskSucceeded, 0, task_code="t", attempt=1, exit_code=2**40),
        event(TaskSucceeded, 1, task_code="t", attempt=1, exit_code=0),
    ])  # fmt: skip

    checked = cur.rows("SELECT count(*) FROM jsonb_populate_recordset(NULL::task_instances")
    assert [c["exit_code"] for c in checked] == [2**40, 0]
    [update] = cur.rows("UPDATE task_instances")
    assert update["exit_code"] == 0
