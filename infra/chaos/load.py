"""The chaos workload: a seeded stream of mixed workflow instances and operator controls.

Workflows (registered once, then started as `StartWorkflow` commands built here, so starting
an instance never needs PostgreSQL, which the fault schedule restarts):

* ``chaos-chain``: five shell tasks in a row with short sleeps (kills land mid-task);
* ``chaos-fan``: fan-out to four shell tasks of different lengths, fan-in at a no-op;
* ``chaos-flaky``: a task that fails on its first execution and succeeds on its retry;
* ``chaos-doomed``: failure strategy END, a task that always fails (one retry) next to a long
  sibling, which is killed when the instance gives up;
* ``chaos-noop``: a diamond of no-op tasks (scheduler only);
* ``chaos-slow``: one 2.5 s shell task (a kill nearly always lands while it runs).

Every shell task first appends ``instance task attempt worker pid`` to the run journal
(`CHAOS_JOURNAL`, passed as an instance parameter, so it is in the task's environment):
the checker's independent record of what actually ran on the workers.

Some instances also get a stop, a pause, and later a resume (seeded), so kills, pauses and
resumed attempts happen under faults too; a control that arrives in the wrong state ends
as a CommandRejected, as it should.
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.settings import Settings
from streams.core.commands import PauseWorkflow, ResumeWorkflow, StartWorkflow, StopWorkflow
from streams.core.definition import WorkflowDef, parse_workflow
from streams.kafka.errors import DeliveryFailed
from streams.kafka.producer import Producer

log = logging.getLogger("tideflow.chaos")

# Appends one journal line per execution; a short line with O_APPEND is written atomically.
JOURNAL = (
    'printf "%s %s %s %s %s\\n" "$TIDEFLOW_INSTANCE_ID" "$TIDEFLOW_TASK_CODE" '
    '"$TIDEFLOW_ATTEMPT" "${TIDEFLOW_WORKER_ID:-?}" "$$" >> "$CHAOS_JOURNAL"; '
)
FLAKY = (
    'm="$CHAOS_DIR/flaky-$TIDEFLOW_INSTANCE_ID-$TIDEFLOW_TASK_CODE"; '
    'if [ ! -f "$m" ]; then touch "$m"; echo "first run fails" >&2; exit 3; fi; echo recovered'
)


def _shell(code: str, command: str, *depends: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "command": JOURNAL + command, "depends": list(depends), **extra}


def _noop(code: str, *depends: str) -> dict[str, Any]:
    return {"code": code, "type": "noop", "depends": list(depends)}


def workflows() -> dict[str, WorkflowDef]:
    """The chaos workflows by code (version 0: registration assigns it)."""
    chain = [
        _shell("a", "sleep 0.3"),
        _shell("b", "sleep 0.5", "a"),
        _shell("c", "true", "b"),
        _shell("d", "sleep 0.6", "c"),
        _shell("e", "sleep 0.2", "d"),
    ]
    fan = [
        _noop("start"),
        _shell("x1", "sleep 0.2", "start"),
        _shell("x2", "sleep 0.5", "start"),
        _shell("x3", "sleep 1.0", "start"),
        _shell("x4", "true", "start"),
        _noop("join", "x1", "x2", "x3", "x4"),
        _shell("publish", "echo published", "join"),
    ]
    flaky = [
        _noop("prepare"),
        _shell("flaky", FLAKY, "prepare", retries=2, retry_interval="500ms"),
        _shell("after", "echo done", "flaky"),
    ]
    doomed = [
        _shell("prepare", "sleep 0.1"),
        _shell("doomed", "echo broken >&2; exit 7", "prepare", retries=1, retry_interval="300ms"),
        _shell("sibling", "sleep 2.5", "prepare"),
        _noop("never", "doomed", "sibling"),
    ]
    noop = [
        _noop("a"),
        _noop("b", "a"),
        _noop("c", "a"),
        _noop("d", "a"),
        _noop("e", "b", "c", "d"),
    ]
    slow = [_shell("long", "sleep 2.5"), _noop("after", "long")]
    raw: dict[str, tuple[list[dict[str, Any]], str]] = {
        "chaos-chain": (chain, "continue"),
        "chaos-fan": (fan, "continue"),
        "chaos-flaky": (flaky, "continue"),
        "chaos-doomed": (doomed, "end"),
        "chaos-noop": (noop, "continue"),
        "chaos-slow": (slow, "continue"),
    }
    return {
        code: parse_workflow({"code": code, "failure_strategy": strategy, "tasks": tasks})
        for code, (tasks, strategy) in raw.items()
    }


WEIGHTS: dict[str, int] = {
    "chaos-chain": 3,
    "chaos-fan": 3,
    "chaos-flaky": 2,
    "chaos-doomed": 1,
    "chaos-noop": 2,
    "chaos-slow": 1,
}
STOP_P, PAUSE_P, RESUME_P = 0.06, 0.04, 0.5  # per instance; resume: of paused/stopped ones
RESUME_FAILED_P = 0.3  # of chaos-doomed instances, resumed once they should have failed


@dataclass(frozen=True, slots=True)
class Control:
    command_id: str
    action: str  # "pause", "stop", "resume"
    instance_id: str


@dataclass
class Load:
    """Starts instances at `rate` per second (Poisson, seeded) until stopped."""

    settings: Settings
    definitions: Mapping[str, WorkflowDef]  # as registered (with their versions)
    params: Mapping[str, str]
    rng: random.Random
    rate: float
    seed: int = 0
    started: list[str] = field(default_factory=list)
    workflow_of: dict[str, str] = field(default_factory=dict)
    controls: list[Control] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.started)

    def run(self, stop: threading.Event) -> None:
        producer = Producer(self.settings.kafka)
        codes = sorted(self.definitions)
        weights = [WEIGHTS.get(c, 1) for c in codes]
        pending: list[tuple[float, int, Control]] = []
        next_start = time.monotonic()
        n = 0
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_start:
                n += 1
                code = self.rng.choices(codes, weights)[0]
                iid = f"chaos-{self.seed}-{n:05d}"
                self._start(producer, iid, code)
                for due, control in self._plan_controls(iid, code, now):
                    heapq.heappush(pending, (due, n, control))
                next_start += self.rng.expovariate(self.rate)
            while pending and pending[0][0] <= now:
                self._control(producer, heapq.heappop(pending)[2])
            wake = min(next_start, pending[0][0] if pending else next_start)
            stop.wait(max(0.0, min(0.05, wake - time.monotonic())))
        try:
            producer.flush()
        except DeliveryFailed as exc:
            self.errors.append(str(exc))

    def _plan_controls(self, iid: str, code: str, now: float) -> list[tuple[float, Control]]:
        out: list[tuple[float, Control]] = []
        roll = self.rng.random()
        if roll < STOP_P + PAUSE_P:
            action = "stop" if roll < STOP_P else "pause"
            at = now + self.rng.uniform(0.3, 3.0)
            out.append((at, Control(f"chaos-{action}/{iid}", action, iid)))
            if self.rng.random() < RESUME_P:
                out.append(
                    (at + self.rng.uniform(1.0, 3.0), Control(f"chaos-resume/{iid}", "resume", iid))
                )
        elif code == "chaos-doomed" and self.rng.random() < RESUME_FAILED_P:
            out.append(
                (now + self.rng.uniform(4.0, 7.0), Control(f"chaos-resume/{iid}", "resume", iid))
            )
        return out

    def _start(self, producer: Producer, iid: str, code: str) -> None:
        command = StartWorkflow(
            command_id=f"start/{iid}",
            instance_id=iid,
            workflow=self.definitions[code],
            params=dict(self.params),
            requested_by="chaos",
            at=datetime.now(UTC),
        )
        try:
            producer.send(self.settings.topics.commands, iid, command)
            producer.flush()
        except DeliveryFailed as exc:  # the broker is never faulted: worth reporting
            self.errors.append(f"start {iid}: {exc}")
            return
        with self._lock:
            self.started.append(iid)
            self.workflow_of[iid] = code

    def _control(self, producer: Producer, c: Control) -> None:
        kinds = {"pause": PauseWorkflow, "stop": StopWorkflow, "resume": ResumeWorkflow}
        command = kinds[c.action](
            command_id=c.command_id, instance_id=c.instance_id, at=datetime.now(UTC)
        )
        try:
            producer.send(self.settings.topics.commands, c.instance_id, command)
            producer.flush()
        except DeliveryFailed as exc:
            self.errors.append(f"{c.action} {c.instance_id}: {exc}")
            return
        self.controls.append(c)


def read_journal(path: Path) -> list[tuple[str, str, int, str, str]]:
    """(instance, task, attempt, worker, pid) per line of the run journal."""
    out: list[tuple[str, str, int, str, str]] = []
    if not path.exists():
        return out
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[2].isdigit():
            out.append((parts[0], parts[1], int(parts[2]), parts[3], parts[4]))
    return out
