"""Properties of the core on random DAGs, driven to the end by a simulated, unreliable world.

The harness plays master and workers: it decides each command, applies the events with
`evolve` as the runtime does, and answers every dispatch with a started and a finished ack,
delivered in random subsets, in random order, some twice (at-least-once, no ordering).
Outcomes are random per attempt, except that tasks marked "always succeeds" do. Time moves
forward; when nothing is in flight it jumps to `next_deadline` and ticks. Workers go away
and come back. Optionally an operator pauses, stops and resumes at random.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from random import Random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from streams.core.decide.scheduling import PAUSE_WITH_RETRY_PENDING
from streams.core.definition import TaskDef, WorkflowDef
from streams.core.enums import FailureStrategy, Outcome, Priority, TaskType, WorkflowState
from streams.core.events import (
    CommandRejected,
    InstanceEvent,
    TaskDispatched,
    TaskFailed,
    TaskKillRequested,
    WorkflowFailed,
    WorkflowResumed,
)
from streams.core.evolve import evolve, fold
from streams.core.ids import ack_command_id
from streams.core.instance import InstanceState, reindexed
from streams.core.placement import Workers
from streams.core.rejections import Reason
from streams.core.tick import next_deadline, tick
from tests.core.builders import IID, NOW, workers

LIVE = workers("w1", "w2", slots=3) | workers("g1", group="gpu", slots=1)
MAX_STEPS = 2_000


@dataclass(frozen=True)
class Scenario:
    workflow: WorkflowDef
    always: frozenset[str]  # tasks whose every attempt succeeds
    fail_rate: float
    seed: int  # of the world's chance: delivery, outcomes, time, workers, operator
    controls: int  # how many random pause/stop/resume commands the operator may send


@st.composite
def scenarios(draw: st.DrawFn, controls: int = 0) -> Scenario:
    n = draw(st.integers(1, 12))
    codes = [f"t{i:02d}" for i in range(n)]
    tasks = []
    for i, code in enumerate(codes):
        ups = sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else []
        tasks.append(
            TaskDef(
                code=code,
                type=TaskType.NOOP,
                depends=tuple(codes[j] for j in ups),  # lower to higher index: acyclic
                retries=draw(st.integers(0, 2)),
                retry_interval_s=draw(st.sampled_from([0.0, 1.0, 10.0])),
                priority=draw(st.sampled_from(Priority)),
                worker_group=draw(st.sampled_from(["default", "default", "gpu"])),
            )
        )
    wf = WorkflowDef(
        code="prop",
        failure_strategy=draw(st.sampled_from(FailureStrategy)),
        tasks=tuple(draw(st.permutations(tasks))),
    )
    return Scenario(
        workflow=wf,
        always=frozenset(draw(st.sets(st.sampled_from(codes)))),
        fail_rate=draw(st.sampled_from([0.0, 0.3, 0.7])),
        seed=draw(st.integers(0, 2**32 - 1)),
        controls=controls,
    )


@dataclass
class Attempt:
    code: str
    number: int
    outcome: Outcome
    finished_sent: bool = False


@dataclass
class Harness:
    sc: Scenario
    state: InstanceState = field(default_factory=lambda: InstanceState(instance_id=IID))
    log: list[InstanceEvent] = field(default_factory=list)
    now: datetime = NOW
    workers: Workers = field(default_factory=lambda: LIVE)
    attempts: dict[str, list[Attempt]] = field(default_factory=lambda: defaultdict(list))
    tries_since_resume: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    retry_at: dict[tuple[str, int], datetime | None] = field(default_factory=dict)
    pending: list[tuple[str, str, int]] = field(default_factory=list)  # (kind, code, attempt)
    decided: dict[str, Command] = field(default_factory=dict)
    controls_left: int = 0
    resumed: bool = False
    rnd: Random = field(init=False)

    def __post_init__(self) -> None:
        self.rnd = Random(self.sc.seed)

    # -- the master's side -----------------------------------------------------------

    def send(self, command: Command) -> list[InstanceEvent]:
        self.decided.setdefault(command.command_id, command)
        events = decide(self.state, command, self.now, self.workers)
        self.emit(events)
        return events

    def tick(self) -> list[InstanceEvent]:
        events = tick(self.state, self.now, self.workers)
        self.emit(events)
        return events

    def emit(self, events: list[InstanceEvent]) -> None:
        for e in events:
            assert e.instance_id == IID
            assert e.at == self.now, "events carry the decision's now"
            if isinstance(e, TaskDispatched):
                self.check_dispatch(e)
            self.state = evolve(self.state, e)
            # the indexes evolve keeps step by step are the ones a rebuild finds
            assert reindexed(self.state) == self.state
            self.log.append(e)
            if isinstance(e, TaskDispatched):
                self.attempts[e.task_code].append(
                    Attempt(e.task_code, e.attempt, self.outcome_for(e.task_code))
                )
                self.tries_since_resume[e.task_code] += 1
                assert self.state.tasks[e.task_code].tries == self.tries_since_resume[e.task_code]
                self.pending += [("started", e.task_code, e.attempt)]
                self.pending += [("finished", e.task_code, e.attempt)]
            elif isinstance(e, TaskKillRequested):
                attempt = self.attempts[e.task_code][e.attempt - 1]
                if not attempt.finished_sent and self.rnd.random() < 0.7:
                    attempt.outcome = Outcome.KILLED  # the kill landed before the task ended
            elif isinstance(e, TaskFailed):
                self.check_failed(e)
            elif isinstance(e, WorkflowResumed):
                self.tries_since_resume.clear()
                self.retry_at.clear()  # a resume re-runs at once, whatever retry was pending
                self.resumed = True

    def check_dispatch(self, e: TaskDispatched) -> None:
        spec = self.state.defs[e.task_code]
        for up in spec.depends:
            run = self.state.tasks.get(up)
            assert run is not None and run.state.succeeded, f"{e.task_code} before {up}"
        numbers = [a.number for a in self.attempts[e.task_code]]
        assert e.attempt == len(numbers) + 1, f"{e.task_code} attempt {e.attempt} after {numbers}"
        assert self.tries_since_resume[e.task_code] < spec.retries + 1, "retry budget exceeded"
        due = self.retry_at.get((e.task_code, e.attempt - 1))
        if due is not None:
            assert e.at >= due, f"{e.task_code} retried at {e.at}, before {due}"
        live = {w.worker_id for w in self.workers.get(spec.worker_group, ())}
        assert e.worker_id in live
        assert self.state.state is WorkflowState.RUNNING_EXECUTION

    def check_failed(self, e: TaskFailed) -> None:
        spec = self.state.defs[e.task_code]
        retry_left = self.tries_since_resume[e.task_code] <= spec.retries
        expected = None
        if retry_left and self.state.state in (
            WorkflowState.RUNNING_EXECUTION,
            WorkflowState.READY_PAUSE,
        ):
            expected = e.at + timedelta(seconds=spec.retry_interval_s)
        assert e.retry_at == expected
        self.retry_at[(e.task_code, e.attempt)] = e.retry_at

    # -- the workers' side -----------------------------------------------------------

    def outcome_for(self, code: str) -> Outcome:
        if code in self.sc.always or self.rnd.random() >= self.sc.fail_rate:
            return Outcome.SUCCESS
        return self.rnd.choice([Outcome.FAILURE, Outcome.FAILURE, Outcome.TIMEOUT, Outcome.KILLED])

    def ack(self, kind: str, code: str, number: int) -> Command:
        attempt = self.attempts[code][number - 1]
        if kind == "started":
            return ReportTaskStarted(
                command_id=ack_command_id(IID, code, number, kind),
                instance_id=IID,
                task_code=code,
                attempt=number,
                worker_id="w1",
                at=self.now,
            )
        attempt.finished_sent = True
        return ReportTaskFinished(
            command_id=ack_command_id(IID, code, number, kind),
            instance_id=IID,
            task_code=code,
            attempt=number,
            worker_id="w1",
            outcome=attempt.outcome,
            exit_code=0 if attempt.outcome is Outcome.SUCCESS else 1,
            at=self.now,
        )

    def deliver_some(self) -> None:
        """A random subset of the acks in flight, in random order, some twice; a few are
        left in flight to be redelivered later."""
        chosen = self.rnd.sample(self.pending, self.rnd.randint(1, len(self.pending)))
        self.rnd.shuffle(chosen)
        for item in chosen:
            command = self.ack(*item)
            for _ in range(2 if self.rnd.random() < 0.25 else 1):
                events = self.send(command)
                self.check_ack(command, events)
            if self.rnd.random() >= 0.1:
                self.pending.remove(item)

    def check_ack(self, command: Command, events: list[InstanceEvent]) -> None:
        for e in events:
            if isinstance(e, CommandRejected):
                # only late started acks are refused: after their attempt's finish, or after
                # a later attempt superseded it; a finished ack is always taken the first time
                assert isinstance(command, ReportTaskStarted), e
                assert e.reason in (Reason.STALE_ATTEMPT, Reason.INVALID_STATE), e

    def some_workers(self) -> Workers:
        """Each group's workers are live, or all gone (missed heartbeats), at random."""
        return {g: ws for g, ws in LIVE.items() if self.rnd.random() < 0.85}

    def operate(self) -> None:
        """The operator, at random: pause, stop or resume (wrong states are refused)."""
        self.controls_left -= 1
        kind = self.rnd.choice([PauseWorkflow, StopWorkflow, ResumeWorkflow])
        self.send(kind(command_id=f"ctl-{self.controls_left}", instance_id=IID, at=self.now))

    # -- the run ---------------------------------------------------------------------

    def run(self) -> None:
        self.controls_left = self.sc.controls
        self.workers = self.some_workers()
        self.send(
            StartWorkflow(
                command_id="start", instance_id=IID, workflow=self.sc.workflow, at=self.now
            )
        )
        for _ in range(MAX_STEPS):
            self.now += timedelta(seconds=self.rnd.choice([0, 0, 0.5, 2]))
            self.workers = self.some_workers()
            if self.controls_left and self.rnd.random() < 0.1:
                self.operate()
            if self.pending and self.rnd.random() < 0.8:
                self.deliver_some()
            elif self.rnd.random() < 0.5:
                self.tick()
            if self.pending:
                continue
            # the operator resumes what a pause or stop ended, including a pause that ended
            # FAILURE because a retry was pending (DolphinScheduler's processReadyPause)
            paused_failure = self.state.state is WorkflowState.FAILURE and (
                PAUSE_WITH_RETRY_PENDING in self.state.failure_reason
            )
            if self.state.state in (WorkflowState.PAUSE, WorkflowState.STOP) or paused_failure:
                self.send(
                    ResumeWorkflow(
                        command_id=f"resume-{len(self.log)}", instance_id=IID, at=self.now
                    )
                )
                continue
            if self.state.state is not None and self.state.state.finished:
                return
            # nothing in flight: time jumps to the next deadline, a worker is live
            self.workers = LIVE
            due = next_deadline(self.state)
            if due is not None and due > self.now:
                self.now = due
            if not self.tick() and not self.pending:
                raise AssertionError(f"stuck in {self.state.state}: {self.state.tasks}")
        raise AssertionError("did not finish")


def final_outcomes(h: Harness) -> dict[str, Outcome | None]:
    return {
        t.code: h.attempts[t.code][-1].outcome if h.attempts.get(t.code) else None
        for t in h.sc.workflow.tasks
    }


def check_end(h: Harness) -> None:
    state, wf = h.state, h.sc.workflow
    # terminal: SUCCESS iff every task's final attempt succeeded
    assert state.state in (WorkflowState.SUCCESS, WorkflowState.FAILURE)
    outcomes = final_outcomes(h)
    all_ok = all(o is Outcome.SUCCESS for o in outcomes.values())
    assert (state.state is WorkflowState.SUCCESS) == all_ok, outcomes
    if all(t.code in h.sc.always for t in wf.tasks):
        assert state.state is WorkflowState.SUCCESS
    # the state agrees with what the workers did
    for code, tried in h.attempts.items():
        run = state.tasks[code]
        assert run.attempt == len(tried)
        assert run.state.succeeded == (tried[-1].outcome is Outcome.SUCCESS)
    assert state.active() == []
    # CONTINUE: every task whose upstreams all succeeded did run
    if wf.failure_strategy is FailureStrategy.CONTINUE:
        for t in wf.tasks:
            if all(state.tasks.get(d) and state.tasks[d].state.succeeded for d in t.depends):
                assert t.code in state.tasks, f"{t.code} never ran"
    # the failure reason names exactly the tasks that failed for good
    if state.state is WorkflowState.FAILURE:
        reason = [e for e in h.log if isinstance(e, WorkflowFailed)][-1].reason
        failed_for_good = sorted(c for c, o in outcomes.items() if o not in (None, Outcome.SUCCESS))
        assert failed_for_good
        named = [part.split(" (")[0] for part in reason.removeprefix("failed: ").split(", ")]
        assert set(named) <= set(failed_for_good)
    # replay: the fold of the log is the live state
    assert fold(h.log, IID) == state
    # idempotency: every command already decided decides nothing again
    for command in h.decided.values():
        assert decide(state, command, h.now + timedelta(hours=1), LIVE) == [], command
    assert tick(state, h.now + timedelta(days=1), LIVE) == []
    assert next_deadline(state) is None


def check_dispatch_log(h: Harness) -> None:
    seen: set[tuple[str, int]] = set()
    for e in h.log:
        if isinstance(e, TaskDispatched):
            assert (e.task_code, e.attempt) not in seen, f"dispatched twice: {e}"
            seen.add((e.task_code, e.attempt))
    if not h.resumed:
        for t in h.sc.workflow.tasks:
            assert len(h.attempts.get(t.code, [])) <= t.retries + 1


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(scenarios())
def test_random_dags_under_unreliable_delivery_end_consistently(sc: Scenario) -> None:
    h = Harness(sc)

    h.run()

    check_end(h)
    check_dispatch_log(h)


@PROPERTY
@given(scenarios(controls=3))
def test_random_dags_with_random_pause_stop_resume_end_consistently(sc: Scenario) -> None:
    h = Harness(sc)

    h.run()

    check_end(h)
    check_dispatch_log(h)


@settings(max_examples=30, deadline=None)
@given(scenarios())
def test_random_dags_whose_tasks_always_succeed_end_success(sc: Scenario) -> None:
    sc = replace(sc, always=frozenset(t.code for t in sc.workflow.tasks), fail_rate=0.0)
    h = Harness(sc)

    h.run()

    assert h.state.state is WorkflowState.SUCCESS
    assert all(len(a) == 1 for a in h.attempts.values())
    assert fold(h.log, IID) == h.state
