"""Every record the projector reads has a handler; the archive's JSON form; the migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from projections.handlers import HANDLERS, NOT_ARCHIVED, Fence, Meta, jsonable
from projections.migrate import migrations
from schemas.catalog import DEFINITIONS, EVENTS, HEARTBEATS
from streams.core.events import (
    INSTANCE_EVENT_TYPES,
    CommandRejected,
    PartitionTakenOver,
    TaskFailed,
    WorkflowPaused,
)
from streams.core.rejections import Reason
from streams.core.worker_messages import WorkerHeartbeat

AT = datetime(2024, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC)


def test_every_instance_event_type_has_a_handler() -> None:
    missing = [cls.__name__ for cls in INSTANCE_EVENT_TYPES if cls not in HANDLERS]
    assert missing == []


def test_every_record_type_on_a_projected_topic_has_a_handler() -> None:
    projected = {*EVENTS, *DEFINITIONS, *HEARTBEATS}
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
