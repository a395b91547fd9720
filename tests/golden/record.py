"""Golden logs: what the scenarios decide, as the Avro bytes a master writes, with what they
fold to. `python -m tests.golden.record` rewrites every file from today's code (`--read-models`: and
what each instance log folds to in PostgreSQL, see read_models.py) (a deliberate
change of `decide` or `evolve`); `git diff tests/golden/logs` shows what changed, event by
event (each record's bytes in hex sit next to a readable rendering of it).

tests/golden/test_golden.py fails when today's code decides a recorded story differently, when
the recorded bytes no longer decode, or when they fold to another state.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from streams.core.decide import decide
from streams.core.decide.failover import on_lost_worker
from streams.core.events import InstanceEvent, PartitionTakenOver
from streams.core.evolve import evolve
from streams.core.ids import worker_lost_id
from streams.core.instance import InstanceState
from streams.core.partition import PartitionLog
from streams.core.placement import Workers, WorkerView
from streams.core.tick import tick
from tests.core.builders import IID
from tests.golden import read_models, schema_versions
from tests.golden.read_models import fresh_schema, log_events
from tests.golden.scenarios import SCENARIOS, Scenario, Step
from tests.golden.scheduler_stories import STORIES, rendered
from tests.golden.scheduler_stories import document as story_document

LOGS = Path(__file__).with_name("logs")
PARTITION = "partition_failover"  # a partition's log, not one instance's story
VERSIONS = "schema_versions"  # a record per schema version, added to, never rewritten


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
            entry["command"] = rendered(command)
        elif step.tick:
            entry["tick"] = True
        else:
            entry["lost_worker"] = step.lost_worker
        entry["events"] = [rendered(e) for e in written]
        events.extend(written)
        steps.append(entry)
    return {"scenario": scenario.name, "steps": steps, "folds_to": folded(events)}


def partition_document() -> dict[str, Any]:
    """A partition's log across a master failover: two instances' stories interleaved, the
    new owner's `PartitionTakenOver` (epoch 1), then an event the old owner (epoch 0) wrote
    after it, which every reader must leave out (fenced), and the rest of the stories."""
    stories = [play(SCENARIOS[name]()) for name in ("retries", "timeout_warning")]
    first = [e for _, written in stories[0] for e in written]
    second = [
        replace(e, instance_id=f"{IID}-2") if hasattr(e, "instance_id") else e
        for _, written in stories[1]
        for e in written
    ]
    half = len(first) // 2
    taken = PartitionTakenOver(partition=0, owner="m2", previous_owner="m1", epoch=1,
                               events_offset=half, at=first[half].at)  # fmt: skip
    zombie = replace(first[half], at=first[half].at)  # the old owner repeats a decision
    log = [
        *first[:half], *second[:3], taken, zombie,
        *(replace(e, epoch=1) for e in first[half:]),
        *(replace(e, epoch=1) for e in second[3:]),
    ]  # fmt: skip
    part = PartitionLog(0)
    for event in log:
        part.fold(event)
    return {
        "scenario": "partition_failover",
        "records": [rendered(e) for e in log],
        "fenced": part.fenced,
        "folds_to": {
            iid: {"state": st.state.name if st.state else None, "tasks": len(st.tasks)}
            for iid, st in sorted(part.instances.items())
        },
    }


def path_of(name: str) -> Path:
    return LOGS / f"{name}.json"


def record_read_models(documents: dict[str, dict[str, Any]]) -> None:
    """Project each instance log into a fresh schema of the local stack's PostgreSQL."""
    from infra.settings import Settings
    from infra.stack import LocalStack

    with LocalStack(Settings()) as settings:
        for name in SCENARIOS:
            with fresh_schema(settings.db, f"golden_{name}") as conn:
                read_models.write(name, read_models.project(conn, log_events(documents[name])))
            print(f"wrote {read_models.path_of(name)}")


def main() -> None:
    LOGS.mkdir(exist_ok=True)
    documents = {name: document(make()) for name, make in SCENARIOS.items()}
    documents[PARTITION] = partition_document()
    documents.update({name: story_document(story) for name, story in STORIES.items()})
    old = json.loads(path_of(VERSIONS).read_text()) if path_of(VERSIONS).exists() else {}
    documents[VERSIONS] = schema_versions.document(old)
    for name, doc in documents.items():
        path_of(name).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        print(f"wrote {path_of(name)}")
    if "--read-models" in sys.argv[1:]:
        record_read_models(documents)


if __name__ == "__main__":
    main()
