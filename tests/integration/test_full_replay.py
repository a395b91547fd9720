"""A master whose snapshot database cannot be reached still takes partitions over: it replays
each one from offset 0 (snapshots make a takeover faster, never more correct), and what it
rebuilt is the whole state, old instances included."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from psycopg.conninfo import make_conninfo

from infra.prepare import prepare
from infra.processes import Fleet
from infra.settings import Settings
from infra.stack import free_port
from schemas.catalog import EVENTS
from schemas.serde import expect
from streams.core.commands import ResumeWorkflow
from streams.core.events import CommandRejected, PartitionTakenOver, WorkflowSucceeded
from streams.core.rejections import Reason
from streams.kafka.producer import Producer
from streams.kafka.reader import read_to_end
from streams.postgres.connection import connect
from tests.integration.conftest import fresh_settings
from tests.integration.helpers import ended_with, instance_events, send_start, wait_until

pytestmark = pytest.mark.integration

TWO_STEPS = [{"code": "a", "type": "noop"}, {"code": "b", "type": "noop", "depends": ["a"]}]


def takeovers(settings: Settings) -> list[PartitionTakenOver]:
    found = (expect(m.value(), EVENTS) for m in read_to_end(settings.kafka, settings.topics.events))
    return [e for e in found if isinstance(e, PartitionTakenOver)]


def snapshot_rows(settings: Settings) -> int:
    with connect(settings.db) as conn:
        row = conn.execute(
            "SELECT count(*) FROM master_snapshots WHERE events_topic = %s",
            (settings.topics.events,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_master_without_its_snapshot_database_takes_over_by_replaying_the_log(
    stack: Settings, tmp_path: Path
) -> None:
    settings = fresh_settings(stack, tideflow_snapshot_every_events=1)
    prepare(settings)
    unreachable = make_conninfo(settings.dsn, port=free_port())  # nothing listens there
    with Fleet(settings, log_dir=tmp_path / "logs") as fleet:
        fleet.start("master", "master-1")
        fleet.start("worker")
        before = send_start(settings, "before", TWO_STEPS)
        wait_until(lambda: ended_with(settings, before, WorkflowSucceeded), what="`before`")
        wait_until(lambda: snapshot_rows(settings) > 0, what="a snapshot master-2 could use")
        fleet.stop("master-1")
        fleet.start("master", "master-2", DATABASE_URL=unreachable)

        after = send_start(settings, "after", TWO_STEPS)
        wait_until(
            lambda: ended_with(settings, after, WorkflowSucceeded), timeout_s=60, what="`after`"
        )
        # Master-2 knows `before` finished: the log, not a snapshot, told it.
        resume = ResumeWorkflow(
            command_id=f"resume/{before}", instance_id=before, at=datetime.now(UTC)
        )
        producer = Producer(settings.kafka)
        producer.send(settings.topics.commands, before, resume)
        producer.flush()
        refused = wait_until(
            lambda: [
                e for e in instance_events(settings, before) if isinstance(e, CommandRejected)
            ],
            what="the resume to be refused",
        )

    assert [(r.reason, r.message) for r in refused] == [
        (Reason.INVALID_STATE, "expected FAILURE or PAUSE or STOP, found SUCCESS")
    ]
    second = [t for t in takeovers(settings) if t.epoch == 2]
    assert sorted(t.partition for t in second) == list(range(settings.tideflow_partitions))
    log = (tmp_path / "logs" / "master-2.log").read_text()
    assert "PostgreSQL error" in log
    replayed = {
        int(p): int(n)
        for p, n in re.findall(r"partition (\d+) taken over at epoch 2: snapshot none, (\d+)", log)
    }
    # from offset 0 to where it appended its takeover, on every partition
    assert replayed == {t.partition: t.events_offset for t in second}
