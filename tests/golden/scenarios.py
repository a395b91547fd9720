"""The stories the golden logs record: each a list of decisions with every input a decision
reads, so that re-deciding them with today's code must write the same bytes.

What a master's decision reads, and where each input is in a golden log (and in the real log):
* the instance's state: the fold of its earlier events (the log);
* the command: a record on the commands topic (here: its Avro bytes);
* the time of the decision: the `at` of the events it wrote (here: the step's `at`);
* the live workers it places dispatches on (`Workers`, from heartbeats): NOT in the events log;
  the chosen worker is (`TaskDispatched.worker_id`), so a replay check over a real log must take
  placement from the recorded dispatches. Here the step records the view it was given.
* time-driven decisions (`tick`: retries, delays, timeout warnings, unacknowledged dispatches)
  and a worker declared lost (`on_lost_worker`): their time and the lost worker's id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from streams.core.commands import Command
from streams.core.enums import Outcome, TimeoutStrategy
from tests.core.builders import (
    NOW,
    chain,
    dag,
    force_success,
    pause,
    report_finished,
    report_started,
    rerun,
    resume,
    start,
    stop,
    task,
    workflow,
)


@dataclass(frozen=True)
class Step:
    """One decision: a command (decided by `decide`), a tick, or a worker declared lost."""

    at: datetime
    command: Command | None = None
    tick: bool = False
    lost_worker: str = ""
    workers: tuple[tuple[str, int], ...] = (("w1", 4),)  # (worker id, free slots), group default


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: list[Step] = field(default_factory=list)


def _t(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def _at(command: Any, seconds: float) -> Step:
    return Step(at=_t(seconds), command=command)


def _ran(code: str, attempt: int, seconds: float, outcome: Outcome = Outcome.SUCCESS) -> list[Step]:
    return [
        _at(report_started(code, attempt), seconds),
        _at(report_finished(code, attempt, outcome), seconds + 0.5),
    ]


def retries() -> Scenario:
    wf = chain("extract", "load", retries=2, retry_interval_s=5)
    return Scenario(
        "retries",
        [
            _at(start(wf), 0),
            *_ran("extract", 1, 1, Outcome.FAILURE),
            Step(at=_t(7), tick=True),
            *_ran("extract", 2, 8),
            *_ran("load", 1, 10),
        ],
    )


def worker_failover() -> Scenario:
    wf = dag(a=(), b=("a",))
    return Scenario(
        "worker_failover",
        [
            _at(start(wf), 0),
            _at(report_started("a", 1), 1),
            Step(at=_t(5), lost_worker="w1", workers=(("w2", 4),)),
            _at(report_started("a", 2, worker_id="w2"), 6),
            _at(report_finished("a", 2, worker_id="w2"), 7),
            Step(at=_t(7.5), command=report_started("b", 1, worker_id="w2"), workers=(("w2", 4),)),
            Step(at=_t(8), command=report_finished("b", 1, worker_id="w2"), workers=(("w2", 4),)),
        ],
    )


def pause_resume_stop() -> Scenario:
    wf = chain("a", "b", "c")
    return Scenario(
        "pause_resume_stop",
        [
            _at(start(wf), 0),
            _at(report_started("a", 1), 1),
            _at(pause(), 2),
            _at(report_finished("a", 1), 3),
            _at(resume(), 4),
            _at(report_started("b", 1), 5),
            _at(stop(), 6),
            _at(report_finished("b", 1, Outcome.KILLED), 7),
            _at(pause("pause-late"), 8),  # refused: the instance is STOP
        ],
    )


def rerun_and_force_success() -> Scenario:
    wf = workflow(task("a"), task("b", "a"))
    return Scenario(
        "rerun_and_force_success",
        [
            _at(start(wf), 0),
            *_ran("a", 1, 1),
            *_ran("b", 1, 2, Outcome.FAILURE),
            _at(force_success("b"), 3),
            _at(rerun(), 4),
            *_ran("a", 2, 5),
            *_ran("b", 2, 6),
        ],
    )


def timeout_warning() -> Scenario:
    wf = workflow(task("slow", timeout_s=5, timeout_strategy=TimeoutStrategy.WARN))
    return Scenario(
        "timeout_warning",
        [
            _at(start(wf), 0),
            _at(report_started("slow", 1), 1),
            Step(at=_t(6.5), tick=True),
            _at(report_finished("slow", 1), 9),
        ],
    )


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "retries": retries,
    "worker_failover": worker_failover,
    "pause_resume_stop": pause_resume_stop,
    "rerun_and_force_success": rerun_and_force_success,
    "timeout_warning": timeout_warning,
}
