"""Golden logs: what the scenarios decide, as the Avro bytes a master writes, with what they
fold to. `python -m tests.golden.record` rewrites every file from today's code (a deliberate
change of `decide` or `evolve`); `git diff tests/golden/logs` shows what changed, event by
event (each record's bytes in hex sit next to a readable rendering of it).

tests/golden/test_golden.py fails when today's code decides a recorded story differently, when
the recorded bytes no longer decode, or when they fold to another state.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from projections.handlers import jsonable
from schemas import serde
from streams.core.decide import decide
from streams.core.decide.failover import on_lost_worker
from streams.core.events import InstanceEvent
from streams.core.evolve import evolve
from streams.core.ids import worker_lost_id
from streams.core.instance import InstanceState
from streams.core.placement import Workers, WorkerView
from streams.core.tick import tick
from tests.core.builders import IID
from tests.golden.scenarios import SCENARIOS, Scenario, Step

LOGS = Path(__file__).with_name("logs")


def workers_of(step: Step) -> Workers:
    return {"default": [WorkerView(w, "default", 4, free) for w, free in step.workers]}


def decide_step(state: InstanceState, step: Step) -> list[InstanceEvent]:
    """The events one step's decision writes: every input is in the step."""
    workers = workers_of(step)
    if step.command is not None:
        return decide(state, replace(step.command, at=step.at), step.at, workers)
    if step.tick:
        return tick(state, step.at, workers)
    cause = worker_lost_id(step.lost_worker, step.at.isoformat())
    reason = f"worker {step.lost_worker} lost"
    return on_lost_worker(state, step.lost_worker, None, reason, cause, step.at, workers)


def play(scenario: Scenario) -> list[tuple[Step, list[InstanceEvent]]]:
    state = InstanceState(instance_id=IID)
    out = []
    for step in scenario.steps:
        events = decide_step(state, step)
        for event in events:
            state = evolve(state, event)
        out.append((step, events))
    return out


def folded(events: list[Any]) -> dict[str, Any]:
    """What the events fold to, as the read models show an instance: its state and each
    task's latest attempt."""
    state = InstanceState(instance_id=IID)
    for event in events:
        state = evolve(state, event)
    return {
        "state": state.state.name if state.state else None,
        "failure_reason": state.failure_reason,
        "tasks": {
            code: {"attempt": t.attempt, "state": t.state.name, "worker_id": t.worker_id}
            for code, t in sorted(state.tasks.items())
        },
    }


def document(scenario: Scenario) -> dict[str, Any]:
    steps = []
    events: list[Any] = []
    for step, written in play(scenario):
        entry: dict[str, Any] = {
            "at": step.at.isoformat(),
            "workers": [list(w) for w in step.workers],
        }
        if step.command is not None:
            command = replace(step.command, at=step.at)
            entry["command"] = {
                "type": type(command).__name__,
                "avro": serde.encode(command).hex(),
                "record": jsonable(command),
            }
        elif step.tick:
            entry["tick"] = True
        else:
            entry["lost_worker"] = step.lost_worker
        entry["events"] = [
            {"type": type(e).__name__, "avro": serde.encode(e).hex(), "record": jsonable(e)}
            for e in written
        ]
        events.extend(written)
        steps.append(entry)
    return {"scenario": scenario.name, "steps": steps, "folds_to": folded(events)}


def path_of(name: str) -> Path:
    return LOGS / f"{name}.json"


def main() -> None:
    LOGS.mkdir(exist_ok=True)
    for name, make in SCENARIOS.items():
        path_of(name).write_text(json.dumps(document(make()), indent=1, sort_keys=True) + "\n")
        print(f"wrote {path_of(name)}")


if __name__ == "__main__":
    main()
