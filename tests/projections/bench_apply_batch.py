"""Throughput of `apply_batch` alone: a burst of realistic events (10-task workflows, some
attempts failing and retried, many instances in flight, 4 partitions) applied in batches to
a private schema of a real PostgreSQL, which is dropped afterwards. Not a test.

    .venv/bin/python -m tests.projections.bench_apply_batch \
        --dsn postgresql://postgres@127.0.0.1:5432/test --events 20000 [--impl other_pkg]

`--impl` names other packages with the same `batch`/`migrate` modules (e.g. a copy of an
earlier `projections`), measured in the same run on the same events; their tables must equal.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from streams.core.definition import parse_workflow
from streams.core.events import (
    TaskDispatched,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    WorkflowStarted,
    WorkflowSucceeded,
)
from streams.kafka.partitioning import partition_for

T0 = datetime(2024, 5, 1, tzinfo=UTC)
PARTITIONS = 4
TABLES = ("workflow_instances", "task_instances", "event_archive", "projector_checkpoints")
WORKFLOW = dataclasses.replace(
    parse_workflow(
        {
            "code": "bench",
            "tasks": [
                {
                    "code": f"t{i}",
                    "command": f"./step.sh {i}",
                    "retries": 1,
                    **({"depends": [f"t{i - 1}"]} if i else {}),
                }
                for i in range(10)
            ],
        }
    ),
    version=1,
)


def instance_events(instance_id: str, rng: random.Random, start: float) -> Iterator[Any]:
    """One instance's events in log order: started, each task dispatched/started/finished
    (about one attempt in ten fails and is retried), succeeded."""
    n = 0

    def base() -> dict[str, Any]:
        nonlocal n
        n += 1
        return {"instance_id": instance_id, "cause": f"{instance_id}/c{n}",
                "at": T0 + timedelta(seconds=start + n)}  # fmt: skip

    yield WorkflowStarted(workflow=WORKFLOW, params={"day": "2024-05-01"}, requested_by="bench",
                          **base())  # fmt: skip
    for task in WORKFLOW.tasks:
        attempt = 1
        while True:
            worker = f"w{rng.randrange(8)}"
            yield TaskDispatched(task_code=task.code, attempt=attempt, worker_id=worker,
                                 worker_group="default", **base())  # fmt: skip
            yield TaskStarted(task_code=task.code, attempt=attempt, worker_id=worker, **base())
            if attempt == 1 and rng.random() < 0.1:
                retry = T0 + timedelta(seconds=start + n + 30)
                yield TaskFailed(task_code=task.code, attempt=attempt, exit_code=1,
                                 reason="exit 1", output="error: x\n" * 3, retry_at=retry,
                                 **base())  # fmt: skip
                attempt += 1
                continue
            yield TaskSucceeded(task_code=task.code, attempt=attempt, exit_code=0,
                                output="rows: 1234\n", **base())  # fmt: skip
            break
    yield WorkflowSucceeded(**base())


def burst(count: int, in_flight: int, seed: int = 7) -> list[tuple[Any, int]]:
    """About `count` (event, partition) pairs, `in_flight` instances interleaved."""
    rng = random.Random(seed)
    out: list[tuple[Any, int]] = []
    live: list[tuple[int, Iterator[Any]]] = []
    started = 0
    while len(out) < count or live:
        while len(live) < in_flight and len(out) < count:
            iid = f"i-{started:06d}"
            live.append((partition_for(iid, PARTITIONS), instance_events(iid, rng, started)))
            started += 1
        i = rng.randrange(len(live))
        event = next(live[i][1], None)
        if event is None:
            live.pop(i)
        else:
            out.append((event, live[i][0]))
    return out


PREFILL = (
    "INSERT INTO workflow_instances (instance_id, workflow_code, workflow_version, state_code,"
    " state, started_at, ended_at, updated_at, last_offset)"
    " SELECT 'old-' || n, 'bench', 1, 7, 'SUCCESS', %(t0)s, %(t0)s, %(t0)s, 0"
    " FROM generate_series(1, %(n)s / 10) n",
    "INSERT INTO task_instances (task_instance_id, instance_id, task_code, attempt, state_code,"
    " state, worker_id, worker_group, dispatched_at, started_at, ended_at, exit_code, output)"
    " SELECT 'old-' || n / 10 || '/t' || n %% 10 || '/1', 'old-' || n / 10, 't' || n %% 10, 1, 7,"
    " 'SUCCESS', 'w1', 'default', %(t0)s, %(t0)s, %(t0)s, 0, 'rows: 1234'"
    " FROM generate_series(1, %(n)s) n",
    'INSERT INTO event_archive (topic, partition, "offset", key, event_type, instance_id, epoch,'
    " at, payload) SELECT 'old', n %% 4, n, 'old-' || n / 30, 'TaskStarted', 'old-' || n / 30, 0,"
    ' %(t0)s, \'{"task_code": "t1", "attempt": 1}\' FROM generate_series(1, 3 * %(n)s) n',
    "ANALYZE",
)


def run(
    impl: str, dsn: str, events: list[tuple[Any, int]], batch_size: int, prefill: int
) -> tuple[float, str]:
    """Seconds spent in apply_batch for all events, after `prefill` old task rows (and a
    tenth as many instances, three times as many archived events); returns (seconds, schema)."""
    batch = importlib.import_module(f"{impl}.batch")
    handlers = importlib.import_module(f"{impl}.handlers")
    migrate = importlib.import_module(f"{impl}.migrate")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    conn = psycopg.connect(dsn, autocommit=False)
    migrate.migrate(conn, schema)
    if prefill:
        for statement in PREFILL:
            conn.execute(statement, {"n": prefill, "t0": T0})
        conn.commit()
    offsets = [0] * PARTITIONS
    items = []
    for event, p in events:
        meta = handlers.Meta("events", p, offsets[p], event.instance_id)
        items.append(batch.Item(event, meta, "bench.events"))
        offsets[p] += 1
    elapsed = 0.0
    for i in range(0, len(items), batch_size):
        chunk = items[i : i + batch_size]
        positions = {}
        for item in chunk:
            positions[(item.topic, item.meta.partition)] = item.meta.offset + 1
        t = time.perf_counter()
        batch.apply_batch(conn, chunk, positions, consumer="bench", on_poison=_refused)
        elapsed += time.perf_counter() - t
    conn.close()
    return elapsed, schema


def _refused(item: Any, exc: Exception) -> None:
    raise AssertionError(f"refused {item.meta}: {exc}")


def differences(conn: psycopg.Connection[Any], a: str, b: str) -> list[str]:
    out = []
    for table in TABLES:
        for x, y in ((a, b), (b, a)):
            q = sql.SQL("SELECT count(*) FROM (SELECT * FROM {} EXCEPT ALL SELECT * FROM {}) d")
            row = conn.execute(q.format(sql.Identifier(x, table), sql.Identifier(y, table)))
            n = row.fetchone()
            if n and n[0]:
                out.append(f"{table}: {n[0]} rows of {x} not in {y}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--in-flight", type=int, default=200)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prefill", type=int, default=0, help="old task rows already there")
    parser.add_argument("--impl", action="append", default=[])
    args = parser.parse_args()
    impls = [*args.impl, "projections"]
    events = burst(args.events, args.in_flight)
    best: dict[str, float] = {}
    schemas: dict[str, str] = {}
    with psycopg.connect(args.dsn, autocommit=True) as admin:
        for _ in range(args.rounds):
            for impl in impls:
                seconds, schema = run(impl, args.dsn, events, args.batch, args.prefill)
                best[impl] = min(best.get(impl, seconds), seconds)
                if impl in schemas:
                    drop = sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema))
                    admin.execute(drop)
                else:
                    schemas[impl] = schema
        try:
            for impl in impls:
                print(f"{impl:24} {len(events) / best[impl]:9,.0f} events/s"
                      f"  ({len(events)} events, batch {args.batch}, best of {args.rounds},"
                      f" {args.prefill:,} task rows before)")  # fmt: skip
            for impl in impls[:-1]:
                diff = differences(admin, schemas[impl], schemas["projections"])
                print(f"tables of {impl} vs projections: {diff or 'equal'}")
        finally:
            for schema in schemas.values():
                admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    main()
