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
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import Enum, IntEnum, StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.core.cron import Cron, InvalidCron, parse_cron
from streams.core.definition import DEFAULT_WORKER_GROUP, WorkflowDef, parse_duration
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


class InvalidSchedule(ValueError):
    """A schedule that cannot be; `problems` names each reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


_ENUMS: Final[dict[str, type[Enum]]] = {
    "misfire": Misfire,
    "failure_strategy": FailureStrategy,
    "workflow_priority": Priority,
    "warning_type": WarningType,
}


def parse_schedule(raw: Mapping[str, Any]) -> ScheduleSpec:
    """A checked `ScheduleSpec` from plain values (JSON, CLI options): enums by name in any
    case, times as ISO 8601 (a time without an offset is read in the schedule's timezone,
    as DolphinScheduler reads start and end), the catch-up window as seconds or a duration
    like '1h'. `InvalidSchedule` names every problem, those of `schedule_problems` too."""
    problems: list[str] = []
    known = {f.name for f in fields(ScheduleSpec)}
    problems += [f"{k}: not a schedule field (expected one of {', '.join(sorted(known))})"
                 for k in raw if k not in known]  # fmt: skip
    values: dict[str, Any] = {}
    for name in ("workflow_code", "cron"):
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{name}: expected a non-empty string, found {value!r}")
        else:
            values[name] = value.strip()
    tz = raw.get("timezone", "UTC")
    if not isinstance(tz, str):
        problems.append(f"timezone: expected an IANA name like 'Asia/Shanghai', found {tz!r}")
        tz = "UTC"
    values["timezone"] = tz
    for name in ("start_time", "end_time"):
        at = _time(raw.get(name), tz, name, problems)
        if at is not None:
            values[name] = at
    for name, kind in _ENUMS.items():
        value = raw.get(name)
        if value is None:
            continue
        key = str(value.name if isinstance(value, Enum) else value).upper()
        if key in kind.__members__:
            values[name] = kind[key]
        else:
            choices = ", ".join(kind.__members__)
            problems.append(f"{name}: expected one of {choices}, found {value!r}")
    if raw.get("catch_up_window_s") is not None:
        window = parse_duration(raw["catch_up_window_s"], "catch_up_window_s", problems)
        if window is not None:
            values["catch_up_window_s"] = window
    for name, default in (("worker_group", DEFAULT_WORKER_GROUP), ("warning_group_id", 0)):
        value = raw.get(name, default)
        if value is None:
            continue
        if not isinstance(value, type(default)) or isinstance(value, bool):
            problems.append(f"{name}: expected a {type(default).__name__}, found {value!r}")
        else:
            values[name] = value
    params = raw.get("params") or {}
    if not isinstance(params, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in params.items()
    ):
        problems.append(f"params: expected names to string values, found {params!r}")
    else:
        values["params"] = dict(params)
    if problems or "workflow_code" not in values or "cron" not in values:
        # the field problems first; the cron and timezone are still checked when given
        if "cron" in values:
            try:
                parse_cron(values["cron"], tz)
            except InvalidCron as exc:
                problems += exc.problems
        raise InvalidSchedule(problems)
    spec = ScheduleSpec(**values)
    problems = schedule_problems(spec)
    if problems:
        raise InvalidSchedule(problems)
    return spec


def _time(value: object, tz: str, where: str, problems: list[str]) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        at = value
    else:
        try:
            at = datetime.fromisoformat(str(value))
        except ValueError:
            problems.append(f"{where}: expected an ISO 8601 time like 2026-12-01T02:00, "
                            f"found {value!r}")  # fmt: skip
            return None
    if at.tzinfo is None:
        try:
            at = at.replace(tzinfo=ZoneInfo(tz))
        except (ZoneInfoNotFoundError, ValueError):
            return None  # the timezone's own problem is named by the cron check
    return at


def spec_to_dict(spec: ScheduleSpec) -> dict[str, Any]:
    """The plain form `parse_schedule` reads back (enums by name, ISO times)."""
    out: dict[str, Any] = {}
    for f in fields(ScheduleSpec):
        value = getattr(spec, f.name)
        if isinstance(value, Enum):
            value = value.name
        elif isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, dict):
            value = dict(value)
        out[f.name] = value
    return out
