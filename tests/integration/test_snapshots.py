"""Partition snapshots in the real PostgreSQL: a round trip, no roll-back by a slow old owner,
rows of another state format or unreadable bodies discarded, deployments kept apart, and a
database that cannot be reached costing a warning, never an error."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from infra import compose
from infra.settings import Settings
from infra.stack import free_port
from streams.master import snapshots
from streams.master.snapshots import (
    STATE_FORMAT,
    PartitionSnapshot,
    SnapshotStore,
    encode_snapshot,
)
from streams.postgres.connection import connect
from tests.integration.conftest import fresh_settings
from tests.master.test_snapshot_codec import build_instances, snapshot_of

pytestmark = pytest.mark.integration

LOGGER = "tideflow.master.snapshots"
INSTANCES = build_instances(60)


@pytest.fixture
def store(deployment: Settings) -> Iterator[SnapshotStore]:
    s = SnapshotStore(deployment.db, deployment.topics.events)
    yield s
    s.close()


def _row(settings: Settings, partition: int) -> tuple[object, ...] | None:
    with connect(settings.db) as conn:
        return conn.execute(
            "SELECT events_topic, state_format, events_offset, epoch, length(body)"
            " FROM master_snapshots WHERE partition = %s",
            (partition,),
        ).fetchone()


def _put_row(settings: Settings, partition: int, state_format: str, body: bytes) -> None:
    with connect(settings.db) as conn:
        conn.execute(
            "UPDATE master_snapshots SET state_format = %s, body = %s"
            " WHERE events_topic = %s AND partition = %s",
            (state_format, body, settings.topics.events, partition),
        )
        conn.commit()


def test_save_then_load_returns_an_equal_snapshot(
    store: SnapshotStore, deployment: Settings
) -> None:
    snapshot = snapshot_of(INSTANCES, partition=2, events_offset=1_234)

    store.save(snapshot)

    assert store.load(2) == snapshot
    assert store.load(1) is None  # another partition has none
    assert _row(deployment, 2) == (
        deployment.topics.events,
        STATE_FORMAT,
        1_234,
        snapshot.epoch,
        len(encode_snapshot(snapshot)),
    )
    again = SnapshotStore(deployment.db, deployment.topics.events)  # a new master, a new connection
    try:
        assert again.load(2) == snapshot
    finally:
        again.close()


def test_a_lower_events_offset_never_overwrites_a_higher_one(store: SnapshotStore) -> None:
    newer = snapshot_of(INSTANCES, partition=0, events_offset=500)
    older = snapshot_of(dict(list(INSTANCES.items())[:10]), partition=0, events_offset=499)
    store.save(newer)

    store.save(older)  # a slow old owner, late

    assert store.load(0) == newer
    newest = replace(older, events_offset=501, epoch=8)
    store.save(newest)
    assert store.load(0) == newest
    store.save(newest)  # the same snapshot again is harmless
    assert store.load(0) == newest


def test_deployments_with_other_topic_prefixes_never_share_snapshots(
    store: SnapshotStore, deployment: Settings
) -> None:
    store.save(snapshot_of(INSTANCES, partition=1))
    # Built afresh: model_copy would carry the cached `topics` of the original along.
    neighbour = Settings(**{**deployment.model_dump(), "tideflow_topic_prefix": "other."})
    assert neighbour.topics.events == "other.events"  # same schema, another events topic
    other = SnapshotStore(neighbour.db, neighbour.topics.events)
    try:
        assert other.load(1) is None
        mine = snapshot_of({}, partition=1, events_offset=1)
        other.save(mine)
        assert other.load(1) == mine
    finally:
        other.close()
    assert store.load(1) == snapshot_of(INSTANCES, partition=1)


def test_a_row_of_another_state_format_is_discarded(
    store: SnapshotStore, deployment: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    snapshot = snapshot_of(INSTANCES, partition=3)
    store.save(snapshot)
    _put_row(deployment, 3, "0-older-format", encode_snapshot(snapshot))

    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert store.load(3) is None

    assert f"discarded: format 0-older-format != {STATE_FORMAT}" in caplog.text
    assert {r.levelno for r in caplog.records if "discarded" in r.message} == {logging.INFO}
    store.save(snapshot)  # the next save replaces it
    assert store.load(3) == snapshot


def test_an_unreadable_body_is_discarded_with_a_warning(
    store: SnapshotStore, deployment: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    store.save(snapshot_of(INSTANCES, partition=3))
    _put_row(deployment, 3, STATE_FORMAT, b"\x00garbage")

    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert store.load(3) is None

    assert [r.levelno for r in caplog.records if "unreadable" in r.message] == [logging.WARNING]


def test_a_body_of_another_partition_is_discarded(
    store: SnapshotStore, deployment: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    store.save(snapshot_of(INSTANCES, partition=3))
    _put_row(deployment, 3, STATE_FORMAT, encode_snapshot(snapshot_of(INSTANCES, partition=2)))

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert store.load(3) is None

    assert "does not match its row" in caplog.text


def test_the_schema_and_table_are_created_when_missing(stack: Settings) -> None:
    settings = fresh_settings(stack)  # a schema nobody created
    stores = [SnapshotStore(settings.db, settings.topics.events) for _ in range(4)]
    snapshots = [snapshot_of(INSTANCES, partition=0, events_offset=10 + i) for i in range(4)]
    errors: list[BaseException] = []

    def save(i: int) -> None:
        try:
            stores[i].save(snapshots[i])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        assert stores[0].load(0) == snapshots[-1]  # the highest offset, whoever came last
    finally:
        for s in stores:
            s.close()
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(settings.tideflow_db_schema)
                )
            )


def test_an_unreachable_database_costs_a_warning_not_an_error(
    deployment: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad_port = make_conninfo(deployment.dsn, port=free_port())  # nothing listens there
    assert conninfo_to_dict(bad_port)["port"] != conninfo_to_dict(deployment.dsn)["port"]
    down = deployment.model_copy(update={"database_url": bad_port})
    attempts: list[object] = []

    def counted_connect(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        return connect(*args, **kwargs)

    monkeypatch.setattr(snapshots, "connect", counted_connect)
    store = SnapshotStore(down.db, down.topics.events)
    snapshot = snapshot_of(INSTANCES, partition=0)

    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert store.load(0) is None
        store.save(snapshot)  # does not raise
        assert store.load(1) is None
    store.close()

    assert len(attempts) == 1  # tried once, then left alone (for `retry_after_s`)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # then it leaves the database alone for a while
    assert "PostgreSQL error" in warnings[0].message
    assert "no snapshot loaded" in warnings[0].message


def test_a_database_that_comes_back_is_used_again(
    deployment: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    store = SnapshotStore(deployment.db, deployment.topics.events, retry_after_s=0.2)
    snapshot = snapshot_of(INSTANCES, partition=0)
    try:
        store.save(snapshot)
        with connect(deployment.db) as admin:  # the server drops every session of the store
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'tideflow-master-snapshots'"
            )
            admin.commit()
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            assert store.load(0) is None  # the broken connection: logged and dropped
        assert "PostgreSQL error" in caplog.text
        time.sleep(0.3)
        assert store.load(0) == snapshot  # reconnected
    finally:
        store.close()


def test_without_a_database_url_snapshots_are_off(
    deployment: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tideflow.compose"):
        store = compose.snapshot_store(deployment.model_copy(update={"database_url": None}))
    assert store is None
    assert "snapshots off" in caplog.text


def test_a_snapshot_larger_than_a_kafka_message_is_stored(store: SnapshotStore) -> None:
    many = {  # copies with their own (random, as a UUID is) command ids
        f"{iid}-{n}": replace(
            state,
            instance_id=f"{iid}-{n}",
            applied=frozenset(str(uuid.uuid4()) for _ in state.applied),
        )
        for n in range(60)
        for iid, state in INSTANCES.items()
    }
    snapshot = PartitionSnapshot(
        partition=0, events_offset=9, epoch=1, instances=many, written_at=snapshot_of({}).written_at
    )
    assert len(encode_snapshot(snapshot)) > 1_000_000  # Kafka's default message.max.bytes

    store.save(snapshot)

    assert store.load(0) == snapshot
