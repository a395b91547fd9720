"""The SQL contract (docs/READ_MODELS.md, migration 004) on the real PostgreSQL: every view and
column the page documents exists, in that order, with that type and with the page's text as
its comment; no contract view or column is undocumented; every example query of the page runs
and returns rows on a deployment with a few projected instances."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.settings import Settings
from projections.projector import Projector
from streams.core.definition import parse_workflow
from streams.core.events import (
    CommandRejected,
    InstanceEvent,
    TaskDispatched,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    WorkflowFailed,
    WorkflowStarted,
    WorkflowSucceeded,
)
from streams.core.rejections import Reason
from streams.core.schedules.messages import (
    ScheduleBroughtOnline,
    ScheduleCreated,
    ScheduleEvent,
    ScheduleFired,
)
from streams.core.schedules.spec import ScheduleSpec
from streams.core.worker_messages import WorkerHeartbeat
from streams.kafka.producer import Producer
from streams.postgres.connection import connect

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "READ_MODELS.md"
_VIEW = re.compile(r"^### `(v\d+_\w+)`$")
_COLUMN = re.compile(r"^\| `(\w+)` \| ([^|]+?) \| ([^|]+?) \|$")
_SQL = re.compile(r"^```sql\n(.*?)^```$", re.MULTILINE | re.DOTALL)

ETL = dataclasses.replace(
    parse_workflow(
        {
            "code": "etl",
            "tasks": [
                {"code": "extract", "command": "true", "retries": 1},
                {"code": "load", "command": "true", "depends": ["extract"]},
            ],
        }
    ),
    version=1,
)


@dataclasses.dataclass
class Documented:
    """A view as the page documents it: its description and (column, type, description)s."""

    text: str = ""
    columns: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)


def documented_views(doc: str) -> dict[str, Documented]:
    views: dict[str, Documented] = {}
    current: Documented | None = None
    for line in doc.splitlines():
        if line.startswith("#"):
            m = _VIEW.match(line)
            current = views.setdefault(m.group(1), Documented()) if m else None
        elif current is not None and (col := _COLUMN.match(line)):
            current.columns.append(col.groups())
        elif current is not None and line and not line.startswith("|") and not current.text:
            current.text = line
    return views


def example_queries(doc: str) -> list[str]:
    return [m.group(1) for m in _SQL.finditer(doc)]


def test_the_page_documents_the_views_and_queries_the_issue_asks_for() -> None:
    doc = DOC.read_text("utf-8")
    views = documented_views(doc)
    assert set(views) == {
        "v1_instances", "v1_task_attempts", "v1_workers", "v1_command_rejections",
        "v1_event_archive", "v1_schedules", "v1_schedule_fires", "v1_backfills",
        "v1_backfill_dates",
    }  # fmt: skip
    for name, view in views.items():
        assert view.text and view.columns, name
        assert len({c for c, _, _ in view.columns}) == len(view.columns), name
    queries = example_queries(doc)
    assert len(queries) >= 5
    for q in queries:
        assert "v1_" in q and "task_instances " not in q and "workflow_instances" not in q, q


def test_every_documented_view_and_column_exists_with_its_type_and_comment(
    deployment: Settings,
) -> None:
    views = documented_views(DOC.read_text("utf-8"))
    with connect(deployment.db) as conn:
        in_db = {
            name: text
            for name, text in conn.execute(
                "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c"
                " WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'v'"
                " AND c.relname ~ '^v[0-9]+_'",
                (deployment.tideflow_db_schema,),
            ).fetchall()
        }
        assert set(in_db) == set(views)  # no undocumented contract view either
        for name, view in views.items():
            assert in_db[name] == view.text, name
            columns = conn.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod),"
                " col_description(a.attrelid, a.attnum)"
                " FROM pg_attribute a WHERE a.attrelid = %s::regclass"
                " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                (f'"{deployment.tideflow_db_schema}".{name}',),
            ).fetchall()
            assert [tuple(c) for c in columns] == view.columns, name


T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)


class Log:
    """The events of one instance, each `dt` seconds after the previous one."""

    def __init__(self, instance_id: str, start: float) -> None:
        self.instance_id, self.clock = instance_id, start
        self.events: list[InstanceEvent] = []

    def add(self, cls: type, dt: float = 1.0, **fields: Any) -> Log:
        self.clock += dt
        base: dict[str, Any] = {
            "instance_id": self.instance_id,
            "at": T0 + timedelta(seconds=self.clock),
        }
        if "cause" in cls.__dataclass_fields__:
            base["cause"] = f"{self.instance_id}/c{len(self.events)}"
        self.events.append(cls(**{**base, **fields}))
        return self

    def ran(self, task: str, attempt: int, seconds: float, ok: bool = True) -> Log:
        self.add(TaskDispatched, task_code=task, attempt=attempt, worker_id="w1",
                 worker_group="default")  # fmt: skip
        self.add(TaskStarted, dt=0.5, task_code=task, attempt=attempt, worker_id="w1")
        if ok:
            return self.add(TaskSucceeded, dt=seconds, task_code=task, attempt=attempt,
                            exit_code=0, output="ok")  # fmt: skip
        retry = T0 + timedelta(seconds=self.clock + seconds + 1) if attempt == 1 else None
        return self.add(TaskFailed, dt=seconds, task_code=task, attempt=attempt, exit_code=3,
                        reason="exit 3", output="boom", retry_at=retry)  # fmt: skip


def instances() -> list[Log]:
    def started(instance_id: str, start: float) -> Log:
        return Log(instance_id, start).add(
            WorkflowStarted, workflow=ETL, params={"day": "1"}, requested_by="test"
        )

    fast = started("i-fast", 0).ran("extract", 1, 3).ran("load", 1, 5).add(WorkflowSucceeded)
    retried = started("i-retried", 60).ran("extract", 1, 2, ok=False).ran("extract", 2, 4)
    retried.ran("load", 1, 7).add(WorkflowSucceeded)
    retried.add(
        CommandRejected,
        command_id="pause-late",
        command_type="PauseWorkflow",
        reason=Reason.INVALID_STATE,
        message="expected RUNNING_EXECUTION, found SUCCESS",
    )
    failed = started("i-failed", 120).ran("extract", 1, 1, ok=False)
    failed.ran("extract", 2, 1, ok=False).add(WorkflowFailed, reason="task extract failed")
    running = started("i-running", 180)
    running.add(TaskDispatched, task_code="extract", attempt=1, worker_id="w1",
                worker_group="default")  # fmt: skip
    running.add(TaskStarted, task_code="extract", attempt=1, worker_id="w1")
    return [fast, retried, failed, running]


FIRE = T0 + timedelta(seconds=2)


def schedule_events() -> list[ScheduleEvent]:
    """A schedule online since T0 that fired once (i-fast's fire time), twice over."""
    spec = ScheduleSpec(workflow_code="etl", cron="*/2 * * * * ? *", params={"day": "1"})
    fired = ScheduleFired(
        schedule_id="every-2s", workflow_code="etl", fire_time=FIRE, instance_id="i-fast",
        command_id="c-fire", next_fire_time=FIRE + timedelta(seconds=2), cause="c-fire",
        at=FIRE + timedelta(seconds=0.25),
    )  # fmt: skip
    return [
        ScheduleCreated(schedule_id="every-2s", spec=spec, requested_by="test", cause="c", at=T0),
        ScheduleBroughtOnline(schedule_id="every-2s", next_fire_time=FIRE, cause="c", at=T0),
        fired,
        dataclasses.replace(fired, at=FIRE + timedelta(seconds=9)),  # a restart fired it again
    ]


def project(settings: Settings, logs: list[Log]) -> None:
    producer = Producer(settings.kafka)
    for log in logs:
        for event in log.events:
            producer.send(settings.topics.events, log.instance_id, event)
    now = datetime.now(UTC)
    heartbeat = WorkerHeartbeat(
        worker_id="w1", worker_group="default", host="h", pid=42, slots_total=4, slots_free=3,
        cpu_percent=12.5, memory_percent=40.0, load_average=0.5, version="0.1.0",
        started_at=T0, at=now,
    )  # fmt: skip
    producer.send(settings.topics.heartbeats, "w1", heartbeat)
    for event in schedule_events():
        producer.send(settings.topics.schedules, event.schedule_id, event)
    producer.flush()
    with Projector(settings.kafka, settings.db) as projector:
        projector.run_until_idle(timeout_s=60)


def test_every_example_query_runs_and_returns_rows_and_the_views_derive_their_columns(
    deployment: Settings,
) -> None:
    project(deployment, instances())

    with connect(deployment.db) as conn:
        for query in example_queries(DOC.read_text("utf-8")):
            rows = conn.execute(query.encode()).fetchall()
            assert rows, query

        def one(query: str, *args: Any) -> tuple[Any, ...]:
            row = conn.execute(query, args).fetchone()
            assert row is not None, query
            return tuple(row)

        assert one(
            "SELECT state_code, state, finished, duration_s, requested_by FROM v1_instances"
            " WHERE instance_id = 'i-fast'"
        ) == (7, "SUCCESS", True, 12.0, "test")
        assert one(
            "SELECT state, finished, ended_at, duration_s FROM v1_instances"
            " WHERE instance_id = 'i-running'"
        ) == ("RUNNING_EXECUTION", False, None, None)
        assert one(
            "SELECT workflow_code, state_code, state, valid, queued_s, duration_s, exit_code"
            " FROM v1_task_attempts WHERE task_instance_id = 'i-retried/extract/1'"
        ) == ("etl", 6, "FAILURE", False, 0.5, 2.0, 3)
        assert one(
            "SELECT slots_busy, utilisation, heartbeat_age_s < 60 FROM v1_workers"
            " WHERE worker_id = 'w1'"
        ) == (1, 0.25, True)
        assert one(
            "SELECT workflow_code, reason FROM v1_command_rejections"
            " WHERE command_id = 'pause-late'"
        ) == ("etl", "INVALID_STATE")
        assert one(
            "SELECT count(*), min(log_offset) >= 0, bool_or(fenced) FROM v1_event_archive"
            " WHERE instance_id = 'i-fast'"
        ) == (len(instances()[0].events), True, False)
        assert one(
            "SELECT release_state, fires, last_fire_time, next_fire_time, params->>'day'"
            " FROM v1_schedules WHERE schedule_id = 'every-2s'"
        ) == ("ONLINE", 1, FIRE, FIRE + timedelta(seconds=2), "1")
        assert one(
            "SELECT count(*), min(lateness_s), min(state) FROM v1_schedule_fires"
            " WHERE schedule_id = 'every-2s'"
        ) == (1, 0.25, "SUCCESS")
