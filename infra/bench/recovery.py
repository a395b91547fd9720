"""How long a master takes to rebuild a partition, with and without a snapshot.

A separate deployment (own topics and schema) gets one events partition filled with real
histories: 10-task chains produced by the core's own `decide`/`evolve` (so every event is
one a master would have written), most of them finished, some still running. A `Master`
is then built in this process (`infra.compose.master`) and its recovery (`recover(p)`: read
the log, fold, append `PartitionTakenOver`, re-send unacknowledged dispatches) is timed:

* without a snapshot, over every event of the partition;
* with a snapshot taken `tail` events before the end (the master snapshots every
  `tideflow_snapshot_every_events`, so a takeover replays half of that on average), when
  the deployment has a database for the snapshot store; otherwise null.

The read / decode / fold split is measured apart, on the same records.
"""

from __future__ import annotations

import logging
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from infra import compose
from infra.bench.scenarios import chain_workflow
from infra.prepare import prepare
from infra.settings import Settings
from schemas.catalog import EVENTS
from schemas.serde import expect
from streams.core.commands import ReportTaskFinished, ReportTaskStarted, StartWorkflow
from streams.core.decide import decide
from streams.core.enums import Outcome, TaskState, WorkflowState
from streams.core.evolve import evolve
from streams.core.ids import ack_command_id
from streams.core.instance import InstanceState
from streams.core.placement import WorkerView
from streams.kafka.partitioning import partition_for
from streams.kafka.producer import Producer
from streams.kafka.reader import read_to_end
from streams.master.snapshot_cadence import Snapshots

log = logging.getLogger("tideflow.bench")

Note = Callable[[str], None]
WORKER = WorkerView("bench-recovery-worker", "default", 64, 64)
WARM_S = 1.5
IN_FLIGHT_EVERY = 20  # one instance in 20 is left running (a dispatched, unstarted task)


def instance_history(instance_id: str, workflow: Any, at: datetime, finish: bool) -> list[Any]:
    """The events of one chain instance, as a master decides them."""
    workers = {"default": [WORKER]}
    state = InstanceState(instance_id=instance_id)
    out: list[Any] = []
    step = timedelta(milliseconds=3)

    def apply(command: Any) -> None:
        nonlocal state, at
        at += step
        for event in decide(state, command, at, workers):
            state = evolve(state, event)
            out.append(event)

    apply(
        StartWorkflow(
            command_id=f"start/{instance_id}", instance_id=instance_id, workflow=workflow, at=at
        )
    )
    half = len(workflow.tasks) // 2
    for _ in range(len(workflow.tasks)):
        active = [t for t in state.tasks.values() if t.state is TaskState.DISPATCH]
        if not active or (not finish and len(state.tasks) > half):
            break
        for t in active:
            code, attempt, worker = t.code, t.attempt, WORKER.worker_id
            apply(
                ReportTaskStarted(
                    command_id=ack_command_id(instance_id, code, attempt, "started"),
                    instance_id=instance_id, task_code=code, attempt=attempt,
                    worker_id=worker, at=at,
                )
            )  # fmt: skip
            apply(
                ReportTaskFinished(
                    command_id=ack_command_id(instance_id, code, attempt, "finished"),
                    instance_id=instance_id, task_code=code, attempt=attempt,
                    worker_id=worker, at=at, outcome=Outcome.SUCCESS, exit_code=0,
                )
            )  # fmt: skip
    if finish and state.state is not WorkflowState.SUCCESS:
        raise RuntimeError(f"synthetic instance ended {state.state}, not SUCCESS")
    return out


def fill_partition(settings: Settings, partition: int, events: int, note: Note) -> tuple[int, int]:
    """Append at least `events` events to events[partition]; returns (events, instances)."""
    workflow = chain_workflow("bench-recovery")
    producer = Producer(settings.kafka)
    topic, partitions = settings.topics.events, settings.tideflow_partitions
    at = datetime.now(UTC) - timedelta(days=1)
    written = instances = 0
    while written < events:
        instance_id = f"rec-{uuid.uuid4().hex[:12]}"
        if partition_for(instance_id, partitions) != partition:
            continue
        history = instance_history(instance_id, workflow, at, instances % IN_FLIGHT_EVERY != 0)
        for event in history:
            producer.send(topic, instance_id, event, partition=partition)
        written += len(history)
        instances += 1
        at += timedelta(milliseconds=10)
        if instances % 500 == 0:
            producer.poll()
            note(f"writing events {written}/{events}")
    producer.flush()
    return written, instances


def save_snapshot(settings: Settings, store: Snapshots, partition: int) -> int:
    """Rebuild the partition on a fresh master and snapshot it into `store`; returns the
    events offset the snapshot covers."""
    master = compose.master(settings, snapshots=store)
    try:
        master.recover(partition)
        snapshot = master.snapshot(partition)
        if snapshot is None:
            raise RuntimeError(f"partition {partition} not snapshotted: another writer")
        return int(snapshot.events_offset)
    finally:
        # Its consumer is closed too (leaving the group): this process goes on, and an open
        # consumer left to the garbage collector hangs it. (`store` closes its connection
        # and opens another on its next use.)
        master.close(leave_group=True)


def timed_rebuild(settings: Settings, partition: int, store: Snapshots | None = None) -> float:
    """Seconds `Master.recover(p)` takes on a master that never saw the partition."""
    master = compose.master(settings, snapshots=store)
    try:
        # As on a master that just joined its group: its idempotent producer has had time
        # to connect (a fresh one's first flush waits ~1 s for that on Tansu).
        time.sleep(WARM_S)
        started = time.perf_counter()
        master.recover(partition)
        return time.perf_counter() - started
    finally:
        master.close(leave_group=True)


def split(settings: Settings, partition: int) -> dict[str, float]:
    """Seconds to read the partition raw, to decode it, and to fold it with `evolve`; and
    the memory the folded states take (a second fold, traced, so the timing is not)."""
    started = time.perf_counter()
    values = [m.value() for m in read_to_end(settings.kafka, settings.topics.events, [partition])]
    read = time.perf_counter() - started
    started = time.perf_counter()
    events = [expect(v, EVENTS) for v in values]
    decoded = time.perf_counter() - started
    started = time.perf_counter()
    states = _fold(events)
    folded = time.perf_counter() - started
    del states
    held, instances = _state_memory(values)
    return {
        "read_s": round(read, 3),
        "decode_s": round(decoded, 3),
        "fold_s": round(folded, 3),
        "state_mb": round(held / 2**20, 1),
        "state_mb_per_10k_instances": round(held / 2**20 / max(1, instances) * 10_000, 1),
    }


def _fold(events: Iterable[Any]) -> dict[str, InstanceState]:
    states: dict[str, InstanceState] = {}
    for e in events:
        iid = getattr(e, "instance_id", None)
        if iid is None or type(e).__name__ in ("PartitionTakenOver", "WorkerLost"):
            continue
        states[iid] = evolve(states.get(iid) or InstanceState(instance_id=iid), e)
    return states


def _state_memory(values: list[bytes | None]) -> tuple[int, int]:
    """Bytes the states rebuilt from `values` hold, as a master holds them (their decoded
    definitions included; the events themselves dropped once folded), and their count."""
    tracemalloc.start()
    try:
        states = _fold(expect(v, EVENTS) for v in values)
        held, _ = tracemalloc.get_traced_memory()
        return held, len(states)
    finally:
        tracemalloc.stop()


def measure_recovery(settings: Settings, events: int, note: Note) -> dict[str, Any]:
    """`settings` must name a deployment of its own (topics and schema are created here)."""
    prepare(settings)
    partition = 0
    tail = min(2500, events // 10)
    store = compose.snapshot_store(settings)
    note(f"writing {events - tail} events")
    written, instances = fill_partition(settings, partition, events - tail, note)
    covered: int | None = None
    snapshot_error: str | None = None
    if store is not None:
        note("taking a snapshot")
        try:
            covered = save_snapshot(settings, store, partition)
        except Exception as exc:  # reported in the figures, not fatal to the benchmark
            snapshot_error = f"{type(exc).__name__}: {exc}"
            log.warning("snapshot not taken: %s", snapshot_error)
    note(f"writing the last {tail} events")
    more, more_instances = fill_partition(settings, partition, tail, note)
    written, instances = written + more, instances + more_instances
    note(f"rebuilding {written} events without a snapshot")
    without = timed_rebuild(settings, partition)
    with_snapshot: float | None = None
    if store is not None and covered is not None:
        note("rebuilding with the snapshot")
        try:
            with_snapshot = timed_rebuild(settings, partition, store)
        except Exception as exc:
            snapshot_error = f"{type(exc).__name__}: {exc}"
            log.warning("rebuild with snapshot failed: %s", snapshot_error)
    note("read / decode / fold split")
    parts = split(settings, partition)
    return {
        "events": written,
        "instances": instances,
        "without_snapshot_s": round(without, 3),
        "events_per_s": round(written / without),
        "with_snapshot_s": None if with_snapshot is None else round(with_snapshot, 3),
        "snapshot_tail_events": tail if with_snapshot is not None else None,
        "snapshot_covers_offset": covered,
        "snapshot_note": snapshot_error
        or (None if store is not None else "no snapshot store: DATABASE_URL is not set"),
        **parts,
    }
