"""The projector on the real broker and PostgreSQL: events produced to Kafka become rows
that equal a fold of the same events; re-delivery doubles nothing; garbage is dead-lettered;
a dropped database connection loses nothing; replay rebuilds equal read models; how a log is
cut into batches (whose writes are coalesced per row) never changes the rows."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg import sql

from infra import compose
from infra.settings import Settings
from projections import queries
from projections.batch import Item, apply_batch
from projections.errors import UnknownCursor
from projections.handlers import Meta
from projections.migrate import migrate
from projections.projector import Projector
from projections.replay import COMPARED, ReplayRefused, compare, replay
from projections.retention import retire, retired
from projections.stats import stats
from streams.core.definition import parse_workflow
from streams.core.enums import TaskState, WorkflowState
from streams.core.events import (
    CommandRejected,
    InstanceEvent,
    PartitionTakenOver,
    TaskDispatched,
    TaskFailed,
    TaskFailedOver,
    TaskKilled,
    TaskKillRequested,
    TaskStarted,
    TaskSucceeded,
    WorkerLost,
    WorkflowDefinitionRegistered,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowPauseRequested,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowStopped,
    WorkflowStopRequested,
    WorkflowSucceeded,
)
from streams.core.evolve import fold
from streams.core.instance import InstanceState
from streams.core.rejections import Reason
from streams.core.worker_messages import WorkerHeartbeat
from streams.kafka.partitioning import partition_for
from streams.kafka.producer import Producer
from streams.postgres.connection import connect
from tests.integration.helpers import cli

pytestmark = pytest.mark.integration

T0 = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
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


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Log:
    """Given: the events of one instance, one second apart (builders read as the story)."""

    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        self.events: list[InstanceEvent] = []

    def add(self, cls: type, **fields: Any) -> Log:
        n = len(self.events)
        base: dict[str, Any] = {"instance_id": self.instance_id, "at": at(n)}
        if "cause" in cls.__dataclass_fields__:
            base["cause"] = f"{self.instance_id}/c{n}"
        self.events.append(cls(**{**base, **fields}))
        return self

    def started(self) -> Log:
        return self.add(WorkflowStarted, workflow=ETL, params={"day": "1"}, requested_by="cli")

    def ran(self, task: str, attempt: int) -> Log:
        self.add(TaskDispatched, task_code=task, attempt=attempt, worker_id="w1",
                 worker_group="default")  # fmt: skip
        return self.add(TaskStarted, task_code=task, attempt=attempt, worker_id="w1")

    def succeeded(self, task: str, attempt: int) -> Log:
        return self.add(TaskSucceeded, task_code=task, attempt=attempt, exit_code=0, output="ok")

    def failed(self, task: str, attempt: int, retry_at: datetime | None = None) -> Log:
        return self.add(TaskFailed, task_code=task, attempt=attempt, exit_code=3,
                        reason="exit 3", output="boom\x00", retry_at=retry_at)  # fmt: skip


def scenarios() -> list[Log]:
    ok = Log("i-ok").started().ran("extract", 1).failed("extract", 1, retry_at=at(100))
    ok.ran("extract", 2).succeeded("extract", 2).ran("load", 1).succeeded("load", 1)
    ok.add(WorkflowSucceeded)
    ok.add(
        CommandRejected, command_id="pause-late", command_type="PauseWorkflow",
        reason=Reason.INVALID_STATE, message="expected RUNNING_EXECUTION, found SUCCESS",
    )  # fmt: skip

    stopped = Log("i-stopped").started().ran("extract", 1).add(WorkflowStopRequested)
    stopped.add(TaskKillRequested, task_code="extract", attempt=1, worker_id="w1")
    stopped.add(TaskKilled, task_code="extract", attempt=1).add(WorkflowStopped)
    stopped.add(WorkflowResumed)  # extract is resubmitted, waiting for its next attempt

    paused = Log("i-paused").started().ran("extract", 1).add(WorkflowPauseRequested)
    paused.succeeded("extract", 1).add(WorkflowPaused)

    failed = Log("i-failed").started().ran("extract", 1).failed("extract", 1)
    failed.add(WorkflowFailed, reason="task extract failed")

    running = Log("i-running").started().ran("extract", 1).failed("extract", 1)
    running.add(WorkflowFailed, reason="x").add(WorkflowResumed).ran("extract", 2)
    return [ok, stopped, paused, failed, running]


def heartbeat(seconds: float, slots_free: int) -> WorkerHeartbeat:
    return WorkerHeartbeat(
        worker_id="w1", worker_group="default", host="h", pid=42, slots_total=4,
        slots_free=slots_free, cpu_percent=1.5, memory_percent=2.5, load_average=0.5,
        version="0.1.0", started_at=T0, at=at(seconds),
    )  # fmt: skip


def produce(settings: Settings, logs: list[Log]) -> None:
    producer = Producer(settings.kafka)
    registered = WorkflowDefinitionRegistered(
        workflow=ETL, content_hash=ETL.content_hash(), registered_by="test", at=at(-10)
    )
    producer.send(settings.topics.definitions, ETL.code, registered)
    for log in logs:
        for event in log.events:
            producer.send(settings.topics.events, log.instance_id, event)
    producer.send(settings.topics.events, "i-ghost", rejected_for_unknown_instance())
    producer.send(settings.topics.heartbeats, "w1", heartbeat(50, slots_free=1))
    producer.send(settings.topics.heartbeats, "w1", heartbeat(40, slots_free=3))  # older
    producer.flush()


def rejected_for_unknown_instance() -> CommandRejected:
    return CommandRejected(
        instance_id="i-ghost", command_id="stop-ghost", command_type="StopWorkflow",
        reason=Reason.NOT_FOUND, message="expected instance i-ghost, found none", at=at(1),
    )  # fmt: skip


def consume(settings: Settings, topic: str, count: int, timeout_s: float = 20.0) -> list[Message]:
    """The first `count` records of a one-partition topic (no watermarks: Tansu 0.6 reports
    the high watermark as the last batch's first offset + 1)."""
    consumer = Consumer(settings.kafka.consumer_config("admin", f"test-{uuid.uuid4()}"))
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < count and time.monotonic() < deadline:
            got += [m for m in consumer.consume(count, timeout=0.2) if m.error() is None]
        time.sleep(0.3)
        got += [m for m in consumer.consume(count, timeout=0.2) if m.error() is None]
    finally:
        consumer.close()
    return got


def project(settings: Settings) -> int:
    with Projector(settings.kafka, settings.db) as projector:
        return projector.run_until_idle(timeout_s=60)


def when(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat()


def assert_row_equals_fold(row: dict[str, Any], state: InstanceState) -> None:
    assert state.state is not None
    assert (row["state_code"], row["state"]) == (state.state.value, state.state.name)
    assert (row["started_at"], row["ended_at"]) == (when(state.started_at), when(state.ended_at))
    assert (row["failure_reason"] or "") == state.failure_reason
    tasks = {t["task_code"]: t for t in row["tasks"]}
    assert set(tasks) == set(state.tasks)
    for code, run in state.tasks.items():
        t = tasks[code]
        if run.state is TaskState.SUBMITTED_SUCCESS:
            # resumed, not dispatched again yet: the attempt's row keeps its outcome
            assert (t["attempt"], t["worker_id"]) == (run.attempt, run.worker_id), code
            assert t["state"] in ("FAILURE", "KILL", "PAUSE"), code
            continue
        assert (t["attempt"], t["state_code"], t["state"]) == (
            run.attempt, run.state.value, run.state.name
        ), code  # fmt: skip
        assert (t["worker_id"], t["exit_code"]) == (run.worker_id, run.exit_code), code
        got = [t[k] for k in ("dispatched_at", "started_at", "ended_at", "retry_at")]
        assert got == [when(run.dispatched_at), when(run.started_at), when(run.ended_at),
                       when(run.retry_at)], code  # fmt: skip


def snapshot(settings: Settings, schema: str | None = None) -> dict[str, list[tuple[Any, ...]]]:
    with connect(settings.db, schema) as conn:
        return {
            table: conn.execute(
                sql.SQL("SELECT * FROM {} ORDER BY 1, 2, 3").format(sql.Identifier(table))
            ).fetchall()
            for table in (*COMPARED, "workers", "projector_checkpoints")
        }


@pytest.fixture
def projected(deployment: Settings) -> Iterator[Settings]:
    """A deployment whose topics hold the scenarios, projected once."""
    produce(deployment, scenarios())
    assert project(deployment) > 0
    yield deployment


def test_projected_instances_and_latest_attempts_equal_fold_of_the_same_events(
    projected: Settings,
) -> None:
    with connect(projected.db) as conn:
        for log in scenarios():
            row = queries.get_instance(conn, log.instance_id)
            assert row is not None, log.instance_id
            assert_row_equals_fold(row, fold(log.events))

        ok = queries.get_instance(conn, "i-ok")
        assert ok is not None
        assert ok["params"] == {"day": "1"} and ok["requested_by"] == "cli"
        assert (ok["priority_code"], ok["priority"], ok["schedule_time"]) == (2, "MEDIUM", None)
        assert (ok["workflow_code"], ok["workflow_version"]) == ("etl", 1)
        first, *_ = [a for a in ok["attempts"] if a["task_instance_id"] == "i-ok/extract/1"]
        assert (first["valid"], first["state"], first["reason"]) == (False, "FAILURE", "exit 3")
        assert first["output"] == "boom\ufffd"  # NUL is not storable as PostgreSQL text
        assert [(a["task_code"], a["attempt"]) for a in ok["attempts"]] == [
            ("extract", 1), ("extract", 2), ("load", 1)
        ]  # fmt: skip
        assert [r["command_id"] for r in ok["rejections"]] == ["pause-late"]
        assert ok["rejections"][0]["reason"] == "INVALID_STATE"

        assert queries.get_instance(conn, "i-ghost") is None
        assert queries.get_instance(conn, "nope") is None
        ghost = conn.execute("SELECT reason FROM command_rejections WHERE command_id = %s",
                             ("stop-ghost",)).fetchone()  # fmt: skip
        assert ghost == ("NOT_FOUND",)


def test_queries_filter_list_and_order_as_the_api_expects(projected: Settings) -> None:
    with connect(projected.db) as conn:
        succeeded = queries.list_instances(conn, state="success")
        assert [i["instance_id"] for i in succeeded] == ["i-ok"]
        assert queries.list_instances(conn, state=6) == queries.list_instances(conn, state="6")
        assert len(queries.list_instances(conn, workflow_code="etl")) == 5
        with pytest.raises(ValueError, match="unknown workflow state"):
            queries.list_instances(conn, state="DONE")

        history = queries.history(conn, "i-ok")
        assert [h["event_type"] for h in history] == [
            type(e).__name__ for e in scenarios()[0].events
        ]
        assert [h["offset"] for h in history] == sorted(h["offset"] for h in history)
        assert history[0]["topic"] == "events"  # stored without the deployment's prefix
        assert history[0]["payload"]["workflow"]["tasks"][0]["priority"] == "MEDIUM"

        latest = queries.latest_definition(conn, "etl")
        assert latest is not None and latest["version"] == 1
        assert latest["definition"]["tasks"][1]["depends"] == ["extract"]
        assert queries.get_definition(conn, "etl", 2) is None
        assert queries.definition_version_for_hash(conn, "etl", ETL.content_hash()) == 1
        assert queries.definition_version_for_hash(conn, "etl", "other") is None
        listed = queries.definition_page(conn).rows
        assert [(d["code"], d["version"], d["versions"], d["tasks"]) for d in listed] == [
            ("etl", 1, 1, 2)
        ]

        [worker] = queries.worker_page(conn).rows
        assert (worker["slots_free"], worker["last_heartbeat_at"]) == (1, when(at(50)))


def test_pages_of_a_list_hold_every_row_once_in_the_order_of_the_whole_list(
    projected: Settings,
) -> None:
    with connect(projected.db) as conn:
        whole = queries.instance_page(conn).rows
        # Every instance started at the same moment: the id breaks the tie, newest first.
        assert [i["instance_id"] for i in whole] == sorted(
            (log.instance_id for log in scenarios()), reverse=True
        )
        paged, cursor = [], None
        while True:
            page = queries.instance_page(conn, limit=2, cursor=cursor)
            paged.extend(page.rows)
            if (cursor := page.next_cursor) is None:
                break
        assert paged == whole and len(paged) == 5

        events, cursor = [], None
        while True:
            page = queries.history_page(conn, "i-ok", limit=3, cursor=cursor)
            events.extend(page.rows)
            if (cursor := page.next_cursor) is None:
                break
        assert events == queries.history(conn, "i-ok")


def test_instance_filters_narrow_the_list_and_combine(projected: Settings) -> None:
    with connect(projected.db) as conn:

        def ids(**filters: Any) -> list[str]:
            return [i["instance_id"] for i in queries.instance_page(conn, **filters).rows]

        everyone = ids()
        assert ids(requested_by="cli") == everyone and ids(requested_by="api") == []
        assert ids(worker_id="w1") == everyone and ids(worker_id="w9") == []
        assert ids(since=T0) == everyone and ids(until=T0) == []
        assert ids(since=at(1)) == [] and ids(until=at(1)) == everyone
        assert ids(state="FAILURE", requested_by="cli") == ["i-failed"]
        assert ids(workflow_code="other") == []
        assert ids(workflow_code="etl\x00") == [] and ids(requested_by="\x00") == []


def test_a_cursor_that_is_not_a_page_of_this_list_is_refused_with_the_reason(
    projected: Settings,
) -> None:
    with connect(projected.db) as conn:
        foreign = queries.definition_page(conn, limit=1)
        for cursor in ("not base64!", "e30", "W10", foreign.next_cursor or "WyJldGwiXQ"):
            with pytest.raises(UnknownCursor, match="unknown cursor"):
                queries.instance_page(conn, cursor=cursor)


def test_stats_count_what_the_rows_hold(projected: Settings) -> None:
    with connect(projected.db) as conn:
        found = stats(conn, workflow_code="etl")
        rows = queries.instance_page(conn).rows
        assert found["instances"] == 5
        assert found["by_state"] == dict(Counter(r["state"] for r in rows))
        assert found["by_day"] == [
            {"day": "2024-05-01", "state": state, "instances": n}
            for state, n in sorted(
                Counter(r["state"] for r in rows).items(),
                key=lambda kv: WorkflowState[kv[0]].value,
            )
        ]
        [etl] = found["workflows"]
        assert (etl["instances"], etl["succeeded"]) == (5, 1)
        assert etl["failure_rate"] == round(etl["failed"] / etl["finished"], 4)
        tasks = {t["task_code"]: t for t in found["tasks"]}
        assert (tasks["extract"]["attempts"], tasks["extract"]["retries"]) == (7, 2)
        assert tasks["load"]["attempts"] == 1
        assert tasks["extract"]["duration_p50_s"] >= 0
        assert stats(conn, since=at(1))["instances"] == 0
        assert found["schedules"] == []

    scheduled = Log("i-fired").started()
    scheduled.events[0] = replace(scheduled.events[0], schedule_time=at(-2))
    produce(projected, [scheduled])
    project(projected)
    with connect(projected.db) as conn:
        [fired] = stats(conn, workflow_code="etl")["schedules"]
    assert (fired["scheduled_instances"], fired["fire_to_start_max_s"]) == (1, 2.0)


def test_api_lists_page_with_a_next_link_and_serve_stats_and_rejections(
    projected: Settings,
) -> None:
    client = TestClient(compose.http_app(projected))
    first = client.get("/instances", params={"limit": 3})
    assert [i["instance_id"] for i in first.json()] == ["i-stopped", "i-running", "i-paused"]
    link = first.headers["link"]
    assert link.endswith('>; rel="next"') and first.headers["x-next-cursor"] in link
    rest = client.get(link[1 : link.index(">")])
    assert [i["instance_id"] for i in rest.json()] == ["i-ok", "i-failed"]
    assert "link" not in rest.headers

    assert client.get("/instances", params={"cursor": "W10"}).status_code == 404
    assert client.get("/instances", params={"since": "yesterday"}).status_code == 422
    assert client.get("/stats", params={"workflow": "etl"}).json()["instances"] == 5
    [rejected] = client.get("/rejections", params={"instance": "i-ok"}).json()
    assert rejected["command_id"] == "pause-late"
    assert len(client.get("/rejections").json()) == 2  # with the unknown instance's


def test_cli_pages_filters_and_prints_stats_and_rejections(projected: Settings) -> None:
    first = cli(projected, "instances", "--limit", "4", "--requested-by", "cli")
    assert "i-stopped" in first and "i-failed" not in first
    cursor = first.split("more: --cursor ")[1].split()[0]
    assert "i-failed" in cli(projected, "instances", "--cursor", cursor)
    assert "more:" not in cli(projected, "instances", "--since", "2024-05-01T02:00:00")
    shown = cli(projected, "stats", "--workflow", "etl")
    assert "5 instances" in shown and "extract" in shown and "FAILURE" in shown
    assert "pause-late" not in shown
    assert "PauseWorkflow" in cli(projected, "rejections", "--instance", "i-ok")


def test_same_records_delivered_again_after_checkpoint_reset_double_nothing(
    projected: Settings,
) -> None:
    before = snapshot(projected)
    with connect(projected.db) as conn:
        conn.execute("DELETE FROM projector_checkpoints")
        conn.commit()

    again = project(projected)

    assert again == sum(len(log.events) for log in scenarios()) + 4  # ghost, definition, 2 hb
    assert snapshot(projected) == before


def test_garbage_on_events_topic_is_dead_lettered_and_later_events_still_project(
    deployment: Settings,
) -> None:
    log = Log("i-after-garbage").started().ran("extract", 1)
    poison = Log("i-poison").started().ran("extract", 1)  # PostgreSQL refuses its last event:
    poison.add(TaskSucceeded, task_code="extract", attempt=1, exit_code=2**40)  # int4 overflow
    producer = Producer(deployment.kafka)
    producer.send(deployment.topics.events, log.instance_id, log.events[0])
    producer.send_raw(deployment.topics.events, log.instance_id.encode(), b"\x00not avro")
    for event in log.events[1:]:
        producer.send(deployment.topics.events, log.instance_id, event)
    for event in poison.events:
        producer.send(deployment.topics.events, poison.instance_id, event)
    producer.flush()

    project(deployment)

    with connect(deployment.db) as conn:
        row = queries.get_instance(conn, log.instance_id)
        assert row is not None
        assert_row_equals_fold(row, fold(log.events))
        assert len(queries.history(conn, log.instance_id)) == len(log.events)
        row = queries.get_instance(conn, poison.instance_id)
        assert row is not None
        assert_row_equals_fold(row, fold(poison.events[:-1]))
        assert len(queries.history(conn, poison.instance_id)) == len(poison.events) - 1
    dead = {
        m.key(): (m.value(), {k: v.decode() for k, v in m.headers() or []})
        for m in consume(deployment, deployment.topics.dead_letter, count=2)
    }
    value, headers = dead[log.instance_id.encode()]
    assert value == b"\x00not avro"
    assert headers["tideflow.topic"] == deployment.topics.events
    assert headers["tideflow.offset"] == "1"
    assert "marker" in headers["tideflow.reason"]
    value, headers = dead[poison.instance_id.encode()]
    assert headers["tideflow.reason"].startswith("cannot apply TaskSucceeded: ")
    assert len(dead) == 2


def test_database_connection_killed_between_batches_loses_and_doubles_nothing(
    deployment: Settings,
) -> None:
    first, second = scenarios()[:2]
    produce(deployment, [first])
    with Projector(deployment.kafka, deployment.db) as projector:
        projector.run_until_idle(timeout_s=60)
        with connect(deployment.db) as admin:  # kill the projector's session, as a restart would
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (projector.application_name,),
            ).fetchall()
            admin.commit()
        assert killed == [(True,)]
        producer = Producer(deployment.kafka)
        for event in second.events:
            producer.send(deployment.topics.events, second.instance_id, event)
        producer.flush()

        projector.run_until_idle(timeout_s=60)

    with connect(deployment.db) as conn:
        row = queries.get_instance(conn, second.instance_id)
        assert row is not None
        assert_row_equals_fold(row, fold(second.events))
        archived = conn.execute("SELECT count(*) FROM event_archive WHERE topic = 'events'")
        assert archived.fetchone() == (len(first.events) + len(second.events) + 1,)


def test_replay_into_a_fresh_schema_equals_the_live_read_models(projected: Settings) -> None:
    fresh = f"{projected.tideflow_db_schema}_replay"

    counts = replay(projected.kafka, projected.db, fresh)

    events = sum(len(log.events) for log in scenarios()) + 1
    assert counts == {"definitions": 1, "events": events, "heartbeats": 2, "schedules": 0}
    assert compare(projected.db, projected.tideflow_db_schema, fresh) == []
    assert snapshot(projected, fresh) == snapshot(projected)  # workers and checkpoints too
    with connect(projected.db, fresh) as conn:
        conn.execute(
            "UPDATE task_instances SET state_code = 0 WHERE task_instance_id = 'i-ok/load/1'"
        )
        conn.execute('DELETE FROM event_archive WHERE "offset" = 0')
        conn.commit()
    differences = compare(projected.db, projected.tideflow_db_schema, fresh)
    assert any(d.startswith("task_instances[i-ok/load/1].state_code") for d in differences)
    assert any(d.startswith("event_archive[") and "only in" in d for d in differences)
    with pytest.raises(ReplayRefused, match="live schema"):
        replay(projected.kafka, projected.db, projected.tideflow_db_schema)
    assert replay(projected.kafka, projected.db, fresh) == counts  # its own: rebuilt


@pytest.mark.parametrize("existing", ["public", "someone_elses"])
def test_replay_refuses_an_existing_schema_it_did_not_create(
    projected: Settings, existing: str
) -> None:
    with connect(projected.db, existing) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(existing)))
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {}.keep_me (x int)").format(
                sql.Identifier(existing)
            )
        )
        conn.commit()

    with pytest.raises(ReplayRefused, match="not created by `tideflow replay`"):
        replay(projected.kafka, projected.db, existing)

    with connect(projected.db, existing) as conn:
        kept = conn.execute("SELECT to_regclass(%s)", (f"{existing}.keep_me",)).fetchone()
        conn.execute(sql.SQL("DROP TABLE {}.keep_me").format(sql.Identifier(existing)))
        conn.commit()
    assert kept != (None,)


def test_events_of_a_fenced_owner_are_archived_as_fenced_and_not_applied(
    deployment: Settings,
) -> None:
    p = partition_for("i-fenced", deployment.tideflow_partitions)
    log = Log("i-fenced").started().ran("extract", 1)
    zombie = TaskSucceeded(instance_id="i-fenced", task_code="extract", attempt=1, exit_code=0,
                           cause="zombie", at=at(10), epoch=1)  # fmt: skip
    producer = Producer(deployment.kafka)

    def takeover(epoch: int) -> None:
        event = PartitionTakenOver(partition=p, owner=f"m{epoch}", epoch=epoch,
                                   events_offset=0, at=at(epoch))  # fmt: skip
        producer.send(deployment.topics.events, f"partition/{p}", event, partition=p)

    takeover(1)
    for event in log.events:
        producer.send(deployment.topics.events, "i-fenced", replace(event, epoch=1), partition=p)
    takeover(2)
    producer.send(deployment.topics.events, "i-fenced", zombie, partition=p)
    producer.flush()

    project(deployment)

    with connect(deployment.db) as conn:
        row = queries.get_instance(conn, "i-fenced")
        assert row is not None
        assert [t["state"] for t in row["tasks"]] == ["RUNNING_EXECUTION"]
        fenced = conn.execute(
            'SELECT event_type FROM event_archive WHERE fenced ORDER BY "offset"'
        ).fetchall()
        owner = conn.execute("SELECT epoch, owner FROM partition_owners").fetchall()
    assert fenced == [("TaskSucceeded",)]
    assert owner == [(2, "m2")]


# -- batching: any cut of a log into batches ends as applying it one record at a time ----------


_INSTANCES = st.sampled_from(["i-a", "i-b"])
_TASKS = st.sampled_from(["x", "y"])
_ATTEMPTS = st.integers(1, 3)
_WORKERS = st.sampled_from(["w1", "w2"])
_TEXT = st.sampled_from(["", "ok", "boom\x00"])
_EXIT_CODES = st.integers(0, 19).map(lambda n: 2**40 if n == 19 else n)  # 2**40: refused
_TIMES = st.integers(0, 60).map(at)
_EPOCHS = st.integers(0, 2)


def _event(cls: type, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`cls` with `fields` drawn as given; instance, time, epoch and cause drawn by default."""
    defaults: dict[str, st.SearchStrategy[Any]] = {"at": _TIMES, "epoch": _EPOCHS}
    if "instance_id" in cls.__dataclass_fields__:
        defaults["instance_id"] = _INSTANCES
    if "cause" in cls.__dataclass_fields__:
        defaults["cause"] = st.just("c")
    return st.builds(cls, **{**defaults, **fields})


TASK_EVENTS: dict[type, dict[str, st.SearchStrategy[Any]]] = {
    TaskDispatched: {"worker_id": _WORKERS, "worker_group": st.just("default")},
    TaskStarted: {"worker_id": _WORKERS},
    TaskSucceeded: {"exit_code": _EXIT_CODES, "output": _TEXT},
    TaskFailed: {"exit_code": _EXIT_CODES, "reason": _TEXT, "output": _TEXT,
                 "retry_at": st.none() | _TIMES},
    TaskFailedOver: {"worker_id": _WORKERS, "reason": _TEXT},
    TaskKillRequested: {"worker_id": _WORKERS},
    TaskKilled: {"output": _TEXT},
}  # fmt: skip
OTHER_EVENTS = st.one_of(
    _event(WorkflowStarted, workflow=st.just(ETL), params=st.just({"day": "1"})),
    *(_event(cls) for cls in (
        WorkflowPauseRequested, WorkflowStopRequested, WorkflowResumed, WorkflowPaused,
        WorkflowStopped, WorkflowSucceeded,
    )),
    _event(WorkflowFailed, reason=_TEXT),
    _event(CommandRejected, command_id=st.sampled_from(["c1", "c2"]), command_type=st.just("Stop"),
           reason=st.sampled_from(Reason), message=_TEXT),
    _event(PartitionTakenOver, partition=st.just(0), owner=_WORKERS),
    _event(WorkerLost, worker_id=_WORKERS, worker_group=st.just("default"), incarnation=_TIMES,
           last_heartbeat_at=_TIMES, partition=st.just(0)),
)  # fmt: skip


@st.composite
def _attempt(draw: st.DrawFn) -> list[Any]:
    """A run of events on one attempt's row (dispatched, started, finished...): what
    coalescing merges. Two runs on one task retry it."""
    row = {"instance_id": _INSTANCES, "task_code": _TASKS, "attempt": _ATTEMPTS}
    fixed = {name: st.just(draw(values)) for name, values in row.items()}
    more = draw(st.lists(st.sampled_from(list(TASK_EVENTS)), max_size=4))
    return [draw(_event(cls, **TASK_EVENTS[cls], **fixed)) for cls in (TaskDispatched, *more)]


@st.composite
def logs_and_cuts(draw: st.DrawFn) -> tuple[list[Any], set[int]]:
    """A log mixing attempts and other events, and where to cut it into batches."""
    log: list[Any] = []
    for is_attempt in draw(st.lists(st.booleans(), min_size=2, max_size=12)):
        log += draw(_attempt()) if is_attempt else [draw(OTHER_EVENTS)]
    return log, draw(st.sets(st.integers(1, len(log)), max_size=5))


@pytest.fixture(scope="module")
def two_schemas(stack: Settings) -> Iterator[tuple[psycopg.Connection[Any], ...]]:
    """Connections to two fresh, migrated schemas (dropped afterwards)."""
    tag = uuid.uuid4().hex[:8]
    schemas = (f"batched_{tag}", f"single_{tag}")
    conns = tuple(connect(stack.db, schema) for schema in schemas)
    for conn, schema in zip(conns, schemas, strict=True):
        migrate(conn, schema)
    try:
        yield conns
    finally:
        for conn, schema in zip(conns, schemas, strict=True):
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
            conn.commit()
            conn.close()


class _Fallbacks(logging.Handler):
    """Counts batches that fell back to one record at a time (batch.py logs each)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += "applying record by record" in record.getMessage()


def _apply(conn: psycopg.Connection[Any], batches: list[list[Item]]) -> tuple[int, list[int]]:
    """Applies each batch with its checkpoint; returns records applied and offsets refused."""
    refused: list[int] = []

    def poison(item: Item, exc: Exception) -> None:
        refused.append(item.meta.offset)

    applied = 0
    for items in batches:
        positions = {("t.events", 0): items[-1].meta.offset + 1}
        applied += apply_batch(conn, items, positions, consumer="test", on_poison=poison)
    return applied, refused


def _rows(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    tables = (*COMPARED, "projector_checkpoints")
    out = {}
    for table in tables:
        query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))
        out[table] = sorted(conn.execute(query).fetchall(), key=repr)
    conn.commit()
    return out


def _shadowed_refusal() -> tuple[list[Any], set[int]]:
    """A value PostgreSQL refuses, overwritten later in the same batch: still refused."""
    log = Log("i-a").started().ran("x", 1)
    log.add(TaskSucceeded, task_code="x", attempt=1, exit_code=2**40)
    log.add(TaskSucceeded, task_code="x", attempt=1, exit_code=0)
    return log.events, set()


def _retried_in_one_batch() -> tuple[list[Any], set[int]]:
    """Two attempts of a task dispatched in one batch: only the second stays valid."""
    log = Log("i-a").started().ran("x", 1).failed("x", 1).ran("x", 2)
    return log.add(TaskStarted, task_code="x", attempt=1, worker_id="w1").events, set()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log_and_cuts=logs_and_cuts())
@example(log_and_cuts=_shadowed_refusal())
@example(log_and_cuts=_retried_in_one_batch())
def test_a_log_cut_into_any_batches_ends_as_applied_one_record_at_a_time(
    two_schemas: tuple[psycopg.Connection[Any], ...], log_and_cuts: tuple[list[Any], set[int]]
) -> None:
    log, cuts = log_and_cuts
    batched, single = two_schemas
    for conn in two_schemas:
        conn.execute("TRUNCATE " + ", ".join((*COMPARED, "projector_checkpoints")))
        conn.commit()
    items = [Item(e, Meta("events", 0, n, getattr(e, "instance_id", "p/0")), "t.events")
             for n, e in enumerate(log)]  # fmt: skip
    bounds = [0, *sorted(cuts), len(items)]
    batches = [items[a:b] for a, b in itertools.pairwise(bounds) if a < b]

    fallbacks = _Fallbacks()
    logging.getLogger("tideflow.projections").addHandler(fallbacks)
    try:
        applied, refused = _apply(batched, batches)
    finally:
        logging.getLogger("tideflow.projections").removeHandler(fallbacks)

    assert (applied, refused) == _apply(single, [[item] for item in items])
    assert _rows(batched) == _rows(single)
    assert fallbacks.count <= len(refused)  # coalesced writes alone never refuse a batch

    before = _rows(batched)
    assert _apply(batched, batches) == (0, [])  # redelivered: every record is checkpointed
    assert _rows(batched) == before


def test_retention_retires_old_finished_instances_and_a_replay_still_equals_the_rest(
    projected: Settings,
) -> None:
    now = datetime.now(UTC)
    with connect(projected.db) as conn:
        assert retire(conn, timedelta(days=1), now, dry_run=True) == 3
        assert retire(conn, timedelta(days=1), now) == 3
        assert retire(conn, timedelta(days=1), now) == 0
        left = {i["instance_id"] for i in queries.instance_page(conn).rows}
        assert left == {"i-stopped", "i-running"}  # resumed: not finished
        assert queries.history(conn, "i-ok") == [] and queries.get_instance(conn, "i-ok") is None
        assert retired(conn, "i-ok")["state"] == "SUCCESS"  # type: ignore[index]

    client = TestClient(compose.http_app(projected))
    gone = client.get("/instances/i-ok")
    assert gone.status_code == 404 and "retired from the read models" in gone.json()["detail"]
    replay(projected.kafka, projected.db, "t_retention_replay")
    try:
        assert compare(projected.db, projected.tideflow_db_schema, "t_retention_replay") == []
    finally:
        with connect(projected.db) as conn:
            conn.execute(b"DROP SCHEMA t_retention_replay CASCADE")
            conn.commit()
