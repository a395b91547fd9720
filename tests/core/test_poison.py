"""No command is poison: `decide`, `tick` and the worker-lost rule never raise, whatever
valid-schema input arrives, and what they decide always folds.

Any producer may write a command: the definition a `StartWorkflow` carries is only as good
as its sender (any long for `retries`, any double for a duration, duplicate or unknown task
codes, cycles), acks name tasks and attempts that may not exist, ids repeat. The runtime
decides each command against the state the earlier ones left, ticks the instance at times
that may even go back, and fails over lost workers; every answer must be a list of events
that `evolve` applies and a fresh fold reproduces. A raise here would stop a partition on
every master that owns it in turn.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.core.commands import (
    COMMAND_TYPES,
    Command,
    ForceTaskSuccess,
    PauseWorkflow,
    ReportTaskFinished,
    ReportTaskStarted,
    RerunTasks,
    RerunWorkflow,
    ResumeWorkflow,
    StartWorkflow,
    StopTask,
    StopWorkflow,
)
from streams.core.decide import decide
from streams.core.decide.failover import lost_workers, on_worker_lost
from streams.core.decide.scheduling import dispatchable
from streams.core.definition import TaskDef, WorkflowDef
from streams.core.enums import FailureStrategy, Outcome, Priority, TaskDependType, TaskType
from streams.core.events import InstanceEvent
from streams.core.evolve import evolve, fold
from streams.core.ids import ack_command_id
from streams.core.instance import InstanceState
from streams.core.placement import Workers, WorkerView
from streams.core.tick import next_deadline, tick, waiting_for_slots

LONG = st.integers(-(2**63), 2**63 - 1)  # Avro long
CODES = ["a", "b", "c"]
GROUPS = ["default", "gpu"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
UTC_ONLY = st.just(UTC)

codes = st.sampled_from(CODES) | st.text(max_size=3)
counts = st.integers(0, 3) | LONG  # retries, attempts, exit codes: mostly small
durations = st.sampled_from([0.0, 1.0, 30.0]) | st.floats()  # NaN, infinities, negatives
groups = st.sampled_from(GROUPS) | st.text(max_size=2)

task_defs = st.builds(
    TaskDef,
    code=codes,
    type=st.sampled_from(TaskType),
    command=st.text(max_size=4),
    depends=st.lists(codes, max_size=3).map(tuple),
    retries=counts,
    retry_interval_s=durations,
    timeout_s=st.none() | durations,
    worker_group=groups,
    priority=st.sampled_from(Priority),
    description=st.text(max_size=2),
    run=st.booleans(),
)
any_workflows = st.builds(
    WorkflowDef,
    code=st.text(max_size=4),
    version=LONG,
    description=st.text(max_size=2),
    failure_strategy=st.sampled_from(FailureStrategy),
    tasks=st.lists(task_defs, max_size=5).map(tuple),
)


@st.composite
def runnable_workflows(draw: st.DrawFn) -> WorkflowDef:
    """A valid DAG (distinct codes, upstreams listed earlier) with arbitrary values."""
    tasks: list[TaskDef] = []
    for code in draw(st.lists(st.sampled_from(CODES), min_size=1, unique=True)):
        ups = draw(st.lists(st.sampled_from([t.code for t in tasks]), max_size=2)) if tasks else []
        spec = draw(task_defs)
        tasks.append(replace(spec, code=code, depends=tuple(ups)))
    return WorkflowDef(code="wf", failure_strategy=draw(st.sampled_from(FailureStrategy)),
                       tasks=tuple(tasks))  # fmt: skip


workflows = runnable_workflows() | any_workflows
worker_views = st.builds(
    WorkerView,
    worker_id=st.sampled_from(["w1", "w2"]) | st.text(max_size=2),
    group=groups,
    slots_total=st.integers(-1, 4) | LONG,
    slots_free=st.integers(-2, 4) | LONG,
)
IDLE = {g: [WorkerView(f"w-{g}", g, 4, 4)] for g in GROUPS}
any_workers = st.dictionaries(groups, st.lists(worker_views, max_size=3), max_size=3)
live_workers = st.just(IDLE) | any_workers
# Mostly forward in small steps, so retries come due; sometimes anywhere, even back.
steps = st.sampled_from([0.0, 0.5, 10.0, 3600.0]) | st.floats(-1e6, 1e8)
ack_timeouts = st.none() | st.sampled_from([timedelta(0), timedelta(seconds=30)])


@dataclass(frozen=True)
class Verdict:
    worker_id: str
    incarnation: datetime
    reason: str
    dispatched_before: datetime | None


def a_command(data: st.DataObject, s: InstanceState, now: datetime) -> Command:
    """Any command type; acks mostly about the tasks and attempts the state has."""
    likely = [StartWorkflow] if not s.exists else [ReportTaskStarted, ReportTaskFinished]
    kind = data.draw(st.sampled_from(likely) | st.sampled_from(COMMAND_TYPES))
    command_id = data.draw(st.sampled_from(["c1", "c2"]) | st.text(max_size=4))
    at = data.draw(st.just(now) | st.datetimes(timezones=UTC_ONLY))
    iid = s.instance_id
    if kind is StartWorkflow:
        return StartWorkflow(
            command_id=command_id,
            instance_id=iid,
            workflow=data.draw(workflows),
            params=data.draw(st.dictionaries(st.text(max_size=2), st.text(max_size=2))),
            requested_by=data.draw(st.text(max_size=2)),
            at=at,
            dry_run=data.draw(st.booleans()),
            start_nodes=tuple(data.draw(st.lists(codes, max_size=3))),
            scope=data.draw(st.sampled_from(TaskDependType)),
        )
    if kind in (PauseWorkflow, StopWorkflow, ResumeWorkflow, RerunWorkflow):
        return kind(command_id=command_id, instance_id=iid, at=at)
    code = data.draw(st.sampled_from(sorted(s.tasks)) if s.tasks else codes)
    if kind in (ForceTaskSuccess, StopTask):
        return kind(command_id=command_id, instance_id=iid, task_code=code, at=at)
    if kind is RerunTasks:
        known = st.sampled_from(sorted(s.defs)) if s.defs else codes
        nodes = (code, *data.draw(st.lists(known | codes, max_size=2)))
        return RerunTasks(
            command_id=command_id, instance_id=iid, at=at,
            start_nodes=nodes[: data.draw(st.integers(0, 3))],
            scope=data.draw(st.sampled_from(TaskDependType)),
        )  # fmt: skip
    run = s.tasks.get(code)
    attempt = data.draw(st.just(run.attempt) if run else counts) if data.draw(st.booleans()) else 1
    worker = data.draw(st.just(run.worker_id) if run else st.text(max_size=2))
    ack_kind = "started" if kind is ReportTaskStarted else "finished"
    if data.draw(st.booleans()):  # the id a real worker sends: redeliveries repeat it
        command_id = ack_command_id(iid, code, attempt, ack_kind)
    if kind is ReportTaskStarted:
        return ReportTaskStarted(
            command_id=command_id, instance_id=iid, task_code=code, attempt=attempt,
            worker_id=worker, at=at,
        )  # fmt: skip
    return ReportTaskFinished(
        command_id=command_id, instance_id=iid, task_code=code, attempt=attempt,
        worker_id=worker, outcome=data.draw(st.sampled_from(Outcome)),
        exit_code=data.draw(counts), output=data.draw(st.text(max_size=3)), at=at,
    )  # fmt: skip


def a_verdict(data: st.DataObject, s: InstanceState, now: datetime) -> Verdict:
    workers = sorted({t.worker_id for t in s.active()}) or ["w1"]
    return Verdict(
        worker_id=data.draw(st.sampled_from(workers) | st.text(max_size=2)),
        incarnation=data.draw(st.datetimes(timezones=UTC_ONLY)),
        reason=data.draw(st.text(max_size=3)),
        dispatched_before=data.draw(st.none() | st.just(now) | st.datetimes(timezones=UTC_ONLY)),
    )


def one_step(data: st.DataObject, s: InstanceState, now: datetime) -> list[InstanceEvent]:
    """What the runtime does with a command, a due tick or a worker check: the decision,
    then the questions it asks of the new state (next tick, slot waits)."""
    workers: Workers = data.draw(live_workers)
    ack_timeout = data.draw(ack_timeouts)
    what = data.draw(st.sampled_from(["command", "command", "tick", "lost"]))
    if what == "command":
        events = decide(s, a_command(data, s, now), now, workers)
    elif what == "tick":
        events = tick(s, now, workers, ack_timeout)
    else:
        verdict = a_verdict(data, s, now)
        events = []
        for lost in lost_workers(s, {verdict.worker_id: verdict}.get, now):
            events += on_worker_lost(_applied(s, events), lost, now, workers)
    after = _applied(s, events)
    next_deadline(after, ack_timeout, after=now)
    waiting_for_slots(after, now)
    dispatchable(after, now)
    return events


def _applied(s: InstanceState, events: list[InstanceEvent]) -> InstanceState:
    for e in events:
        s = evolve(s, e)
    return s


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.text(max_size=6))
def test_any_command_sequence_is_decided_without_raising_and_folds(
    data: st.DataObject, instance_id: str
) -> None:
    state = InstanceState(instance_id=instance_id)
    log: list[InstanceEvent] = []
    now = T0
    for _ in range(data.draw(st.integers(1, 25))):
        now = now + timedelta(seconds=data.draw(steps))

        events = one_step(data, state, now)

        assert all(e.instance_id == instance_id for e in events)
        state = _applied(state, events)
        log += events
    assert fold(log, instance_id) == state
