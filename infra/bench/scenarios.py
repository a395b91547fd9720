"""Workflows run against a live fleet: the chain, the fan-out/fan-in throughput burst and the
wide DAG. Starts are `StartWorkflow` commands produced here (no read-model look-up on the
timed path); ends and every intermediate time come from the events and commands topics.

Clocks: `e2e` figures are this process's `perf_counter` from the start command's send to
the watcher reading the instance's final event (one hop after the master wrote it). Event
`at` fields are the master's clock, ack `at` fields the worker's; all processes share
this machine's clock.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from infra import compose
from infra.bench.stats import summary
from infra.bench.watch import Seen, Watcher
from infra.settings import Settings
from streams.core.commands import StartWorkflow
from streams.core.definition import WorkflowDef, parse_workflow
from streams.kafka.producer import Producer

CHAIN_LENGTH = 10
FANOUT_WIDTH = 8  # start -> 8 parallel -> end: 10 tasks
_TASK_EVENTS = {"TaskDispatched", "TaskStarted", "TaskSucceeded"}
FIN = {"WorkflowSucceeded", "WorkflowFailed"}

Note = Callable[[str], None]


class BenchTimeout(RuntimeError):
    """Instances that did not end within the section's time limit."""


# -- workflows ---------------------------------------------------------------------------------


def _task(code: str, depends: list[str], shell: bool) -> dict[str, Any]:
    kind = {"type": "shell", "command": "true"} if shell else {"type": "noop"}
    return {"code": code, "depends": depends, **kind}


def chain_workflow(code: str, length: int = CHAIN_LENGTH, shell: bool = False) -> WorkflowDef:
    codes = [f"t{i:02d}" for i in range(1, length + 1)]
    tasks = [_task(c, codes[i - 1 : i], shell) for i, c in enumerate(codes)]
    return parse_workflow({"code": code, "tasks": tasks})


def fan_workflow(code: str, width: int) -> WorkflowDef:
    """start -> `width` parallel tasks -> end."""
    middle = [f"w{i:04d}" for i in range(1, width + 1)]
    tasks = [
        _task("start", [], False),
        *(_task(m, ["start"], False) for m in middle),
        _task("end", middle, False),
    ]
    return parse_workflow({"code": code, "tasks": tasks})


# -- starting ----------------------------------------------------------------------------------


class Starter:
    """Registers definitions (through the API's service) and sends start commands."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.service = compose.service(settings)
        self._producer: Producer | None = Producer(settings.kafka)

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            raise RuntimeError("starter closed")
        return self._producer

    def register(self, workflow: WorkflowDef) -> WorkflowDef:
        registered = self.service.register(workflow, by="bench", wait_s=60.0)
        return replace(workflow, version=registered.version)

    def send(self, workflow: WorkflowDef, prefix: str) -> str:
        instance_id = f"{prefix}-{uuid.uuid4().hex[:12]}"
        command = StartWorkflow(
            command_id=f"start/{instance_id}",
            instance_id=instance_id,
            workflow=workflow,
            requested_by="bench",
            at=datetime.now(UTC),
        )
        self.producer.send(self.settings.topics.commands, instance_id, command)
        return instance_id

    def flush(self) -> None:
        self.producer.flush()

    def close(self) -> None:
        """Flush and drop the clients: a client left alive after its broker stopped
        reconnects in a loop (and logs through Python, taking the GIL)."""
        if self._producer is not None:
            self._producer.flush()
            self._producer = None
        self.service.close()


def decoded(seen: list[Seen], kinds: set[str]) -> list[Any]:
    return [s.record() for s in seen if s.kind in kinds]


def by_task(records: list[Any], cls_name: str) -> dict[str, datetime]:
    """task code -> `at` of the first record of type `cls_name` (attempt 1 on these runs)."""
    out: dict[str, datetime] = {}
    for r in records:
        if type(r).__name__ == cls_name:
            out.setdefault(r.task_code, r.at)
    return out


def ms_between(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else (b - a).total_seconds() * 1000


# -- chain -------------------------------------------------------------------------------------


def run_chain(
    starter: Starter,
    watcher: Watcher,
    runs: int,
    shell: bool,
    note: Note,
    warmup: int = 1,
) -> dict[str, Any]:
    """`runs` chains one after the other: end to end, and the per-task step."""
    kind = "shell" if shell else "noop"
    workflow = starter.register(chain_workflow(f"bench-chain-{kind}", shell=shell))
    codes = [t.code for t in workflow.tasks]
    e2e: list[float] = []
    e2e_master: list[float] = []
    started_delay: list[float] = []
    step: list[float] = []
    step_master: list[float] = []
    hops: dict[str, list[float]] = defaultdict(list)
    failed = 0
    for run in range(warmup + runs):
        note(f"{kind} chain {max(0, run - warmup + 1)}/{runs}")
        sent_wall = datetime.now(UTC)
        sent = time.perf_counter()
        instance_id = starter.send(workflow, f"chain-{kind}")
        starter.flush()
        if watcher.wait_finished([instance_id], 60.0):
            raise BenchTimeout(f"{kind} chain {instance_id} did not end within 60 s")
        end = watcher.finished[instance_id]
        if run < warmup:
            continue
        if end.kind != "WorkflowSucceeded":
            failed += 1
            continue
        e2e.append((end.recv - sent) * 1000)
        events = decoded(watcher.events[instance_id], {"WorkflowStarted", *_TASK_EVENTS, *FIN})
        acks = decoded(watcher.commands[instance_id], {"ReportTaskStarted", "ReportTaskFinished"})
        wf_started = next((e.at for e in events if type(e).__name__ == "WorkflowStarted"), None)
        wf_ended = next((e.at for e in events if type(e).__name__ == "WorkflowSucceeded"), None)
        if (d := ms_between(wf_started, wf_ended)) is not None:
            e2e_master.append(d)
        if (d := ms_between(sent_wall, wf_started)) is not None:
            started_delay.append(d)
        succeeded = by_task(events, "TaskSucceeded")
        dispatched = by_task(events, "TaskDispatched")
        task_started = by_task(events, "TaskStarted")
        ack_started = by_task(acks, "ReportTaskStarted")
        ack_finished = by_task(acks, "ReportTaskFinished")
        for a, b in itertools.pairwise(codes):
            pairs = {
                "step": (ack_finished.get(a), ack_started.get(b)),
                "step_master": (succeeded.get(a), task_started.get(b)),
                "finished_ack_to_master": (ack_finished.get(a), succeeded.get(a)),
                "dispatch_to_worker": (dispatched.get(b), ack_started.get(b)),
                "started_ack_to_master": (ack_started.get(b), task_started.get(b)),
            }
            for name, (x, y) in pairs.items():
                d = ms_between(x, y)
                if d is None:
                    continue
                if name == "step":
                    step.append(d)
                elif name == "step_master":
                    step_master.append(d)
                else:
                    hops[name].append(d)
        for c in codes:
            if (d := ms_between(ack_started.get(c), ack_finished.get(c))) is not None:
                hops["worker_started_to_finished"].append(d)
    return {
        "runs": runs,
        "tasks": len(codes),
        "task_type": kind,
        "failed": failed,
        "e2e_ms": summary(e2e),
        "e2e_master_ms": summary(e2e_master),
        "start_to_workflow_started_ms": summary(started_delay),
        "step_ms": summary(step),
        "step_master_ms": summary(step_master),
        "hops_ms": {name: summary(values) for name, values in sorted(hops.items())},
    }


# -- throughput --------------------------------------------------------------------------------


# -- wide --------------------------------------------------------------------------------------


def run_wide(starter: Starter, watcher: Watcher, width: int, note: Note) -> dict[str, Any]:
    workflow = starter.register(fan_workflow(f"bench-wide-{width}", width))
    note(f"1 -> {width} -> 1")
    sent = time.perf_counter()
    sent_wall = datetime.now(UTC)
    instance_id = starter.send(workflow, "wide")
    starter.flush()
    limit = max(120.0, width / 5.0)
    if watcher.wait_finished([instance_id], limit):
        raise BenchTimeout(f"wide DAG {instance_id} did not end within {limit:.0f} s")
    end = watcher.finished[instance_id]
    e2e = end.recv - sent
    events = decoded(watcher.events[instance_id], {"WorkflowStarted", *FIN})
    started = next((e.at for e in events if type(e).__name__ == "WorkflowStarted"), None)
    ended = next((e.at for e in events if type(e).__name__ in FIN), None)
    return {
        "width": width,
        "tasks": width + 2,
        "state": end.kind,
        "e2e_ms": round(e2e * 1000, 1),
        "e2e_master_ms": _round(ms_between(started, ended)),
        "start_to_workflow_started_ms": _round(ms_between(sent_wall, started)),
        "tasks_per_s": round((width + 2) / e2e, 1),
        "events": len(watcher.events[instance_id]),
    }


def _round(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(x, digits)
