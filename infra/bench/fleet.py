"""The fleet a bench section runs on: a fresh deployment (topic prefix + schema), its roles
started and warmed up, and everything dropped afterwards."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from infra.bench import ceiling as ceiling_mod
from infra.bench.options import Scale
from infra.bench.processes import (
    check_alive,
)
from infra.bench.scenarios import (
    BenchTimeout,
    Note,
    Starter,
    chain_workflow,
)
from infra.bench.watch import Watcher
from infra.processes import Fleet
from infra.settings import Settings
from infra.topics import delete_topics


def deployment(settings: Settings, tag: str) -> Settings:
    return settings.model_copy(
        update={"tideflow_topic_prefix": f"bench{tag}.", "tideflow_db_schema": f"bench_{tag}"}
    )


def warm_up(
    starter: Starter, watcher: Watcher, alive: Callable[[], None], note: Note, instances: int = 8
) -> None:
    """Short chains on every partition until they end: masters joined, workers seen."""
    workflow = starter.register(chain_workflow("bench-warmup", length=2))
    note("waiting for the master and workers")
    ids = [starter.send(workflow, "warmup") for _ in range(instances)]
    starter.flush()
    deadline = time.monotonic() + 120.0
    while watcher.wait_finished(ids, 1.0):
        alive()
        if time.monotonic() > deadline:
            raise BenchTimeout("warm-up: instances did not end within 120 s")


def wait_split(watcher: Watcher, log_file: Path, partitions: int, timeout_s: float) -> bool:
    """True once two masters share the partitions: two owners in `PartitionTakenOver`
    events, or (older masters) the new master's log shows an assignment."""
    deadline = time.monotonic() + timeout_s
    assigned = re.compile(r"assigned commands partitions \[\d")
    while time.monotonic() < deadline:
        owners = dict(watcher.owners)
        if len(owners) >= partitions and len(set(owners.values())) >= 2:
            return True
        if not owners and log_file.exists() and assigned.search(log_file.read_text("utf-8")):
            return True
        time.sleep(0.2)
    return False


@dataclass
class Running:
    """A fleet on one deployment, and the bench's handles on it."""

    settings: Settings
    fleet: Fleet
    watcher: Watcher
    starter: Starter
    log_dir: Path

    def alive(self) -> None:
        check_alive(self.fleet, self.log_dir)


@contextlib.contextmanager
def running(settings: Settings, scale: Scale, log_dir: Path, masters: int) -> Iterator[Running]:
    """Projector, `scale.workers` workers and `masters` masters on `settings`."""
    with Fleet(settings, log_dir=log_dir) as fleet:
        fleet.start("projector")
        for i in range(1, scale.workers + 1):
            fleet.start(
                "worker",
                name=f"worker-{i}",
                TIDEFLOW_WORKER_ID=f"bench-worker-{i}",
                TIDEFLOW_WORKER_SLOTS=str(scale.worker_slots),
            )
        for i in range(1, masters + 1):
            fleet.start("master", name=f"master-{i}")
        watcher = Watcher(settings).start()
        starter = Starter(settings)
        run = Running(settings, fleet, watcher, starter, log_dir)
        watcher.health = run.alive
        try:
            yield run
        finally:
            watcher.health = None  # no cycle keeps the clients alive past the stack
            starter.close()
            watcher.close()


def drop_deployment(settings: Settings, topics: bool, schema: bool) -> None:
    """Best effort: the run's topics and schema go away."""
    if topics:
        with contextlib.suppress(Exception):
            delete_topics(settings)
            ceiling_mod.delete_topics(settings, list(ceiling_mod.ceiling_topics(settings).values()))
    if schema:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(settings.dsn, autocommit=True) as conn,
        ):
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(settings.tideflow_db_schema)
                )
            )
