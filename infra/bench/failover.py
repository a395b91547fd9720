"""The failover section: SIGKILL a master, then a worker, on an otherwise quiet fleet, and
time the next progress of every instance the kill stopped.

A fleet of its own (2 masters, the bench's workers, the projector) on a deployment of its
own. Each round starts a few chains of short shell tasks (`sleep`), so every instance is
always mid-task; once they run, one process is killed with SIGKILL:

* master: the instances of the partitions it owned (the latest `PartitionTakenOver` names
  its process) that had not ended; their next fact comes from the survivor, after the
  group gave it the partitions and it rebuilt them;
* worker: the instances with an attempt dispatched to it and not ended (nor reported: an
  outcome already on its way when the worker died is not an attempt the kill stopped);
  their next progress is the `TaskFailedOver` a master writes once the worker is lost.

The figure is kill -> the first later event of each affected instance (`CommandRejected`
aside; for a worker kill, its `TaskFailedOver`), on the events' own clock (`at`, the
masters'; the kill time is this process's clock, the same machine's). The victim is
restarted after each round and the next round waits until the fleet is whole again, so
kills never overlap (the chaos report measures overlapping ones). Masters and workers
are killed in turn (1, 2, 1, ...).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.bench.fleet import Running, running, warm_up
from infra.bench.options import Scale
from infra.bench.scenarios import BenchTimeout, Note
from infra.bench.stats import summary
from infra.settings import Settings
from streams.core.definition import WorkflowDef, parse_workflow

CHAIN_TASKS = 40
TASK_SLEEP_S = 0.05  # each task `sleep`s this long: an instance is nearly always mid-task
INSTANCES = 8  # per round: two per partition on average
PROGRESS_TIMEOUT_S = 40.0  # a round whose instances do not move by then is reported stuck
_ENDS = ("TaskSucceeded", "TaskFailed", "TaskFailedOver", "TaskKilled", "TaskSuccessForced")
_WORKFLOW_ENDS = ("WorkflowSucceeded", "WorkflowFailed", "WorkflowStopped", "WorkflowPaused")


def sleep_chain(code: str) -> WorkflowDef:
    tasks = [
        {
            "code": f"s{i:02d}",
            "depends": [f"s{i - 1:02d}"] if i > 1 else [],
            "type": "shell",
            "command": f"sleep {TASK_SLEEP_S}",
        }
        for i in range(1, CHAIN_TASKS + 1)
    ]
    return parse_workflow({"code": code, "tasks": tasks})


# -- what a kill stopped, from the instances' events (pure) -----------------------------------


@dataclass(frozen=True, slots=True)
class Fact:
    """One event of an instance, as much of it as the analysis needs."""

    kind: str  # record class name
    at: datetime
    partition: int
    task_code: str = ""
    worker_id: str = ""


def running_at(history: Sequence[Fact], at: datetime) -> bool:
    """Started and not ended at `at`."""
    before = [f for f in history if f.at <= at]
    return bool(before) and not any(f.kind in _WORKFLOW_ENDS for f in before)


def stopped_on(history: Sequence[Fact], worker_id: str, at: datetime) -> bool:
    """An attempt dispatched to `worker_id` at or before `at` had not ended by then, and
    its next fact is not its own outcome (a finished ack already on its way when the worker
    died is not an attempt the kill stopped)."""
    holder: dict[str, str] = {}
    for f in history:
        if f.at > at:
            held = holder.get(f.task_code) == worker_id
            if f.kind == "CommandRejected" or (f.kind == "TaskStarted" and held):
                continue  # a started ack sent before the kill may be decided after it
            outcome = f.kind in ("TaskSucceeded", "TaskFailed")
            return worker_id in holder.values() and not (outcome and held)
        if f.kind == "TaskDispatched":
            holder[f.task_code] = f.worker_id
        elif f.kind in _ENDS:
            holder.pop(f.task_code, None)
    return worker_id in holder.values()


def next_progress_s(history: Sequence[Fact], at: datetime) -> float | None:
    """Seconds from `at` to the instance's first later fact; None while there is none."""
    for f in history:
        if f.at > at and f.kind != "CommandRejected":
            return (f.at - at).total_seconds()
    return None


def failed_over_s(history: Sequence[Fact], worker_id: str, at: datetime) -> float | None:
    """Seconds from `at` to the first later `TaskFailedOver` of an attempt on `worker_id`:
    the instance's next progress once the worker is dead (a started ack it sent just
    before it died may still be decided first; that is not the instance moving on)."""
    for f in history:
        if f.at > at and f.kind == "TaskFailedOver" and f.worker_id == worker_id:
            return (f.at - at).total_seconds()
    return None


# -- the rounds --------------------------------------------------------------------------------


def _facts(run: Running, instance_id: str) -> list[Fact]:
    out = []
    for seen in list(run.watcher.events.get(instance_id, ())):
        record = seen.record()
        out.append(
            Fact(
                seen.kind,
                record.at,
                seen.partition,
                str(getattr(record, "task_code", "")),
                str(getattr(record, "worker_id", "")),
            )
        )
    return sorted(out, key=lambda f: f.at)


def _start_round(run: Running, workflow: WorkflowDef, note: Note, label: str) -> list[str]:
    ids = [run.starter.send(workflow, "failover") for _ in range(INSTANCES)]
    run.starter.flush()
    deadline = time.monotonic() + 30.0
    note(f"{label}: waiting for the chains to run")
    while not all(len(run.watcher.events.get(i, ())) >= 4 for i in ids):
        run.alive()
        if time.monotonic() > deadline:
            raise BenchTimeout(f"{label}: the chains did not start within 30 s")
        time.sleep(0.05)
    time.sleep(0.3)  # well into a task
    return ids


def _await_progress(
    run: Running,
    affected: list[str],
    progress: Callable[[list[Fact]], float | None],
    note: Note,
    label: str,
) -> dict[str, float]:
    """`progress` of each affected instance (s); those that never moved in time left out."""
    deadline = time.monotonic() + PROGRESS_TIMEOUT_S
    found: dict[str, float] = {}
    while len(found) < len(affected) and time.monotonic() < deadline:
        for iid in affected:
            if iid not in found and (d := progress(_facts(run, iid))) is not None:
                found[iid] = d
        note(f"{label}: {len(found)}/{len(affected)} affected instances moved on")
        time.sleep(0.1)
    return found


def _finish(run: Running, ids: list[str], label: str) -> int:
    """Wait for the round's instances to end; returns how many did not succeed."""
    if run.watcher.wait_finished(ids, 90.0):
        raise BenchTimeout(f"{label}: instances did not end within 90 s after the kill")
    return sum(run.watcher.finished[i].kind != "WorkflowSucceeded" for i in ids)


def _owner_partitions(run: Running, pid: int) -> list[int]:
    return sorted(p for p, owner in run.watcher.owners.items() if f"-{pid}-" in owner)


def _taken_over_s(run: Running, partition: int, at: datetime) -> float | None:
    """Kill -> the survivor's `PartitionTakenOver` of `partition` (rebuilt, before the
    commands that waited are decided)."""
    for seen in list(run.watcher.events.get(f"partition/{partition}", ())):
        if seen.kind != "PartitionTakenOver":
            continue
        t: datetime = seen.record().at
        if t > at:
            return round((t - at).total_seconds(), 3)
    return None


def _wait_shared(run: Running, timeout_s: float, label: str) -> None:
    """Until every partition's latest owner is a running master and each master owns one."""
    partitions = run.settings.tideflow_partitions
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pids = [p.pid for k, p in run.fleet.procs.items() if k.startswith("master-")]
        owned = {pid: _owner_partitions(run, pid) for pid in pids}
        if all(owned.values()) and sum(len(v) for v in owned.values()) == partitions:
            return
        run.alive()
        time.sleep(0.1)
    raise BenchTimeout(f"{label}: the masters did not share the partitions within {timeout_s} s")


def _master_round(run: Running, workflow: WorkflowDef, n: int, note: Note) -> dict[str, Any]:
    label = f"master kill {n}"
    ids = _start_round(run, workflow, note, label)
    names = sorted(k for k in run.fleet.procs if k.startswith("master-"))
    name = names[(n - 1) % len(names)]
    pid = run.fleet.procs[name].pid
    owned = _owner_partitions(run, pid)
    at = datetime.now(UTC)
    run.fleet.kill(name)
    time.sleep(0.5)  # events the victim wrote just before the kill are read by now
    affected = [
        i for i in ids if (h := _facts(run, i)) and h[0].partition in owned and running_at(h, at)
    ]
    found = _await_progress(run, affected, lambda h: next_progress_s(h, at), note, label)
    delays, stuck = list(found.values()), [i for i in affected if i not in found]
    failed = _finish(run, ids, label)
    takeovers = [_taken_over_s(run, p, at) for p in owned]
    note(f"{label}: restarting {name}")
    run.fleet.start("master", name=name)
    _wait_shared(run, 60.0, label)
    return {"victim": name, "partitions": owned, "delays_s": delays, "stuck": stuck,
            "failed": failed, "takeover_s": takeovers}  # fmt: skip


def _worker_round(
    run: Running, workflow: WorkflowDef, slots: int, n: int, note: Note
) -> dict[str, Any]:
    label = f"worker kill {n}"
    ids = _start_round(run, workflow, note, label)
    names = sorted(k for k in run.fleet.procs if k.startswith("worker-"))
    names = names[(n - 1) % len(names) :] + names[: (n - 1) % len(names)]  # in turn, then
    # the one holding the most attempts now: on a loaded machine the turn's worker may
    # hold none at the kill, and a kill that stopped nothing measures nothing
    now = datetime.now(UTC)
    holds = {k: sum(stopped_on(_facts(run, i), f"bench-{k}", now) for i in ids) for k in names}
    name = max(names, key=lambda k: holds[k])
    worker_id = f"bench-{name}"
    at = datetime.now(UTC)
    run.fleet.kill(name)
    time.sleep(0.5)  # events the master wrote just before the kill are read by now
    held = [i for i in ids if stopped_on(_facts(run, i), worker_id, at)]
    found = _await_progress(run, held, lambda h: failed_over_s(h, worker_id, at), note, label)
    # now that their next facts are in: leave out attempts whose outcome was on its way
    affected = [i for i in held if stopped_on(_facts(run, i), worker_id, at)]
    delays = [found[i] for i in affected if i in found]
    stuck = [i for i in affected if i not in found]
    note(f"{label}: restarting {name}")
    run.fleet.start(
        "worker", name=name, TIDEFLOW_WORKER_ID=worker_id,
        TIDEFLOW_WORKER_SLOTS=str(slots),
    )  # fmt: skip
    failed = _finish(run, ids, label)
    return {"victim": name, "delays_s": delays, "stuck": stuck, "failed": failed}


def _figures(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    delays = [d for r in rounds for d in r["delays_s"]]
    return {
        "kills": len(rounds),
        "affected": len(delays) + sum(len(r["stuck"]) for r in rounds),
        "stuck": sum(len(r["stuck"]) for r in rounds),
        "failed_instances": sum(r["failed"] for r in rounds),
        "next_progress_s": summary(delays, 3),
        # one figure per kill: its slowest affected instance
        "per_kill_max_s": [round(max(r["delays_s"]), 3) if r["delays_s"] else None for r in rounds],
        "rounds": rounds,
    }


def _takeovers(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    return summary([t for r in rounds for t in r["takeover_s"] if t is not None], 3)


def measure_failover(settings: Settings, scale: Scale, log_dir: Path, note: Note) -> dict[str, Any]:
    """`scale.failover_kills` master kills, then as many worker kills, on a fleet of 2
    masters; see the module's docstring."""
    with running(settings, scale, log_dir, 2) as run:
        note("waiting for the partitions to split")
        _wait_shared(run, 60.0, "start")
        warm_up(run.starter, run.watcher, run.alive, note)
        workflow = run.starter.register(sleep_chain("bench-failover"))
        masters = [
            _master_round(run, workflow, n, note) for n in range(1, scale.failover_kills + 1)
        ]
        workers = [
            _worker_round(run, workflow, scale.worker_slots, n, note)
            for n in range(1, scale.failover_kills + 1)
        ]
    return {
        "session_timeout_ms": settings.tideflow_session_timeout_ms,
        "worker_timeout_s": settings.tideflow_worker_timeout_s,
        "heartbeat_interval_s": settings.tideflow_heartbeat_interval_s,
        "master": _figures(masters) | {"takeover_s": _takeovers(masters)},
        "worker": _figures(workers),
    }
