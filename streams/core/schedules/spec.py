"""A schedule's definition and the rule it must follow (pure).

A schedule is DolphinScheduler's (§6): a workflow code, a cron (Quartz 6-7 fields or Unix 5)
in an IANA timezone, an optional start and end time, and the run settings a start takes
(failure strategy, workflow priority, worker group, warning type and group, startup
parameters). `schedule_problems` names every problem at once; the API and the scheduler
apply the same rule.

Two misfire policies decide what fires after downtime (see `fire.py`): every missed fire
time inside the catch-up window, oldest first (DolphinScheduler's `IGNORE_MISFIRES`), or
only the latest one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Final

from streams.core.cron import Cron, InvalidCron, parse_cron
from streams.core.definition import DEFAULT_WORKER_GROUP, WorkflowDef
from streams.core.enums import FailureStrategy, Priority
from streams.core.params import param_problems

DEFAULT_CATCH_UP_S: Final = 3600.0  # missed fire times older than this are not fired
MAX_CATCH_UP_S: Final = 7 * 24 * 3600.0
_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


class Misfire(StrEnum):
    """What fires after downtime: every missed time in the window, oldest first, or the
    latest missed one only."""

    ALL = "ALL"
    LATEST = "LATEST"


class WarningType(IntEnum):
    """DolphinScheduler's `WarningType`, with its codes."""

    NONE = 0
    SUCCESS = 1
    FAILURE = 2
    ALL = 3
    GLOBAL = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleSpec:
    """What a user defines (the online flag is state, changed by its own commands)."""

    workflow_code: str
    cron: str
    timezone: str = "UTC"
    start_time: datetime | None = None  # nothing fires before it
    end_time: datetime | None = None  # nothing fires after it
    misfire: Misfire = Misfire.ALL
    catch_up_window_s: float = DEFAULT_CATCH_UP_S
    failure_strategy: FailureStrategy = FailureStrategy.CONTINUE
    workflow_priority: Priority = Priority.MEDIUM
    worker_group: str = DEFAULT_WORKER_GROUP
    warning_type: WarningType = WarningType.NONE
    warning_group_id: int = 0
    params: dict[str, str] = field(default_factory=dict)

    def parsed_cron(self) -> Cron:
        return parse_cron(self.cron, self.timezone)


def schedule_id_problem(schedule_id: str) -> str | None:
    if _ID.match(schedule_id):
        return None
    return (
        "schedule id: expected letters, digits, '_', '.', '-' (at most 128, starting with a "
        f"letter or digit), found {schedule_id!r}"
    )


def schedule_problems(spec: ScheduleSpec) -> list[str]:
    """Every reason `spec` cannot be a schedule (empty: it can)."""
    problems: list[str] = []
    if not _ID.match(spec.workflow_code):
        problems.append(f"workflow_code: expected a workflow code, found {spec.workflow_code!r}")
    try:
        parse_cron(spec.cron, spec.timezone)
    except InvalidCron as exc:
        problems.extend(exc.problems)
    for name in ("start_time", "end_time"):
        value = getattr(spec, name)
        if value is not None and value.tzinfo is None:
            problems.append(f"{name}: expected a time with a timezone, found {value.isoformat()}")
    start, end = spec.start_time, spec.end_time
    if start is not None and end is not None and start.tzinfo and end.tzinfo and end <= start:
        problems.append(
            f"end_time: expected after start_time {start.isoformat()}, found {end.isoformat()}"
        )
    window = spec.catch_up_window_s
    if not (math.isfinite(window) and 0 <= window <= MAX_CATCH_UP_S):
        problems.append(
            f"catch_up_window_s: expected 0 to {MAX_CATCH_UP_S:g} seconds, found {window!r}"
        )
    if not _ID.match(spec.worker_group):
        problems.append(f"worker_group: expected a group name, found {spec.worker_group!r}")
    if spec.warning_group_id < 0:
        problems.append(f"warning_group_id: expected 0 or more, found {spec.warning_group_id}")
    problems.extend(f"params: {p}" for p in param_problems(spec.params))
    return problems


def run_settings(workflow: WorkflowDef, spec: ScheduleSpec) -> WorkflowDef:
    """The definition a fire starts: the schedule's failure strategy, and its worker group
    for every task left in the default group (DolphinScheduler: a task's own group wins)."""
    tasks = workflow.tasks
    if spec.worker_group != DEFAULT_WORKER_GROUP:
        tasks = tuple(
            replace(t, worker_group=spec.worker_group)
            if t.worker_group == DEFAULT_WORKER_GROUP
            else t
            for t in tasks
        )
    return replace(workflow, failure_strategy=spec.failure_strategy, tasks=tasks)
