"""Golden logs (tests/golden/logs, written by `python -m tests.golden.record`): recorded
decisions with every input, as the Avro bytes written then.

* Today's code reads the recorded bytes (a log written by an older schema version stays
  readable: the records decode to the latest version), and each decodes to what its readable
  rendering says (the rendering cannot drift from the bytes).
* Re-deciding each recorded command, tick and lost worker, with the recorded time and
  workers, from the fold of the recorded events before it, gives the recorded events: a change
  of `decide` that alters history fails here, naming the first differing event.
* The recorded events fold to the recorded state.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from projections.handlers import jsonable
from schemas import serde
from schemas.registry import AVSC_DIR
from streams.core.decision_check import check_instance
from streams.core.events import TaskDispatched
from streams.core.evolve import evolve
from streams.core.instance import InstanceState
from streams.core.partition import PartitionLog
from tests.core.builders import IID
from tests.golden.compare import renders
from tests.golden.record import LOGS, PARTITION, VERSIONS, decide_step, folded
from tests.golden.scenarios import SCENARIOS, Step
from tests.golden.scheduler_stories import DEFINITION, STORIES, Input

GOLDEN = sorted(
    p for p in LOGS.glob("*.json") if p.stem not in (PARTITION, VERSIONS) and p.stem not in STORIES
)


def test_every_scenario_has_its_golden_log() -> None:
    assert sorted(p.stem for p in GOLDEN) == sorted(SCENARIOS)
    assert (LOGS / f"{PARTITION}.json").exists()
    assert all((LOGS / f"{name}.json").exists() for name in STORIES)


def test_a_partition_log_across_a_master_failover_folds_with_the_zombie_fenced() -> None:
    log = json.loads((LOGS / f"{PARTITION}.json").read_text())
    part = PartitionLog(0)
    for entry in log["records"]:
        part.fold(_decoded(entry))

    assert part.fenced == log["fenced"] == 1
    assert {
        iid: {"state": st.state.name if st.state else None, "tasks": len(st.tasks)}
        for iid, st in sorted(part.instances.items())
    } == log["folds_to"]


def _decoded(entry: dict[str, Any]) -> Any:
    record = serde.decode(bytes.fromhex(entry["avro"]))
    assert type(record).__name__ == entry["type"]
    assert renders(entry["record"], jsonable(record)), "the rendering differs from the bytes"
    return record


def test_a_field_a_later_version_added_may_be_missing_from_an_old_rendering() -> None:
    assert renders(
        {"a": 1, "w": {"b": [1, {"c": 2}]}}, {"a": 1, "new": 0, "w": {"b": [1, {"c": 2, "d": 3}]}}
    )
    assert not renders({"a": 1}, {"a": 2})
    assert not renders({"a": 1, "gone": 1}, {"a": 1})
    assert not renders({"b": [1, 2]}, {"b": [1]})


def _step(entry: dict[str, Any]) -> Step:
    command = _decoded(entry["command"]) if "command" in entry else None
    return Step(
        at=datetime.fromisoformat(entry["at"]),
        command=command,
        tick=bool(entry.get("tick")),
        lost_worker=entry.get("lost_worker", ""),
        workers=tuple((w, free) for w, free in entry["workers"]),
    )


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_todays_code_decides_the_recorded_history_the_same_and_folds_it_the_same(path) -> None:
    log = json.loads(path.read_text())
    state = InstanceState(instance_id=IID)
    every: list[Any] = []
    for n, entry in enumerate(log["steps"]):
        recorded = [_decoded(e) for e in entry["events"]]
        decided = decide_step(state, _step(entry))
        for i, (was, now) in enumerate(zip(recorded, decided, strict=False)):
            assert now == was, (
                f"{path.stem} step {n} event {i}: recorded {jsonable(was)}, decided {jsonable(now)}"
            )
        assert len(decided) == len(recorded), (
            f"{path.stem} step {n}: recorded {[e['type'] for e in entry['events']]}, "
            f"decided {[type(e).__name__ for e in decided]}"
        )
        for event in recorded:
            state = evolve(state, event)
        every.extend(recorded)
    assert folded(every) == log["folds_to"]


def _history(log: dict[str, Any]) -> tuple[list[tuple[int, Any]], dict[str, Any]]:
    """The recorded events with offsets, and the recorded commands by id."""
    events: list[tuple[int, Any]] = []
    commands: dict[str, Any] = {}
    for entry in log["steps"]:
        if "command" in entry:
            command = _decoded(entry["command"])
            commands[command.command_id] = command
        events.extend((len(events), _decoded(e)) for e in entry["events"])
    return events, commands


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_the_decision_check_finds_every_golden_history_decided_the_same(path) -> None:
    events, commands = _history(json.loads(path.read_text()))

    assert check_instance(IID, events, commands) is None


def test_the_decision_check_names_the_first_decision_that_differs() -> None:
    events, commands = _history(json.loads((LOGS / "retries.json").read_text()))
    n, dispatch = next((n, e) for n, e in events if isinstance(e, TaskDispatched) and n > 2)
    events[n] = (n, replace(dispatch, attempt=9))  # history says another attempt ran

    found = check_instance(IID, events, commands)

    assert found is not None and found.offset <= n and found.why == "different events"
    without_input = {k: v for k, v in commands.items() if not k.startswith("start")}
    missing = check_instance(IID, events, without_input)
    assert missing is not None and missing.offset == 0 and "no input" in missing.why


@pytest.mark.parametrize("name", sorted(STORIES))
def test_todays_scheduler_decides_the_recorded_story_the_same_and_folds_it_the_same(
    name: str,
) -> None:
    story = STORIES[name]
    log = json.loads((LOGS / f"{name}.json").read_text())
    assert _decoded(log["definition"]) == DEFINITION  # what the fires read
    state = story.empty()
    for n, entry in enumerate(log["steps"]):
        recorded = [_decoded(e) for e in entry["written"]]
        step = Input(
            at=datetime.fromisoformat(entry["at"]),
            command=_decoded(entry["command"]) if "command" in entry else None,
            ended=tuple(entry["ended"]) if "ended" in entry else None,  # type: ignore[arg-type]
        )
        decided = story.decide(state, step)
        assert [jsonable(r) for r in decided] == [jsonable(r) for r in recorded], f"{name} step {n}"
        assert decided == recorded
        state = story.fold(state, recorded)
    assert story.summary(state) == log["folds_to"]


def test_every_schema_version_is_in_the_versions_log_and_old_bytes_decode_today() -> None:
    versions = json.loads((LOGS / f"{VERSIONS}.json").read_text())["versions"]
    assert sorted(versions) == sorted(p.name for p in AVSC_DIR.glob("*.avsc")), (
        "run `python -m tests.golden.record` to add the new versions"
    )
    for name, entry in versions.items():
        decoded = _decoded(entry)  # today's reader, the writer of that version's day
        assert serde.decode(serde.encode(decoded)) == decoded, name
