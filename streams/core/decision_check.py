"""Does today's `decide` write the history an instance recorded? (pure)

An instance's events come in decisions: the events one decision wrote share its cause (the
command id; `tick/...` for a time-driven one; `worker-lost/<worker>/<incarnation>` for a
failover). Each decision is re-run from the fold of the events before it, with the inputs the
log holds:

* the command: the record with that id on the commands topic;
* the time: the `at` of the decision's first event;
* placement: the live workers with their free slots came from heartbeats, which the events log
  does not hold. The facts it holds are the dispatches, so the decision is given exactly the
  workers it dispatched to, each with as many free slots as it got dispatches there, and the
  decided dispatches take the recorded worker for the same attempt: the check proves which
  attempts were dispatched, not which of equal workers got them;
* a tick's acknowledgement timeout (master configuration): read from the reason of the
  failovers it wrote, else none;
* a lost worker: its id from the cause and the reason from its failovers.

Owner epochs (the master's fencing) are not decisions and are compared as 0. A decision whose
cause names no input in the log (a command missing from the commands topic) is a divergence
too: the history cannot be checked, which is the point.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from streams.core.commands import Command
from streams.core.decide import decide
from streams.core.decide.failover import on_lost_worker
from streams.core.events import (
    CommandRejected,
    InstanceEvent,
    TaskDispatched,
    TaskFailedOver,
    TaskKilled,
)
from streams.core.evolve import evolve
from streams.core.instance import InstanceState
from streams.core.placement import Workers, WorkerView
from streams.core.tick import tick

_ACK = re.compile(r"dispatch not acknowledged within ([0-9.]+)s")


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first decision of an instance that today's code decides differently."""

    instance_id: str
    offset: int  # of the decision's first recorded event
    cause: str
    recorded: tuple[str, ...]
    decided: tuple[str, ...]
    why: str


def cause_of(event: InstanceEvent) -> str:
    if isinstance(event, CommandRejected):
        return event.command_id
    return str(getattr(event, "cause", ""))


def decisions(events: Sequence[tuple[int, InstanceEvent]]) -> list[list[tuple[int, Any]]]:
    """The events in runs of one cause each, in log order."""
    runs: list[list[tuple[int, Any]]] = []
    for offset, event in events:
        if runs and cause_of(runs[-1][-1][1]) == cause_of(event):
            runs[-1].append((offset, event))
        else:
            runs.append([(offset, event)])
    return runs


def _placement(recorded: Sequence[Any]) -> Workers:
    counts: dict[tuple[str, str], int] = {}
    for e in recorded:
        if isinstance(e, TaskDispatched):
            counts[(e.worker_group, e.worker_id)] = counts.get((e.worker_group, e.worker_id), 0) + 1
    view: dict[str, list[WorkerView]] = {}
    for (group, worker), n in counts.items():
        view.setdefault(group, []).append(WorkerView(worker, group, n, n))
    return view


def _redecide(
    state: InstanceState, cause: str, recorded: Sequence[Any], commands: Mapping[str, Command]
) -> list[InstanceEvent] | str:
    at = recorded[0].at
    workers = _placement(recorded)
    if cause in commands:
        return decide(state, commands[cause], at, workers)
    if cause.startswith("tick/"):
        reasons = [e.reason for e in recorded if isinstance(e, TaskFailedOver)]
        found = next((m for r in reasons if (m := _ACK.search(r))), None)
        ack = timedelta(seconds=float(found.group(1))) if found else None
        return tick(state, at, workers, ack)
    if cause.startswith("worker-lost/"):
        worker = cause.removeprefix("worker-lost/").rsplit("/", 1)[0]
        reasons = [e.reason for e in recorded if isinstance(e, TaskFailedOver)]
        killed = [e.output for e in recorded if isinstance(e, TaskKilled)]
        reason = (
            reasons[0] if reasons else (killed[0].removeprefix("[tideflow] ") if killed else "")
        )
        return on_lost_worker(state, worker, None, reason, cause, at, workers)
    return f"no input for cause {cause!r} in the log (a command missing from the commands topic?)"


def _same_placement(decided: list[Any], recorded: Sequence[Any]) -> list[Any]:
    chosen = {
        (e.task_code, e.attempt): e.worker_id for e in recorded if isinstance(e, TaskDispatched)
    }
    return [
        replace(e, worker_id=chosen.get((e.task_code, e.attempt), e.worker_id))
        if isinstance(e, TaskDispatched)
        else e
        for e in decided
    ]


def _unfenced(events: Sequence[Any]) -> list[Any]:
    return [replace(e, epoch=0) if getattr(e, "epoch", 0) else e for e in events]


def check_instance(
    instance_id: str,
    events: Sequence[tuple[int, InstanceEvent]],
    commands: Mapping[str, Command],
) -> Divergence | None:
    """The first decision of `events` (the instance's unfenced events with their offsets, in
    log order) that today's code decides differently; None when it decides all the same."""
    state = InstanceState(instance_id=instance_id)
    for run in decisions(events):
        offset, first = run[0]
        cause = cause_of(first)
        recorded = [e for _, e in run]
        decided = _redecide(state, cause, recorded, commands)
        if isinstance(decided, str):
            why = decided
            decided = []
        else:
            decided = _same_placement(decided, recorded)
            why = "" if _unfenced(decided) == _unfenced(recorded) else "different events"
        if why:
            return Divergence(
                instance_id, offset, cause,
                tuple(repr(e) for e in recorded), tuple(repr(e) for e in decided), why,
            )  # fmt: skip
        for event in recorded:
            state = evolve(state, event)
    return None
