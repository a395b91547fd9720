"""Read models at scale: the projector's sustained rate over a generated log, then the list,
filter, detail and statistics queries over a large read model, with the plans of slow ones.

Two loads into a deployment of its own:

* `projected` instances of real 10-task histories (decided by the core, as in the rebuild
  section) are produced to the events topic and projected by a `Projector` in this process:
  events/s from its first poll to the checkpoint of the last event (decode, handlers, SQL,
  commit: all of it).
* the rest, up to `total` instances with 10 attempts each, are synthesized in PostgreSQL with
  `generate_series` (rows shaped like projected ones: 20 workflows, 5 requesters, 8 workers,
  one start every 10 s back from now, about 3% FAILURE, 1% STOP and 1% PAUSE). Pushing a
  million instances (32 million events) through the projector would take most of an hour
  of this 2-core machine at every run; the projector's rate is measured on the first load,
  the queries on the whole.

Each query runs `repeats` times with random arguments (a random page deep in the list, a
random workflow, day, requester, worker, instance); p50/p95/max in ms. A query whose p95 is
over `SLOW_MS` gets its plan (EXPLAIN ANALYZE, BUFFERS) printed, so indexes follow from
measurements.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infra.bench.recovery import instance_history
from infra.bench.scenarios import chain_workflow
from infra.prepare import prepare
from infra.settings import Settings
from projections import queries
from projections.pages import encode_cursor
from projections.projector import Projector
from projections.stats import stats
from streams.kafka.producer import Producer
from streams.postgres.connection import connect

Note = Callable[[str], None]
SLOW_MS = 50.0
WORKFLOWS, REQUESTERS, WORKERS = 20, 5, 8
STEP_S = 10  # one synthesized instance started every STEP_S seconds, newest now
CHUNK = 50_000  # synthesized instances per INSERT


def project_generated_log(settings: Settings, instances: int, note: Note) -> dict[str, Any]:
    """Produce `instances` real 10-task histories and time the projector over them."""
    workflow = chain_workflow("rm-projected")
    producer = Producer(settings.kafka)
    at = datetime.now(UTC) - timedelta(days=2)
    events = 0
    for n in range(instances):
        instance_id = f"rp-{n:08d}"
        for event in instance_history(instance_id, workflow, at, finish=True):
            producer.send(settings.topics.events, instance_id, event)
            events += 1
        at += timedelta(milliseconds=50)
        if n % 500 == 0:
            producer.poll()
            note(f"producing histories {n}/{instances}")
    producer.flush()
    note(f"projecting {events} events")
    with Projector(settings.kafka, settings.db, "projector", batch_size=2_000) as projector:
        started = time.perf_counter()
        applied = projector.run_until_idle(timeout_s=3_600.0)
        elapsed = time.perf_counter() - started
    return {
        "instances": instances,
        "events": events,
        "applied": applied,
        "seconds": round(elapsed, 2),
        "events_per_s": round(applied / elapsed) if elapsed else None,
    }


_INSTANCES = """
INSERT INTO workflow_instances (instance_id, workflow_code, workflow_version, state_code, state,
    started_at, ended_at, updated_at, failure_reason, requested_by, params, last_offset)
SELECT 'rm-' || lpad(g::text, 9, '0'), 'wf-' || lpad((g %% %(workflows)s)::text, 2, '0'), 1,
    s.code, s.name, %(now)s - make_interval(secs => g * %(step)s::float8),
    CASE WHEN s.code = 1 THEN NULL
         ELSE %(now)s - make_interval(secs => g * %(step)s::float8 - 30 - g %% 90) END,
    %(now)s - make_interval(secs => g * %(step)s::float8 - 30),
    CASE WHEN s.code = 6 THEN 'task t10 failed' END,
    'user-' || (g %% %(requesters)s), '{}'::jsonb, NULL
FROM generate_series(%(low)s::int, %(high)s::int) g
CROSS JOIN LATERAL (SELECT CASE
    WHEN g < 200 THEN 1 WHEN g %% 100 < 3 THEN 6 WHEN g %% 100 = 3 THEN 5
    WHEN g %% 100 = 4 THEN 3 ELSE 7 END AS code) c
JOIN (VALUES (1, 'RUNNING_EXECUTION'), (3, 'PAUSE'), (5, 'STOP'), (6, 'FAILURE'),
             (7, 'SUCCESS')) AS s (code, name) ON s.code = c.code
"""

_ATTEMPTS = """
INSERT INTO task_instances (task_instance_id, instance_id, task_code, attempt, state_code, state,
    worker_id, worker_group, dispatched_at, started_at, ended_at, exit_code, output, valid)
SELECT i.instance_id || '/t' || k || '/1', i.instance_id, 't' || lpad(k::text, 2, '0'), 1,
    CASE WHEN i.state_code = 6 AND k = 10 THEN 6 ELSE 7 END,
    CASE WHEN i.state_code = 6 AND k = 10 THEN 'FAILURE' ELSE 'SUCCESS' END,
    'worker-' || ((g + k) %% %(workers)s), 'default',
    i.started_at + make_interval(secs => k * 3 - 3),
    i.started_at + make_interval(secs => k * 3 - 2.9),
    i.started_at + make_interval(secs => k * 3 - 2.9 + (g %% 17) * 0.1),
    CASE WHEN i.state_code = 6 AND k = 10 THEN 1 ELSE 0 END, '', true
FROM generate_series(%(low)s::int, %(high)s::int) g
JOIN workflow_instances i ON i.instance_id = 'rm-' || lpad(g::text, 9, '0')
CROSS JOIN generate_series(1, 10) k
"""


def synthesize(settings: Settings, total: int, now: datetime, note: Note) -> float:
    """Instances rm-000000000.. (newest first) with 10 attempts each; returns seconds."""
    started = time.perf_counter()
    with connect(settings.db) as conn:
        for low in range(0, total, CHUNK):
            high = min(low + CHUNK, total) - 1
            args = {
                "low": low, "high": high, "now": now, "step": STEP_S, "workflows": WORKFLOWS,
                "requesters": REQUESTERS, "workers": WORKERS,
            }  # fmt: skip
            conn.execute(_INSTANCES.encode(), args)
            conn.execute(_ATTEMPTS.encode(), args)
            conn.commit()
            note(f"synthesizing instances {high + 1}/{total}")
        conn.execute(b"ANALYZE workflow_instances")
        conn.execute(b"ANALYZE task_instances")
        conn.commit()
    return time.perf_counter() - started


def query_cases(
    total: int, now: datetime
) -> dict[str, Callable[[random.Random], Callable[[Any], Any]]]:
    """Name -> a maker of calls of a read-model query with random arguments; a call takes
    the connection."""

    def started_at(g: int) -> datetime:
        return now - timedelta(seconds=g * STEP_S)

    def workflow(rng: random.Random) -> str:
        return f"wf-{rng.randrange(WORKFLOWS):02d}"

    def day(rng: random.Random) -> datetime:
        return started_at(rng.randrange(total)).replace(hour=0, minute=0, second=0, microsecond=0)

    def deep_cursor(rng: random.Random) -> str:
        g = rng.randrange(total)
        return encode_cursor([started_at(g).isoformat(), f"rm-{g:09d}"])

    def page_of_day(rng: random.Random) -> Callable[[Any], Any]:
        d = day(rng)
        user = f"user-{rng.randrange(REQUESTERS)}"
        return partial(
            queries.instance_page, requested_by=user, since=d, until=d + timedelta(days=1)
        )

    def stats_of_day(rng: random.Random, code: str | None) -> Callable[[Any], Any]:
        d = day(rng)
        return partial(stats, workflow_code=code, since=d, until=d + timedelta(days=1))

    page = queries.instance_page
    return {
        "list newest page": lambda rng: partial(page),
        "list page deep in the list": lambda rng: partial(page, cursor=deep_cursor(rng)),
        "filter workflow + state": lambda rng: partial(
            page, workflow_code=workflow(rng), state=rng.choice(["SUCCESS", "FAILURE"])
        ),
        "filter requester + day": page_of_day,
        "filter worker": lambda rng: partial(page, worker_id=f"worker-{rng.randrange(WORKERS)}"),
        "instance detail": lambda rng: partial(
            queries.get_instance, instance_id=f"rm-{rng.randrange(total):09d}"
        ),
        "stats one workflow, one day": lambda rng: stats_of_day(rng, workflow(rng)),
        "stats all workflows, one day": lambda rng: stats_of_day(rng, None),
    }


def time_queries(
    settings: Settings, total: int, now: datetime, repeats: int, note: Note
) -> dict[str, dict[str, Any]]:
    rng = random.Random(7)
    out: dict[str, dict[str, Any]] = {}
    with connect(settings.db) as conn:
        for name, make in query_cases(total, now).items():
            note(f"timing: {name}")
            ms = []
            for _ in range(repeats):
                call = make(rng)
                begun = time.perf_counter()
                call(conn)
                ms.append((time.perf_counter() - begun) * 1000)
                conn.rollback()
            ms.sort()
            out[name] = {
                "p50_ms": round(statistics.median(ms), 2),
                "p95_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.95))], 2),
                "max_ms": round(ms[-1], 2),
            }
            if out[name]["p95_ms"] > SLOW_MS:
                out[name]["plan"] = explain(conn, make(rng))
    return out


class _ExplainingCursor:
    def __init__(self, plain: Any, cur: Any, plans: list[str]) -> None:
        self.plain, self.cur, self.plans = plain, cur, plans

    def execute(self, query: bytes, params: Any = None) -> Any:
        plan = self.plain.execute(b"EXPLAIN (ANALYZE, BUFFERS) " + query, params).fetchall()
        self.plans.extend([str(row[0]) for row in plan[:14]] + [""])
        return self.cur.execute(query, params)

    def fetchall(self) -> Any:
        return self.cur.fetchall()


class _Explaining:
    """A connection stand-in for the query functions: each statement they run is EXPLAIN
    ANALYZEd first, and its plan kept."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.plans: list[str] = []

    @contextmanager
    def cursor(self, **kwargs: Any) -> Iterator[_ExplainingCursor]:
        with self.conn.cursor() as plain, self.conn.cursor(**kwargs) as cur:
            yield _ExplainingCursor(plain, cur, self.plans)


def explain(conn: Any, call: Callable[[Any], Any]) -> list[str]:
    """The plans (first lines) of the statements `call` runs."""
    explaining = _Explaining(conn)
    try:
        call(explaining)
    finally:
        conn.rollback()
    return explaining.plans


def measure_read_models(
    settings: Settings, projected: int, total: int, repeats: int, note: Note
) -> dict[str, Any]:
    """Every figure of the section, on `settings` (a fresh deployment: it is filled)."""
    prepare(settings)
    projector = project_generated_log(settings, projected, note)
    now = datetime.now(UTC).replace(microsecond=0)
    seconds = synthesize(settings, total, now, note)
    return {
        "projector": projector,
        "synthesized": {"instances": total, "attempts": total * 10, "seconds": round(seconds, 1)},
        "queries": time_queries(settings, total, now, repeats, note),
        "goal_ms": SLOW_MS,
    }


def print_read_models(found: dict[str, Any] | None, console: Console) -> None:
    """The section's table, and the plans of the queries slower than the goal."""
    if not found or "error" in found:
        return
    p, synth = found["projector"], found["synthesized"]
    console.print(
        f"[bold]read models[/bold]: projector {p['events_per_s']:,} events/s sustained"
        f" ({p['events']:,} events of {p['instances']:,} instances in {p['seconds']} s);"
        f" queries over {synth['instances']:,} instances and {synth['attempts']:,} attempts"
    )
    table = Table("query", "p50 ms", "p95 ms", "max ms", f"p95 <= {found['goal_ms']:g} ms")
    for name, timed in found["queries"].items():
        ok = timed["p95_ms"] <= found["goal_ms"]
        table.add_row(
            name, f"{timed['p50_ms']:.1f}", f"{timed['p95_ms']:.1f}", f"{timed['max_ms']:.1f}",
            "yes" if ok else "[red]no[/red]",
        )  # fmt: skip
    console.print(table)
    for name, timed in found["queries"].items():
        if timed.get("plan"):
            console.print(f"[bold]plan of {name}[/bold]")
            console.print(escape("\n".join(timed["plan"])))
