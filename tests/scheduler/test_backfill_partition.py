"""A scheduler partition holding backfills: which instances its RUNNING backfills wait for,
kept current as their facts are folded (live or rebuilt from the log)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.core.schedules.backfill import BackfillSpec, ExecutionOrder, RunMode
from streams.core.schedules.backfill_flow import decide, instance_ended
from streams.core.schedules.backfill_messages import RequestBackfill
from streams.scheduler.partition import SchedulePartition

NOW = datetime(2026, 11, 30, tzinfo=UTC)
DATES = tuple(datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=i) for i in range(3))


def test_waiting_follows_starts_and_ends() -> None:
    part = SchedulePartition(0)
    spec = BackfillSpec(
        workflow_code="etl",
        dates=DATES,
        order=ExecutionOrder.ASC,
        run_mode=RunMode.PARALLEL,
        parallelism=2,
    )
    command = RequestBackfill(command_id="r", backfill_id="b", spec=spec, at=NOW)
    for e in decide(part.backfill("b"), command, NOW, {"etl"}):
        part.fold(e)
    first, second = (part.backfill("b").started[d] for d in DATES[:2])
    assert part.waiting == {first: "b", second: "b"}
    for e in instance_ended(part.backfill("b"), first, "SUCCESS", NOW):
        part.fold(e)
    third = part.backfill("b").started[DATES[2]]
    assert part.waiting == {second: "b", third: "b"}
    assert part.schedules == {} and part.pending == {}
