"""A decision staged in full before any of it is sent (pure; no I/O).

A command's `decide`, a tick, or a worker failover returns events for one instance; the
master stamps them with its owner epoch, folds them with `evolve`, derives the dispatch
records they imply, and asks the folded state when it next needs a tick and which worker
groups it waits on. All of that is computed here, before anything is produced or the
partition's state is touched, so a decision that raises anywhere in the core leaves no
trace: the runtime records it as poison and goes on (`intake`, `runtime`), and a decision
that did not raise is applied whole (`appender`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from streams.core.commands import Command
from streams.core.events import InstanceEvent, TaskDispatched, TaskFailedOver, TaskKillRequested
from streams.core.evolve import evolve
from streams.core.instance import InstanceState
from streams.core.placement import Workers
from streams.core.tick import next_deadline, waiting_for_slots
from streams.core.worker_messages import KillTask, TaskAssignment
from streams.master.dispatching import assignment, kill

# `streams.core.decide.decide` and `streams.core.tick.tick`, injectable (tests give a master
# one that raises, to prove a poison decision is survived).
Decider = Callable[[InstanceState, Command, datetime, Workers], list[InstanceEvent]]
Ticker = Callable[[InstanceState, datetime, Workers, timedelta | None], list[InstanceEvent]]


@dataclass(frozen=True, slots=True)
class Step:
    event: InstanceEvent  # stamped with the owner epoch
    before: InstanceState  # the instance before the event (whose worker an ended task used)
    dispatch: TaskAssignment | KillTask | None  # the record the event sends to a worker


@dataclass(frozen=True, slots=True)
class Decision:
    instance_id: str
    steps: tuple[Step, ...]
    after: InstanceState  # the instance with every event applied
    due: datetime | None  # `next_deadline` of `after`
    waits: frozenset[str]  # `waiting_for_slots` of `after`: worker groups it waits on


def stage(
    state: InstanceState,
    events: list[InstanceEvent],
    epoch: int,
    now: datetime,
    ack_timeout: timedelta | None,
) -> Decision:
    """`events` decided for `state` at `now`, stamped, folded and followed to their dispatch
    records; raises whatever the core raises on the way."""
    steps: list[Step] = []
    after = state
    for event in events:
        event = replace(event, epoch=epoch)  # fencing: every event carries its epoch
        before, after = after, evolve(after, event)
        record: TaskAssignment | KillTask | None = None
        if isinstance(event, TaskDispatched):
            record = assignment(after, after.tasks[event.task_code], epoch, now)
        elif isinstance(event, TaskKillRequested | TaskFailedOver):
            # a failed-over attempt is killed too, should its worker come back
            record = kill(after, after.tasks[event.task_code], epoch, now)
        steps.append(Step(event, before, record))
    return Decision(
        state.instance_id,
        tuple(steps),
        after,
        next_deadline(after, ack_timeout, after=now),
        waiting_for_slots(after, now),
    )
