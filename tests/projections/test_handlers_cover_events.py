"""Every record the projector reads has a handler; the archive's JSON form; the migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from projections.handlers import HANDLERS, NOT_ARCHIVED, Fence, Meta, jsonable
from projections.migrate import migrations
from schemas.catalog import DEFINITIONS, EVENTS, HEARTBEATS, SCHEDULES
from streams.core.events import (
    INSTANCE_EVENT_TYPES,
    CommandRejected,
    PartitionTakenOver,
    TaskFailed,
    TaskKillRequested,
    WorkflowPaused,
)
from streams.core.rejections import Reason
from streams.core.transitions import TASK_STATE_AFTER, WORKFLOW_STATE_AFTER
from streams.core.worker_messages import WorkerHeartbeat
from tests.core.builders import IID, one_of_each

AT = datetime(2024, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC)


def test_every_instance_event_type_has_a_handler() -> None:
    missing = [cls.__name__ for cls in INSTANCE_EVENT_TYPES if cls not in HANDLERS]
    assert missing == []


def test_every_record_type_on_a_projected_topic_has_a_handler() -> None:
    projected = {*EVENTS, *DEFINITIONS, *HEARTBEATS, *SCHEDULES}
    assert projected <= set(HANDLERS)
    assert set(HANDLERS) == projected  # no handler for a record that never arrives


def test_only_heartbeats_are_left_out_of_the_archive() -> None:
    assert frozenset({WorkerHeartbeat}) == NOT_ARCHIVED


def test_archived_payload_has_enum_names_iso_datetimes_and_no_nul() -> None:
    rejected = CommandRejected(
        instance_id="i", command_id="c", command_type="PauseWorkflow",
        reason=Reason.INVALID_STATE, message="expected RUNNING_EXECUTION, found SUCCESS\x00",
        at=AT,
    )  # fmt: skip
    failed = TaskFailed(
        instance_id="i", task_code="t", attempt=1, exit_code=2, reason="exit 2",
        retry_at=None, cause="c", at=AT,
    )  # fmt: skip

    assert jsonable(rejected) == {
        "instance_id": "i",
        "command_id": "c",
        "command_type": "PauseWorkflow",
        "reason": "INVALID_STATE",
        "message": "expected RUNNING_EXECUTION, found SUCCESS\ufffd",
        "at": "2024-01-02T03:04:05.600000+00:00",
        "epoch": 0,
    }
    assert jsonable(failed)["retry_at"] is None


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    versions = [m.version for m in migrations()]
    assert versions == list(range(1, len(versions) + 1))
    assert "CREATE TABLE event_archive" in migrations()[0].text


class _Owners:
    """A cursor over `partition_owners` as the projector finds it: partition 0 at epoch 2."""

    def execute(self, sql: str) -> None:
        assert "partition_owners" in sql

    def fetchall(self) -> list[tuple[int, int]]:
        return [(0, 2)]


def _fence() -> Fence:
    cur: Any = _Owners()
    return Fence(cur)


def test_the_fence_skips_events_below_the_stored_owner_epoch_of_their_partition() -> None:
    fence = _fence()
    paused = WorkflowPaused(instance_id="i", cause="c", at=AT, epoch=1)

    assert fence.fenced(paused, Meta("events", 0, 10, "i"))
    assert not fence.fenced(paused, Meta("events", 1, 10, "i"))  # partition 1: no owner yet
    assert not fence.fenced(paused, Meta("commands", 0, 10, "i"))  # only the events topic


def test_a_takeover_in_the_log_raises_the_fence_and_is_never_fenced() -> None:
    fence = _fence()
    taken = PartitionTakenOver(partition=1, owner="m", epoch=3, events_offset=0, at=AT)

    assert not fence.fenced(taken, Meta("events", 1, 5, "partition/1"))
    paused = WorkflowPaused(instance_id="i", cause="c", at=AT, epoch=2)
    assert fence.fenced(paused, Meta("events", 1, 6, "i"))
    assert not fence.fenced(WorkflowPaused(instance_id="i", cause="c", at=AT, epoch=3),
                            Meta("events", 1, 7, "i"))  # fmt: skip


class _Writes:
    """What the handlers state, per table and row key, merged in order (no database)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, Any], dict[str, Any]] = {}

    def upsert(self, table: str, row: dict[str, Any]) -> None:
        key = row["task_instance_id" if table == "task_instances" else "instance_id"]
        self.rows[(table, key)] = dict(row)

    def update(self, table: str, key: Any, values: dict[str, Any]) -> None:
        self.rows.setdefault((table, key), {}).update(values)

    def make_current(self, *_: Any) -> None: ...

    def invalidate_attempts(self, *_: Any) -> None: ...

    def execute(self, *_: Any) -> None: ...


def _written(event: Any) -> _Writes:
    w = _Writes()
    writes: Any = w
    HANDLERS[type(event)](writes, event, Meta("events", 0, 1, event.instance_id))
    return w


@pytest.mark.parametrize(
    "event",
    [e for e in one_of_each() if type(e) in TASK_STATE_AFTER],
    ids=lambda e: type(e).__name__,
)
def test_an_attempt_row_takes_the_state_the_core_table_names(event: Any) -> None:
    row = _written(event).rows[("task_instances", f"{IID}/a/1")]

    state = TASK_STATE_AFTER[type(event)]
    assert (row["state_code"], row["state"]) == (state.value, state.name)


@pytest.mark.parametrize(
    "event",
    [e for e in one_of_each() if type(e) in WORKFLOW_STATE_AFTER],
    ids=lambda e: type(e).__name__,
)
def test_an_instance_row_takes_the_state_the_core_table_names_ended_when_final(event: Any) -> None:
    row = _written(event).rows[("workflow_instances", IID)]

    state = WORKFLOW_STATE_AFTER[type(event)]
    assert (row["state_code"], row["state"]) == (state.value, state.name)
    assert row["ended_at"] == (event.at if state.finished else None)


def test_a_kill_request_leaves_the_attempt_row_as_it_is() -> None:
    [request] = [e for e in one_of_each() if isinstance(e, TaskKillRequested)]

    assert ("task_instances", f"{IID}/a/1") not in _written(request).rows
