"""The snapshot codec: states built by the real deciders survive a round trip exactly; any
other bytes, or a snapshot of another state format, are refused, never misread."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import msgspec
import pytest

from streams.core.commands import (
    Command,
    PauseWorkflow,
    ReportTaskFinished,
    ReportTaskStarted,
    ResumeWorkflow,
    StartWorkflow,
    StopWorkflow,
)
from streams.core.decide import decide
from streams.core.definition import WorkflowDef, parse_workflow
from streams.core.enums import Outcome, TaskState, WorkflowState
from streams.core.evolve import evolve
from streams.core.ids import ack_command_id
from streams.core.instance import InstanceState, TaskRun
from streams.core.placement import WorkerView
from streams.core.tick import tick
from streams.master import snapshot_codec as snapshots
from streams.master.snapshot_codec import (
    FORMAT_REVISION,
    STATE_CLASSES,
    STATE_FORMAT,
    PartitionSnapshot,
    SnapshotUnreadable,
    decode_snapshot,
    encode_snapshot,
)
from streams.master.state_codec import StateCodec
from streams.master.state_format import reachable_classes, state_fingerprint

T0 = datetime(2024, 6, 1, 2, 0, tzinfo=UTC)
WORKERS = {"default": [WorkerView("w1", "default", 8, 8), WorkerView("w2", "default", 8, 8)]}

# -- states built by the real deciders (also used by the integration tests) -----------------


def ten_task_workflow() -> WorkflowDef:
    """A 10-task DAG with retries, a timeout and priorities: a fresh (equal) value per call,
    as every instance's `WorkflowStarted` decodes its own."""
    return parse_workflow(
        {
            "code": "nightly-etl",
            "description": "extract, transform, load, report",
            "failure_strategy": "continue",
            "tasks": [
                {"code": "extract_a", "command": "extract a", "retries": 2, "retry_interval": 5},
                {"code": "extract_b", "command": "extract b", "retries": 1, "priority": "high"},
                {"code": "clean_a", "command": "clean a", "depends": ["extract_a"]},
                {"code": "clean_b", "command": "clean b", "depends": ["extract_b"]},
                {"code": "join", "command": "join", "depends": ["clean_a", "clean_b"]},
                {"code": "model", "command": "model", "depends": ["join"], "timeout": "10m"},
                {"code": "load", "command": "load", "depends": ["model"], "retries": 3},
                {"code": "index", "command": "index", "depends": ["load"]},
                {"code": "report", "command": "report", "depends": ["load"], "type": "noop"},
                {"code": "notify", "command": "notify", "depends": ["index", "report"]},
            ],
        }
    )


def _apply(state: InstanceState, command: Command, now: datetime) -> InstanceState:
    for event in decide(state, command, now, WORKERS):
        state = evolve(state, event)
    return state


def _tick(state: InstanceState, now: datetime) -> InstanceState:
    for event in tick(state, now, WORKERS):
        state = evolve(state, event)
    return state


def build_instance(i: int, start: datetime = T0) -> InstanceState:
    """Instance number `i`, driven to one of many points of its life (running, retrying,
    paused, stopped, resumed, failed, succeeded) by deciding real commands."""
    iid = f"nightly-etl-{i:06d}-7d1c0a"
    now = start + timedelta(seconds=i)
    state = _apply(
        InstanceState(instance_id=iid),
        StartWorkflow(
            command_id=f"cmd-start-{i}",
            instance_id=iid,
            workflow=ten_task_workflow(),
            params={"date": "2024-06-01", "run": str(i)},
            requested_by="scheduler",
            at=now,
        ),
        now,
    )
    steps = i % 13
    for step in range(steps):
        now += timedelta(seconds=7)
        if step == 3 and i % 5 == 1:
            state = _apply(state, PauseWorkflow(command_id=f"p-{i}", instance_id=iid, at=now), now)
        if step == 3 and i % 5 == 2:
            state = _apply(state, StopWorkflow(command_id=f"s-{i}", instance_id=iid, at=now), now)
        if step == 6 and i % 5 in (1, 2):
            command = ResumeWorkflow(command_id=f"r-{i}", instance_id=iid, at=now)
            state = _apply(state, command, now)
        for run in state.active():
            state = _ack(state, run, i, now)
        state = _tick(state, now)
    return state


def _ack(state: InstanceState, run: TaskRun, i: int, now: datetime) -> InstanceState:
    iid = state.instance_id
    if run.state is TaskState.DISPATCH:
        started = ReportTaskStarted(
            command_id=ack_command_id(iid, run.code, run.attempt, "started"),
            instance_id=iid,
            task_code=run.code,
            attempt=run.attempt,
            worker_id=run.worker_id,
            at=now,
        )
        state = _apply(state, started, now + timedelta(milliseconds=3))
    fails = (i + run.attempt + len(run.code)) % 4 == 0 or (i % 9 == 4 and run.code == "join")
    outcome = Outcome.FAILURE if fails else Outcome.SUCCESS
    if run.kill_requested:
        outcome = Outcome.KILLED
    finished = ReportTaskFinished(
        command_id=ack_command_id(iid, run.code, run.attempt, "finished"),
        instance_id=iid,
        task_code=run.code,
        attempt=run.attempt,
        worker_id=run.worker_id,
        outcome=outcome,
        exit_code=0 if outcome is Outcome.SUCCESS else 1,
        at=now,
    )
    return _apply(state, finished, now + timedelta(seconds=5, microseconds=i))


def build_instances(count: int, start: datetime = T0) -> dict[str, InstanceState]:
    states = (build_instance(i, start) for i in range(count))
    return {s.instance_id: s for s in states}


def snapshot_of(
    instances: Mapping[str, InstanceState], partition: int = 3, events_offset: int = 12_345
) -> PartitionSnapshot:
    return PartitionSnapshot(
        partition=partition,
        events_offset=events_offset,
        epoch=7,
        instances=instances,
        written_at=T0 + timedelta(hours=1, microseconds=17),
        owner="master-b/4242",
        lost=frozenset({("w3", T0 - timedelta(minutes=5)), ("w1", T0 + timedelta(seconds=1))}),
    )


# -- round trip ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def instances() -> dict[str, InstanceState]:
    return build_instances(300)


def test_the_built_states_cover_every_point_of_an_instance_life(
    instances: dict[str, InstanceState],
) -> None:
    states = {s.state for s in instances.values()}
    assert {
        WorkflowState.RUNNING_EXECUTION,
        WorkflowState.PAUSE,
        WorkflowState.STOP,
        WorkflowState.FAILURE,
        WorkflowState.SUCCESS,
    } <= states
    runs = [t for s in instances.values() for t in s.tasks.values()]
    assert any(t.retry_at is not None for t in runs)  # awaiting a retry
    assert any(t.attempt > 1 and t.tries > 1 for t in runs)  # retried
    assert any(t.attempt > t.tries for t in runs)  # resumed
    assert any(t.kill_requested for t in runs)
    assert {TaskState.DISPATCH, TaskState.SUCCESS, TaskState.FAILURE, TaskState.KILL} <= {
        t.state for t in runs
    }
    assert any(s.ended_at is not None and s.failure_reason for s in instances.values())


def test_round_trip_equals_the_original_states(instances: dict[str, InstanceState]) -> None:
    snapshot = snapshot_of(instances)

    back = decode_snapshot(encode_snapshot(snapshot))

    assert back == snapshot
    assert back.instances == instances
    assert list(back.instances) == list(instances)
    for iid, state in instances.items():
        again = back.instances[iid]
        assert again == state
        assert type(again.state) is type(state.state)
        for code, run in state.tasks.items():
            assert type(again.tasks[code].state) is TaskState
            assert again.tasks[code].dispatched_at == run.dispatched_at
            if run.retry_at is not None:
                assert again.tasks[code].retry_at == run.retry_at
                assert again.tasks[code].retry_at.tzinfo is not None  # type: ignore[union-attr]


def test_round_trip_of_an_empty_partition_and_of_a_state_with_defaults() -> None:
    empty = snapshot_of({})
    assert decode_snapshot(encode_snapshot(empty)) == empty
    bare_partition = PartitionSnapshot(
        partition=0, events_offset=0, epoch=0, instances={}, written_at=T0
    )
    assert decode_snapshot(encode_snapshot(bare_partition)) == bare_partition
    bare = snapshot_of({"x": InstanceState(instance_id="x")})
    assert decode_snapshot(encode_snapshot(bare)) == bare


def test_read_only_mappings_round_trip_as_equal_mappings() -> None:
    state = build_instance(4)
    proxied = dataclasses.replace(
        state,
        params=MappingProxyType(dict(state.params)),
        defs=MappingProxyType(dict(state.defs)),
        tasks=MappingProxyType(dict(state.tasks)),
    )
    with pytest.raises(TypeError):
        msgspec.msgpack.encode(proxied)  # why the codec's hook turns them into dicts

    back = decode_snapshot(encode_snapshot(snapshot_of({state.instance_id: proxied})))

    assert back.instances[state.instance_id] == proxied == state


def test_decoded_definitions_are_shared_between_instances(
    instances: dict[str, InstanceState],
) -> None:
    back = decode_snapshot(encode_snapshot(snapshot_of(instances))).instances
    workflows = {id(s.workflow) for s in back.values()}
    assert len(workflows) == 1  # one value, read once, not 300 copies
    one = next(iter(back.values()))
    assert one.workflow is not None
    assert all(one.defs[t.code] is t for t in one.workflow.tasks)


def test_a_snapshot_is_compact(instances: dict[str, InstanceState]) -> None:
    data = encode_snapshot(snapshot_of(instances))
    assert len(data) < 200 * len(instances)


# -- refusals ---------------------------------------------------------------------------------


def _plain(data: bytes) -> list[Any]:
    """A snapshot as plain values: [magic, state format, partition, [tables, instances]]."""
    value = msgspec.msgpack.decode(zlib.decompress(data))
    assert isinstance(value, list) and len(value) == 4
    return value


def _repack(plain: list[Any]) -> bytes:
    return zlib.compress(msgspec.msgpack.encode(plain))


def _field(name: str) -> int:
    """Where an instance's field travels in its array."""
    return [f.name for f in dataclasses.fields(InstanceState)].index(name)


def test_a_snapshot_of_another_state_format_is_refused(
    instances: dict[str, InstanceState],
) -> None:
    plain = _plain(encode_snapshot(snapshot_of(instances)))
    assert plain[1] == STATE_FORMAT
    older = _repack([plain[0], "0-0123456789abcdef01234567", *plain[2:]])

    with pytest.raises(SnapshotUnreadable, match="state format"):
        decode_snapshot(older)


_RAN: list[str] = []


def _record_run(what: str) -> None:
    _RAN.append(what)


class _Boom:
    def __reduce__(self) -> tuple[object, ...]:
        return (_record_run, ("pwned",))


def test_a_snapshot_of_the_previous_pickle_codec_is_refused_without_running_it() -> None:
    payload = (snapshots._MAGIC, "1-" + "0" * 24, 0, 0, 0, T0, "", [], [], {"x": _Boom()})
    older = zlib.compress(pickle.dumps(payload, protocol=5), 1)

    with pytest.raises(SnapshotUnreadable, match="not a snapshot"):
        decode_snapshot(older)
    assert _RAN == []


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b"", id="empty"),
        pytest.param(lambda b: b"not a snapshot at all", id="garbage"),
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b[:40] + bytes([b[40] ^ 0xFF]) + b[41:], id="flipped-byte"),
        pytest.param(lambda b: zlib.compress(msgspec.msgpack.encode(1)), id="not-an-array"),
        pytest.param(lambda b: _repack(["x", *_plain(b)[1:]]), id="wrong-magic"),
        pytest.param(lambda b: _repack(_plain(b)[:3]), id="no-instances"),
    ],
)
def test_corrupt_bytes_raise_snapshot_unreadable(damage: Callable[[bytes], bytes]) -> None:
    data = encode_snapshot(snapshot_of(build_instances(20)))

    with pytest.raises(SnapshotUnreadable):
        decode_snapshot(damage(data))


def _damaged(change: Callable[[list[Any], list[Any], dict[str, list[Any]]], object]) -> bytes:
    """A well-formed snapshot of 3 instances whose plain values `change(partition, tables,
    instances)` alters in place."""
    plain = _plain(encode_snapshot(snapshot_of(build_instances(3))))
    tables, instances = plain[3]
    change(plain[2], tables, instances)
    return _repack(plain)


def _set(values: list[Any] | dict[str, Any], key: Any, value: object) -> None:
    values[key] = value


def _each(instances: dict[str, list[Any]], change: Callable[[list[Any]], object]) -> None:
    for row in instances.values():
        change(row)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda p, t, i: _each(i, list.pop), id="an-instance-field-missing"),
        pytest.param(lambda p, t, i: _each(i, lambda r: r.append(0)), id="an-extra-field"),
        pytest.param(lambda p, t, i: _set(p, 0, "3"), id="partition-not-an-int"),
        pytest.param(lambda p, t, i: _set(p, 5, [["w1", "yesterday"]]), id="lost-not-a-time"),
        pytest.param(
            lambda p, t, i: _each(i, lambda r: _set(r, _field("workflow"), 99)),
            id="definition-place-outside-its-table",
        ),
        pytest.param(
            lambda p, t, i: _each(i, lambda r: _set(r, _field("workflow"), -1)),
            id="definition-place-counted-from-the-end",
        ),
        pytest.param(
            lambda p, t, i: _each(i, lambda r: _set(r, _field("state"), 99)),
            id="no-such-workflow-state",
        ),
        pytest.param(
            lambda p, t, i: _each(i, lambda r: _set(r, _field("applied"), "not a set")),
            id="applied-not-a-set",
        ),
        pytest.param(lambda p, t, i: t[0].append({"code": 1}), id="a-task-definition-retyped"),
    ],
)
def test_a_well_formed_snapshot_with_a_wrong_shape_is_refused(
    change: Callable[[list[Any], list[Any], dict[str, list[Any]]], object],
) -> None:
    with pytest.raises(SnapshotUnreadable, match="damaged snapshot"):
        decode_snapshot(_damaged(change))


# -- the state format fingerprint ------------------------------------------------------------


def test_state_format_is_the_fingerprint_of_the_state_classes() -> None:
    assert state_fingerprint(STATE_CLASSES, FORMAT_REVISION) == STATE_FORMAT
    assert STATE_FORMAT.startswith(f"{FORMAT_REVISION}-")
    assert state_fingerprint(STATE_CLASSES, FORMAT_REVISION + 1) != STATE_FORMAT


def test_the_fingerprint_reaches_nested_dataclasses_and_enums() -> None:
    reached = reachable_classes([InstanceState])
    assert {InstanceState, TaskRun, WorkflowDef, TaskState, WorkflowState} <= set(reached)
    assert state_fingerprint([InstanceState], FORMAT_REVISION) != state_fingerprint(
        [WorkflowDef], FORMAT_REVISION
    )


@dataclass(frozen=True)
class _Leg:
    code: str
    tries: int = 0


@dataclass(frozen=True)
class _LegWithField:
    code: str
    tries: int = 0
    worker: str = ""


@dataclass(frozen=True)
class _LegRetyped:
    code: str
    tries: float = 0


@dataclass(frozen=True)
class _Trip:
    legs: tuple[_Leg, ...] = ()
    by_code: Mapping[str, _Leg] = field(default_factory=dict)


def test_the_fingerprint_changes_when_a_field_is_added_renamed_or_retyped() -> None:
    base = state_fingerprint([_Leg], FORMAT_REVISION)
    assert state_fingerprint([_Leg], FORMAT_REVISION) == base  # stable
    renamed = dataclasses.make_dataclass("_Leg", [("code", str), ("attempts", int)])
    assert state_fingerprint([_LegWithField], FORMAT_REVISION) != base
    assert state_fingerprint([_LegRetyped], FORMAT_REVISION) != base
    assert state_fingerprint([renamed], FORMAT_REVISION) != base


def test_the_fingerprint_follows_a_field_added_to_a_reachable_dataclass() -> None:
    before = state_fingerprint([_Trip], FORMAT_REVISION)
    assert _Leg in reachable_classes([_Trip])
    changed = dataclasses.make_dataclass(
        "_Trip",
        [("legs", tuple[_LegWithField, ...]), ("by_code", Mapping[str, _LegWithField])],
        frozen=True,
    )
    assert state_fingerprint([changed], FORMAT_REVISION) != before


def test_the_state_format_is_stable_across_processes() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from streams.master.snapshot_codec import STATE_FORMAT; print(STATE_FORMAT)",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == STATE_FORMAT


# -- the codec on other shapes ---------------------------------------------------------------


def test_times_keep_their_instant_and_naive_times_stay_naive() -> None:
    state = build_instance(5)
    run = next(iter(state.tasks.values()))
    plus_two = datetime(2024, 6, 1, 4, 0, 0, 1, tzinfo=timezone(timedelta(hours=2), "CEST"))
    naive = datetime(2024, 6, 1, 2, 0)
    odd = dataclasses.replace(
        state,
        started_at=plus_two,
        ended_at=naive,
        tasks={
            **state.tasks,
            run.code: dataclasses.replace(run, started_at=T0 - timedelta(days=20_000)),
        },
    )

    back = decode_snapshot(encode_snapshot(snapshot_of({odd.instance_id: odd})))

    again = back.instances[odd.instance_id]
    assert again == odd  # the same instants
    assert again.started_at is not None and again.started_at.tzinfo is UTC  # read as UTC
    assert again.ended_at is not None and again.ended_at.tzinfo is None
    assert again.tasks[run.code].started_at == T0 - timedelta(days=20_000)  # before 1970


def test_the_codec_handles_nested_dataclasses_in_tuples_and_mappings() -> None:
    trip = _Trip(legs=(_Leg("a", 1), _Leg("b")), by_code=MappingProxyType({"a": _Leg("a", 1)}))

    codec = StateCodec(_Trip, ())
    again = codec.decode(codec.encode({"t": trip}))["t"]

    assert again == trip
    assert type(again.legs) is tuple


def test_interned_values_nested_in_tuples_mappings_and_options_are_written_once() -> None:
    a1, b = _Leg("a", 1), _Leg("b")
    trips = {
        "x": _Tour(legs=(a1, b), by_code={"a": _Leg("a", 1)}, first=b),
        "y": _Tour(legs=(_Leg("b"),), by_code={}, first=None),
    }
    codec = StateCodec(_Tour, interned=(_Leg,))

    data = codec.encode(trips)
    again = codec.decode(data)

    assert again == trips
    legs = [{"code": "a", "tries": 1}, {"code": "b", "tries": 0}]
    assert msgspec.msgpack.decode(data)[0] == [legs]  # one table: the two distinct legs
    x, y = again["x"], again["y"]
    assert x.by_code["a"] is x.legs[0] and x.first is x.legs[1] is y.legs[0]
    assert type(x.legs) is tuple and y.first is None


@dataclass(frozen=True)
class _Tour:
    legs: tuple[_Leg, ...]
    by_code: Mapping[str, _Leg]
    first: _Leg | None


@dataclass(frozen=True)
class _Stop:
    tour: _Tour  # holds an interned class, so it cannot be interned before it


def test_an_interned_class_holding_a_later_one_is_refused() -> None:
    with pytest.raises(TypeError, match="interned before"):
        StateCodec(_Stop, interned=(_Tour, _Leg))


@dataclass(frozen=True)
class _Unwritable:
    code: str
    callback: object = None


@dataclass
class _Derived:
    code: str
    size: int = field(init=False, default=0)


@pytest.mark.parametrize("cls", [_Unwritable, _Derived])
def test_a_shape_the_codec_cannot_write_is_refused_when_compiled(cls: type) -> None:
    with pytest.raises(TypeError, match="snapshot codec"):
        StateCodec(cls, ())
