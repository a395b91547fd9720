"""Throughput scenarios: many instances started at once (whole burst and steady state), where
a task's time goes (anatomy), and how far the projector lags behind."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

from infra.bench.scenarios import Note, Starter, by_task, decoded, ms_between
from infra.bench.stats import percentile, summary
from infra.bench.watch import CheckpointProbe, Watcher
from streams.core.definition import WorkflowDef


def run_burst(
    starter: Starter,
    watcher: Watcher,
    workflow: WorkflowDef,
    instances: int,
    note: Note,
    timeout_s: float | None = None,
    stall_s: float = 30.0,
) -> tuple[dict[str, Any], list[str]]:
    """`instances` of `workflow` started at once; completed tasks/s until the last ends.
    Returns the figures and the instance ids. A run that does not end within the time
    limit, or in which nothing happens for `stall_s`, is reported as it stands
    (`complete: false`, with what ended), not raised: a jam is a figure too."""
    tasks_each = len(workflow.tasks)
    total = instances * tasks_each
    limit = timeout_s or max(120.0, total / 50.0)
    note(f"starting {instances} instances of {tasks_each} tasks")
    sent = time.perf_counter()
    ids = [starter.send(workflow, "burst") for _ in range(instances)]
    starter.flush()
    sent_all = time.perf_counter()
    deadline = time.monotonic() + limit
    received, moved = watcher.received, time.monotonic()
    stalled = False
    while True:
        missing = watcher.wait_finished(ids, 0.5)
        note(f"{instances - len(missing)}/{instances} instances ended")
        if not missing:
            break
        if watcher.received != received:
            received, moved = watcher.received, time.monotonic()
        stalled = time.monotonic() - moved > stall_s
        if stalled or time.monotonic() > deadline:
            break
    ends = [watcher.finished[i] for i in ids if i in watcher.finished]
    seen = [s for i in ids for s in watcher.events[i]]
    last = max((s.recv for s in seen), default=sent_all)
    elapsed = (max(e.recv for e in ends) if not missing else last) - sent
    kinds = Counter(e.kind for e in ends)
    succeeded = [r for i in ids for r in decoded(watcher.events[i], {"TaskSucceeded"})]
    # Steady rate: tasks that succeeded between the 10th and 90th percentile of their `at`.
    succeeded_at = sorted(r.at.timestamp() for r in succeeded)
    steady = None
    if len(succeeded_at) >= 10:
        lo, hi = percentile(succeeded_at, 10), percentile(succeeded_at, 90)
        if lo is not None and hi is not None and hi > lo:
            steady = round(0.8 * len(succeeded_at) / (hi - lo), 1)
    kinds_seen = Counter(s.kind for s in seen)
    kinds_seen.update(s.kind for i in ids for s in watcher.commands[i])
    records = len(seen) + sum(len(watcher.commands[i]) for i in ids)
    dispatches = kinds_seen.get("TaskDispatched", 0)
    result: dict[str, Any] = {
        "instances": instances,
        "tasks": total,
        "complete": not missing,
        "not_ended": len(missing),
        "stalled": stalled,
        "succeeded": kinds.get("WorkflowSucceeded", 0),
        "tasks_succeeded": len(succeeded),
        "send_s": round(sent_all - sent, 3),
        "elapsed_s": round(elapsed, 3),
        "tasks_per_s": round(len(succeeded) / elapsed, 1),
        "steady_tasks_per_s": steady,
        "instance_end_s": summary([e.recv - sent for e in ends], 3),
        "records": records + dispatches,
        "records_per_s": round((records + dispatches) / elapsed),
        "record_kinds": dict(sorted(kinds_seen.items())),
        "anatomy_ms": anatomy(watcher, ids),
    }
    return result, ids


def anatomy(watcher: Watcher, ids: list[str]) -> dict[str, Any]:
    """Where a task's time goes under load, from `at` fields (first attempts only):
    dispatch decided -> worker's started ack (dispatch hop + the worker's queue), started
    ack -> finished ack (the worker's flush of the started ack, and the run), finished ack
    -> master decided it (ack hop + the master's queue)."""
    parts: dict[str, list[float]] = defaultdict(list)
    for i in ids:
        events = decoded(watcher.events[i], {"TaskDispatched", "TaskSucceeded"})
        acks = decoded(watcher.commands[i], {"ReportTaskStarted", "ReportTaskFinished"})
        dispatched, succeeded = (
            by_task(events, "TaskDispatched"),
            by_task(events, "TaskSucceeded"),
        )
        started, finished = (
            by_task(acks, "ReportTaskStarted"),
            by_task(acks, "ReportTaskFinished"),
        )
        for code, at in dispatched.items():
            for name, (x, y) in {
                "dispatched_to_started_ack": (at, started.get(code)),
                "started_ack_to_finished_ack": (started.get(code), finished.get(code)),
                "finished_ack_to_succeeded": (finished.get(code), succeeded.get(code)),
            }.items():
                if (d := ms_between(x, y)) is not None:
                    parts[name].append(d)
    return {name: summary(values) for name, values in parts.items()}


def projection_lag(
    watcher: Watcher, probe: CheckpointProbe, ids: list[str], note: Note, wait_s: float = 120.0
) -> dict[str, Any]:
    """Kafka append time -> row visible in PostgreSQL, for every event of `ids`."""
    records = [s for i in ids for s in watcher.events[i]]
    ends: dict[int, int] = {}
    for r in records:
        ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)
    note("waiting for the projector to catch up")
    deadline = time.monotonic() + wait_s
    while not probe.covers(ends) and time.monotonic() < deadline:
        time.sleep(0.05)
    lags = probe.lags_ms(records)
    return {
        **summary(lags),
        # the same records' Kafka timestamp -> this process's consumer reading them: what
        # a consumer with the master's settings sees, the part of the lag that is not
        # the projector's or PostgreSQL's
        "watcher_ms": summary([r.recv_wall * 1000 - r.ts_ms for r in records]),
        "events": len(records),
        "unseen": len(records) - len(lags),
        "poll_ms": round(probe.interval_s * 1000, 1),
    }
